"""Demand for the SUMO world: T-Drive taxi trips (map-matched, routed), a zone OD matrix from them, SUMO's
random trips, pedestrians and cyclists; and the calibration of the demand scale against T-Drive's speeds.

**T-Drive trips** (:func:`tdrive_trips`). The fixes of each taxi inside the network's area and the data
window are cut into legs: from an anchor fix, the first later fix at least ``min_trip_m`` away (straight
line) with no gap longer than ``max_gap_s`` on the way ends a trip, and becomes the next anchor. A trip
departs at its first fix's time and is map-matched at both ends (the nearest road a car may use, within
``mapmatch_m``, preferring the direction the taxi moved in) to an edge and a position on it; ``duarouter``
routes it. **Every fix is accounted for** (:class:`FixAccount`): the reader's skip reasons (bad lines,
outside the area or window, GPS jumps), then used (a trip's end or a fix passed on the way) or skipped
with a reason (no road near, no later fix within the gap, did not move ``min_trip_m``, trip unroutable);
``used + skipped == read`` is checked.

**Scale.** The T-Drive taxis are a sample of the traffic. At scale ``s`` the taxis' own trips are joined by
``(s - 1)`` times their zone OD matrix (``zone_m`` squares, one hour), expanded by ``od2trips`` into
background trips of a vehicle-type mix, routed by ``duarouter``.
:func:`mobility_twin_sim.sumo.prepare.calibrate_scale` simulates the hour at several scales (the ``sumo``
program, 0.5 s steps) and picks the one whose mean simulated taxi speed (total route length / total travel
time, from SUMO's trip info, :func:`taxi_speeds`) matches the speed T-Drive observed on the same trips (the
same route lengths / the times between their fixes). T-Drive's times include everything a taxi does
between two fixes (waiting for a fare too); SUMO's taxis only drive.

**Random trips** (:func:`random_trips`): SUMO's ``randomTrips.py`` for networks without T-Drive data
(``real_streets``); pedestrians and cyclists the same way where the network has sidewalks.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path

import numpy as np

from mobility_twin_core.model import ObjectClass
from mobility_twin_sim.geo import LocalENU
from mobility_twin_sim.sumo import tools
from mobility_twin_sim.sumo.errors import DemandError, SumoToolError
from mobility_twin_sim.sumo.network import NetFrame, Network
from mobility_twin_sim.tdrive import BEIJING, LoadReport, ReaderConfig, iter_tracks

EXAMPLES = 5


# ------------------------------------------------------------------------------------------------ vehicle types
@dataclass(frozen=True)
class VehicleType:
    """A SUMO vehicle type with real dimensions (m) and the object class perception reports for it."""

    type_id: str
    vclass: str  # SUMO vehicle class
    length_m: float
    width_m: float
    height_m: float
    object_class: ObjectClass
    share: float = 0.0  # of the background mix (0: not drawn for background traffic)
    max_speed_mps: float = 0.0  # 0: SUMO's default for the class
    color: str = ""


#: Vehicle types (sizes of common Beijing vehicles: compact sedan, SUV, delivery van, 12 m city bus, 2-axle truck).
VEHICLE_TYPES: tuple[VehicleType, ...] = (
    VehicleType("taxi", "passenger", 4.6, 1.8, 1.5, ObjectClass.CAR, color="1,0.8,0"),
    VehicleType("cav", "passenger", 4.8, 1.9, 1.7, ObjectClass.CAR, color="0,0.8,1"),
    VehicleType("car", "passenger", 4.5, 1.8, 1.5, ObjectClass.CAR, share=0.75),
    VehicleType("suv", "passenger", 4.8, 1.9, 1.75, ObjectClass.CAR, share=0.12),
    VehicleType("van", "delivery", 5.2, 2.0, 2.1, ObjectClass.TRUCK, share=0.06),
    VehicleType("bus", "bus", 12.0, 2.55, 3.2, ObjectClass.BUS, share=0.04),
    VehicleType("truck", "truck", 8.5, 2.5, 3.4, ObjectClass.TRUCK, share=0.03),
    VehicleType("bicycle", "bicycle", 1.8, 0.65, 1.7, ObjectClass.MOTORCYCLE),
    VehicleType("pedestrian", "pedestrian", 0.4, 0.6, 1.75, ObjectClass.PEDESTRIAN),
)
BACKGROUND = "background"  # the vTypeDistribution of background traffic


def write_vtypes(path: Path, types: tuple[VehicleType, ...] = VEHICLE_TYPES, *, ssm_types: tuple[str, ...] = ("cav",)
                 ) -> Path:
    """An additional file with the vehicle types and the background mix; ``ssm_types`` carry SUMO's
    surrogate-safety device (all others may get one with the ``--device.ssm.probability`` of the run)."""
    root = ET.Element("additional")
    for t in types:
        el = ET.SubElement(root, "vType", id=t.type_id, vClass=t.vclass, length=f"{t.length_m}", width=f"{t.width_m}",
                           height=f"{t.height_m}")
        if t.max_speed_mps:
            el.set("maxSpeed", f"{t.max_speed_mps}")
        if t.color:
            el.set("color", t.color)
        if t.vclass == "pedestrian":
            el.set("minGap", "0.25")
        if t.type_id in ssm_types:
            ET.SubElement(el, "param", key="has.ssm.device", value="true")
    mix = [t for t in types if t.share > 0]
    dist = ET.SubElement(root, "vTypeDistribution", id=BACKGROUND)
    dist.set("vTypes", " ".join(t.type_id for t in mix))
    dist.set("probabilities", " ".join(f"{t.share:g}" for t in mix))
    ET.indent(root)
    ET.ElementTree(root).write(path, encoding="UTF-8", xml_declaration=True)
    return path


# ------------------------------------------------------------------------------------------------ accounting
class FixUse(StrEnum):
    TRIP_END = "trip_endpoint"
    PASSED = "passed_during_trip"


class FixSkip(StrEnum):
    OUTSIDE_NETWORK = "outside_network_area"
    NO_ROAD = "no_road_within_mapmatch_distance"
    LONE = "no_later_fix_within_max_gap"
    STATIONARY = "moved_less_than_min_trip"
    UNROUTABLE = "trip_unroutable"


@dataclass
class FixAccount:
    """Every T-Drive line read, as used (by use) or skipped (by reason, the reader's reasons included)."""

    read: int = 0
    used: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)

    @property
    def used_total(self) -> int:
        return sum(self.used.values())

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())

    def skip(self, reason: str, where: str, count: int = 1) -> None:
        self.skipped[reason] += count
        ex = self.examples.setdefault(reason, [])
        if len(ex) < EXAMPLES:
            ex.append(where)

    def check(self) -> None:
        if self.used_total + self.skipped_total != self.read:
            raise AssertionError(f"fixes used {self.used_total} + skipped {self.skipped_total} != read {self.read}")

    def to_dict(self) -> dict:
        return {"read": self.read, "used": self.used_total, "skipped": self.skipped_total,
                "used_by_use": dict(sorted(self.used.items())), "skipped_by_reason": dict(sorted(self.skipped.items())),
                "examples": {k: self.examples[k] for k in sorted(self.examples)}}


# ------------------------------------------------------------------------------------------------ map matching
class RoadMatcher:
    """Nearest road (edges a passenger car may use) to points in SUMO coordinates, with the position on it."""

    def __init__(self, net_file: Path, vclass: str = "passenger") -> None:
        import sumolib

        net = sumolib.net.readNet(str(net_file), withInternal=False)
        ids, ax, ay, bx, by, start, scale, lengths = [], [], [], [], [], [], [], []
        self.edge_ids: list[str] = []
        self.edge_length: dict[str, float] = {}
        for e in net.getEdges():
            if e.getFunction() or not e.allows(vclass):
                continue
            k = len(self.edge_ids)
            self.edge_ids.append(e.getID())
            lane_length = e.getLength()
            self.edge_length[e.getID()] = lane_length
            shape = np.asarray(e.getShape(), float)
            seg = np.hypot(*np.diff(shape, axis=0).T)
            total = max(float(seg.sum()), 1e-6)
            cum = np.concatenate([[0.0], np.cumsum(seg)[:-1]])
            for i in range(len(seg)):
                ids.append(k)
                ax.append(shape[i, 0])
                ay.append(shape[i, 1])
                bx.append(shape[i + 1, 0])
                by.append(shape[i + 1, 1])
                start.append(cum[i])
                scale.append(lane_length / total)
                lengths.append(seg[i])
        if not ids:
            raise DemandError(f"{net_file}: no edge allows {vclass}")
        self._edge = np.asarray(ids)
        self._a = np.stack([ax, ay], axis=1)
        self._d = np.stack([bx, by], axis=1) - self._a
        self._start = np.asarray(start)
        self._scale = np.asarray(scale)
        self._len = np.maximum(np.asarray(lengths), 1e-9)

    def match(self, xy: np.ndarray, direction: np.ndarray, max_distance: float
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For (N, 2) points and (N, 2) travel directions: (edge index or -1, position on the edge m, distance m).

        Among the roads within the nearest distance + 8 m (the two directions of a street, the lanes of a
        wide one), the one whose direction agrees best with ``direction`` wins.
        """
        n = len(xy)
        edge = np.full(n, -1, dtype=np.int64)
        pos = np.zeros(n)
        dist = np.full(n, np.inf)
        seg_dir = self._d / self._len[:, None]
        for lo in range(0, n, 256):
            p = xy[lo:lo + 256]
            rel = p[:, None, :] - self._a[None, :, :]
            t = np.clip((rel * self._d[None]).sum(-1) / self._len[None] ** 2, 0.0, 1.0)
            foot = self._a[None] + t[..., None] * self._d[None]
            d = np.hypot(*(p[:, None, :] - foot).transpose(2, 0, 1))
            best = d.min(axis=1)
            near = d <= best[:, None] + 8.0
            u = direction[lo:lo + 256]
            un = u / np.maximum(np.linalg.norm(u, axis=1, keepdims=True), 1e-9)
            score = np.where(near, (seg_dir[None] * un[:, None, :]).sum(-1), -np.inf)
            j = np.argmax(score, axis=1)
            rows = np.arange(len(p))
            ok = best <= max_distance
            edge[lo:lo + 256] = np.where(ok, self._edge[j], -1)
            pos[lo:lo + 256] = (self._start[j] + t[rows, j] * self._len[j]) * self._scale[j]
            dist[lo:lo + 256] = d[rows, j]
        return edge, pos, dist


# ------------------------------------------------------------------------------------------------ T-Drive trips
@dataclass(frozen=True)
class TripRules:
    """How T-Drive fixes become trips (see the module docstring)."""

    max_gap_s: float = 300.0
    min_trip_m: float = 200.0
    mapmatch_m: float = 120.0
    max_speed_mps: float = 50.0  # the reader's GPS-jump limit


@dataclass(frozen=True)
class TdriveTrip:
    trip_id: str  # "tx<taxi>_<k>"
    taxi_id: int
    depart_s: float  # SUMO time (s after the data window's start)
    observed_s: float  # time between the trip's first and last fix
    from_edge: str
    depart_pos: float
    to_edge: str
    arrival_pos: float
    straight_m: float  # straight-line distance between the fixes
    from_zone: int
    to_zone: int


@dataclass
class TdriveDemand:
    """The T-Drive trips and the accounting of every fix read.

    Each fix kept by the reader has roles in candidate trips (``end`` or ``passed``) and, when it anchored
    no trip, the reason why; each candidate trip a status (``ok`` or a :class:`FixSkip` value). The account
    is derived from these: a fix is used when it has a role in an ``ok`` trip, else skipped with the reason
    of its failed trip or its anchor reason. :meth:`mark_unroutable` fails the trips duarouter could not route.
    """

    trips: list[TdriveTrip]
    reader: LoadReport
    begin_s: float  # UNIX time of SUMO time 0
    end_s: float
    fix_roles: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # fix -> [(trip id, role)]
    fix_reason: dict[str, str] = field(default_factory=dict)  # fix -> why it anchored no trip
    trip_status: dict[str, str] = field(default_factory=dict)  # trip id -> "ok" or a FixSkip value

    @property
    def account(self) -> FixAccount:
        acc = FixAccount(read=self.reader.lines_read)
        for reason, n in self.reader.skipped.items():
            acc.skipped[reason] += n
            acc.examples[reason] = list(self.reader.examples.get(reason, []))[:EXAMPLES]
        for fix in self.fix_roles.keys() | self.fix_reason.keys():
            roles = self.fix_roles.get(fix, [])
            ok = [role for tid, role in roles if self.trip_status.get(tid) == "ok"]
            if "end" in ok:
                acc.used[FixUse.TRIP_END.value] += 1
            elif ok:
                acc.used[FixUse.PASSED.value] += 1
            else:
                failed = [self.trip_status[tid] for tid, _ in roles if self.trip_status.get(tid, "ok") != "ok"]
                acc.skip(failed[0] if failed else self.fix_reason.get(fix, FixSkip.LONE.value), fix)
        return acc

    def mark_unroutable(self, routed: set[str]) -> int:
        """Fail the ``ok`` trips that are not in ``routed``; returns how many."""
        bad = [t.trip_id for t in self.trips if t.trip_id not in routed]
        for tid in bad:
            self.trip_status[tid] = FixSkip.UNROUTABLE.value
        self.trips = [t for t in self.trips if t.trip_id in routed]
        return len(bad)


def window_bounds(begin: str, duration_s: float) -> tuple[float, float]:
    """UNIX (begin, end) of a Beijing-time window 'YYYY-MM-DD HH:MM:SS' + duration."""
    start = datetime.strptime(begin, "%Y-%m-%d %H:%M:%S").replace(tzinfo=BEIJING).timestamp()
    return start, start + duration_s


def tdrive_trips(network: Network, frame: NetFrame, data_path: Path, begin_s: float, end_s: float,
                 area_box_m: tuple[float, float, float, float], rules: TripRules = TripRules(), *,
                 zone_m: float = 450.0, matcher: RoadMatcher | None = None) -> TdriveDemand:
    """T-Drive fixes inside ``area_box_m`` (map frame) and [begin_s, end_s) -> map-matched trips, every fix
    accounted. Routing (which fails the trips duarouter cannot route) is :func:`route_tdrive`'s."""
    enu = LocalENU(*network.origin)
    x0, y0, x1, y1 = area_box_m
    corners_lon, corners_lat = enu.inverse(np.array([x0, x1, x0, x1]), np.array([y0, y0, y1, y1]))
    reader_cfg = ReaderConfig(
        lon_min=float(corners_lon.min()) - 1e-4, lon_max=float(corners_lon.max()) + 1e-4,
        lat_min=float(corners_lat.min()) - 1e-4, lat_max=float(corners_lat.max()) + 1e-4,
        start=datetime.fromtimestamp(begin_s, BEIJING).replace(tzinfo=None),
        end=datetime.fromtimestamp(end_s, BEIJING).replace(tzinfo=None), max_speed_mps=rules.max_speed_mps)
    report = LoadReport()
    matcher = matcher or RoadMatcher(network.net_file)
    demand = TdriveDemand([], report, begin_s, end_s)
    candidates: list[tuple] = []  # (trip id, taxi, t0, t1, xy0, xy1)
    for track in iter_tracks(data_path, reader_cfg, report):
        x, y = enu.forward(track.lon, track.lat)
        key = [f"{track.source}@{int(t)}" for t in track.t]
        inside = (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)
        for i in np.flatnonzero(~inside):
            demand.fix_reason[key[i]] = FixSkip.OUTSIDE_NETWORK.value
        idx = np.flatnonzero(inside)
        i, k = 0, 0
        while i < len(idx):
            a, end, j = idx[i], None, i + 1
            reason = FixSkip.LONE
            while j < len(idx):
                b, prev = idx[j], idx[j - 1]
                if b != prev + 1 or track.t[b] - track.t[prev] > rules.max_gap_s:
                    break  # the taxi left the area or went dark
                if track.t[b] - track.t[a] > rules.max_gap_s:
                    reason = FixSkip.STATIONARY
                    break
                if math.hypot(x[b] - x[a], y[b] - y[a]) >= rules.min_trip_m:
                    end = j
                    break
                reason = FixSkip.STATIONARY
                j += 1
            if end is None:
                demand.fix_reason.setdefault(key[a], reason.value)
                i += 1
                continue
            b = idx[end]
            tid = f"tx{track.taxi_id}_{k}"
            candidates.append((tid, int(track.taxi_id), float(track.t[a]), float(track.t[b]), (x[a], y[a]),
                               (x[b], y[b])))
            demand.fix_roles.setdefault(key[a], []).append((tid, "end"))
            demand.fix_roles.setdefault(key[b], []).append((tid, "end"))
            for m in idx[i + 1:end]:
                demand.fix_roles.setdefault(key[m], []).append((tid, "passed"))
            k += 1
            i = end  # the end fix anchors the next trip
    if candidates:
        start_xy = np.array([c[4] for c in candidates])
        end_xy = np.array([c[5] for c in candidates])
        s_xy = frame.to_sumo(start_xy[:, 0], start_xy[:, 1]).T
        e_xy = frame.to_sumo(end_xy[:, 0], end_xy[:, 1]).T
        direction = e_xy - s_xy
        e0, p0, _ = matcher.match(s_xy, direction, rules.mapmatch_m)
        e1, p1, _ = matcher.match(e_xy, direction, rules.mapmatch_m)
        for n, (tid, taxi, t0, t1, xy0, xy1) in enumerate(candidates):
            if e0[n] < 0 or e1[n] < 0:
                demand.trip_status[tid] = FixSkip.NO_ROAD.value
                continue
            demand.trip_status[tid] = "ok"
            demand.trips.append(TdriveTrip(
                tid, taxi, t0 - begin_s, t1 - t0, matcher.edge_ids[e0[n]], float(p0[n]), matcher.edge_ids[e1[n]],
                float(p1[n]), float(math.dist(xy0, xy1)), _zone(xy0, area_box_m, zone_m), _zone(xy1, area_box_m, zone_m)))
    report.check()
    demand.trips.sort(key=lambda t: (t.depart_s, t.trip_id))
    demand.account.check()
    return demand


def _zone(xy, box, zone_m: float) -> int:
    x0, y0, x1, _ = box
    nx = max(1, math.ceil((x1 - x0) / zone_m))
    ix = min(nx - 1, max(0, int((xy[0] - x0) // zone_m)))
    iy = max(0, int((xy[1] - y0) // zone_m))
    return iy * nx + ix


# ------------------------------------------------------------------------------------------------ routing
def write_tdrive_trips(trips: list[TdriveTrip], path: Path) -> Path:
    root = ET.Element("routes")
    for t in trips:
        ET.SubElement(root, "trip", id=t.trip_id, type="taxi", depart=f"{t.depart_s:.2f}", attrib={
            "from": t.from_edge, "to": t.to_edge, "departPos": f"{t.depart_pos:.2f}",
            "arrivalPos": f"{t.arrival_pos:.2f}", "departLane": "best", "departSpeed": "max"})
    ET.indent(root)
    ET.ElementTree(root).write(path, encoding="UTF-8", xml_declaration=True)
    return path


def duarouter(net_file: Path, trips_file: Path, out_file: Path, vtypes_file: Path, *, seed: int,
              extra: list[str] = ()) -> set[str]:
    """Route ``trips_file`` (unroutable trips dropped, not fatal); returns the ids that were routed."""
    args = ["--net-file", str(net_file), "--route-files", str(trips_file), "--additional-files", str(vtypes_file),
            "--output-file", str(out_file), "--vtype-output", str(out_file.with_suffix(".vtypes.xml")), "--ignore-errors", "--no-warnings", "--no-step-log", "--seed", str(seed),
            *extra]
    try:
        tools.run("duarouter", args, what=f"routing {trips_file.name}")
    except SumoToolError as err:
        raise DemandError(f"cannot route {trips_file}: {err}") from None
    if not out_file.exists():
        return set()
    # with --ignore-errors duarouter also keeps a trip whose destination is unknown, cut short: a vehicle
    # counts as routed only when its route ends on the edge the trip asked for
    wanted = {el.get("id"): el.get("to") for el in ET.parse(trips_file).getroot() if el.tag == "trip"}
    tree = ET.parse(out_file)
    root = tree.getroot()
    routed, cut = set(), []
    for el in root:
        if el.tag == "person" and el.get("id"):
            routed.add(el.get("id"))
        elif el.tag == "vehicle" and el.get("id"):
            route = el.find("route")
            edges = route.get("edges", "").split() if route is not None else []
            to = wanted.get(el.get("id"))
            if edges and (to is None or edges[-1] == to):
                routed.add(el.get("id"))
            else:
                cut.append(el)
    if cut:  # SUMO must not drive the cut-short ones
        for el in cut:
            root.remove(el)
        tree.write(out_file, encoding="UTF-8", xml_declaration=True)
    return routed


def route_tdrive(demand: TdriveDemand, network: Network, folder: Path, vtypes_file: Path, seed: int) -> Path:
    """Route the T-Drive trips; the fixes of unroutable trips are counted as skipped."""
    trips_file = write_tdrive_trips(demand.trips, folder / "tdrive.trips.xml")
    out = folder / "tdrive.rou.xml"
    routed = duarouter(network.net_file, trips_file, out, vtypes_file, seed=seed)
    demand.mark_unroutable(routed)
    demand.account.check()
    if not demand.trips:
        raise DemandError(f"no T-Drive trip could be routed on {network.name} ({demand.account.to_dict()})")
    return out


# ------------------------------------------------------------------------------------------------ OD background
def zone_edges(matcher: RoadMatcher, frame: NetFrame, box: tuple[float, float, float, float], zone_m: float
               ) -> dict[int, list[str]]:
    """Edges (car-usable) of each zone, by the zone of the middle of their first segment in the map frame."""
    zones: dict[int, list[str]] = {}
    first = np.flatnonzero(np.r_[True, np.diff(matcher._edge) != 0])  # the first segment of every edge
    mid = matcher._a[first] + 0.5 * matcher._d[first]
    mx, my = frame.to_map(mid[:, 0], mid[:, 1])
    x0, y0, x1, y1 = box
    for k, x, y in zip(matcher._edge[first], mx, my, strict=True):
        if x0 <= x <= x1 and y0 <= y <= y1:
            zones.setdefault(_zone((x, y), box, zone_m), []).append(matcher.edge_ids[k])
    return zones


def od_background(demand: TdriveDemand, matcher: RoadMatcher, frame: NetFrame, network: Network,
                  box: tuple[float, float, float, float], zone_m: float, factor: float, folder: Path,
                  vtypes_file: Path, seed: int) -> tuple[Path | None, dict]:
    """``factor`` times the taxis' zone OD matrix as background trips (od2trips + duarouter)."""
    info = {"factor": factor, "od_pairs": 0, "trips": 0, "routed": 0}
    if factor <= 0 or not demand.trips:
        return None, info
    zones = zone_edges(matcher, frame, box, zone_m)
    counts = Counter((t.from_zone, t.to_zone) for t in demand.trips if t.from_zone in zones and t.to_zone in zones)
    if not counts:
        return None, info
    taz = ET.Element("tazs")
    for z in sorted(zones):
        ET.SubElement(taz, "taz", id=f"z{z}", edges=" ".join(sorted(zones[z])))
    ET.ElementTree(taz).write(folder / "zones.taz.xml", encoding="UTF-8", xml_declaration=True)
    hours = (demand.end_s - demand.begin_s) / 3600.0
    to_hhmm = f"{int(hours)}.{round((hours % 1) * 60):02d}"
    lines = ["$O;D2", "* From-Time  To-Time", f"0.00 {to_hhmm}", "* Factor", "1.00",
             "* T-Drive taxi trips between zones (mobility_twin)"]
    lines += [f"z{a} z{b} {n}" for (a, b), n in sorted(counts.items())]
    (folder / "taxis.od").write_text("\n".join(lines) + "\n")
    trips_file = folder / "background.trips.xml"
    try:
        tools.run("od2trips", ["--taz-files", str(folder / "zones.taz.xml"), "--od-matrix-files", str(folder / "taxis.od"),
                               "--scale", f"{factor:g}", "--seed", str(seed), "--prefix", "od", "--vtype", BACKGROUND,
                               "--departlane", "best", "--departspeed", "max", "--departpos", "random",
                               "--arrivalpos", "random", "--output-file", str(trips_file), "--no-step-log",
                               "--no-warnings"], what="expanding the zone OD matrix")
    except SumoToolError as err:
        raise DemandError(f"cannot expand the OD matrix: {err}") from None
    n_trips = sum(1 for el in ET.parse(trips_file).getroot() if el.tag == "trip")
    out = folder / "background.rou.xml"
    routed = duarouter(network.net_file, trips_file, out, vtypes_file, seed=seed, extra=["--remove-loops"])
    info.update(od_pairs=len(counts), trips=n_trips, routed=len(routed), unroutable=n_trips - len(routed))
    return out, info


# ------------------------------------------------------------------------------------------------ random trips
def random_trips(network: Network, folder: Path, *, prefix: str, begin: float, end: float, period_s: float,
                 seed: int, vtypes_file: Path, mode: str = "vehicle", trip_type: str = BACKGROUND,
                 min_distance_m: float = 300.0) -> tuple[Path | None, dict]:
    """SUMO's ``randomTrips.py`` (``mode``: vehicle | bicycle | pedestrian), routed by ``duarouter`` (vehicles,
    bicycles) or checked by it (persons); unroutable trips are dropped and counted."""
    info = {"mode": mode, "period_s": period_s, "trips": 0, "routed": 0}
    if period_s <= 0:
        return None, info
    folder = Path(folder).resolve()  # the tool runs in the folder: every path absolute
    trips_file = folder / f"{prefix}.trips.xml"
    # -r: randomTrips.py validates the trips with duarouter and, without -r, writes those routes to
    # routes.rou.xml in the working directory (strays in the repository): keep them in the folder
    validated = folder / f"{prefix}.validated.rou.xml"
    args = ["-n", str(Path(network.net_file).resolve()), "-o", str(trips_file), "-r", str(validated),
            "-b", f"{begin:g}", "-e", f"{end:g}",
            "-p", f"{period_s:g}", "--seed", str(seed), "--prefix", prefix, "--min-distance", f"{min_distance_m:g}",
            "--fringe-factor", "5"]
    if mode == "pedestrian":
        args += ["--pedestrians", "--max-distance", "1500"]
    elif mode == "bicycle":
        args += ["--vclass", "bicycle", "--trip-attributes", 'type="bicycle" departLane="best"']
    else:
        args += ["--trip-attributes", f'type="{trip_type}" departLane="best" departSpeed="max"']
    try:
        tools.run("randomTrips.py", args, cwd=folder, what=f"drawing {mode} trips")
    except SumoToolError as err:
        raise DemandError(f"randomTrips.py failed on {network.net_file}: {err}") from None
    root = ET.parse(trips_file).getroot()
    n = sum(1 for el in root if el.tag in ("trip", "person"))
    if mode == "pedestrian":  # persons: give them the pedestrian type
        for el in root:
            if el.tag == "person":
                el.set("type", "pedestrian")
        ET.ElementTree(root).write(trips_file, encoding="UTF-8", xml_declaration=True)
    out = folder / f"{prefix}.rou.xml"
    routed = duarouter(network.net_file, trips_file, out, vtypes_file, seed=seed)
    info.update(trips=n, routed=len(routed), unroutable=n - len(routed))
    return out, info


# ------------------------------------------------------------------------------------------------ trip info
@dataclass(frozen=True)
class TripInfo:
    trip_id: str
    depart_s: float
    duration_s: float
    route_length_m: float
    time_loss_s: float
    waiting_s: float
    vtype: str


def read_tripinfo(path: Path) -> list[TripInfo]:
    """SUMO's ``--tripinfo-output`` (vehicles that arrived)."""
    out = []
    for _, el in ET.iterparse(path):
        if el.tag == "tripinfo":
            out.append(TripInfo(el.get("id"), float(el.get("depart")), float(el.get("duration")),
                                float(el.get("routeLength")), float(el.get("timeLoss", 0)),
                                float(el.get("waitingTime", 0)), el.get("vType", "")))
            el.clear()
    return out


def taxi_speeds(infos: list[TripInfo], observed: dict[str, float], min_length_m: float = 50.0) -> dict:
    """Mean taxi speed (total route length / total time, m/s) simulated and as T-Drive observed it, over the
    T-Drive trips that arrived in the simulation (route length from SUMO; time from SUMO and from the fixes)."""
    rows = [(i.route_length_m, i.duration_s, observed[i.trip_id]) for i in infos
            if i.trip_id in observed and i.route_length_m >= min_length_m and observed[i.trip_id] > 0]
    if not rows:
        return {"trips": 0, "simulated_mps": math.nan, "observed_mps": math.nan}
    length, sim, obs = (np.array(c, float) for c in zip(*rows, strict=True))
    return {"trips": len(rows), "simulated_mps": float(length.sum() / sim.sum()),
            "observed_mps": float(length.sum() / obs.sum()),
            "simulated_median_mps": float(np.median(length / sim)), "observed_median_mps": float(np.median(length / obs))}

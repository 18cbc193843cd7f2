"""Demand of a SUMO world, built once and cached: routes, vehicle types, the fix accounting, the calibration.

:func:`build_demand` turns a :class:`~mobility_twin_sim.sumo.config.DemandSection` into route files for one
network and seed. For T-Drive demand it also calibrates the scale (:func:`calibrate_scale`) when the
section asks for it (``scale: 0``): the hour is simulated with the ``sumo`` program at each of the
``calibration_scales`` (0.5 s steps, same seed), the simulated taxi speed is compared with the T-Drive
speed on the same trips, and the scale where they meet (interpolated, then simulated again to report it)
is kept. The bundle's ``info`` records every number: fixes read/used/skipped by reason, trips routed and
not, each calibration run, the chosen scale and both speeds.

Everything lands in ``<cache>/demand/<hash of the inputs>/`` with a ``demand.json`` manifest; a second
build with the same inputs reads the manifest and returns at once.
"""

from __future__ import annotations

import json
import math
import shutil
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass
from pathlib import Path

from mobility_twin_sim.sumo import tools
from mobility_twin_sim.sumo.config import DemandSection
from mobility_twin_sim.sumo.demand import (
    RoadMatcher,
    TripRules,
    od_background,
    random_trips,
    read_tripinfo,
    route_tdrive,
    taxi_speeds,
    tdrive_trips,
    window_bounds,
    write_vtypes,
)
from mobility_twin_sim.sumo.errors import DemandError, SumoToolError
from mobility_twin_sim.sumo.network import NetFrame, Network
from mobility_twin_sim.tdrive import BUNDLED

MANIFEST = "demand.json"
CALIBRATION_STEP_S = 0.5
JAM_SHARE = 0.02  # a calibration run with more teleported vehicles than this share is jammed


@dataclass(frozen=True)
class DemandBundle:
    """Route files (in the order SUMO loads them), the vehicle-type file, and what was built."""

    folder: Path
    route_files: tuple[Path, ...]
    vtypes_file: Path
    begin_s: float  # UNIX time of SUMO time 0
    duration_s: float
    info: dict
    observed_s: dict[str, float]  # T-Drive trip id -> time between its fixes (s)

    @property
    def scale(self) -> float:
        return float(self.info.get("scale", 1.0))


def data_path(text: str) -> Path:
    """A T-Drive path as the scenario gives it: absolute or existing, else under the bundled data."""
    p = Path(text).expanduser()
    if p.is_absolute() or p.exists():
        return p
    bundled = BUNDLED / p.relative_to("tdrive") if p.parts[:1] == ("tdrive",) else BUNDLED / p
    return bundled


def network_box(network: Network, frame: NetFrame, margin_m: float = 20.0) -> tuple[float, float, float, float]:
    """The network's extent in the map frame, shrunk by ``margin_m``."""
    if network.location is None:
        raise DemandError(f"network {network.name} has no <location>")
    x0, y0, x1, y1 = network.location.conv_boundary
    xs, ys = frame.to_map([x0, x1, x0, x1], [y0, y0, y1, y1])
    return (float(min(xs)) + margin_m, float(min(ys)) + margin_m, float(max(xs)) - margin_m, float(max(ys)) - margin_m)


def build_demand(network: Network, frame: NetFrame, section: DemandSection, *, seed: int, begin_s: float,
                 cache: Path | None = None, log=print) -> DemandBundle:
    """The demand of ``section`` on ``network`` (see the module docstring). ``begin_s``: UNIX time of SUMO
    time 0 (for T-Drive demand it must be the section's ``begin``)."""
    key = tools.fingerprint("demand-v2", network.key, asdict(section), seed, begin_s, asdict(frame), tools.version())
    folder = (cache or tools.cache_dir()) / "demand" / f"{network.name}-{section.kind}-{key}"
    manifest = folder / MANIFEST
    if manifest.exists():
        raw = json.loads(manifest.read_text())
        return DemandBundle(folder, tuple(folder / f for f in raw["route_files"]), folder / raw["vtypes_file"],
                            raw["begin_s"], raw["duration_s"], raw["info"], raw["observed_s"])
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    try:
        bundle = _build(network, frame, section, seed, begin_s, folder, log)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    manifest.write_text(json.dumps({
        "route_files": [p.name for p in bundle.route_files], "vtypes_file": bundle.vtypes_file.name,
        "begin_s": bundle.begin_s, "duration_s": bundle.duration_s, "info": bundle.info,
        "observed_s": bundle.observed_s}, indent=1))
    return bundle


def _build(network: Network, frame: NetFrame, section: DemandSection, seed: int, begin_s: float, folder: Path,
           log) -> DemandBundle:
    vtypes = write_vtypes(folder / "vtypes.add.xml")
    duration = section.duration_s
    info: dict = {"kind": section.kind, "network": network.name, "seed": seed}
    routes: list[Path] = []
    observed: dict[str, float] = {}
    people: list[Path] = []
    if network.sidewalks:
        for mode, period in (("pedestrian", section.pedestrians_period_s), ("bicycle", section.bicycles_period_s)):
            path, stats = random_trips(network, folder, prefix="ped" if mode == "pedestrian" else "bike", begin=0.0,
                                       end=duration, period_s=period, seed=seed + 1, vtypes_file=vtypes, mode=mode)
            info[mode + "s"] = stats
            if path is not None:
                people.append(path)
    else:
        info["pedestrians"] = info["bicycles"] = {"skipped": "the network has no sidewalks"}
    if section.kind == "tdrive":
        expected_begin, _ = window_bounds(section.begin, duration)
        if abs(expected_begin - begin_s) > 1e-6:
            raise DemandError(f"T-Drive demand starts at demand.begin {section.begin}; SUMO time 0 must be that")
        box = network_box(network, frame)
        matcher = RoadMatcher(network.net_file)
        rules = TripRules(section.max_gap_s, section.min_trip_m, section.mapmatch_m)
        path = data_path(section.data)
        if not path.exists():
            raise DemandError(f"demand.data: T-Drive path {path} does not exist")
        log(f"T-Drive trips from {path} ...")
        demand = tdrive_trips(network, frame, path, begin_s, begin_s + duration, box, rules, zone_m=section.zone_m,
                              matcher=matcher)
        candidates = len(demand.trips)
        taxi_routes = route_tdrive(demand, network, folder, vtypes, seed)
        observed = {t.trip_id: t.observed_s for t in demand.trips}
        account = demand.account
        account.check()
        info["fixes"] = account.to_dict()
        info["trips"] = {"candidates": candidates, "routed": len(demand.trips), "unroutable": candidates - len(demand.trips),
                         "no_road": sum(1 for s in demand.trip_status.values() if s == "no_road_within_mapmatch_distance")}
        info["rules"] = asdict(rules)
        routes.append(taxi_routes)

        def background(scale: float, sub: Path) -> tuple[Path | None, dict]:
            sub.mkdir(parents=True, exist_ok=True)
            return od_background(demand, matcher, frame, network, box, section.zone_m, scale - 1.0, sub, vtypes, seed)

        if section.scale > 0:
            scale, calibration = section.scale, None
        else:
            scale, calibration = calibrate_scale(network, section, taxi_routes, people, vtypes, observed, background,
                                                 folder / "calibration", seed, log)
        bg, bg_info = background(scale, folder / "background")
        info["scale"] = scale
        info["background"] = bg_info
        if calibration is not None:
            info["calibration"] = calibration
        if bg is not None:
            moved = folder / "background.rou.xml"
            bg.replace(moved)
            routes.append(moved)
        shutil.rmtree(folder / "background", ignore_errors=True)
    elif section.kind == "random_trips":
        path, stats = random_trips(network, folder, prefix="rt", begin=0.0, end=duration, period_s=section.period_s,
                                   seed=seed, vtypes_file=vtypes)
        info["random_trips"] = stats
        info["scale"] = 1.0
        if path is None or stats["routed"] == 0:
            raise DemandError(f"randomTrips.py produced no routable trip on {network.name}")
        routes.append(path)
    routes += people
    return DemandBundle(folder, tuple(routes), vtypes, begin_s, duration, info, observed)


# ------------------------------------------------------------------------------------------------ calibration
def simulate(network: Network, route_files: list[Path], vtypes: Path, end_s: float, folder: Path, seed: int,
             step_s: float = CALIBRATION_STEP_S) -> dict:
    """Run the ``sumo`` program (no GUI, no libsumo) and return its trip info and statistics."""
    folder.mkdir(parents=True, exist_ok=True)
    tripinfo, stats = folder / "tripinfo.xml", folder / "stats.xml"
    try:
        tools.run("sumo", ["-n", str(network.net_file), "-r", ",".join(str(p) for p in route_files),
                           "-a", str(vtypes), "--begin", "0", "--end", f"{end_s:g}", "--step-length", f"{step_s:g}",
                           "--seed", str(seed), "--tripinfo-output", str(tripinfo), "--statistic-output", str(stats),
                           "--time-to-teleport", "300", "--ignore-route-errors", "--no-step-log", "--no-warnings",
                           "--duration-log.disable"], what="calibration run", timeout_s=3600.0)
    except SumoToolError as err:
        raise DemandError(f"the calibration simulation failed: {err}") from None
    summary = {}
    root = ET.parse(stats).getroot()
    for tag in ("vehicles", "teleports", "vehicleTripStatistics"):
        el = root.find(tag)
        if el is not None:
            summary[tag] = {k: float(v) for k, v in el.attrib.items() if _number(v)}
    return {"tripinfo": read_tripinfo(tripinfo), "stats": summary}


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def calibrate_scale(network: Network, section: DemandSection, taxi_routes: Path, people: list[Path], vtypes: Path,
                    observed: dict[str, float], background, folder: Path, seed: int, log) -> tuple[float, dict]:
    """The demand scale whose simulated mean taxi speed matches T-Drive's (same trips, same route lengths).

    Speeds fall as the scale grows (more traffic, longer queues at the signals) until the grid locks up
    (SUMO then teleports stuck vehicles). The scales are tried in increasing order until the simulated
    speed drops to the observed one or the network jams (more than ``JAM_SHARE`` of the vehicles
    teleported); the bracket is then halved twice. Of the runs that did not jam, the one closest to the
    observed speed wins. Returns (scale, a record of every run).
    """
    runs: list[dict] = []

    def run(scale: float) -> dict:
        bg, bg_info = background(scale, folder / f"x{scale:g}")
        files = [taxi_routes] + ([bg] if bg is not None else []) + people
        result = simulate(network, files, vtypes, section.duration_s + 900.0, folder / f"x{scale:g}", seed)
        speeds = taxi_speeds(result["tripinfo"], observed)
        inserted = result["stats"].get("vehicles", {}).get("inserted", math.nan)
        teleports = result["stats"].get("teleports", {}).get("total", math.nan)
        row = {"scale": scale, **speeds, "background_trips": bg_info.get("routed", 0), "inserted": inserted,
               "teleports": teleports, "jammed": bool(teleports > JAM_SHARE * inserted),
               "arrived": len(result["tripinfo"])}
        runs.append(row)
        log(f"  calibration: scale {scale:g}: taxis {row['simulated_mps']:.2f} m/s simulated vs "
            f"{row['observed_mps']:.2f} observed, {teleports:.0f} teleports of {inserted:.0f} vehicles")
        shutil.rmtree(folder / f"x{scale:g}", ignore_errors=True)
        return row

    def below(row: dict) -> bool:
        return row["jammed"] or row["simulated_mps"] <= row["observed_mps"]

    log("calibrating the demand scale against T-Drive taxi speeds ...")
    lo = hi = None
    for scale in sorted(section.calibration_scales):
        row = run(scale)
        if below(row):
            hi = row
            break
        lo = row
    if lo is not None and hi is not None:
        for _ in range(2):
            mid = round(lo["scale"] + hi["scale"]) / 2.0  # halves, to the nearest 0.5
            if mid in (lo["scale"], hi["scale"]):
                break
            row = run(mid)
            if below(row):
                hi = row
            else:
                lo = row
    usable = [r for r in runs if not r["jammed"]] or runs
    best = min(usable, key=lambda r: abs(r["simulated_mps"] - r["observed_mps"]))
    return float(best["scale"]), {"runs": runs, "chosen": best, "step_s": CALIBRATION_STEP_S, "jam_share": JAM_SHARE,
                                  "measure": "total route length / total travel time over the T-Drive trips"}

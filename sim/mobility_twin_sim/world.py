"""The world a scenario describes, resolved: trajectories, vehicle sizes, RSUs, CAVs, edge servers, sites.

:func:`build_world` builds the world the scenario's ``world:`` section names; both implement the
:class:`~mobility_twin_sim.backend.WorldBackend` protocol the replay engine talks to, and share the
scenario's infrastructure (RSUs, edge servers, sites, the association rule, V2X membership):

* ``tdrive_replay`` (the default, :class:`World`): loads the T-Drive data of the scenario's area and time
  window (streaming, every line accounted for), places RSUs where traffic is densest, picks the CAVs among
  the taxis and draws every vehicle's class and size from the scenario seed. Vehicles follow their recorded
  fixes: the world can be sampled at any time (seekable) and takes no commands.
* ``sumo`` (:class:`SumoScenarioWorld`): a :class:`~mobility_twin_sim.sumo.SumoWorld` (microscopic traffic
  on a road network, traffic lights, buildings), with RSUs at its busiest signalised junctions and its own
  CAVs, whose route, destination and speed can be commanded. It only moves forward.

Same scenario, same world.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cached_property
from pathlib import Path

import numpy as np
from shapely import contains_xy
from shapely.geometry import Point, Polygon, box

from mobility_twin_core import Cav, Cloud, EdgeServer, Layout, ObjectClass, Rsu, Site, nearest_site
from mobility_twin_sim.backend import (
    Command,
    CommandResult,
    SignalStates,
    StaticScene,
    VehicleStates,
    WorldState,
)
from mobility_twin_sim.fleet import Fleet, FleetState
from mobility_twin_sim.geo import LocalENU
from mobility_twin_sim.lidar import Boxes, SensorPose
from mobility_twin_sim.scenario import Scenario
from mobility_twin_sim.tdrive import BEIJING, LoadReport, ReaderConfig, TaxiTrack, iter_tracks

if typing.TYPE_CHECKING:  # pragma: no cover
    from mobility_twin_sim.sumo.world import SumoWorld

FOLD_ID_STRIDE = 100_000  # folded copies of taxi i get ids i + k * FOLD_ID_STRIDE
YAW_RATE_LOOKAHEAD_S = 0.5  # the T-Drive replay's odometry yaw rate: heading change over the next 0.5 s
TDRIVE_LABEL = "T-Drive replay (real taxi fixes, interpolated between them)"


class ScenarioInfrastructure:
    """What every world of a scenario shares: its infrastructure as the twin model, the association rule
    (which edge server serves a vehicle), V2X membership and the edge servers' true state.

    Needs the attributes ``scenario``, ``area``, ``rsus``, ``cavs``, ``edge_servers``, ``sites``."""

    scenario: Scenario
    area: Polygon
    rsus: list[Rsu]
    cavs: list[Cav]
    edge_servers: list[EdgeServer]
    sites: list[Site]
    _connected: dict[int, bool]

    def _make_layout(self) -> Layout:
        lon, lat = self.scenario.area.origin
        cloud = self.scenario.cloud
        return Layout(
            rsus=tuple(self.rsus), cavs=tuple(self.cavs), servers=tuple(self.edge_servers), sites=tuple(self.sites),
            cloud=Cloud(float(cloud.position[0]), float(cloud.position[1]), float(cloud.cpu_hz)),
            area=tuple((float(x), float(y)) for x, y in self.area.exterior.coords), origin=(float(lat), float(lon)),
            name=self.scenario.name,
        ).validated()

    @property
    def slot_s(self) -> float:
        return self.scenario.time.slot_s

    def in_area(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return contains_xy(self.area, x, y)

    def site_of(self, x: float, y: float) -> str:
        """The site whose polygon holds (x, y); the nearest site when outside all of them."""
        return self.layout.site_of(x, y)

    def serving_server(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Index into ``edge_servers`` of the server serving each position (the association rule), or -1."""
        return self.layout.server_set.serving(np.column_stack([np.asarray(x, float), np.asarray(y, float)]))

    def is_connected(self, vehicle_id: int) -> bool:
        """Whether the vehicle broadcasts its own state (V2X), drawn once from the seed and the id."""
        hit = self._connected.get(vehicle_id)
        if hit is None:
            p = self.scenario.v2x.penetration
            hit = p > 0 and bool(np.random.default_rng([self.scenario.seed, 13, int(vehicle_id)]).random() < p)
            self._connected[vehicle_id] = hit
        return hit

    def server_truth(self, state: FleetState | VehicleStates) -> list[dict]:
        """True state of every edge server: vehicles served (nearest server in coverage), load, CPU.
        Pedestrians are not vehicles: they are not counted."""
        inside = self.in_area(state.x, state.y)
        if isinstance(state, VehicleStates) and state.object_class is not None:
            inside &= state.vehicles_only()
        serving = self.serving_server(state.x[inside], state.y[inside])
        served = np.bincount(serving[serving >= 0], minlength=len(self.edge_servers))
        demand = self.scenario.edge_servers.demand_hz_per_vehicle
        return [
            {"server_id": s.server_id, "x": s.x, "y": s.y, "coverage_radius": s.coverage_radius_m, "cpu_hz": s.cpu_hz,
             "vehicles_served": int(served[k]), "load": min(1.0, served[k] * demand / s.cpu_hz), "site_id": s.site_id}
            for k, s in enumerate(self.edge_servers)
        ]


@dataclass
class World(ScenarioInfrastructure):
    """The T-Drive replay (``world: {kind: tdrive_replay}``): taxis follow their recorded fixes."""

    kind: typing.ClassVar[str] = "tdrive_replay"
    seekable: typing.ClassVar[bool] = True

    scenario: Scenario
    projection: LocalENU
    fleet: Fleet
    area: Polygon
    start_s: float  # UNIX time of the scenario start
    end_s: float
    rsus: list[Rsu]
    cavs: list[Cav]
    edge_servers: list[EdgeServer]
    sites: list[Site]
    load_report: LoadReport
    cav_taxi: dict[str, int] = field(default_factory=dict)  # the taxi each CAV is
    vehicle_class: dict[int, str] = field(default_factory=dict)
    _dims: dict[int, tuple[float, float, float]] = field(default_factory=dict)
    _connected: dict[int, bool] = field(default_factory=dict)
    _rows: dict[int, tuple[float, float, float, float]] = field(default_factory=dict)

    CLASS_IDS: typing.ClassVar[dict[str, int]] = {
        "car": ObjectClass.CAR, "suv": ObjectClass.CAR, "van": ObjectClass.TRUCK, "truck": ObjectClass.TRUCK,
        "bus": ObjectClass.BUS}

    @cached_property
    def layout(self) -> Layout:
        """The world's infrastructure as the twin model's layout (what the simulator publishes)."""
        return self._make_layout()

    @cached_property
    def statics(self) -> StaticScene:
        return StaticScene(None, TDRIVE_LABEL)

    def taxi_of(self, cav: Cav) -> int:
        return self.cav_taxi[cav.cav_id]

    def dimensions(self, taxi_id: int) -> tuple[float, float, float]:
        """(length, width, height) of a vehicle, drawn once from the scenario seed and the taxi id."""
        if taxi_id not in self._dims:
            rng = np.random.default_rng([self.scenario.seed, 7, int(taxi_id)])
            classes = self.scenario.vehicles.classes
            names = sorted(classes)
            share = np.array([classes[n].share for n in names], dtype=float)
            name = names[int(rng.choice(len(names), p=share / share.sum()))]
            c = classes[name]
            dims = tuple(max(0.5 * m, rng.normal(m, s)) for m, s in (c.length_m, c.width_m, c.height_m))
            self._dims[taxi_id] = dims  # type: ignore[assignment]
            self.vehicle_class[taxi_id] = name
        return self._dims[taxi_id]

    def class_id(self, taxi_id: int) -> int:
        self.dimensions(taxi_id)
        return self.CLASS_IDS.get(self.vehicle_class[taxi_id], 0)

    def state_at(self, t: float) -> FleetState:
        """The taxis at ``t`` as the fleet has them (positions, headings, speeds); :meth:`advance` adds sizes."""
        return self.fleet.state_at(t)

    def boxes(self, state: FleetState) -> Boxes:
        dims = self._dims
        missing = [int(i) for i in state.ids if int(i) not in dims]
        for taxi_id in missing:
            self.dimensions(taxi_id)
        dims = np.array([dims[i] for i in state.ids.tolist()]).reshape(-1, 3)
        return Boxes(state.ids, state.x, state.y, state.heading, dims[:, 0], dims[:, 1], dims[:, 2])

    # ------------------------------------------------------------------------------ the WorldBackend protocol
    def advance(self, t: float) -> WorldState:
        """Every taxi at ``t`` (any time: the replay is seekable), with class, size and the odometry's yaw rate
        (the heading change over the next 0.5 s); no traffic signals."""
        s = self.fleet.state_at(t)
        rows = self._rows_of(s.ids)
        later = self.fleet.state_at(t + YAW_RATE_LOOKAHEAD_S)
        yaw_rate = np.zeros(len(s))
        if len(s) and len(later):
            order = np.argsort(later.ids, kind="stable")
            ids_sorted = later.ids[order]
            k = np.minimum(np.searchsorted(ids_sorted, s.ids), len(ids_sorted) - 1)
            seen = ids_sorted[k] == s.ids
            turn = later.heading[order[k[seen]]] - s.heading[seen]
            yaw_rate[seen] = (np.remainder(turn + math.pi, 2 * math.pi) - math.pi) / YAW_RATE_LOOKAHEAD_S
        vehicles = VehicleStates(t, s.ids, s.x, s.y, s.heading, s.speed, rows[:, 3].astype(np.uint8), rows[:, 0],
                                 rows[:, 1], rows[:, 2], yaw_rate)
        return WorldState(t, vehicles, SignalStates(t), self.in_area(s.x, s.y))

    def _rows_of(self, ids: np.ndarray) -> np.ndarray:
        """[N, 4] (length, width, height, class id) of each taxi."""
        rows = self._rows
        for taxi_id in ids.tolist():
            if taxi_id not in rows:
                rows[taxi_id] = (*self.dimensions(taxi_id), float(self.class_id(taxi_id)))
        return np.array([rows[i] for i in ids.tolist()], dtype=float).reshape(-1, 4)

    def cav_vehicle(self, cav_id: str, state: WorldState | VehicleStates | FleetState) -> int | None:
        """Row of the CAV's taxi in ``state`` (None: not on the road)."""
        vehicles = state.vehicles if isinstance(state, WorldState) else state
        hit = np.flatnonzero(vehicles.ids == self.cav_taxi[cav_id])
        return int(hit[0]) if len(hit) else None

    def cav_pose(self, cav: Cav | str, state: WorldState | VehicleStates | FleetState
                 ) -> tuple[float, float, float, float] | None:
        """(x, y, heading, speed) of the CAV's vehicle at this state; None when it is not on the road."""
        vehicles = state.vehicles if isinstance(state, WorldState) else state
        i = self.cav_vehicle(_cav_id(cav), vehicles)
        if i is None:
            return None
        return float(vehicles.x[i]), float(vehicles.y[i]), float(vehicles.heading[i]), float(vehicles.speed[i])

    def cav_lidar_pose(self, cav: Cav | str, state: WorldState | VehicleStates | FleetState) -> SensorPose | None:
        pose = self.cav_pose(cav, state)
        if pose is None:
            return None
        return SensorPose(pose[0], pose[1], self._cav_by_id[_cav_id(cav)].lidar_height_m, pose[2])

    @cached_property
    def _cav_by_id(self) -> dict[str, Cav]:
        return {c.cav_id: c for c in self.cavs}

    def cav_key(self, cav_id: str) -> int:
        """The integer that seeds the CAV's odometry noise (its taxi id)."""
        return self.cav_taxi[cav_id]

    def cav_vehicle_ids(self) -> set[int]:
        """Ground-truth ids of the CAVs' own vehicles (they report themselves through their perception)."""
        return {self.cav_taxi[c.cav_id] for c in self.cavs}

    def command(self, command: Command) -> CommandResult:
        return CommandResult(False, "the T-Drive replay does not take commands: its taxis follow their recorded "
                                    "fixes", command)

    def route_of(self, vehicle: int | str) -> tuple[str, ...]:
        return ()  # no road network

    def road_of(self, vehicle: int | str) -> str:
        return ""

    def describe(self) -> dict:
        return {"world": self.kind, "label": self.statics.label, "synthetic": False,
                "origin": list(self.scenario.area.origin), "start_s": self.start_s, "end_s": self.end_s,
                "taxis": len(self.fleet), "rsus": [r.rsu_id for r in self.rsus], "cavs": dict(self.cav_taxi)}

    def close(self) -> dict:
        """Nothing to write: the T-Drive replay has no outputs of its own."""
        return {}


# ------------------------------------------------------------------------------------------ building
def _timestamp(moment: datetime) -> float:
    return moment.replace(tzinfo=BEIJING).timestamp()


def _lonlat_bounds(projection: LocalENU, shape: Polygon) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = shape.bounds
    xs = np.array([x0, x1, x0, x1, (x0 + x1) / 2, (x0 + x1) / 2, x0, x1])
    ys = np.array([y0, y0, y1, y1, y0, y1, (y0 + y1) / 2, (y0 + y1) / 2])
    lon, lat = projection.inverse(xs, ys)
    return float(lon.min()), float(lat.min()), float(lon.max()), float(lat.max())


def _folded(tracks, start_s: float, duration_s: float, fold: int, min_separation_m: float = 8.0,
            projection: LocalENU | None = None):
    """Overlay ``fold`` consecutive windows of the data onto the first one (ids kept unique).

    A taxi parked through several windows would be overlaid onto itself (two boxes in one place, which
    no sensor can tell apart): a folded copy that spends more than a fifth of its time within
    ``min_separation_m`` of an earlier copy of the same taxi is left out.
    """
    for track in tracks:
        if fold == 1:
            yield track
            continue
        copies: list[TaxiTrack] = []
        for k in range(fold):
            lo, hi = start_s + k * duration_s, start_s + (k + 1) * duration_s
            sel = (track.t >= lo - 600.0) & (track.t < hi + 600.0)
            if not sel.any():
                continue
            copy = TaxiTrack(track.taxi_id + k * FOLD_ID_STRIDE, track.t[sel] - k * duration_s, track.lon[sel],
                             track.lat[sel], track.source)
            if projection is not None and any(_overlaps(copy, other, projection, min_separation_m) for other in copies):
                continue
            copies.append(copy)
            yield copy


def _overlaps(a: TaxiTrack, b: TaxiTrack, projection: LocalENU, separation: float) -> bool:
    common = (a.t >= b.t[0]) & (a.t <= b.t[-1])
    if common.sum() == 0:
        return False
    ax, ay = projection.forward(a.lon[common], a.lat[common])
    bx, by = projection.forward(b.lon, b.lat)
    d = np.hypot(ax - np.interp(a.t[common], b.t, bx), ay - np.interp(a.t[common], b.t, by))
    return float(np.mean(d < separation)) > 0.2


def _hotspots(fleet: Fleet, area: Polygon, start: float, end: float, count: int, separation: float,
              cell: float = 20.0) -> list[tuple[float, float]]:
    """The ``count`` densest places of traffic (time-weighted), at least ``separation`` apart."""
    x0, y0, x1, y1 = area.bounds
    nx, ny = max(1, math.ceil((x1 - x0) / cell)), max(1, math.ceil((y1 - y0) / cell))
    grid = np.zeros((nx, ny))
    for t in np.arange(start, end, 2.0):
        s = fleet.state_at(t)
        inside = contains_xy(area, s.x, s.y)
        ix = np.clip(((s.x[inside] - x0) / cell).astype(int), 0, nx - 1)
        iy = np.clip(((s.y[inside] - y0) / cell).astype(int), 0, ny - 1)
        np.add.at(grid, (ix, iy), 1.0)
    # smooth with a 5 x 5 box (about the footprint of a sensor's densest area)
    pad = np.pad(grid, 2)
    smooth = sum(pad[i:i + nx, j:j + ny] for i in range(5) for j in range(5))
    chosen: list[tuple[float, float]] = []
    for flat in np.argsort(smooth, axis=None)[::-1]:
        i, j = np.unravel_index(flat, smooth.shape)
        if smooth[i, j] <= 0:
            break
        p = (x0 + (i + 0.5) * cell, y0 + (j + 0.5) * cell)
        if area.contains(Point(p)) and all(math.dist(p, q) >= separation for q in chosen):
            chosen.append(p)
            if len(chosen) == count:
                break
    return chosen


def _grid(area: Polygon, spacing: float) -> list[tuple[float, float]]:
    x0, y0, x1, y1 = area.bounds
    xs = np.arange(x0 + spacing / 2, x1, spacing)
    ys = np.arange(y0 + spacing / 2, y1, spacing)
    return [(float(x), float(y)) for y in ys for x in xs if area.contains(Point(x, y))]


def _sites(scenario: Scenario, area: Polygon) -> list[Site]:
    if scenario.sites.polygons:
        shapes = [Polygon(p) for p in scenario.sites.polygons]
    else:
        x0, y0, x1, y1 = area.bounds
        n = scenario.sites.count
        width = (x1 - x0) / n
        shapes = [box(x0 + i * width, y0, x0 + (i + 1) * width, y1).intersection(area) for i in range(n)]
    return [Site(f"site_{i}", tuple((float(x), float(y)) for x, y in shape.exterior.coords))
            for i, shape in enumerate(shapes)]


def _rsus(scenario: Scenario, rsu_xy, sites: list[Site]) -> list[Rsu]:
    return [Rsu(f"rsu_{i:02d}", float(x), float(y), scenario.rsus.mount_height_m, 0.0, nearest_site(sites, x, y),
                scenario.rsus.lidar.max_range_m) for i, (x, y) in enumerate(rsu_xy)]


def _servers(scenario: Scenario, area: Polygon, sites: list[Site]) -> list[EdgeServer]:
    es = scenario.edge_servers
    server_xy = list(es.positions) or _grid(area, es.grid_spacing_m) or [tuple(area.centroid.coords[0])]
    rng = np.random.default_rng([scenario.seed, 11])
    return [EdgeServer(f"edge_{i}", float(x), float(y), es.coverage_radius_m, float(rng.uniform(*es.cpu_hz)),
                       nearest_site(sites, x, y))
            for i, (x, y) in enumerate(server_xy)]


def build_world(scenario: Scenario, report: LoadReport | None = None, *, run_dir: Path | str | None = None,
                start: bool = True, log: Callable[..., None] = print) -> World | SumoScenarioWorld:
    """Resolve a scenario into the world its ``world:`` section names.

    ``tdrive_replay``: a :class:`World` (loads its T-Drive data; ``report`` counts every line).
    ``sumo``: a :class:`SumoScenarioWorld`; network, demand and buildings are built or read from the cache,
    and with ``start`` SUMO is started and the warm-up simulated (``start=False``: the layout only, e.g. for
    a launch file, while another process runs the simulation). SUMO's outputs go to ``run_dir`` (else the
    scenario's ``world.output_dir``, else a run folder under the SUMO cache); ``log`` prints its progress.
    """
    if scenario.world.kind == "sumo":
        return _build_sumo_world(scenario, run_dir=run_dir, start=start, log=log)
    return _build_tdrive_world(scenario, report)


def _build_tdrive_world(scenario: Scenario, report: LoadReport | None = None) -> World:
    projection = LocalENU(*scenario.area.origin)
    area = scenario.area.shape()
    start_s = _timestamp(scenario.time.start_datetime())
    duration = scenario.time.duration_s
    fold = scenario.time.fold
    end_s = start_s + duration
    margin = scenario.area.load_margin_m
    lon_min, lat_min, lon_max, lat_max = _lonlat_bounds(projection, area.buffer(margin))
    reader = ReaderConfig(
        lon_min=lon_min, lon_max=lon_max, lat_min=lat_min, lat_max=lat_max,
        start=datetime.fromtimestamp(start_s - scenario.time.max_gap_s, BEIJING).replace(tzinfo=None),
        end=datetime.fromtimestamp(start_s + fold * duration + scenario.time.max_gap_s, BEIJING).replace(tzinfo=None),
        max_speed_mps=scenario.data.max_speed_mps,
    )
    report = report if report is not None else LoadReport()
    tracks = _folded(iter_tracks(scenario.data_path(), reader, report), start_s, duration, fold,
                     projection=projection)
    fleet = Fleet.from_tracks(tracks, projection, max_gap_s=scenario.time.max_gap_s)
    report.check()
    sites = _sites(scenario, area)

    layout = scenario.rsus.layout
    if layout.kind == "positions":
        rsu_xy = list(scenario.rsus.positions)
    elif layout.kind == "grid":
        rsu_xy = _grid(area, layout.spacing_m)
    else:
        rsu_xy = _hotspots(fleet, area, start_s, end_s, layout.count, layout.min_separation_m)
    rsus = _rsus(scenario, rsu_xy, sites)
    servers = _servers(scenario, area, sites)

    if scenario.cavs.taxis:
        cav_taxis = list(scenario.cavs.taxis)
        known = set(fleet.taxi_ids.tolist())
        missing = [t for t in cav_taxis if t not in known]
        if missing:
            raise ValueError(f"cavs.taxis: taxi(s) {missing} have no data in the scenario's area and window")
    else:
        presence: dict[int, int] = {}
        for t in np.arange(start_s, end_s, 5.0):
            s = fleet.state_at(t)
            for i in s.ids[contains_xy(area, s.x, s.y) & (s.ids < FOLD_ID_STRIDE)]:
                presence[int(i)] = presence.get(int(i), 0) + 1
        cav_taxis = [i for i, _ in sorted(presence.items(), key=lambda kv: (-kv[1], kv[0]))[: scenario.cavs.count]]
    world = World(scenario, projection, fleet, area, start_s, end_s, rsus, [], servers, sites, report,
                  cav_taxi={f"cav_{t}": t for t in cav_taxis})
    world.cavs = [Cav(f"cav_{t}", world.dimensions(t)[2] + scenario.cavs.mount_height_m, scenario.cavs.lidar.max_range_m)
                  for t in cav_taxis]
    return world


# ------------------------------------------------------------------------------------------ the SUMO world
class SumoScenarioWorld(ScenarioInfrastructure):
    """The SUMO world of a scenario (``world: {kind: sumo}``): a :class:`~mobility_twin_sim.sumo.SumoWorld`
    (``backend``) with the scenario's RSUs (at the busiest signalised junctions for ``layout.kind:
    hotspots``), edge servers, sites and cloud. Implements the WorldBackend protocol by delegating to the
    SUMO world: it only moves forward (``seekable`` False), and takes route, target, speed and incident
    commands (:meth:`command`; between two :meth:`advance` calls, from the thread that advances it)."""

    kind = "sumo"
    seekable = False

    def __init__(self, scenario: Scenario, backend: SumoWorld, area: Polygon, rsus: list[Rsu],
                 edge_servers: list[EdgeServer], sites: list[Site], junctions: tuple[str, ...] = ()) -> None:
        self.scenario = scenario
        self.backend = backend
        self.projection = backend.projection
        self.area = area
        self.start_s, self.end_s = backend.start_s, backend.end_s
        self.rsus, self.edge_servers, self.sites = rsus, edge_servers, sites
        self.cavs = list(backend.layout.cavs)
        self.junctions = junctions  # the SUMO junction of each RSU (hotspots layout), in RSU order
        self._connected: dict[int, bool] = {}
        self._polygon_area = bool(scenario.area.polygon)  # else the SUMO world's box is the area already
        self.layout = self._make_layout()
        backend.set_layout(self.layout)

    @property
    def statics(self) -> StaticScene:
        return self.backend.statics

    @property
    def is_open(self) -> bool:
        return self.backend.is_open

    def open(self) -> SumoScenarioWorld:
        """Start SUMO and simulate the warm-up (build_world does it unless ``start=False``)."""
        if not self.backend.is_open:
            self.backend.open()
        return self

    def advance(self, t: float) -> WorldState:
        if not self.backend.is_open:
            self.open()
        state = self.backend.advance(t)
        if self._polygon_area:
            v = state.vehicles
            state = replace(state, in_area=self.in_area(v.x, v.y))
        return state

    def cav_vehicle(self, cav_id: str, state: WorldState | VehicleStates) -> int | None:
        """Row of the CAV's own vehicle in ``state`` (None: not on the road, or not yet departed)."""
        vehicles = state.vehicles if isinstance(state, WorldState) else state
        num = self.backend.vehicle_id(cav_id)
        return None if num is None else vehicles.index_of(num)

    def cav_pose(self, cav: Cav | str, state: WorldState | VehicleStates) -> tuple[float, float, float, float] | None:
        """(x, y, heading, speed) of the CAV's vehicle at this state; None when it is not on the road."""
        vehicles = state.vehicles if isinstance(state, WorldState) else state
        i = self.cav_vehicle(_cav_id(cav), vehicles)
        if i is None:
            return None
        return float(vehicles.x[i]), float(vehicles.y[i]), float(vehicles.heading[i]), float(vehicles.speed[i])

    def cav_lidar_pose(self, cav: Cav | str, state: WorldState | VehicleStates) -> SensorPose | None:
        pose = self.cav_pose(cav, state)
        if pose is None:
            return None
        lidar = next(c for c in self.cavs if c.cav_id == _cav_id(cav)).lidar_height_m
        return SensorPose(pose[0], pose[1], lidar, pose[2])

    def cav_key(self, cav_id: str) -> int:
        """The integer that seeds the CAV's odometry noise (its number: cav_3 -> 3)."""
        return next(k for k, c in enumerate(self.cavs) if c.cav_id == cav_id)

    def cav_vehicle_ids(self) -> set[int]:
        ids = (self.backend.vehicle_id(c.cav_id) for c in self.cavs)
        return {i for i in ids if i is not None}

    def dimensions(self, vehicle_id: int) -> tuple[float, float, float]:
        """(length, width, height) of a road user seen by the world (a car's when never seen)."""
        body = self.backend.body(vehicle_id)
        return (4.6, 1.8, 1.5) if body is None else body[1:]

    def class_id(self, vehicle_id: int) -> int:
        body = self.backend.body(vehicle_id)
        return int(ObjectClass.CAR) if body is None else int(body[0])

    def command(self, command: Command) -> CommandResult:
        if not self.backend.is_open:
            return CommandResult(False, "the SUMO world is not running", command)
        return self.backend.command(command)

    def route_of(self, vehicle: int | str) -> tuple[str, ...]:
        """The vehicle's remaining route (current road first); empty when it is not on the road."""
        from mobility_twin_sim.sumo.errors import ControlError

        try:
            return self.backend.route_of(vehicle)
        except ControlError:
            return ()

    def road_of(self, vehicle: int | str) -> str:
        """The road (or junction, ``:``-prefixed) the vehicle is on; empty when it is not on the road."""
        from mobility_twin_sim.sumo.errors import ControlError

        try:
            return self.backend.road_of(vehicle)
        except ControlError:
            return ""

    def describe(self) -> dict:
        return self.backend.describe()

    def close(self) -> dict:
        """Stop SUMO; returns the files it wrote (trip info, ssm conflicts, statistics) and its counters."""
        return self.backend.close()


def _build_sumo_world(scenario: Scenario, *, run_dir: Path | str | None, start: bool,
                      log: Callable[..., None]) -> SumoScenarioWorld:
    from mobility_twin_sim.sumo.world import SumoSetup, SumoWorld

    area = scenario.area.shape()
    c = scenario.cavs
    setup = SumoSetup(start=scenario.time.start, duration_s=scenario.time.duration_s, slot_s=scenario.time.slot_s,
                      seed=scenario.seed, area_box_m=tuple(float(v) for v in area.bounds),
                      origin=tuple(scenario.area.origin), cav_count=c.count, cav_mount_height_m=c.mount_height_m,
                      cav_range_m=c.lidar.max_range_m)
    out = run_dir or scenario.world.output_dir or None
    backend = SumoWorld(scenario.world, setup, run_dir=Path(out) if out else None, log=log).prepare()
    sites = _sites(scenario, area)
    layout = scenario.rsus.layout
    junctions: tuple[str, ...] = ()
    if layout.kind == "positions":
        rsu_xy = list(scenario.rsus.positions)
    elif layout.kind == "grid":
        rsu_xy = _grid(area, layout.spacing_m)
    else:  # hotspots: the busiest signalised junctions (by the routes that cross them), then any junction
        chosen = backend.busiest_junctions(layout.count, layout.min_separation_m)
        if len(chosen) < layout.count:
            more = backend.busiest_junctions(layout.count, layout.min_separation_m, signalised=False)
            chosen += [j for j in more if all(math.hypot(j[1] - x, j[2] - y) >= layout.min_separation_m
                                              for _, x, y in chosen)][: layout.count - len(chosen)]
        junctions = tuple(j for j, _, _ in chosen)
        rsu_xy = [(x, y) for _, x, y in chosen]
    world = SumoScenarioWorld(scenario, backend, area, _rsus(scenario, rsu_xy, sites), _servers(scenario, area, sites),
                              sites, junctions)
    if start:
        world.open()
    return world


def _cav_id(cav: Cav | str) -> str:
    return cav if isinstance(cav, str) else cav.cav_id

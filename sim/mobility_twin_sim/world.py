"""The world a scenario describes, resolved: trajectories, vehicle sizes, RSUs, CAVs, edge servers, sites.

:func:`build_world` loads the T-Drive data of the scenario's area and time window (streaming, every line
accounted for), places RSUs and edge servers, picks the CAVs, splits the area into edge sites, and draws
every vehicle's class and size from the scenario seed. The result answers "where is everything at time
t" for the replay, the sensors and the evaluation. Same scenario, same world.
"""

from __future__ import annotations

import math
import typing
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property

import numpy as np
from shapely import contains_xy
from shapely.geometry import Point, Polygon, box

from mobility_twin_core import Cav, Cloud, EdgeServer, Layout, ObjectClass, Rsu, Site, nearest_site
from mobility_twin_sim.fleet import Fleet, FleetState
from mobility_twin_sim.geo import LocalENU
from mobility_twin_sim.lidar import Boxes, SensorPose
from mobility_twin_sim.scenario import Scenario
from mobility_twin_sim.tdrive import BEIJING, LoadReport, ReaderConfig, TaxiTrack, iter_tracks

FOLD_ID_STRIDE = 100_000  # folded copies of taxi i get ids i + k * FOLD_ID_STRIDE


@dataclass
class World:
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

    CLASS_IDS: typing.ClassVar[dict[str, int]] = {
        "car": ObjectClass.CAR, "suv": ObjectClass.CAR, "van": ObjectClass.TRUCK, "truck": ObjectClass.TRUCK,
        "bus": ObjectClass.BUS}

    @cached_property
    def layout(self) -> Layout:
        """The world's infrastructure as the twin model's layout (what the simulator publishes)."""
        lon, lat = self.scenario.area.origin
        cloud = self.scenario.cloud
        return Layout(
            rsus=tuple(self.rsus), cavs=tuple(self.cavs), servers=tuple(self.edge_servers), sites=tuple(self.sites),
            cloud=Cloud(float(cloud.position[0]), float(cloud.position[1]), float(cloud.cpu_hz)),
            area=tuple((float(x), float(y)) for x, y in self.area.exterior.coords), origin=(float(lat), float(lon)),
            name=self.scenario.name,
        ).validated()

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
        return self.fleet.state_at(t)

    def boxes(self, state: FleetState) -> Boxes:
        dims = self._dims
        missing = [int(i) for i in state.ids if int(i) not in dims]
        for taxi_id in missing:
            self.dimensions(taxi_id)
        dims = np.array([dims[i] for i in state.ids.tolist()]).reshape(-1, 3)
        return Boxes(state.ids, state.x, state.y, state.heading, dims[:, 0], dims[:, 1], dims[:, 2])

    def in_area(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return contains_xy(self.area, x, y)

    def site_of(self, x: float, y: float) -> str:
        """The site whose polygon holds (x, y); the nearest site when outside all of them."""
        return self.layout.site_of(x, y)

    def cav_pose(self, cav: Cav, state: FleetState) -> tuple[float, float, float, float] | None:
        """(x, y, heading, speed) of the CAV's vehicle at this state; None when it is not on the road."""
        hit = np.flatnonzero(state.ids == self.taxi_of(cav))
        if not len(hit):
            return None
        i = hit[0]
        return float(state.x[i]), float(state.y[i]), float(state.heading[i]), float(state.speed[i])

    def cav_lidar_pose(self, cav: Cav, state: FleetState) -> SensorPose | None:
        pose = self.cav_pose(cav, state)
        if pose is None:
            return None
        return SensorPose(pose[0], pose[1], cav.lidar_height_m, pose[2])

    def serving_server(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Index into ``edge_servers`` of the server serving each position (the association rule), or -1."""
        return self.layout.server_set.serving(np.column_stack([np.asarray(x, float), np.asarray(y, float)]))

    def is_connected(self, taxi_id: int) -> bool:
        """Whether the vehicle broadcasts its own state (V2X), drawn once from the seed and the id."""
        hit = self._connected.get(taxi_id)
        if hit is None:
            p = self.scenario.v2x.penetration
            hit = p > 0 and bool(np.random.default_rng([self.scenario.seed, 13, int(taxi_id)]).random() < p)
            self._connected[taxi_id] = hit
        return hit

    def server_truth(self, state: FleetState) -> list[dict]:
        """True state of every edge server: vehicles served (nearest server in coverage), load, CPU."""
        inside = self.in_area(state.x, state.y)
        serving = self.serving_server(state.x[inside], state.y[inside])
        served = np.bincount(serving[serving >= 0], minlength=len(self.edge_servers))
        demand = self.scenario.edge_servers.demand_hz_per_vehicle
        return [
            {"server_id": s.server_id, "x": s.x, "y": s.y, "coverage_radius": s.coverage_radius_m, "cpu_hz": s.cpu_hz,
             "vehicles_served": int(served[k]), "load": min(1.0, served[k] * demand / s.cpu_hz), "site_id": s.site_id}
            for k, s in enumerate(self.edge_servers)
        ]


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


def build_world(scenario: Scenario, report: LoadReport | None = None) -> World:
    """Resolve a scenario into a :class:`World` (loads its T-Drive data)."""
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
    rsus = [Rsu(f"rsu_{i:02d}", float(x), float(y), scenario.rsus.mount_height_m, 0.0, nearest_site(sites, x, y),
                scenario.rsus.lidar.max_range_m) for i, (x, y) in enumerate(rsu_xy)]

    es = scenario.edge_servers
    server_xy = list(es.positions) or _grid(area, es.grid_spacing_m) or [tuple(area.centroid.coords[0])]
    rng = np.random.default_rng([scenario.seed, 11])
    servers = [EdgeServer(f"edge_{i}", float(x), float(y), es.coverage_radius_m, float(rng.uniform(*es.cpu_hz)),
                          nearest_site(sites, x, y))
               for i, (x, y) in enumerate(server_xy)]

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

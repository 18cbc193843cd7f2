"""The twin model: one frozen type for each thing the stack reasons about, used by every package.

Static infrastructure (what a site's configuration or a scenario declares):

* :class:`Rsu`: a roadside unit and its LiDAR extrinsic in ``map``;
* :class:`Cav`: a connected automated vehicle and its LiDAR mount;
* :class:`EdgeServer`: a base station with an edge server (position, coverage, CPU);
* :class:`Site`: an edge site (one local twin) and the area it covers;
* :class:`Cloud`: where the global twin runs;
* :class:`Layout`: all of the above for one deployment, validated.

State at one instant (what the twins hold): :class:`TwinSnapshot`, vectorised (one row per vehicle,
server or RSU), which the twin-state adapter of the ROS nodes, the simulator and the learning code all
produce and consume.

The rule "which server serves a vehicle" lives in :class:`ServerSet` (the nearest server whose
coverage disc holds the vehicle; ties to the lower index; -1 when none does): the simulator's truth,
the local twin's server estimates, offloading, placement and the relation graph all call it.

The enumerations repeat the constants of the interfaces (``mobility_twin_msgs``); a test checks them
against the generated message classes, so the two cannot drift apart.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from enum import IntEnum
from functools import cached_property

import numpy as np
from shapely.geometry import Point, Polygon

from mobility_twin_core.errors import LayoutError

# ------------------------------------------------------------------------------------------------ enums


class ObjectClass(IntEnum):
    """``DetectedObject.CLASS_*``."""

    UNKNOWN = 0
    CAR = 1
    TRUCK = 2
    BUS = 3
    MOTORCYCLE = 4
    PEDESTRIAN = 5


#: Object classes that are vehicles (offloading, placement and relations consider only these).
VEHICLE_CLASSES = (ObjectClass.CAR, ObjectClass.TRUCK, ObjectClass.BUS, ObjectClass.MOTORCYCLE)


class EntityKind(IntEnum):
    """``TwinEntity.KIND_*``."""

    VEHICLE = 0
    CAV = 1
    RSU = 2
    EDGE_SERVER = 3
    LOCAL_TWIN = 4


class TrackState(IntEnum):
    """``TrackedObject.STATE_*``."""

    TENTATIVE = 0
    CONFIRMED = 1
    COASTING = 2


class SourceType(IntEnum):
    """``DetectedObjectArray.SOURCE_*``: what kind of source a frame of detections comes from."""

    RSU = 0
    CAV = 1
    V2X = 2


# ------------------------------------------------------------------------------------------------ infrastructure


def _finite(*values: float) -> bool:
    return all(isinstance(v, int | float) and math.isfinite(v) for v in values)


@dataclass(frozen=True)
class Rsu:
    """A roadside unit: LiDAR pose in ``map`` (m, rad), the site whose twin it feeds, its LiDAR range (m)."""

    rsu_id: str
    x: float
    y: float
    z: float = 6.0
    yaw: float = 0.0
    site_id: str = ""
    range_m: float = 80.0

    @property
    def frame_id(self) -> str:
        return f"{self.rsu_id}/lidar"

    @property
    def extrinsic(self) -> tuple[float, float, float, float]:
        return (self.x, self.y, self.z, self.yaw)


@dataclass(frozen=True)
class Cav:
    """A connected automated vehicle: its LiDAR height above ``base_link`` (m) and range (m)."""

    cav_id: str
    lidar_height_m: float = math.nan
    range_m: float = 60.0

    @property
    def frame_id(self) -> str:
        return f"{self.cav_id}/lidar"

    @property
    def base_frame(self) -> str:
        return f"{self.cav_id}/base_link"


@dataclass(frozen=True)
class EdgeServer:
    """A base station with an edge server: position (m), coverage radius (m), CPU frequency (Hz), site."""

    server_id: str
    x: float
    y: float
    coverage_radius_m: float
    cpu_hz: float
    site_id: str = ""


@dataclass(frozen=True)
class Site:
    """An edge site: one local twin, the polygon (``map``, m) of the area it covers."""

    site_id: str
    polygon: tuple[tuple[float, float], ...]

    @cached_property
    def shape(self) -> Polygon:
        return Polygon(self.polygon)


@dataclass(frozen=True)
class Cloud:
    """The cloud that hosts the global twin: a position for its network distance (m), its CPU (Hz)."""

    x: float = 0.0
    y: float = 0.0
    cpu_hz: float = 3.5e9


@dataclass(frozen=True)
class Layout:
    """The infrastructure of one deployment (or scenario). Built with :meth:`validated` (or
    :func:`layout_from_dict`), which refuses ids that repeat, positions that are not finite and ranges
    that are not positive, naming the entry."""

    rsus: tuple[Rsu, ...] = ()
    cavs: tuple[Cav, ...] = ()
    servers: tuple[EdgeServer, ...] = ()
    sites: tuple[Site, ...] = ()
    cloud: Cloud = field(default_factory=Cloud)
    area: tuple[tuple[float, float], ...] = ()  # the whole deployment's polygon in map (m); () = unbounded
    origin: tuple[float, float] = (math.nan, math.nan)  # (latitude, longitude) of the map origin, degrees
    name: str = ""

    def validated(self) -> Layout:
        _unique("rsus", [r.rsu_id for r in self.rsus])
        _unique("cavs", [c.cav_id for c in self.cavs])
        _unique("edge_servers", [s.server_id for s in self.servers])
        _unique("sites", [s.site_id for s in self.sites])
        site_ids = {s.site_id for s in self.sites}
        for r in self.rsus:
            if not _finite(r.x, r.y, r.z, r.yaw):
                raise LayoutError(f"rsus.{r.rsu_id}: pose must be finite, got {r.extrinsic}")
            if not (_finite(r.range_m) and r.range_m > 0):
                raise LayoutError(f"rsus.{r.rsu_id}.range_m must be > 0, got {r.range_m!r}")
            if site_ids and r.site_id not in site_ids:
                raise LayoutError(f"rsus.{r.rsu_id}.site_id {r.site_id!r} is not a site of the layout {sorted(site_ids)}")
        for c in self.cavs:
            if not (_finite(c.range_m) and c.range_m > 0):
                raise LayoutError(f"cavs.{c.cav_id}.range_m must be > 0, got {c.range_m!r}")
        for s in self.servers:
            if not _finite(s.x, s.y):
                raise LayoutError(f"edge_servers.{s.server_id}: position must be finite, got ({s.x}, {s.y})")
            if not (_finite(s.coverage_radius_m) and s.coverage_radius_m > 0):
                raise LayoutError(f"edge_servers.{s.server_id}.coverage_radius_m must be > 0, got {s.coverage_radius_m!r}")
            if not (_finite(s.cpu_hz) and s.cpu_hz > 0):
                raise LayoutError(f"edge_servers.{s.server_id}.cpu_hz must be > 0, got {s.cpu_hz!r}")
            if site_ids and s.site_id not in site_ids:
                raise LayoutError(f"edge_servers.{s.server_id}.site_id {s.site_id!r} is not a site of the layout "
                                  f"{sorted(site_ids)}")
        for s in self.sites:
            if len(s.polygon) < 3 or not all(_finite(*p) for p in s.polygon):
                raise LayoutError(f"sites.{s.site_id}.polygon needs at least 3 finite (x, y) corners")
            if not s.shape.is_valid or s.shape.area <= 0:
                raise LayoutError(f"sites.{s.site_id}.polygon is not a simple polygon with an area")
        if not (_finite(self.cloud.x, self.cloud.y, self.cloud.cpu_hz) and self.cloud.cpu_hz > 0):
            raise LayoutError(f"cloud: position must be finite and cpu_hz > 0, got {self.cloud}")
        return self

    # -------------------------------------------------------------------------------- queries
    def site(self, site_id: str) -> Site:
        for s in self.sites:
            if s.site_id == site_id:
                return s
        raise LayoutError(f"the layout has no site {site_id!r} (sites: {[s.site_id for s in self.sites]})")

    def rsu(self, rsu_id: str) -> Rsu:
        for r in self.rsus:
            if r.rsu_id == rsu_id:
                return r
        raise LayoutError(f"the layout has no RSU {rsu_id!r}")

    def cav(self, cav_id: str) -> Cav:
        for c in self.cavs:
            if c.cav_id == cav_id:
                return c
        raise LayoutError(f"the layout has no CAV {cav_id!r}")

    def rsus_of(self, site_id: str) -> tuple[Rsu, ...]:
        return tuple(r for r in self.rsus if r.site_id == site_id)

    def servers_of(self, site_id: str) -> tuple[EdgeServer, ...]:
        return tuple(s for s in self.servers if s.site_id == site_id)

    def site_of(self, x: float, y: float) -> str:
        """The site whose polygon holds (x, y); the nearest site when outside all of them."""
        return nearest_site(self.sites, x, y)

    @cached_property
    def server_set(self) -> ServerSet:
        return ServerSet(self.servers)


def _unique(key: str, ids: list[str]) -> None:
    if any(not i for i in ids):
        raise LayoutError(f"{key}: every entry needs a non-empty id")
    seen: set[str] = set()
    for i in ids:
        if i in seen:
            raise LayoutError(f"{key}: id {i!r} appears twice")
        seen.add(i)


def nearest_site(sites: Sequence[Site], x: float, y: float) -> str:
    """The site whose polygon holds (x, y); the nearest site when outside all of them."""
    if not sites:
        raise LayoutError("no sites to choose from")
    p = Point(x, y)
    return min(sites, key=lambda s: s.shape.distance(p)).site_id


# ------------------------------------------------------------------------------------------------ association


#: How many nearest servers the association rule looks at to find one whose disc contains the vehicle.
ASSOCIATION_CANDIDATES = 8


def _kdtree(xy: np.ndarray):
    """scipy's cKDTree of ``xy``. scipy.spatial is imported on first use, not with this module: a node that never
    builds a ServerSet (perception) starts without it (0.2-0.4 s)."""
    from scipy.spatial import cKDTree

    return cKDTree(xy)


class _ServingTable:
    """The association rule written out over square cells: a cell holds the server serving every point of
    it, or -1 where no server covers any, when the rule's answer at the cell's centre proves it for the
    whole cell (:data:`ASK` where it does not: near a border between two servers or a coverage edge).

    Within ``h`` (half the cell's diagonal) of the centre, a point's distance to any server is within ``h``
    of the centre's. So where the nearest server is ``d1`` away, the second ``d2``: ``d2 - d1 > 2 h`` keeps
    the nearest the strict nearest, and ``d1 + h <= its coverage`` keeps the point covered (the rule's own
    fast case); ``d1 - h >`` every coverage leaves the point uncovered. ``h`` carries a micrometre of slack
    for rounding (more far from the origin). Cells of a sixteenth of the smallest coverage (coarser when the
    area would need more than :data:`MAX_CELLS`); points outside the table, or in an :data:`ASK` cell, are
    asked of the tree. Filling the table costs about what asking the tree for its cells does (up to some
    70 ms, once, in the call that crosses the threshold)."""

    ASK = -2
    MAX_CELLS = 1 << 18

    def __init__(self, lo: np.ndarray, cell: float, shape: np.ndarray, slack: float) -> None:
        self.lo, self.cell, self.shape, self.slack = lo, cell, shape, slack
        self.table: np.ndarray | None = None

    @classmethod
    def layout(cls, xy: np.ndarray, coverage: np.ndarray) -> _ServingTable | None:
        """The cells over the servers' reach (not filled yet); None when a coverage is unbounded."""
        reach = float(coverage.max())
        if not math.isfinite(reach):
            return None
        lo, hi = xy.min(axis=0) - reach, xy.max(axis=0) + reach
        cell = max(float(coverage.min()) / 16.0, math.sqrt(float(np.prod(hi - lo)) / cls.MAX_CELLS))
        while np.prod(np.ceil((hi - lo) / cell)) > cls.MAX_CELLS:  # a long, thin layout
            cell *= 1.25
        # the slack: a micrometre, and the rounding of a centre's coordinates far from the origin
        slack = 1e-6 + 8.0 * float(np.spacing(np.abs(np.concatenate([lo, hi])).max()))
        return cls(lo, cell, np.maximum(1, np.ceil((hi - lo) / cell)).astype(np.int64), slack)

    @property
    def cells(self) -> int:
        return int(self.shape[0] * self.shape[1])

    def fill(self, tree, coverage: np.ndarray) -> None:
        ij = np.stack(np.meshgrid(np.arange(self.shape[0]), np.arange(self.shape[1]), indexing="ij"), axis=-1)
        centre = self.lo + (ij.reshape(-1, 2) + 0.5) * self.cell
        k = min(2, len(coverage))
        d, i = tree.query(centre, k=k)
        d, i = d.reshape(len(centre), k), i.reshape(len(centre), k)
        h = self.cell * math.sqrt(0.5) * (1.0 + 1e-9) + self.slack
        second = d[:, 1] if k == 2 else np.inf
        serves = (second - d[:, 0] > 2.0 * h) & (d[:, 0] + h <= coverage[i[:, 0]])
        table = np.full(len(centre), self.ASK, dtype=np.int32)
        table[serves] = i[serves, 0]
        table[d[:, 0] - h > coverage.max()] = -1
        self.table = table

    def lookup(self, xy: np.ndarray) -> np.ndarray:
        """[N] the table's answer for each point: a server, -1, or :data:`ASK`."""
        q = np.floor((xy - self.lo) / self.cell)
        inside = np.all((q >= 0) & (q < self.shape), axis=1)  # NaN: outside
        out = np.full(len(xy), self.ASK, dtype=np.int64)
        rows = np.flatnonzero(inside)
        out[rows] = self.table[q[rows, 0].astype(np.int64) * self.shape[1] + q[rows, 1].astype(np.int64)]
        return out


class ServerSet:
    """Edge servers as arrays, with a k-d tree answering the association and radius queries.

    Server ``i`` is ``ids[i]`` at ``xy[i]`` (m) with coverage ``coverage_m[i]`` (m) and CPU ``cpu_hz[i]``.
    Build it from :class:`EdgeServer` s, or from arrays with :meth:`from_arrays`.
    """

    def __init__(self, servers: Iterable[EdgeServer] = ()) -> None:
        servers = tuple(servers)
        self._init(tuple(s.server_id for s in servers), [(s.x, s.y) for s in servers],
                   [s.coverage_radius_m for s in servers], [s.cpu_hz for s in servers],
                   tuple(s.site_id for s in servers))

    @classmethod
    def from_arrays(cls, ids: Sequence[str], xy: np.ndarray, coverage_m: np.ndarray | float,
                    cpu_hz: np.ndarray | float = math.nan, site_ids: Sequence[str] | None = None) -> ServerSet:
        out = cls.__new__(cls)
        n = len(ids)
        out._init(tuple(ids), xy, np.broadcast_to(np.asarray(coverage_m, dtype=float), (n,)),
                  np.broadcast_to(np.asarray(cpu_hz, dtype=float), (n,)),
                  tuple(site_ids) if site_ids is not None else ("",) * n)
        return out

    def _init(self, ids, xy, coverage, cpu, sites) -> None:
        self.ids: tuple[str, ...] = ids
        self.xy = np.array(xy, dtype=float).reshape(-1, 2)  # a copy: frozen below
        self.coverage_m = np.asarray(coverage, dtype=float).reshape(-1).copy()
        self.cpu_hz = np.asarray(cpu, dtype=float).reshape(-1).copy()
        self.site_ids: tuple[str, ...] = sites
        n = len(self.ids)
        if self.xy.shape != (n, 2) or self.coverage_m.shape != (n,) or self.cpu_hz.shape != (n,):
            raise LayoutError(f"server arrays do not match {n} server ids: xy {self.xy.shape}, "
                              f"coverage {self.coverage_m.shape}, cpu {self.cpu_hz.shape}")
        if len(set(self.ids)) != n:
            raise LayoutError("server ids must be unique")
        if np.any(~np.isfinite(self.xy)):
            raise LayoutError("server positions must be finite")
        if np.any(~(self.coverage_m > 0)):
            raise LayoutError(f"coverage radii must be > 0, got min {self.coverage_m.min() if n else None}")
        self.tree = _kdtree(self.xy) if n else None
        self._freeze()
        self._lay_out_table()

    def _freeze(self) -> None:
        """The arrays the association table is read from, read-only (unpickled arrays are writeable again)."""
        for a in (self.xy, self.coverage_m):
            a.flags.writeable = False

    def _lay_out_table(self) -> None:
        """The association rule as a table, filled once the set has been asked about as many points as the
        table has cells (what filling it costs)."""
        self._table = _ServingTable.layout(self.xy, self.coverage_m) if len(self.ids) else None
        self._asked = 0

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._freeze()
        if "_table" not in state:  # pickled before the association table existed
            self._lay_out_table()

    def __len__(self) -> int:
        return len(self.ids)

    def servers(self) -> list[EdgeServer]:
        return [EdgeServer(i, float(x), float(y), float(c), float(f), s) for i, (x, y), c, f, s in
                zip(self.ids, self.xy, self.coverage_m, self.cpu_hz, self.site_ids, strict=True)]

    def index_of(self) -> dict[str, int]:
        return {s: i for i, s in enumerate(self.ids)}

    def serving(self, xy: np.ndarray) -> np.ndarray:
        """[N] index of the server serving each of the [N, 2] points (the association rule), -1 if none."""
        xy = np.asarray(xy, dtype=float).reshape(-1, 2)
        table = self._table
        if table is not None and table.table is None:
            self._asked += len(xy)
            if self._asked >= table.cells:
                table.fill(self.tree, self.coverage_m)
        if table is None or table.table is None or len(xy) == 0:
            return self._serving_tree(xy)
        out = table.lookup(xy)
        ask = np.flatnonzero(out == _ServingTable.ASK)
        if len(ask):
            out[ask] = self._serving_tree(xy[ask])
        return out

    def _serving_tree(self, xy: np.ndarray) -> np.ndarray:
        out = np.full(len(xy), -1, dtype=np.int64)
        if self.tree is None or len(xy) == 0:
            return out
        # fast path: the nearest server covers the point and the second nearest is strictly farther
        k = min(2, len(self.xy))
        dist, idx = self.tree.query(xy, k=k)
        dist, idx = dist.reshape(len(xy), k), idx.reshape(len(xy), k)
        done = dist[:, 0] <= self.coverage_m[np.minimum(idx[:, 0], len(self.xy) - 1)]
        if k == 2:
            done &= dist[:, 1] > dist[:, 0]
        out[done] = idx[done, 0]
        rest = np.flatnonzero(~done)
        if len(rest):
            out[rest] = self._serving_slow(xy[rest])
        return out

    def _serving_slow(self, xy: np.ndarray) -> np.ndarray:
        out = np.full(len(xy), -1, dtype=np.int64)
        k = min(ASSOCIATION_CANDIDATES, len(self.xy))
        dist, idx = self.tree.query(xy, k=k)
        dist, idx = dist.reshape(len(xy), k), idx.reshape(len(xy), k)
        # stable order by (distance, index) so that ties go to the lower index
        order = np.lexsort((idx, dist), axis=1)
        dist = np.take_along_axis(dist, order, axis=1)
        idx = np.take_along_axis(idx, order, axis=1)
        covers = dist <= self.coverage_m[np.minimum(idx, len(self.xy) - 1)]
        has = covers.any(axis=1)
        first = np.argmax(covers, axis=1)
        out[has] = idx[has, first[has]]
        return out

    def nearest(self, xy: np.ndarray, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Distances (m) and indices of the ``k`` nearest servers of each point, nearest first: (..., k)."""
        xy = np.asarray(xy, dtype=float)
        if self.tree is None or k > len(self):
            raise LayoutError(f"asked for {k} nearest servers of {len(self)}")
        if not np.all(np.isfinite(xy)):
            raise LayoutError("positions must be finite (got NaN or infinity)")
        flat = xy.reshape(-1, 2)
        d, i = self.tree.query(flat, k=k)
        d = np.asarray(d, dtype=float).reshape(*xy.shape[:-1], k)
        i = np.asarray(i, dtype=np.int64).reshape(*xy.shape[:-1], k)
        return d, i

    def within(self, xy: np.ndarray, radius_m: float, *, max_per_point: int = 64
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The (point, server) pairs closer than ``radius_m``, at most the ``max_per_point`` nearest servers
        per point: (point index [E], server index [E], distance [E]), sorted by point then distance."""
        xy = np.asarray(xy, dtype=float).reshape(-1, 2)
        if self.tree is None or len(xy) == 0:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, np.zeros(0)
        k = min(max_per_point, len(self.xy))
        dist, idx = self.tree.query(xy, k=k, distance_upper_bound=radius_m)
        dist, idx = dist.reshape(len(xy), k), idx.reshape(len(xy), k)
        keep = np.isfinite(dist)
        point = np.broadcast_to(np.arange(len(xy))[:, None], (len(xy), k))
        return point[keep].astype(np.int64), idx[keep].astype(np.int64), dist[keep]

    def adjacency(self, factor: float) -> tuple[np.ndarray, float]:
        """Server-server adjacency: both directions of every pair closer than ``factor`` times the median
        nearest-server distance. Returns ([2, E] index pairs, the radius used in metres)."""
        if self.tree is None or len(self.xy) < 2:
            return np.zeros((2, 0), dtype=np.int64), float("nan")
        d, _ = self.tree.query(self.xy, k=2)
        radius = float(factor * np.median(d[:, 1]))
        pairs = self.tree.query_pairs(radius, output_type="ndarray").astype(np.int64)
        both = np.concatenate([pairs, pairs[:, ::-1]], axis=0)
        both = both[np.lexsort((both[:, 1], both[:, 0]))]
        return both.T.copy(), radius

    def nearest_index(self, xy: np.ndarray) -> np.ndarray:
        """[N] index of the nearest server, whatever the distance (-1 when there is no server)."""
        xy = np.asarray(xy, dtype=float).reshape(-1, 2)
        if self.tree is None or len(xy) == 0:
            return np.full(len(xy), -1, dtype=np.int64)
        return self.tree.query(xy, k=1)[1].astype(np.int64)

    def served_counts(self, xy: np.ndarray) -> np.ndarray:
        """[S] how many of the points each server serves."""
        serving = self.serving(xy)
        return np.bincount(serving[serving >= 0], minlength=len(self)).astype(np.int64)


# ------------------------------------------------------------------------------------------------ state


@dataclass(frozen=True)
class TwinSnapshot:
    """The twins at time ``t`` (s), vectorised: aligned arrays per kind; positions in ``map`` metres,
    velocities m/s, CPU in GHz (capacity) and Hz (the twin's estimate and its deviation).

    What every consumer of the twin reads (offloading, placement, the relation graph, route guidance): the
    ROS nodes build it from the twin's messages, the simulator from its fleet.
    """

    t: float
    vehicle_ids: np.ndarray  # [V] str
    vehicle_xy: np.ndarray  # [V, 2]
    vehicle_vel: np.ndarray  # [V, 2]
    server_ids: np.ndarray  # [S] str
    server_xy: np.ndarray  # [S, 2]
    server_coverage_m: np.ndarray  # [S]
    server_capacity_ghz: np.ndarray  # [S]
    rsu_ids: np.ndarray  # [R] str
    rsu_xy: np.ndarray  # [R, 2]
    vehicle_age_s: np.ndarray | None = None  # [V] age of each vehicle twin's state (None: all fresh)
    vehicle_server: np.ndarray | None = None  # [V] serving server index when the network reports it, else -1
    vehicle_track_id: np.ndarray | None = None  # [V] the twin's track id (0 when unknown)
    server_estimate_hz: np.ndarray | None = None  # [S] the twin's estimate of the frequency a task gets (Hz)
    server_deviation_hz: np.ndarray | None = None  # [S] deviation of that estimate (Hz, DITEN eq. 9)
    server_load: np.ndarray | None = None  # [S] the twin's estimate of the load, [0, 1]

    def __post_init__(self) -> None:
        v, s, r = len(self.vehicle_ids), len(self.server_ids), len(self.rsu_ids)
        defaults = {
            "vehicle_age_s": np.zeros(v), "vehicle_server": np.full(v, -1, dtype=np.int64),
            "vehicle_track_id": np.zeros(v, dtype=np.int64),
            "server_estimate_hz": self.server_capacity_ghz * 1e9, "server_deviation_hz": np.zeros(s),
            "server_load": np.zeros(s),
        }
        for name, value in defaults.items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        shapes = {
            "vehicle_xy": (self.vehicle_xy.shape, (v, 2)), "vehicle_vel": (self.vehicle_vel.shape, (v, 2)),
            "server_xy": (self.server_xy.shape, (s, 2)), "server_coverage_m": (self.server_coverage_m.shape, (s,)),
            "server_capacity_ghz": (self.server_capacity_ghz.shape, (s,)), "rsu_xy": (self.rsu_xy.shape, (r, 2)),
            "vehicle_age_s": (self.vehicle_age_s.shape, (v,)), "vehicle_server": (self.vehicle_server.shape, (v,)),
            "vehicle_track_id": (self.vehicle_track_id.shape, (v,)),
            "server_estimate_hz": (self.server_estimate_hz.shape, (s,)),
            "server_deviation_hz": (self.server_deviation_hz.shape, (s,)), "server_load": (self.server_load.shape, (s,)),
        }
        for name, (got, want) in shapes.items():
            if got != want:
                raise ValueError(f"{name} has shape {got}, expected {want}")
        if not (np.all(np.isfinite(self.vehicle_xy)) and np.all(np.isfinite(self.vehicle_vel))):
            raise ValueError(f"snapshot at t={self.t}: vehicle positions and velocities must be finite")

    @property
    def num_nodes(self) -> int:
        return len(self.vehicle_ids) + len(self.server_ids) + len(self.rsu_ids)

    VEHICLE_FIELDS: typing.ClassVar = ("vehicle_ids", "vehicle_xy", "vehicle_vel", "vehicle_age_s", "vehicle_server", "vehicle_track_id")
    SERVER_FIELDS: typing.ClassVar = ("server_ids", "server_xy", "server_coverage_m", "server_capacity_ghz", "server_estimate_hz",
                     "server_deviation_hz", "server_load")
    RSU_FIELDS: typing.ClassVar = ("rsu_ids", "rsu_xy")

    def select(self, vehicles: np.ndarray | None = None, servers: np.ndarray | None = None,
               rsus: np.ndarray | None = None, **changes) -> TwinSnapshot:
        """The snapshot of the selected vehicles, servers and RSUs (masks or indices; None keeps all), with
        ``changes`` applied. ``vehicle_server`` is not renumbered: pass it in ``changes`` when selecting servers."""
        for selection, names in ((vehicles, self.VEHICLE_FIELDS), (servers, self.SERVER_FIELDS),
                                 (rsus, self.RSU_FIELDS)):
            if selection is not None:
                for name in names:
                    changes.setdefault(name, getattr(self, name)[selection])
        return replace(self, **changes)

    def with_vehicles(self, mask: np.ndarray) -> TwinSnapshot:
        return self.select(vehicles=mask)

    def server_set(self) -> ServerSet:
        return ServerSet.from_arrays([str(i) for i in self.server_ids], self.server_xy, self.server_coverage_m,
                                     self.server_capacity_ghz * 1e9)


def snapshot_of(t: float, layout: Layout, vehicle_ids: np.ndarray, vehicle_xy: np.ndarray,
                vehicle_vel: np.ndarray, **extra) -> TwinSnapshot:
    """A :class:`TwinSnapshot` of vehicles among the servers and RSUs of ``layout``."""
    servers = layout.servers
    return TwinSnapshot(
        t=float(t), vehicle_ids=np.asarray(vehicle_ids), vehicle_xy=np.asarray(vehicle_xy, float).reshape(-1, 2),
        vehicle_vel=np.asarray(vehicle_vel, float).reshape(-1, 2),
        server_ids=np.asarray([s.server_id for s in servers], dtype=object),
        server_xy=np.asarray([(s.x, s.y) for s in servers], float).reshape(-1, 2),
        server_coverage_m=np.asarray([s.coverage_radius_m for s in servers], float),
        server_capacity_ghz=np.asarray([s.cpu_hz * 1e-9 for s in servers], float),
        rsu_ids=np.asarray([r.rsu_id for r in layout.rsus], dtype=object),
        rsu_xy=np.asarray([(r.x, r.y) for r in layout.rsus], float).reshape(-1, 2),
        **extra,
    )

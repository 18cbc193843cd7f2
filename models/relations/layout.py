"""Where the edge servers and RSUs stand, and which server serves a vehicle.

**Layout.** :func:`hex_layout` puts edge servers (base stations with an edge server each) on a hexagonal
grid over an :class:`Area` (default spacing 300 m, coverage radius 200 m, see
:class:`~models.relations.config.LayoutConfig`), optionally jittered, and scatters RSUs uniformly at
random (seeded). Each server draws a CPU clock (its capacity) once. Each RSU is attached to its nearest
server (the server that hosts its twin).

**Association rule** (:func:`serving_server`, :meth:`ServerIndex.serving`): a vehicle is served by the
*nearest server whose coverage disc contains it*; ties go to the lower server index; a vehicle outside
every disc is unserved (index -1). With one coverage radius for all servers this is simply the nearest
server, when it is within coverage. This is DITEN's "nearest base station" access rule (004, Sec. III)
with a finite cell radius.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial import cKDTree

from models.relations.config import LayoutConfig

#: How many nearest servers the association rule looks at to find one whose disc contains the vehicle.
ASSOCIATION_CANDIDATES = 8


@dataclass(frozen=True)
class Area:
    """An axis-aligned box of the ``map`` plane, metres."""

    x_min: float
    x_max: float
    y_min: float
    y_max: float

    def __post_init__(self) -> None:
        if not (self.x_max > self.x_min and self.y_max > self.y_min):
            raise ValueError(f"empty area: x {self.x_min}..{self.x_max}, y {self.y_min}..{self.y_max}")

    @classmethod
    def square(cls, centre: tuple[float, float], side_m: float) -> Area:
        cx, cy = centre
        h = side_m / 2.0
        return cls(cx - h, cx + h, cy - h, cy + h)

    @property
    def centre(self) -> tuple[float, float]:
        return (self.x_min + self.x_max) / 2.0, (self.y_min + self.y_max) / 2.0

    @property
    def size(self) -> tuple[float, float]:
        return self.x_max - self.x_min, self.y_max - self.y_min

    def contains(self, xy: np.ndarray) -> np.ndarray:
        """[N] bool: which of the [N, 2] points lie in the box (edges included)."""
        xy = np.asarray(xy, dtype=float).reshape(-1, 2)
        return ((xy[:, 0] >= self.x_min) & (xy[:, 0] <= self.x_max)
                & (xy[:, 1] >= self.y_min) & (xy[:, 1] <= self.y_max))

    def grown(self, margin_m: float) -> Area:
        return Area(self.x_min - margin_m, self.x_max + margin_m, self.y_min - margin_m, self.y_max + margin_m)

    def split(self, nx: int, ny: int) -> list[Area]:
        """The ``nx * ny`` districts of a regular grid over the box, row by row from the south-west."""
        if nx < 1 or ny < 1:
            raise ValueError(f"cannot split an area into {nx} x {ny} districts")
        xs = np.linspace(self.x_min, self.x_max, nx + 1)
        ys = np.linspace(self.y_min, self.y_max, ny + 1)
        return [Area(float(xs[i]), float(xs[i + 1]), float(ys[j]), float(ys[j + 1]))
                for j in range(ny) for i in range(nx)]


@dataclass(frozen=True)
class ServerLayout:
    """Edge servers and RSUs. Server ``i`` is ``server_ids[i]`` at ``server_xy[i]`` (metres)."""

    server_ids: tuple[str, ...]
    server_xy: np.ndarray  # [S, 2] m
    coverage_m: np.ndarray  # [S] m
    capacity_ghz: np.ndarray  # [S] GHz
    rsu_ids: tuple[str, ...] = ()
    rsu_xy: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))  # [R, 2] m
    spacing_m: float = float("nan")  # nominal grid spacing (nan when unknown)

    def __post_init__(self) -> None:
        s = len(self.server_ids)
        if self.server_xy.shape != (s, 2) or self.coverage_m.shape != (s,) or self.capacity_ghz.shape != (s,):
            raise ValueError(f"layout arrays do not match {s} server ids: xy {self.server_xy.shape}, "
                             f"coverage {self.coverage_m.shape}, capacity {self.capacity_ghz.shape}")
        if self.rsu_xy.shape != (len(self.rsu_ids), 2):
            raise ValueError(f"rsu_xy {self.rsu_xy.shape} does not match {len(self.rsu_ids)} RSU ids")
        if len(set(self.server_ids)) != s:
            raise ValueError("server ids must be unique")

    @property
    def num_servers(self) -> int:
        return len(self.server_ids)

    def index(self) -> ServerIndex:
        return ServerIndex(self.server_xy, self.coverage_m)


def hex_layout(area: Area, config: LayoutConfig | None = None) -> ServerLayout:
    """Servers on a hexagonal grid covering ``area`` (rows ``spacing * sqrt(3) / 2`` apart, every other row
    shifted by half a spacing), ids ``edge_<row>_<col>``; RSUs uniform in the area, ids ``rsu_<n>``."""
    config = config or LayoutConfig()
    rng = np.random.default_rng(config.seed)
    s = config.spacing_m
    dy = s * math.sqrt(3) / 2.0
    ids, xy = [], []
    n_rows = math.ceil((area.y_max - area.y_min) / dy) + 1
    n_cols = math.ceil((area.x_max - area.x_min) / s) + 1
    for r in range(n_rows):
        y = area.y_min + r * dy
        shift = (r % 2) * s / 2.0
        for c in range(n_cols + (r % 2)):
            ids.append(f"edge_{r}_{c}")
            xy.append((area.x_min - shift + c * s, y))
    server_xy = np.asarray(xy, dtype=float)
    if config.jitter_m > 0:
        server_xy = server_xy + rng.uniform(-config.jitter_m, config.jitter_m, size=server_xy.shape)
    n = len(ids)
    capacity = rng.uniform(*config.capacity_ghz, size=n)
    n_rsu = round(config.rsus_per_server * n)
    rsu_xy = np.column_stack([rng.uniform(area.x_min, area.x_max, n_rsu), rng.uniform(area.y_min, area.y_max, n_rsu)])
    return ServerLayout(tuple(ids), server_xy, np.full(n, config.coverage_m), capacity,
                        tuple(f"rsu_{i}" for i in range(n_rsu)), rsu_xy.reshape(-1, 2), spacing_m=s)


class ServerIndex:
    """A k-d tree over server positions answering the association and radius queries of the graph.

    Args:
        server_xy: [S, 2] positions, metres.
        coverage_m: [S] coverage radii, metres (or one radius for all).
    """

    def __init__(self, server_xy: np.ndarray, coverage_m: np.ndarray | float) -> None:
        self.xy = np.asarray(server_xy, dtype=float).reshape(-1, 2)
        self.coverage = np.broadcast_to(np.asarray(coverage_m, dtype=float), (len(self.xy),)).copy()
        if np.any(~np.isfinite(self.xy)):
            raise ValueError("server positions must be finite")
        if np.any(self.coverage <= 0):
            raise ValueError(f"coverage radii must be > 0, got min {self.coverage.min() if len(self.coverage) else None}")
        self.tree = cKDTree(self.xy) if len(self.xy) else None

    def __len__(self) -> int:
        return len(self.xy)

    def serving(self, xy: np.ndarray) -> np.ndarray:
        """[N] index of the serving server of each of the [N, 2] points (the association rule), -1 if none."""
        xy = np.asarray(xy, dtype=float).reshape(-1, 2)
        out = np.full(len(xy), -1, dtype=np.int64)
        if self.tree is None or len(xy) == 0:
            return out
        # fast path: the nearest server covers the point and the second nearest is strictly farther
        k = min(2, len(self.xy))
        dist, idx = self.tree.query(xy, k=k)
        dist, idx = dist.reshape(len(xy), k), idx.reshape(len(xy), k)
        done = dist[:, 0] <= self.coverage[idx[:, 0]]
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
        covers = dist <= self.coverage[np.minimum(idx, len(self.xy) - 1)]
        has = covers.any(axis=1)
        first = np.argmax(covers, axis=1)
        out[has] = idx[has, first[has]]
        return out

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

    def nearest(self, xy: np.ndarray) -> np.ndarray:
        """[N] index of the nearest server, whatever the distance (-1 when there is no server)."""
        xy = np.asarray(xy, dtype=float).reshape(-1, 2)
        if self.tree is None or len(xy) == 0:
            return np.full(len(xy), -1, dtype=np.int64)
        return self.tree.query(xy, k=1)[1].astype(np.int64)


def serving_server(vehicle_xy: np.ndarray, server_xy: np.ndarray, coverage_m: np.ndarray | float) -> np.ndarray:
    """The association rule in one call: [N] index of the server serving each vehicle, -1 when unserved.

    The nearest server whose coverage disc contains the vehicle; ties to the lower index. Build a
    :class:`ServerIndex` once and call :meth:`ServerIndex.serving` when the servers do not move.
    """
    return ServerIndex(server_xy, coverage_m).serving(vehicle_xy)

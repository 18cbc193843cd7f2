"""Where the edge servers and RSUs of the relation experiments stand.

**Layout.** :func:`hex_layout` puts edge servers (base stations with an edge server each) on a hexagonal
grid over an :class:`Area` (default spacing 300 m, coverage radius 200 m, see
:class:`~mobility_twin_models.relations.config.LayoutConfig`), optionally jittered, and scatters RSUs uniformly at
random (seeded). Each server draws a CPU clock (its capacity) once. Each RSU is attached to its nearest
server (the server that hosts its twin).

The layout is a :class:`mobility_twin_core.Layout`; which server serves a vehicle is the association rule of
:class:`mobility_twin_core.ServerSet` (the nearest server whose coverage disc contains it, DITEN's "nearest
base station" access rule with a finite cell radius).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mobility_twin_core import EdgeServer, Layout, Rsu
from mobility_twin_models.relations.config import LayoutConfig


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


def hex_layout(area: Area, config: LayoutConfig | None = None) -> Layout:
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
    servers = tuple(EdgeServer(sid, float(x), float(y), float(config.coverage_m), float(ghz) * 1e9)
                    for sid, (x, y), ghz in zip(ids, server_xy, capacity, strict=True))
    rsus = tuple(Rsu(f"rsu_{i}", float(x), float(y)) for i, (x, y) in enumerate(rsu_xy.reshape(-1, 2)))
    return Layout(rsus=rsus, servers=servers).validated()

"""The local twin of one edge site: fused tracks of its area, and the twins of its RSUs, CAVs and servers.

It ingests detection frames from the site's sources (RSUs by id, CAVs while they are inside the site's
area, and the connected vehicles' own reports relayed by the site's edge servers), fuses them with the
multi-source tracker, and keeps an *entity twin* for every source and edge
server with its age of information (AoI: how long ago the freshest data from it was sensed, the
desynchronisation measure of the bi-directional twin paper). Edge-server twins estimate the load from
the tracked vehicles (vehicles served = tracks whose nearest server in coverage is that server) and keep
the deviation between that estimate and the server's own reports (DITEN eq. 9).

Bad input is counted, never fatal: unknown sources, frames from a CAV outside the site, stale and
duplicate frames (the tracker's counts), reports of unknown servers.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from shapely.geometry import Point, Polygon

from mobility_twin.perception.detections import SOURCE_CAV, SOURCE_RSU, SOURCE_V2X, Detections
from mobility_twin.tracking import MultiSourceTracker, TrackerConfig, TrackSet

KIND_CAV, KIND_RSU, KIND_EDGE_SERVER = 1, 2, 3  # TwinEntity.KIND_*


@dataclass(frozen=True)
class ServerSpec:
    server_id: str
    x: float
    y: float
    coverage_radius: float
    cpu_hz: float
    demand_hz_per_vehicle: float = 2.0e8


@dataclass(frozen=True)
class LocalTwinConfig:
    site_id: str
    rsus: tuple[str, ...] = ()  # RSU ids of the site; empty: accept any RSU
    area: tuple[tuple[float, float], ...] = ()  # the site's polygon in map; empty: everywhere
    area_margin_m: float = 30.0  # CAV frames are accepted this far outside the area (overlap with neighbours)
    stale_after_s: float = 1.0
    tracker: TrackerConfig = TrackerConfig()


@dataclass
class EntityTwin:
    entity_id: str
    kind: int
    x: float = math.nan
    y: float = math.nan
    yaw: float = 0.0
    last_update: float = -math.inf
    received: int = 0
    rejected: int = 0

    def age(self, t: float) -> float:
        return t - self.last_update


@dataclass
class ServerTwin:
    spec: ServerSpec
    reported_load: float = math.nan
    reported_served: float = math.nan
    last_report: float = -math.inf
    estimated_served: int = 0
    sq_error_sum: float = 0.0
    error_count: int = 0

    @property
    def estimated_load(self) -> float:
        return min(1.0, self.estimated_served * self.spec.demand_hz_per_vehicle / self.spec.cpu_hz)

    @property
    def deviation_hz(self) -> float:
        """RMS error of the twin's estimate of the free CPU frequency against the server's reports."""
        if self.error_count == 0:
            return 0.0
        return math.sqrt(self.sq_error_sum / self.error_count)


@dataclass
class LocalSnapshot:
    """The twin at one instant: what the node publishes."""

    site_id: str
    stamp: float
    tracks: TrackSet
    entities: list[tuple[EntityTwin, float, bool]]  # (twin, age of information, stale)
    servers: list[ServerTwin]
    provenance: list[tuple[str, float, tuple[tuple[str, float], ...]]]  # (source, sensor stamp, stages)


@dataclass
class LocalTwinStats:
    frames: int = 0
    rejected: Counter = field(default_factory=Counter)


class LocalTwin:
    def __init__(self, config: LocalTwinConfig, servers: list[ServerSpec] = (), *, id_offset: int = 0) -> None:
        self.config = config
        self.tracker = MultiSourceTracker(config.tracker, id_offset=id_offset)
        self.area = Polygon(config.area) if config.area else None
        self._cav_area = self.area.buffer(config.area_margin_m) if self.area is not None else None
        self.entities: dict[str, EntityTwin] = {}
        for rsu in config.rsus:
            self.entities[rsu] = EntityTwin(rsu, KIND_RSU)
        self.servers = {s.server_id: ServerTwin(s) for s in servers}
        self.stats = LocalTwinStats()
        self._pending: list[tuple[str, float, tuple[tuple[str, float], ...]]] = []

    # ---------------------------------------------------------------------------------- input
    def ingest(self, frame: Detections) -> bool:
        """Fuse one frame; False (and counted) when the frame is not this twin's to fuse."""
        cfg = self.config
        if frame.source_type == SOURCE_RSU and cfg.rsus and frame.source_id not in cfg.rsus:
            self.stats.rejected["unknown_source"] += 1
            return False
        if frame.source_type == SOURCE_V2X and frame.source_id.removesuffix("/v2x") not in self.servers:
            self.stats.rejected["v2x_from_foreign_server"] += 1
            return False
        if frame.source_type not in (SOURCE_RSU, SOURCE_CAV, SOURCE_V2X):
            self.stats.rejected["unknown_source_type"] += 1
            return False
        if frame.source_type == SOURCE_CAV and self._cav_area is not None:
            if not self._cav_area.contains(Point(*frame.sensor_xy)):
                self.stats.rejected["cav_outside_site"] += 1
                return False
        twin = self.entities.get(frame.source_id)
        if twin is None:
            kind = {SOURCE_RSU: KIND_RSU, SOURCE_CAV: KIND_CAV, SOURCE_V2X: KIND_EDGE_SERVER}[frame.source_type]
            twin = self.entities[frame.source_id] = EntityTwin(frame.source_id, kind)
        before = (self.tracker.stats.dropped_stale, self.tracker.stats.dropped_duplicate)
        self.tracker.update(frame)
        if (self.tracker.stats.dropped_stale, self.tracker.stats.dropped_duplicate) != before:
            twin.rejected += 1
            self.stats.rejected["stale_or_duplicate"] += 1
            return False
        twin.received += 1
        if frame.stamp > twin.last_update:
            twin.last_update = frame.stamp
            twin.x, twin.y = frame.sensor_xy
        self.stats.frames += 1
        self._pending.append((frame.source_id, frame.stamp, frame.provenance))
        return True

    def report_server(self, server_id: str, stamp: float, load: float, vehicles_served: float) -> bool:
        """A server's own report of its state (the twin's synchronisation); False for unknown servers."""
        twin = self.servers.get(server_id)
        if twin is None:
            self.stats.rejected["unknown_server"] += 1
            return False
        if stamp <= twin.last_report:
            self.stats.rejected["stale_server_report"] += 1
            return False
        twin.reported_load, twin.reported_served, twin.last_report = load, vehicles_served, stamp
        cpu = twin.spec.cpu_hz
        twin.sq_error_sum += ((twin.estimated_load - load) * cpu) ** 2
        twin.error_count += 1
        return True

    # ---------------------------------------------------------------------------------- output
    def snapshot(self, t: float) -> LocalSnapshot:
        """Tracks predicted to ``t``, entity twins with their AoI, server estimates; clears the provenance."""
        tracks = self.tracker.confirmed_at(t)
        self._estimate_servers(tracks)
        stale = self.config.stale_after_s
        entities = [(e, e.age(t), e.age(t) > stale) for e in self.entities.values()]
        for s in self.servers.values():
            e = EntityTwin(s.spec.server_id, KIND_EDGE_SERVER, s.spec.x, s.spec.y, 0.0, s.last_report)
            entities.append((e, e.age(t), e.age(t) > max(stale, 2.0)))
        pending, self._pending = self._pending, []
        return LocalSnapshot(self.config.site_id, t, tracks, entities, list(self.servers.values()), pending)

    def _estimate_servers(self, tracks: TrackSet) -> None:
        servers = list(self.servers.values())
        if not servers:
            return
        for s in servers:
            s.estimated_served = 0
        if not len(tracks):
            return
        sx = np.array([s.spec.x for s in servers])
        sy = np.array([s.spec.y for s in servers])
        radius = np.array([s.spec.coverage_radius for s in servers])
        d = np.hypot(tracks.x[:, 0, None] - sx[None], tracks.x[:, 1, None] - sy[None])
        d = np.where(d <= radius[None], d, np.inf)
        best = np.argmin(d, axis=1)
        served = np.isfinite(d[np.arange(len(best)), best])
        for k in best[served]:
            servers[k].estimated_served += 1

"""The local twin of one edge site: fused tracks of its area, and the twins of its RSUs, CAVs and servers.

It ingests frames of detections from the site's input channels (:mod:`.channels`: RSUs, CAVs while they
are inside the site's area, the connected vehicles' own reports relayed by the site's edge servers, or any
sensor a channel file declares), fuses them with a tracker (:class:`~mobility_twin.tracking.Tracker`; the
multi-source tracker by default), and keeps an *entity twin* for every source and edge server with its age
of information (AoI: how long ago the freshest data from it was sensed, the desynchronisation measure of
the bi-directional twin paper). Edge-server twins estimate the load from the tracked vehicles (vehicles
served: the association rule of :class:`mobility_twin_core.ServerSet`) and keep the deviation between that
estimate and the server's own reports (DITEN eq. 9).

Bad input is counted, never fatal: frames of unknown channels or claiming another source, frames from a
moving sensor outside the site, stale and duplicate frames (the tracker's), reports of unknown servers.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import KW_ONLY, dataclass, field, replace

import numpy as np
from shapely.geometry import Point, Polygon

from mobility_twin.perception.detections import Detections
from mobility_twin.tracking import MultiSourceTracker, Tracker, TrackerConfig, TrackSet
from mobility_twin.twin.channels import InputChannel
from mobility_twin_core import EdgeServer, EntityKind, ServerSet


@dataclass(frozen=True)
class LocalTwinConfig:
    site_id: str
    _: KW_ONLY  # the rest by name: a polygon given where the CAV ids go would refuse every CAV's frames
    rsus: tuple[str, ...] = ()  # RSU ids of the site (members of channels with members: rsus)
    cavs: tuple[str, ...] = ()  # CAV ids whose frames the twin takes (members: cavs); empty: any
    area: tuple[tuple[float, float], ...] = ()  # the site's polygon in map; empty: everywhere
    area_margin_m: float = 30.0  # frames of moving sensors are accepted this far outside the area
    stale_after_s: float = 1.0
    demand_hz_per_vehicle: float = 2.0e8  # CPU one served vehicle needs, for the load estimate
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
class ServerEstimate:
    """The local twin's estimate of one edge server, and how far it is from the server's own reports."""

    server: EdgeServer
    demand_hz_per_vehicle: float
    reported_load: float = math.nan
    reported_served: float = math.nan
    last_report: float = -math.inf
    estimated_served: int = 0
    sq_error_sum: float = 0.0
    error_count: int = 0

    @property
    def estimated_load(self) -> float:
        return min(1.0, self.estimated_served * self.demand_hz_per_vehicle / self.server.cpu_hz)

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
    servers: list[ServerEstimate]
    provenance: list[tuple[str, float, tuple[tuple[str, float], ...]]]  # (source, sensor stamp, stages)


@dataclass
class LocalTwinStats:
    frames: int = 0
    rejected: Counter = field(default_factory=Counter)


class LocalTwin:
    """Args:
    config: the site and the twin's settings.
    servers: the site's edge servers.
    channels: the input channels (``mobility_twin.twin.channels``); frames are ingested per channel.
    tracker: any :class:`~mobility_twin.tracking.Tracker` (default: the multi-source tracker of
        ``config.tracker``).
    id_offset: track ids start above this (keeps the ids of several sites apart).
    """

    def __init__(self, config: LocalTwinConfig, servers: Sequence[EdgeServer] = (), *,
                 channels: Sequence[InputChannel], tracker: Tracker | None = None, id_offset: int = 0) -> None:
        self.config = config
        self.tracker = tracker if tracker is not None else MultiSourceTracker(config.tracker, id_offset=id_offset)
        self.channels = {c.name: c for c in channels}
        self.area = Polygon(config.area) if config.area else None
        self._moving_area = self.area.buffer(config.area_margin_m) if self.area is not None else None
        self.entities: dict[str, EntityTwin] = {}
        for rsu in config.rsus:
            self.entities[rsu] = EntityTwin(rsu, int(EntityKind.RSU))
        self.servers = {s.server_id: ServerEstimate(s, config.demand_hz_per_vehicle) for s in servers}
        self._server_set = ServerSet(servers)
        self.stats = LocalTwinStats()
        self._pending: list[tuple[str, float, tuple[tuple[str, float], ...]]] = []

    # ---------------------------------------------------------------------------------- input
    def ingest(self, frame: Detections, channel: str, member: str | None = None) -> bool:
        """Fuse one frame that arrived on ``channel`` from its ``member`` (default: the member the frame's
        source id names); the frame must carry that member's source id, and the member must belong to the
        site. False (and counted) when the frame is not this twin's to fuse."""
        return self.ingest_many([(frame, channel, member)])[0]

    def ingest_many(self, arrived: Sequence[tuple[Detections, str, str | None]]) -> list[bool]:
        """Fuse frames (frame, channel, member) in the order they arrived; whether each was fused. The frames
        of one channel and stamp from sources that see no area (the V2X relays of the site's servers, sent
        together at each instant) are fused as one frame, their detections associated together
        (``Tracker.update_instant``, when the tracker has it)."""
        taken = [False] * len(arrived)
        # frames fused together share a key (channel, "instant", stamp); any other is a group of its own
        groups: dict[tuple, list[tuple[int, Detections, EntityTwin]]] = {}
        for i, (frame, channel, member) in enumerate(arrived):
            admitted = self._admit(frame, channel, member)
            if admitted is not None:
                frame, twin = admitted
                instant = frame.sensor_range <= 0 and hasattr(self.tracker, "update_instant")
                key = (channel, "instant", frame.stamp) if instant else (channel, "frame", i)
                groups.setdefault(key, []).append((i, frame, twin))
        for (channel, _, _), group in groups.items():
            may_spawn = self.channels[channel].may_spawn_tracks
            if len(group) == 1:
                fused = [self.tracker.update(group[0][1], may_spawn=may_spawn)]
            else:
                fused = self.tracker.update_instant([frame for _, frame, _ in group], may_spawn=may_spawn)
            for (i, frame, twin), ok in zip(group, fused, strict=True):
                taken[i] = self._fused(frame, twin, ok)
        return taken

    def _admit(self, frame: Detections, channel: str, member: str | None) -> tuple[Detections, EntityTwin] | None:
        """The frame as the tracker takes it (its channel's noise floor and systematic share) and its source's
        entity twin, or None (counted) when it is not this twin's to fuse."""
        ch = self.channels.get(channel)
        if ch is None:
            self.stats.rejected["unknown_channel"] += 1
            return None
        member = frame.source_id.removesuffix(ch.source_of("")) if member is None else member
        if not self._is_member(ch, member):
            self.stats.rejected["unknown_source"] += 1
            return None
        if frame.source_id != ch.source_of(member):
            self.stats.rejected["source_id_mismatch"] += 1
            return None
        if ch.moving and self._moving_area is not None and not self._moving_area.contains(Point(*frame.sensor_xy)):
            self.stats.rejected["moving_sensor_outside_site"] += 1
            return None
        if ch.position_sigma_m > 0 and len(frame):
            floor = ch.position_sigma_m**2
            cov = frame.cov.copy()
            cov[:, 0, 0] = np.maximum(cov[:, 0, 0], floor)
            cov[:, 1, 1] = np.maximum(cov[:, 1, 1], floor)
            frame = replace(frame, cov=cov)
        if frame.systematic_share != ch.systematic_share:
            frame = replace(frame, systematic_share=ch.systematic_share)
        twin = self.entities.get(frame.source_id)
        if twin is None:
            twin = self.entities[frame.source_id] = EntityTwin(frame.source_id, int(ch.entity_kind))
        return frame, twin

    def _fused(self, frame: Detections, twin: EntityTwin, taken: bool) -> bool:
        """Account for a frame the tracker took (``taken``) or refused as stale or a duplicate."""
        if not taken:
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

    def _is_member(self, ch: InputChannel, member: str) -> bool:
        cfg = self.config
        if ch.members == "rsus":
            return not cfg.rsus or member in cfg.rsus
        if ch.members == "cavs":
            return not cfg.cavs or member in cfg.cavs
        if ch.members == "edge_servers":
            return member in self.servers
        return member in ch.ids

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
        cpu = twin.server.cpu_hz
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
            e = EntityTwin(s.server.server_id, int(EntityKind.EDGE_SERVER), s.server.x, s.server.y, 0.0, s.last_report)
            entities.append((e, e.age(t), e.age(t) > max(stale, 2.0)))
        pending, self._pending = self._pending, []
        return LocalSnapshot(self.config.site_id, t, tracks, entities, list(self.servers.values()), pending)

    def _estimate_servers(self, tracks: TrackSet) -> None:
        counts = self._server_set.served_counts(tracks.x[:, :2]) if len(tracks) else np.zeros(len(self.servers), int)
        for s, n in zip(self.servers.values(), counts.tolist(), strict=True):
            s.estimated_served = int(n)

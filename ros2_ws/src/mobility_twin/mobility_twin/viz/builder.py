"""Build a :class:`TwinScene` from a stream of twin messages, wherever they come from.

:class:`SceneBuilder` is fed plain values (arrays, strings, tuples) in arrival order: the live
subscriptions of `twin_viz` and `mtwin snapshot --live` feed it (see :mod:`mobility_twin.viz.live`), and
a recording reader can feed it the same way, message by message. It keeps what a picture needs: the
layout, the newest tracks with a trail of their recent positions, the newest server twins, which server
serves which vehicle, recent migrations, stale entities, the CAVs' guided routes and the collision warnings in
force. ROS-free.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, replace

import numpy as np

from mobility_twin_core import Layout

from .scene import RouteView, ServerView, SignalView, TrackView, TwinScene, WarningView

SOURCE_KINDS = ("rsu", "cav", "v2x", "fused", "none")


def source_kind(sources: list[str], rsus: set[str] = frozenset(), cavs: set[str] = frozenset()) -> str:
    """What sensed a track: ``rsu`` (roadside LiDARs only), ``cav`` (vehicle LiDARs only), ``v2x`` (vehicle
    self-reports relayed by a base station only), ``fused`` (more than one of these kinds) or ``none``.

    A source is an RSU when it is in ``rsus`` or its id starts with ``rsu``, a CAV likewise with ``cavs``
    and ``cav``; any other source id (an edge server relaying self-reports) counts as ``v2x``.
    """
    kinds = set()
    for s in sources:
        if s in rsus or s.startswith("rsu"):
            kinds.add("rsu")
        elif s in cavs or s.startswith("cav"):
            kinds.add("cav")
        else:
            kinds.add("v2x")
    if not kinds:
        return "none"
    return kinds.pop() if len(kinds) == 1 else "fused"


def empty_tracks(stamp: float = 0.0) -> TrackView:
    return TrackView(stamp, np.zeros(0, np.int64), np.zeros((0, 2)), np.zeros((0, 2)), np.zeros(0), np.zeros((0, 3)),
                     np.zeros(0), [])


def track_view(stamp: float, ids, xy, v, yaw, dims, age=None, sources=None) -> TrackView:
    """A TrackView from array-likes (``age`` defaults to 0 s, ``sources`` to none), shapes checked."""
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    n = len(ids)
    xy = np.asarray(xy, dtype=float).reshape(n, 2)
    v = np.asarray(v, dtype=float).reshape(n, 2)
    yaw = np.asarray(yaw, dtype=float).reshape(n)
    dims = np.asarray(dims, dtype=float).reshape(n, 3)
    age = np.zeros(n) if age is None else np.asarray(age, dtype=float).reshape(n)
    sources = [[] for _ in range(n)] if sources is None else [list(s) for s in sources]
    if len(sources) != n:
        raise ValueError(f"track view: {n} ids but {len(sources)} source lists")
    return TrackView(float(stamp), ids, xy, v, yaw, dims, age, sources)


@dataclass(frozen=True)
class BuilderConfig:
    trail_s: float = 20.0  # how far back a track's trail reaches, s
    trail_points: int = 200  # at most this many past positions per track
    trail_min_step_m: float = 0.5  # a new trail point only after the track moved this far, m
    migration_memory_s: float = 10.0  # migrations older than this (in twin time) are forgotten, s
    link_timeout_s: float = 5.0  # an offloading link not renewed for this long is dropped, s
    link_match_m: float = 5.0  # a site's decision is drawn on the nearest drawn track within this distance, m
    warning_timeout_s: float = 3.0  # a warning not renewed for this long (no cleared message seen) is dropped, s


class SceneBuilder:
    """Accumulates twin messages into a :class:`TwinScene` (call :meth:`scene` for the current picture).

    Times are in seconds. ``stamp`` is the message's own stamp (twin time: sim time under replay), used for
    the trails; ``received`` is when the message arrived (wall clock live, the log time in a recording),
    used to age links and migrations, because the nodes of a stack need not share a clock (a node without
    use_sim_time stamps wall time while the twin runs on sim time). Without ``received`` the stamp serves
    for both. Methods take the message content, not ROS messages; see :mod:`mobility_twin.viz.live`.
    """

    def __init__(self, config: BuilderConfig = BuilderConfig()) -> None:
        self.config = config
        self.layout: Layout | None = None
        self.layout_stamp: float | None = None  # the layout message's stamp (the scenario start under replay)
        self.tracks: TrackView | None = None
        self.ground_truth: TrackView | None = None
        self.signals: list[SignalView] = []
        self.servers: dict[str, ServerView] = {}
        self.links: dict[tuple[str, str], tuple[int, str, float]] = {}  # (site, vehicle) -> (track, server, time)
        self.local_tracks: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # site -> (ids, (N, 2) xy) of its twin
        self.migrations: deque[tuple[float, str, str, str]] = deque()  # (stamp, twin, from, to)
        self.stale: set[str] = set()
        self.vehicle_tracks: dict[str, int] = {}  # vehicle id -> track id, from the newest tracks
        self.routes: dict[str, RouteView] = {}  # CAV -> its guided route
        self.warnings: dict[str, tuple[WarningView, float]] = {}  # warning id -> (view, when renewed)
        self._trails: dict[int, deque[tuple[float, float, float]]] = {}
        self.messages = 0
        self.now = 0.0

    # ---------------------------------------------------------------------------------- input
    def on_layout(self, layout: Layout, stamp: float | None = None, received: float | None = None) -> None:
        """The infrastructure (the twin model's layout, as the latched Layout message carries it); ``stamp``
        is the message's stamp: the scenario start when the simulator publishes it (the title counts the
        time from there), the publication time when a site's layout node does."""
        if not isinstance(layout, Layout):
            raise TypeError(f"on_layout takes a mobility_twin_core.Layout, not {type(layout).__name__}")
        self.layout = layout
        self.layout_stamp = float(stamp) if stamp is not None and stamp > 0 else None
        self.messages += 1
        if received is not None:
            self.now = max(self.now, received)

    def on_tracks(self, stamp: float, ids, xy, v, yaw, dims, age=None, sources=None, vehicle_ids=None,
                  received: float | None = None) -> None:
        """The twin's tracks at ``stamp`` (replaces the previous set; extends the trails)."""
        view = track_view(stamp, ids, xy, v, yaw, dims, age, sources)
        self._tick(view.stamp, received)
        self.tracks = view
        horizon = view.stamp - self.config.trail_s
        alive = set(view.ids.tolist())
        for tid in [t for t in self._trails if t not in alive]:
            del self._trails[tid]
        for tid, (x, y) in zip(view.ids.tolist(), view.xy.tolist(), strict=True):
            trail = self._trails.setdefault(tid, deque(maxlen=self.config.trail_points))
            if trail and trail[-1][0] > view.stamp:  # time went backwards (replay restarted): start again
                trail.clear()
            if not trail or math.hypot(x - trail[-1][1], y - trail[-1][2]) >= self.config.trail_min_step_m:
                trail.append((view.stamp, x, y))
            while trail and trail[0][0] < horizon:
                trail.popleft()
        self.vehicle_tracks = {} if vehicle_ids is None else {
            vid: int(t) for vid, t in zip(vehicle_ids, view.ids.tolist(), strict=True) if vid}

    def on_ground_truth(self, stamp: float, ids, xy, v, yaw, dims, received: float | None = None) -> None:
        self.ground_truth = track_view(stamp, ids, xy, v, yaw, dims)
        self._tick(float(stamp), received)

    def on_signals(self, stamp: float, signals: list[SignalView], received: float | None = None) -> None:
        """The traffic signals (SignalStateArray of /infrastructure/signals): the newest replace the last."""
        self._tick(stamp, received)
        self.signals = list(signals)

    def on_route(self, stamp: float, vehicle: str, xy, received: float | None = None) -> None:
        """A CAV's new route (``xy`` (K, 2) map); an empty ``xy`` ends its guidance (arrived, left)."""
        self._tick(float(stamp), received)
        xy = np.asarray(xy, dtype=float).reshape(-1, 2)
        if len(xy) >= 2:
            self.routes[vehicle] = RouteView(vehicle, xy)
        else:
            self.routes.pop(vehicle, None)

    def on_warnings(self, stamp: float, warnings: list[WarningView], cleared: list[str] = (),
                    received: float | None = None) -> None:
        """One collision-warning cycle: the warnings new or ongoing, and the ids of those cleared."""
        at = self._tick(float(stamp), received)
        for w in warnings:
            self.warnings[w.warning_id] = (w, at)
        for wid in cleared:
            self.warnings.pop(wid, None)

    def on_servers(self, stamp: float, servers: list[ServerView], received: float | None = None) -> None:
        """The twins of the edge servers (replaces those with the same id)."""
        self._tick(float(stamp), received)
        for s in servers:
            self.servers[s.server_id] = s

    def on_local_tracks(self, site: str, stamp: float, ids, xy, received: float | None = None) -> None:
        """The tracks of a site's local twin (only used to place that site's offloading decisions)."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        self.local_tracks[site] = (ids, np.asarray(xy, dtype=float).reshape(len(ids), 2))
        self._tick(float(stamp), received)

    def on_decisions(self, stamp: float, decisions: list[tuple[str, int, str]], received: float | None = None,
                     site: str = "") -> None:
        """One offloading slot, (vehicle id, track id or 0, serving server id) per vehicle; it replaces the
        previous slot of the same ``site``.

        ``site`` "" means the decisions were made on the drawn twin (their track ids are its ids); a site id
        means they were made on that site's local twin: the vehicle is then found among the drawn tracks by
        its vehicle id (CAVs, V2X) or else by the position of its local track (see :meth:`on_local_tracks`).
        """
        at = self._tick(float(stamp), received)
        self.links = {key: value for key, value in self.links.items() if key[0] != site}
        for vehicle, track, server in decisions:
            self.links[(site, vehicle)] = (int(track), server, at)

    def on_migration(self, stamp: float, twin_id: str, from_host: str, to_host: str,
                     received: float | None = None) -> None:
        """A twin moved from one host to another ("" from: first placement, not drawn as a move)."""
        at = self._tick(float(stamp), received)
        if from_host and to_host and from_host != to_host:
            self.migrations.append((at, twin_id, from_host, to_host))

    def on_state(self, stamp: float, stale: dict[str, bool], received: float | None = None) -> None:
        """Entity twins' staleness (entity id -> stale) from a TwinStateArray."""
        self._tick(float(stamp), received)
        for entity, is_stale in stale.items():
            if is_stale:
                self.stale.add(entity)
            else:
                self.stale.discard(entity)

    def _resolve_links(self) -> list[tuple[int, str]]:
        """(drawn track id, server id) of every current decision whose vehicle is among the drawn tracks."""
        tracks = self.tracks
        if tracks is None or not len(tracks) or not self.links:
            return []
        alive = set(tracks.ids.tolist())
        links, by_position = [], {}
        for (site, vehicle), (track, server, _) in self.links.items():
            drawn = self.vehicle_tracks.get(vehicle)
            if drawn is None and not site and track in alive:
                drawn = track
            if drawn is not None and drawn in alive:
                links.append((drawn, server))
            elif site in self.local_tracks:
                by_position.setdefault(site, []).append((track, server))
        for site, wanted in by_position.items():
            ids, xy = self.local_tracks[site]
            index = {int(t): k for k, t in enumerate(ids.tolist())}
            rows = [(index[t], server) for t, server in wanted if t in index]
            if not rows:
                continue
            local = xy[[k for k, _ in rows]]
            d = np.hypot(local[:, None, 0] - tracks.xy[None, :, 0], local[:, None, 1] - tracks.xy[None, :, 1])
            nearest = np.argmin(d, axis=1)
            for (_, server), j, dist in zip(rows, nearest, d[np.arange(len(rows)), nearest], strict=True):
                if dist <= self.config.link_match_m:
                    links.append((int(tracks.ids[j]), server))
        return links

    def _tick(self, stamp: float, received: float | None) -> float:
        """Count the message and advance the clock that ages links and migrations; returns its time on it."""
        self.messages += 1
        at = stamp if received is None else float(received)
        self.now = max(self.now, at)
        return at

    # ---------------------------------------------------------------------------------- output
    def scene(self, now: float | None = None, title: str = "") -> TwinScene:
        """The picture at ``now`` (default: the newest time seen; see the class doc for which clock)."""
        now = self.now if now is None else now
        cfg = self.config
        while self.migrations and now - self.migrations[0][0] > cfg.migration_memory_s:
            self.migrations.popleft()
        for key in [k for k, (_, _, at) in self.links.items() if now - at > cfg.link_timeout_s]:
            del self.links[key]
        links = self._resolve_links()
        for key in [k for k, (_, at) in self.warnings.items() if now - at > cfg.warning_timeout_s]:
            del self.warnings[key]
        trails = {tid: np.array([(x, y) for _, x, y in trail]) for tid, trail in self._trails.items() if len(trail) > 1}
        return TwinScene(
            layout=self.layout, layout_stamp=self.layout_stamp, tracks=self.tracks, trails=trails,
            servers=sorted(self.servers.values(), key=lambda s: s.server_id), links=links,
            migrations=[(twin, a, b) for _, twin, a, b in self.migrations],
            migration_age_s=[max(0.0, now - t) for t, *_ in self.migrations],
            ground_truth=self.ground_truth, title=title, stale=set(self.stale), signals=list(self.signals),
            routes=list(self.routes.values()), warnings=self._resolve_warnings(),
        )

    def _resolve_warnings(self) -> list[WarningView]:
        """The warnings in force, each with its parties' positions among the drawn tracks (by vehicle id)."""
        tracks = self.tracks
        index = {} if tracks is None else {int(t): k for k, t in enumerate(tracks.ids.tolist())}
        out = []
        for w, _ in self.warnings.values():
            rows = [index.get(self.vehicle_tracks.get(v, -1)) for v in w.vehicles if v]
            parties = [(float(tracks.xy[k, 0]), float(tracks.xy[k, 1])) for k in rows if k is not None]
            out.append(replace(w, parties=parties))
        return out

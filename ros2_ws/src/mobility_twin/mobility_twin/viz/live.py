"""Feed a :class:`SceneBuilder` from the live topics of the stack (used by twin_viz and `mtwin snapshot --live`).

The ``*_args`` functions turn one message into the arguments of a builder method and need no running
graph; :class:`LiveScene` creates the subscriptions on a node the caller owns and spins.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mobility_twin.ros import topics
from mobility_twin.ros.cdr import CdrError, TrackTable, decode_tracks
from mobility_twin.ros.convert import from_time
from mobility_twin.ros.layout_msg import layout_from_msg
from mobility_twin_core import LayoutError

from .builder import SceneBuilder
from .scene import ServerView, SignalView, WarningView


def track_args(table: TrackTable) -> dict:
    """Keyword arguments of :meth:`SceneBuilder.on_tracks` for a decoded TrackedObjectArray."""
    rec = table.records
    return {
        "stamp": table.stamp, "ids": rec["track_id"].astype(np.int64),
        "xy": np.stack([rec["px"], rec["py"]], axis=1), "v": np.stack([rec["vx"], rec["vy"]], axis=1),
        "yaw": 2.0 * np.arctan2(rec["qz"], rec["qw"]),
        "dims": np.stack([rec["length"], rec["width"], rec["height"]], axis=1),
        "age": rec["age"].astype(float), "sources": table.sources, "vehicle_ids": table.vehicle_id,
    }


def server_views(msg) -> list[ServerView]:
    """The ServerViews of an EdgeServerStateArray."""
    return [ServerView(s.server_id, float(s.position.x), float(s.position.y), float(s.coverage_radius),
                       float(min(max(s.load, 0.0), 1.0)), int(s.vehicles_served)) for s in msg.servers]


def signal_views(msg) -> list[SignalView]:
    """The signals of a SignalStateArray."""
    return [SignalView(s.signal_id, s.position.x, s.position.y, s.state) for s in msg.signals]


def warning_args(msg) -> tuple[list[WarningView], list[str]]:
    """(warnings new or ongoing, ids of the cleared) of a CollisionWarningArray (one view per pair)."""
    from mobility_twin_msgs.msg import CollisionWarning

    views, cleared = {}, []
    for w in msg.warnings:
        if w.state == CollisionWarning.STATE_CLEARED:
            cleared.append(w.warning_id)
        elif w.warning_id not in views:
            views[w.warning_id] = WarningView(w.warning_id, (float(w.conflict_point.x), float(w.conflict_point.y)),
                                              float(w.time_to_conflict), float(w.probability),
                                              (w.vehicle_id, w.other_vehicle_id))
    return list(views.values()), cleared


def route_xy(graph, edges) -> np.ndarray:
    """(K, 2) centre line in map of a route's roads (``graph``: a RoadGraph in the map frame); roads the
    map does not have are left out."""
    lanes = [graph.shapes[graph.index[e]] for e in edges if e in graph.index]
    parts = [shape[len(shape) // 2] for shape in lanes]  # each road's middle lane
    return np.concatenate(parts) if parts else np.zeros((0, 2))


def route_update(roads, msg) -> np.ndarray | None:
    """The route a RouteGuidanceStatus draws for its CAV (``roads``: a RoadGraph in map): the roads sent
    (routed, rerouted), an empty line when the guidance ended (arrived, left, unreachable, a bad request),
    None when it changes nothing."""
    from mobility_twin_msgs.msg import RouteGuidanceStatus as G

    if msg.status in (G.STATUS_ROUTED, G.STATUS_REROUTED) and msg.edges:
        return route_xy(roads, msg.edges)
    if msg.status in (G.STATUS_ARRIVED, G.STATUS_VEHICLE_LEFT, G.STATUS_UNREACHABLE, G.STATUS_UNKNOWN_EDGE,
                      G.STATUS_INVALID):
        return np.zeros((0, 2))
    return None


def decision_args(msg) -> list[tuple[str, int, str]]:
    """(vehicle id, track id, serving server id) per decision of an OffloadDecisionArray."""
    return [(d.vehicle_id or f"track_{d.track_id}", int(d.track_id), d.server_id) for d in msg.decisions]


def stale_args(msg) -> dict[str, bool]:
    """Entity id -> stale of a TwinStateArray."""
    return {e.entity_id: bool(e.stale) for e in msg.entities}


@dataclass(frozen=True)
class LiveTopics:
    objects: str = topics.GLOBAL_OBJECTS
    servers: str = topics.GLOBAL_EDGE_SERVERS
    state: str = topics.GLOBAL_STATE
    decisions: str = topics.OFFLOAD_DECISIONS
    migrations: str = topics.MIGRATIONS
    layout: str = topics.LAYOUT  # mobility_twin_msgs/Layout, latched
    signals: str = topics.SIGNALS  # SignalStateArray of a SUMO world ("" = do not subscribe)
    ground_truth: str = ""  # "" = do not subscribe (topics.GROUND_TRUTH to draw the simulator's truth)
    guidance: str = topics.GUIDANCE_STATUS  # RouteGuidanceStatus: the CAVs' routes (drawn with ``network``)
    warnings: str = topics.COLLISION_WARNINGS  # CollisionWarningArray of the collision warning ("" = none)
    network: str = ""  # the road network the routes' roads are drawn on ('' = routes not drawn)
    site_decisions: bool = True  # also the per-site offloading decisions (edge role) of the layout's sites
    local_period_s: float = 0.2  # with site_decisions: use a site's local tracks at most this often, s


class LiveScene:
    """Subscriptions on ``node`` that feed ``builder``; bad messages are counted and logged, never raised."""

    def __init__(self, node, builder: SceneBuilder, names: LiveTopics = LiveTopics(),
                 on_update: Callable[[], None] | None = None) -> None:
        from mobility_twin.ros.qos import EVENTS, LATCHED, TWIN_STATE
        from mobility_twin_msgs.msg import (
            CollisionWarningArray,
            EdgeServerStateArray,
            MigrationEvent,
            OffloadDecisionArray,
            RouteGuidanceStatus,
            SignalStateArray,
            TrackedObjectArray,
            TwinStateArray,
        )
        from mobility_twin_msgs.msg import Layout as LayoutMsg

        self.node, self.builder, self.names = node, builder, names
        self.sites: set[str] = set()
        self.local_fed: dict[str, float] = {}
        self.bad_messages = 0
        self.on_update = on_update or (lambda: None)
        node.create_subscription(LayoutMsg, names.layout, self._on_layout, LATCHED)
        node.create_subscription(TrackedObjectArray, names.objects, self._on_tracks, TWIN_STATE, raw=True)
        node.create_subscription(EdgeServerStateArray, names.servers, self._on_servers, TWIN_STATE)
        node.create_subscription(TwinStateArray, names.state, self._on_state, TWIN_STATE)
        node.create_subscription(OffloadDecisionArray, names.decisions, self._on_decisions, EVENTS)
        node.create_subscription(MigrationEvent, names.migrations, self._on_migration, EVENTS)
        if names.ground_truth:
            node.create_subscription(TrackedObjectArray, names.ground_truth, self._on_ground_truth, TWIN_STATE,
                                     raw=True)
        if names.signals:
            node.create_subscription(SignalStateArray, names.signals, self._on_signals, TWIN_STATE)
        if names.warnings:
            node.create_subscription(CollisionWarningArray, names.warnings, self._on_warnings, EVENTS)
        self.roads = None
        if names.guidance and names.network:  # a ConfigurationError naming the network when it cannot be read
            from mobility_twin.ros.road_network import load_map_roads

            self.roads = load_map_roads(names.network, "the 'network' parameter")
            node.create_subscription(RouteGuidanceStatus, names.guidance, self._on_guidance, EVENTS)

    def _bad(self, what: str, err: Exception) -> None:
        self.bad_messages += 1
        self.node.get_logger().warning(f"ignored a bad {what}: {err}", throttle_duration_sec=5.0)

    def _on_layout(self, msg) -> None:
        try:
            layout = layout_from_msg(msg)
        except LayoutError as err:
            self._bad(f"layout on {self.names.layout}", err)
            return
        self.builder.on_layout(layout, stamp=from_time(msg.header.stamp), received=time.time())
        if self.names.site_decisions:
            for site in layout.sites:
                self._subscribe_site(site.site_id)
        self.on_update()

    def _subscribe_site(self, site: str) -> None:
        """A site's offloading decisions, and its local tracks to place them (their ids are local ids)."""
        from mobility_twin.ros.qos import EVENTS, TWIN_STATE
        from mobility_twin_msgs.msg import OffloadDecisionArray, TrackedObjectArray

        if site in self.sites:
            return
        self.sites.add(site)
        self.node.create_subscription(OffloadDecisionArray, topics.offload_decisions(site),
                                      lambda msg: self._on_decisions(msg, site), EVENTS)
        self.node.create_subscription(TrackedObjectArray, topics.local_objects(site),
                                      lambda data: self._on_local_tracks(data, site), TWIN_STATE, raw=True)

    def _on_local_tracks(self, data: bytes, site: str) -> None:
        now = time.monotonic()
        if now - self.local_fed.get(site, -1e9) < self.names.local_period_s:
            return
        self.local_fed[site] = now
        try:
            table = decode_tracks(data)
        except CdrError as err:
            self._bad(f"TrackedObjectArray of {site}", err)
            return
        rec = table.records
        self.builder.on_local_tracks(site, table.stamp, rec["track_id"], np.stack([rec["px"], rec["py"]], axis=1),
                                     received=time.time())

    def _on_tracks(self, data: bytes) -> None:
        try:
            self.builder.on_tracks(**track_args(decode_tracks(data)), received=time.time())
        except (CdrError, ValueError) as err:
            self._bad("TrackedObjectArray", err)
            return
        self.on_update()

    def _on_ground_truth(self, data: bytes) -> None:
        try:
            args = track_args(decode_tracks(data))
        except (CdrError, ValueError) as err:
            self._bad("ground truth", err)
            return
        self.builder.on_ground_truth(args["stamp"], args["ids"], args["xy"], args["v"], args["yaw"], args["dims"],
                                     received=time.time())

    def _on_signals(self, msg) -> None:
        self.builder.on_signals(from_time(msg.header.stamp), signal_views(msg), received=time.time())

    def _on_warnings(self, msg) -> None:
        views, cleared = warning_args(msg)
        self.builder.on_warnings(from_time(msg.header.stamp), views, cleared, received=time.time())

    def _on_guidance(self, msg) -> None:
        xy = route_update(self.roads, msg)
        if xy is not None:
            self.builder.on_route(from_time(msg.header.stamp), msg.vehicle_id, xy, received=time.time())

    def _on_servers(self, msg) -> None:
        self.builder.on_servers(from_time(msg.header.stamp), server_views(msg), received=time.time())

    def _on_state(self, msg) -> None:
        self.builder.on_state(from_time(msg.header.stamp), stale_args(msg), received=time.time())

    def _on_decisions(self, msg, site: str = "") -> None:
        self.builder.on_decisions(from_time(msg.header.stamp), decision_args(msg), received=time.time(), site=site)

    def _on_migration(self, msg) -> None:
        self.builder.on_migration(from_time(msg.header.stamp), msg.twin_id, msg.from_host, msg.to_host,
                                  received=time.time())

"""Feed a :class:`SceneBuilder` from an MCAP recording (`mtwin snapshot --recording`).

The same topics as the live subscriptions (:class:`mobility_twin.viz.live.LiveTopics`; the guided routes
with its ``network``, from every guidance decision recorded up to the moment drawn) and the same
builder calls, through the same message helpers of :mod:`mobility_twin.viz.live`; the arrival time of a
message is its log time in the recording, so links and migrations age as they did live. Only the messages
logged in a window are fed (the trails cover the window), plus the layout, whenever it was recorded (a
recording older than the Layout message gives its ``/sim/world`` JSON instead).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mobility_twin.recording import Recording, header_stamp_ns
from mobility_twin.ros import topics
from mobility_twin.ros.cdr import CdrError, decode_tracks
from mobility_twin.ros.convert import from_time

from .builder import SceneBuilder
from .live import (
    LiveTopics,
    decision_args,
    route_update,
    server_views,
    signal_views,
    stale_args,
    track_args,
    warning_args,
)


def feed_from_recording(builder: SceneBuilder, path: str | Path, names: LiveTopics = LiveTopics(), *,
                        at_s: float | None = None, window_s: float = 20.0) -> int:
    """Feed ``builder`` the twin messages of the recording at ``path`` logged in the ``window_s`` seconds up
    to ``at_s`` seconds into the recording (default: its end). Returns the number of bad messages skipped."""
    from rclpy.serialization import deserialize_message

    from mobility_twin.evaluation.decoding import recorded_layout
    from mobility_twin_msgs import msg as mt

    bad = 0
    with Recording(path) as rec:
        layout = recorded_layout(rec, names.layout)  # older recordings: their /sim/world JSON
        layout_msg = rec.first(names.layout)
        stamp_ns = header_stamp_ns(layout_msg.data) if layout_msg is not None else None
        end_ns = rec.end_ns if at_s is None else rec.start_ns + round(at_s * 1e9)
        start_ns = max(rec.start_ns, end_ns - round(window_s * 1e9))
        builder.on_layout(layout, stamp=None if stamp_ns is None else stamp_ns / 1e9, received=start_ns * 1e-9)
        sites = [s.site_id for s in layout.sites] if names.site_decisions else []
        local = {topics.local_objects(s): s for s in sites}
        site_decisions = {topics.offload_decisions(s): s for s in sites}
        messages = {names.servers: mt.EdgeServerStateArray, names.state: mt.TwinStateArray,
                    names.decisions: mt.OffloadDecisionArray, names.migrations: mt.MigrationEvent,
                    **dict.fromkeys(site_decisions, mt.OffloadDecisionArray)}
        if names.signals:
            messages[names.signals] = mt.SignalStateArray
        if names.warnings:
            messages[names.warnings] = mt.CollisionWarningArray
        if names.guidance and names.network:  # a route stays drawn from its decision on: read them all
            from mobility_twin.ros.road_network import load_map_roads

            roads = load_map_roads(names.network, "--network")
            for msg in rec.messages({names.guidance}, start_ns=rec.start_ns, end_ns=end_ns + 1):
                try:
                    m = deserialize_message(msg.data, mt.RouteGuidanceStatus)
                    xy = route_update(roads, m)
                except (ValueError, TypeError, RuntimeError):
                    bad += 1
                    continue
                if xy is not None:
                    builder.on_route(from_time(m.header.stamp), m.vehicle_id, xy, received=msg.log_time_ns * 1e-9)
        wanted = {names.objects, names.ground_truth, *local, *messages} - {""}
        local_fed: dict[str, float] = {}
        for msg in rec.messages(wanted, start_ns=start_ns, end_ns=end_ns + 1):
            received = msg.log_time_ns * 1e-9
            try:
                if msg.topic == names.objects:
                    builder.on_tracks(**track_args(decode_tracks(msg.data)), received=received)
                elif msg.topic == names.ground_truth:
                    a = track_args(decode_tracks(msg.data))
                    builder.on_ground_truth(a["stamp"], a["ids"], a["xy"], a["v"], a["yaw"], a["dims"],
                                            received=received)
                elif msg.topic in local:
                    site = local[msg.topic]
                    if received - local_fed.get(site, -1e18) < names.local_period_s:
                        continue
                    local_fed[site] = received
                    table = decode_tracks(msg.data)
                    builder.on_local_tracks(site, table.stamp, table.records["track_id"],
                                            np.stack([table.records["px"], table.records["py"]], axis=1),
                                            received=received)
                else:
                    m = deserialize_message(msg.data, messages[msg.topic])
                    stamp = from_time(m.header.stamp)
                    if msg.topic == names.servers:
                        builder.on_servers(stamp, server_views(m), received=received)
                    elif msg.topic == names.state:
                        builder.on_state(stamp, stale_args(m), received=received)
                    elif msg.topic == names.migrations:
                        builder.on_migration(stamp, m.twin_id, m.from_host, m.to_host, received=received)
                    elif msg.topic == names.signals:
                        builder.on_signals(stamp, signal_views(m), received=received)
                    elif msg.topic == names.warnings:
                        builder.on_warnings(stamp, *warning_args(m), received=received)
                    else:
                        builder.on_decisions(stamp, decision_args(m), received=received,
                                             site=site_decisions.get(msg.topic, ""))
            except (CdrError, ValueError, TypeError, RuntimeError):  # RuntimeError: rclpy's RMWError
                bad += 1
    return bad

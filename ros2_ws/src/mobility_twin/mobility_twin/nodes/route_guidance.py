"""route_guidance (cloud): fastest routes for the CAVs from the traffic the global twin sees (issue 18).

CAVs ask for a route on ``requests_topic`` (``RouteRequest``: vehicle, destination road, optionally the
road it is on). Every ``cycle_s`` the node

* map-matches the twin's vehicles (``objects_topic``, the global twin's ``TrackedObjectArray``) to the road
  network's edges by position and heading and feeds their speeds to the traffic-state estimator
  (:class:`mobility_twin.guidance.TrafficStateEstimator`: per road, a mean over ``horizon_s``, at least one
  signal cycle, free flow where unobserved);
* re-checks the guided CAVs that are due (each every ``reroute_period_s``, staggered, and at once when a
  road on their remaining route changed) with :class:`mobility_twin.guidance.RouteGuidance` (fastest route
  on the estimate plus the load the node itself assigned; a new route only for a gain of ``min_gain_rel``
  and ``min_gain_s``);
* sends each new route as a ``RouteCommand`` (edges, ``command_validity_s``) on ``/cav/<id>/route_command``
  and reports every decision it acts on, or cannot make, as a ``RouteGuidanceStatus`` on ``status_topic``.

The CAV's answers (``/cav/<id>/route_command/status``) tell it the CAV's road; a CAV that answers
``unknown_vehicle`` or whose track is gone for ``vehicle_timeout_s`` has left (status ``vehicle_left``); a
refused command is reported (``refused``) and the CAV routed again from its road at the next cycle. With
twin data older than ``stale_s`` nothing is sent (``stale_twin``). A request for a road the network does not
have, or that no open road leads to, is answered (``unknown_edge``, ``unreachable``) and never acted on.

The ROS-free algorithms live in :mod:`mobility_twin.guidance`; this node is the glue.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass

import numpy as np
from rclpy.node import Node
from std_msgs.msg import Header

from mobility_twin.guidance.estimator import EstimatorConfig
from mobility_twin.guidance.router import GuidanceConfig
from mobility_twin.ros import topics
from mobility_twin.ros.cdr import CdrError, decode_tracks
from mobility_twin.ros.entry import ConfigurationError, run_node
from mobility_twin.ros.guard import guarded
from mobility_twin.ros.params import declare_config, field
from mobility_twin.ros.qos import EVENTS, TWIN_STATE
from mobility_twin_msgs.msg import (
    RouteCommand,
    RouteCommandStatus,
    RouteGuidanceStatus,
    RouteRequest,
    TrackedObjectArray,
)

ROUTE_REQUESTS = topics.ROUTE_REQUESTS
GUIDANCE_STATUS = topics.GUIDANCE_STATUS
G = RouteGuidanceStatus
_STATUS = {"routed": G.STATUS_ROUTED, "rerouted": G.STATUS_REROUTED, "unreachable": G.STATUS_UNREACHABLE,
           "unknown_edge": G.STATUS_UNKNOWN_EDGE, "unknown_vehicle": G.STATUS_UNKNOWN_VEHICLE,
           "stale_twin": G.STATUS_STALE_TWIN, "arrived": G.STATUS_ARRIVED}


@dataclass(frozen=True)
class RouteGuidanceConfig:
    CONFIG_FILE = "config/route_guidance.yaml"

    network: str = field("beijing_cbd", "road network: beijing_cbd, real_streets or a .net.xml path (its frame to "
                                        "map is the network's own)")
    objects_topic: str = field(topics.GLOBAL_OBJECTS, "TrackedObjectArray with the twin's vehicles (map frame)")
    requests_topic: str = field(ROUTE_REQUESTS, "where CAVs send RouteRequest")
    status_topic: str = field(GUIDANCE_STATUS, "where RouteGuidanceStatus goes")
    cycle_s: float = field(1.0, "seconds between two guidance cycles (estimate update + due re-checks)",
                           low=0.05, high=600.0)
    reroute_period_s: float = field(GuidanceConfig.period_s,
                                    "each guided CAV's route is re-checked this often (staggered)",
                                    low=1.0, high=86400.0)
    horizon_s: float = field(EstimatorConfig.horizon_s,
                             "the estimate's averaging window, >= one signal cycle (s)", low=10.0, high=3600.0)
    forecast_s: float = field(EstimatorConfig.forecast_s,
                              "travel times extrapolated this far ahead on their trend over the window before "
                              "(0: the window's mean)", low=0.0, high=3600.0)
    min_gain_rel: float = field(GuidanceConfig.min_gain_rel,
                                "a new route must save this share of the current route's time", low=0.0, high=1.0)
    min_gain_s: float = field(GuidanceConfig.min_gain_s,
                              "... and this many seconds", low=0.0, high=3600.0)
    load_aware: bool = field(GuidanceConfig.load_aware,
                             "count the flows the node itself assigned in the road costs")
    stale_s: float = field(GuidanceConfig.stale_s,
                           "twin data older than this is stale: no route is sent on it (s)", low=0.1, high=3600.0)
    command_validity_s: float = field(5.0, "RouteCommand.validity: a command arriving later is refused (s)",
                                      low=0.0, high=3600.0)
    vehicle_timeout_s: float = field(10.0, "a guided CAV without a track or answer for this long has left (s)",
                                     low=0.1, high=86400.0)
    match_distance_m: float = field(12.0, "a track farther than this from every road in its direction is not "
                                          "matched (m)", low=1.0, high=100.0)
    log_period_s: float = field(10.0, "seconds between summary log lines", low=0.1, high=86400.0)


class RouteGuidanceNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("route_guidance", **kwargs)
        self.config = cfg = declare_config(self, RouteGuidanceConfig)
        self.counts: Counter = Counter()
        from mobility_twin.guidance import EdgeMatcher, RoadGraph, RouteGuidance, TrafficStateEstimator
        from mobility_twin.ros.road_network import load_map_network

        network = load_map_network(cfg.network, cfg.CONFIG_FILE)
        self.frame = network.frame
        self.graph = RoadGraph.from_net_file(network.net_file)
        self.matcher = EdgeMatcher(self.graph, max_m=cfg.match_distance_m)
        try:
            self.guidance = RouteGuidance(
                TrafficStateEstimator(self.graph, EstimatorConfig(horizon_s=cfg.horizon_s, forecast_s=cfg.forecast_s)),
                GuidanceConfig(period_s=cfg.reroute_period_s, min_gain_rel=cfg.min_gain_rel, min_gain_s=cfg.min_gain_s,
                               stale_s=cfg.stale_s, load_aware=cfg.load_aware))
        except ValueError as err:
            raise ConfigurationError(f"route_guidance: {err} ({cfg.CONFIG_FILE})") from None
        self.requests: dict[str, str] = {}  # CAV -> its request id
        self.roads: dict[str, tuple[str, float]] = {}  # CAV -> (road, when) from its answers or its track
        self.seen: dict[str, float] = {}  # CAV -> when its track or answer was last seen
        self.cmd_pub: dict[str, object] = {}
        self.commands = 0
        self._objects: bytes | None = None  # the newest TrackedObjectArray, raw CDR
        self.status_pub = self.create_publisher(RouteGuidanceStatus, cfg.status_topic, EVENTS)
        # raw CDR, decoded by the numpy codec when a cycle needs it: 10 Hz of a few hundred tracks as rclpy
        # objects would cost the node more than its decisions
        self.create_subscription(TrackedObjectArray, cfg.objects_topic, guarded(self, self.counts, "objects")(self._on_objects),
                                 TWIN_STATE, raw=True)
        self.create_subscription(RouteRequest, cfg.requests_topic, guarded(self, self.counts, "request")(self._on_request), EVENTS)
        self.timer = self.create_timer(cfg.cycle_s, guarded(self, self.counts, "cycle")(self.on_cycle))
        self.last_log = time.monotonic()
        self.get_logger().info(f"network {network.name} ({len(self.graph)} roads): {cfg.objects_topic} + "
                               f"{cfg.requests_topic} -> /cav/<id>/route_command, {cfg.status_topic}")

    def now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    # ------------------------------------------------------------------------------------------ inputs
    def _on_objects(self, data: bytes) -> None:
        self._objects = data

    def _on_request(self, msg: RouteRequest) -> None:
        now = self.now_s()
        cav = msg.vehicle_id
        if not topics.safe_id(cav):
            self._status(msg.request_id, cav, G.STATUS_INVALID, f"bad vehicle_id {cav!r}")
            return
        if msg.cancel:
            self.guidance.leave(cav)
            self.requests.pop(cav, None)
            self._status(msg.request_id, cav, G.STATUS_ARRIVED, "cancelled by the CAV")
            return
        if not msg.destination_edge:
            self._status(msg.request_id, cav, G.STATUS_INVALID, "no destination_edge")
            return
        self._ingest(now)
        road = msg.current_edge or self.roads.get(cav, ("", 0.0))[0]
        if not road:
            self._status(msg.request_id, cav, G.STATUS_UNKNOWN_VEHICLE,
                         f"unknown vehicle: {cav} has no track in the twin and the request gives no current_edge")
            return
        self._watch(cav)
        self.requests[cav] = msg.request_id
        self.seen[cav] = now
        self._act(self.guidance.request(cav, road, msg.destination_edge, now))

    def _on_vehicle_status(self, cav: str, msg: RouteCommandStatus) -> None:
        now = self.now_s()
        self.seen[cav] = now
        if msg.road and not msg.road.startswith(":"):
            self.roads[cav] = (msg.road, now)
        if msg.status == RouteCommandStatus.STATUS_UNKNOWN_VEHICLE:
            self._left(cav, f"the CAV answered: {msg.reason}")
        elif msg.status != RouteCommandStatus.STATUS_ACCEPTED and msg.command_id.startswith("guidance-"):
            self.guidance.refused(cav, msg.road)
            self._status(self.requests.get(cav, ""), cav, G.STATUS_REFUSED, msg.reason, command_id=msg.command_id)

    def _watch(self, cav: str) -> None:
        if cav in self.cmd_pub:
            return
        self.cmd_pub[cav] = self.create_publisher(RouteCommand, topics.cav_route_command(cav), EVENTS)
        self.create_subscription(RouteCommandStatus, topics.cav_route_status(cav),
                                 guarded(self, self.counts, "vehicle_status")(
                                     lambda m, c=cav: self._on_vehicle_status(c, m)),
                                 EVENTS)

    # ------------------------------------------------------------------------------------------ the cycle
    def _ingest(self, now: float) -> None:
        """The newest twin state into the estimator (once per message), and the guided CAVs' roads."""
        data, self._objects = self._objects, None
        if data is None:
            return
        try:
            table = decode_tracks(data)
        except CdrError as err:
            self.counts["objects_undecodable"] += 1
            self.get_logger().warning(f"{self.config.objects_topic}: skipped an undecodable message: {err}",
                                      throttle_duration_sec=5.0)
            return
        stamp = table.stamp
        rec = table.records
        if len(rec) == 0:
            self.guidance.estimator.newest_s = max(self.guidance.estimator.newest_s, stamp)
            return
        xy = np.column_stack([rec["px"], rec["py"]]).astype(float)
        v = np.column_stack([rec["vx"], rec["vy"]]).astype(float)
        q = np.column_stack([rec["qz"], rec["qw"]]).astype(float)
        ok = np.isfinite(xy).all(axis=1) & np.isfinite(v).all(axis=1) & np.isfinite(q).all(axis=1)
        sx, sy = self.frame.to_sumo(xy[:, 0], xy[:, 1])
        heading = 2.0 * np.arctan2(q[:, 0], q[:, 1]) - self.frame.rotation  # the box's yaw: stopped cars too
        edges, along = self.matcher.locate(sx, sy, heading)
        edges[~ok] = -1
        self.guidance.estimator.observe(stamp, edges, np.hypot(v[:, 0], v[:, 1]), along)
        self.counts["tracks_unmatched"] += int((edges < 0).sum())
        for i, vehicle in enumerate(table.vehicle_id):
            if vehicle and vehicle in self.requests:
                self.seen[vehicle] = now
                if edges[i] >= 0:
                    self.roads[vehicle] = (self.graph.ids[edges[i]], now)

    def on_cycle(self) -> None:
        now = self.now_s()
        self._ingest(now)
        for cav in list(self.requests):
            if now - self.seen.get(cav, now) > self.config.vehicle_timeout_s:
                self._left(cav, f"no track and no answer for {now - self.seen[cav]:.1f} s")
                continue
            road = self.roads.get(cav)
            if road is not None and self.guidance.update_position(cav, road[0]) == "arrived":
                self._status(self.requests.pop(cav), cav, G.STATUS_ARRIVED, "on its destination road")
        for d in self.guidance.step(now):
            self._act(d)
        self._maybe_log()

    def _act(self, d) -> None:
        self.counts[d.status] += 1
        if d.status == "kept":
            return
        request = self.requests.get(d.vehicle, "")
        if d.status in ("unreachable", "unknown_edge"):
            self.requests.pop(d.vehicle, None)
        command_id = ""
        if d.command:
            self.commands += 1
            command_id = f"guidance-{self.commands}"
            cmd = RouteCommand(header=Header(stamp=self.get_clock().now().to_msg(), frame_id="map"),
                               command_id=command_id, vehicle_id=d.vehicle, edges=list(d.edges),
                               validity=float(self.config.command_validity_s))
            self.cmd_pub[d.vehicle].publish(cmd)
        self._status(request, d.vehicle, _STATUS[d.status], d.reason, command_id=command_id, edges=d.edges,
                     expected=d.expected_s, gain=d.gain_s)

    def _left(self, cav: str, why: str) -> None:
        self.guidance.leave(cav)
        self.roads.pop(cav, None)
        self.seen.pop(cav, None)
        self._status(self.requests.pop(cav, ""), cav, G.STATUS_VEHICLE_LEFT, f"vehicle left: {why}")

    def _status(self, request_id: str, cav: str, status: int, reason: str = "", *, command_id: str = "",
                edges=(), expected: float = math.nan, gain: float = 0.0) -> None:
        if status not in (G.STATUS_ROUTED, G.STATUS_REROUTED, G.STATUS_ARRIVED):
            self.get_logger().warning(f"{cav}: {reason}", throttle_duration_sec=5.0)
        self.status_pub.publish(RouteGuidanceStatus(
            header=Header(stamp=self.get_clock().now().to_msg(), frame_id="map"), request_id=request_id,
            vehicle_id=cav, status=status, reason=reason, command_id=command_id, edges=list(edges),
            expected_travel_time=float(expected), gain=float(gain) if math.isfinite(gain) else 0.0))

    def _maybe_log(self) -> None:
        if time.monotonic() - self.last_log < self.config.log_period_s:
            return
        self.last_log = time.monotonic()
        dec = self.guidance.decide_s[-100:]
        ms = 1000.0 * float(np.median(dec)) if dec else 0.0
        counts = ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items())) or "none"
        self.get_logger().info(f"{len(self.requests)} CAVs guided, {self.commands} commands, decision {ms:.1f} ms/cycle; "
                               f"{counts}")


#: the parameters of each entry point (what `mtwin launch` checks a launch file against before it starts)
ENTRY_CONFIGS = {"main": RouteGuidanceConfig}


def main() -> int:
    return run_node(RouteGuidanceNode)


if __name__ == "__main__":  # python -m mobility_twin.nodes.route_guidance --ros-args ...
    raise SystemExit(main())

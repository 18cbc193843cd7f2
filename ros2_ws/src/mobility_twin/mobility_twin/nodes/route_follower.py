"""route_follower (vehicle): the CAV's end of route guidance, between V2X and the vehicle's drive interface.

Issue 18: "a ``route_follower`` on the vehicle applies it". One per CAV (``cav_id``); it

* takes the commands sent to the vehicle over V2X (``RouteCommand`` on ``/cav/<id>/route_command``: routes
  from the twin's route guidance, speed commands from the collision warning, an operator's), refuses the
  ones the vehicle must not act on (another vehicle's, expired, superseded by a newer one of the same kind,
  with the vehicle's map: an unknown road or a route whose roads do not connect), and passes the rest to the
  drive interface (``/cav/<id>/control/route_command``: on a real vehicle the adapter to its planner; in
  simulation the replay node, which applies it through the co-simulation control between two steps);
* relays the drive interface's answers (``/cav/<id>/control/route_command/status``) to the sender on
  ``/cav/<id>/route_command/status``, and answers ``not_supported`` for a command the drive interface has not
  answered within ``control_timeout_s``: nothing sent to the vehicle goes unanswered;
* turns the vehicle's mission (``RouteRequest`` on ``/cav/<id>/destination``: its destination road) into route
  requests to the guidance (``/guidance/route_requests``), asked again after ``request_retry_s`` (then twice as
  long each time, up to 8x) until the guidance answers (a guidance that starts later, a lost message), and asked anew for every new destination.

A refusal is answered with its status and reason and counted; nothing the input carries stops the node.
The ROS-free logic is :class:`mobility_twin.guidance.follower.RouteFollower`.
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass

from rclpy.node import Node
from std_msgs.msg import Header

from mobility_twin.ros import topics
from mobility_twin.ros.convert import from_time
from mobility_twin.ros.entry import ConfigurationError, run_node
from mobility_twin.ros.guard import Every, count_summary, guarded
from mobility_twin.ros.params import declare_config, field
from mobility_twin.ros.qos import EVENTS
from mobility_twin.ros.route_commands import (
    GUIDANCE_STATUS_NAMES,
    STATUS_NAMES,
    Refusal,
    status_msg,
    world_commands,
)
from mobility_twin_msgs.msg import RouteCommand, RouteCommandStatus, RouteGuidanceStatus, RouteRequest

STATUS_CODES = {name: code for code, name in STATUS_NAMES.items()}


@dataclass(frozen=True)
class RouteFollowerConfig:
    CONFIG_FILE = "config/route_follower.yaml"

    cav_id: str = field("", "the vehicle's id (required): its topics are /cav/<cav_id>/...")
    network: str = field("", "the vehicle's road map ('' = none; a SUMO network, e.g. beijing_cbd): with it, "
                             "commands naming unknown roads or roads that do not connect are refused")
    control_timeout_s: float = field(2.0, "a command the drive interface has not answered in this long is "
                                          "answered not_supported (s)", low=0.05, high=600.0)
    request_retry_s: float = field(5.0, "ask the route guidance again when it has not answered in this long (s; "
                                                "doubling up to 8x)",
                                   low=0.1, high=3600.0)
    silence_s: float = field(120.0, "a guidance silent about the vehicle this long is asked again when the "
                                    "destination repeats (it may have restarted) (s)", low=1.0, high=86400.0)
    road_max_age_s: float = field(5.0, "a route request names the vehicle's road only when it is at most this old "
                                       "(else the guidance finds the vehicle in the twin) (s)", low=0.1, high=3600.0)
    cycle_s: float = field(0.2, "seconds between two checks of the pending commands and requests", low=0.01,
                           high=60.0)
    log_period_s: float = field(10.0, "seconds between summary log lines", low=0.1, high=86400.0)

    def check(self) -> None:
        if not topics.safe_id(self.cav_id):
            raise ValueError(f"parameter 'cav_id' is required (letters, digits, '_'), got {self.cav_id!r}")


class RouteFollowerNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("route_follower", **kwargs)
        self.config = cfg = declare_config(self, RouteFollowerConfig)
        from mobility_twin.guidance.follower import FollowerConfig, RouteFollower

        graph = None
        if cfg.network:
            from mobility_twin.ros.road_network import load_map_roads

            graph = load_map_roads(cfg.network, cfg.CONFIG_FILE)
        try:
            self.follower = RouteFollower(cfg.cav_id, graph, FollowerConfig(
                cfg.control_timeout_s, cfg.request_retry_s, cfg.silence_s, cfg.road_max_age_s))
        except ValueError as err:
            raise ConfigurationError(f"route_follower: {err} ({cfg.CONFIG_FILE})") from None
        cav = cfg.cav_id
        self.counts: Counter = Counter()
        self.sent: dict[str, RouteCommand] = {}  # command id -> the command passed on, until answered
        self.status_pub = self.create_publisher(RouteCommandStatus, topics.cav_route_status(cav), EVENTS)
        self.control_pub = self.create_publisher(RouteCommand, topics.cav_control_command(cav), EVENTS)
        self.request_pub = self.create_publisher(RouteRequest, topics.ROUTE_REQUESTS, EVENTS)
        def guard(what: str):
            return guarded(self, self.counts, what)

        self.create_subscription(RouteCommand, topics.cav_route_command(cav), guard("command")(self._on_command),
                                 EVENTS)
        self.create_subscription(RouteCommandStatus, topics.cav_control_status(cav),
                                 guard("control_status")(self._on_control), EVENTS)
        self.create_subscription(RouteRequest, topics.cav_destination(cav), guard("destination")(self._on_destination),
                                 EVENTS)
        self.create_subscription(RouteGuidanceStatus, topics.GUIDANCE_STATUS, guard("guidance_status")(self._on_guidance),
                                 EVENTS)
        self.timer = self.create_timer(cfg.cycle_s, guard("cycle")(self.on_cycle))
        self.log_every = Every(cfg.log_period_s)
        self.get_logger().info(f"{cav}: {topics.cav_route_command(cav)} -> {topics.cav_control_command(cav)}"
                               f"{' (map ' + cfg.network + ')' if graph is not None else ' (no map)'}; "
                               f"{topics.cav_destination(cav)} -> {topics.ROUTE_REQUESTS}")

    def now_s(self) -> float:
        """The node's clock; when it went back (a simulation restarted), the follower starts afresh."""
        now = self.get_clock().now().nanoseconds * 1e-9
        if not self.follower.tick(now):
            self.sent.clear()
            self.counts["clock_went_back"] += 1
            self.get_logger().warning("the clock went back: pending commands and requests forgotten")
        return now

    # ------------------------------------------------------------------------------------------ commands
    def _on_command(self, msg: RouteCommand) -> None:
        from mobility_twin.guidance.follower import Command

        now = self.now_s()
        refusal = world_commands(msg, self.config.cav_id, now)  # another vehicle's, expired, nothing to do
        if not isinstance(refusal, Refusal):
            command = Command(msg.command_id, from_time(msg.header.stamp), tuple(msg.edges), msg.target_edge,
                              bool(msg.set_speed))
            verdict = self.follower.check(command)
            if verdict is None:
                self.follower.passed_on(command, now)
                self.sent[msg.command_id] = msg
                self.counts["passed_on"] += 1
                self.control_pub.publish(msg)
                return
            refusal = Refusal(STATUS_CODES[verdict[0]], verdict[1])
        self._answer(msg, refusal)

    def _answer(self, msg: RouteCommand, refusal: Refusal) -> None:
        name = STATUS_NAMES.get(refusal.status, str(refusal.status))
        self.counts[f"refused_{name}"] += 1
        self.get_logger().warning(f"command {msg.command_id!r} refused ({name}): {refusal.reason}",
                                  throttle_duration_sec=2.0)
        self.status_pub.publish(status_msg(msg, self.config.cav_id, self.now_s(), refusal, self.follower.route,
                                           self.follower.road))

    def _on_control(self, msg: RouteCommandStatus) -> None:
        if not self.follower.answered(msg.command_id, self.now_s(), msg.road, tuple(msg.route)):
            self.counts["control_status_unknown_command"] += 1  # given up already, or never ours: not relayed
            return
        self.sent.pop(msg.command_id, None)
        self.counts[f"control_{STATUS_NAMES.get(msg.status, msg.status)}"] += 1
        self.status_pub.publish(msg)

    # ------------------------------------------------------------------------------------------ requests
    def _on_destination(self, msg: RouteRequest) -> None:
        if msg.vehicle_id and msg.vehicle_id != self.config.cav_id:
            self.counts["destination_other_vehicle"] += 1
            return
        now = self.now_s()
        refusal = self.follower.set_destination("" if msg.cancel else msg.destination_edge, now)
        if refusal is None:
            self.follower.at_road(msg.current_edge, now)
        if refusal is not None:
            self.counts["destination_unknown_edge"] += 1
            self.get_logger().warning(f"destination refused: {refusal[1]}", throttle_duration_sec=5.0)
            return
        if msg.cancel:
            self.request_pub.publish(RouteRequest(header=Header(stamp=self.get_clock().now().to_msg()),
                                                  request_id=f"{self.config.cav_id}-cancel",
                                                  vehicle_id=self.config.cav_id, cancel=True))
        self.on_cycle()

    def _on_guidance(self, msg: RouteGuidanceStatus) -> None:
        if msg.vehicle_id == self.config.cav_id:
            self.follower.on_guidance(msg.request_id, GUIDANCE_STATUS_NAMES.get(msg.status, ""), self.now_s())

    def on_cycle(self) -> None:
        now = self.now_s()
        for command_id in self.follower.overdue(now):
            msg = self.sent.pop(command_id, None)
            if msg is not None:
                self._answer(msg, Refusal(RouteCommandStatus.STATUS_NOT_SUPPORTED,
                                          f"the drive interface ({topics.cav_control_command(self.config.cav_id)}) "
                                          f"did not answer within {self.config.control_timeout_s:g} s"))
        request_id = self.follower.request_due(now)
        if request_id is not None:
            self.counts["route_requests"] += 1
            road = self.follower.fresh_road(now)
            self.request_pub.publish(RouteRequest(header=Header(stamp=self.get_clock().now().to_msg()),
                                                  request_id=request_id, vehicle_id=self.config.cav_id,
                                                  destination_edge=self.follower.destination, current_edge=road))
        if self.log_every.due():
            self.get_logger().info(f"destination {self.follower.destination or '-'}, road {self.follower.road or '?'}; "
                                   f"counts: {count_summary(self.counts)}")


#: the parameters of each entry point (what `mtwin launch` checks a launch file against before it starts)
ENTRY_CONFIGS = {"main": RouteFollowerConfig}


def main() -> int:
    return run_node(RouteFollowerNode)


if __name__ == "__main__":
    sys.exit(main())

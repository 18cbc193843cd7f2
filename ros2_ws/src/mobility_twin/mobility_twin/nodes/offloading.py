"""offloading: every slot, choose each vehicle's serving edge server from the twins of the edge servers (DITEN).

Subscribes to the vehicles of a twin (``TrackedObjectArray``, default /twin/global/objects) and the
twins of the edge servers (``EdgeServerStateArray``, default /twin/global/edge_servers); every
``slot_s`` it runs :class:`mobility_twin_models.offloading.controller.OffloadingController` (the trained actor-critic
of the shipped checkpoint, or ``nearest_first`` / ``greedy`` / ``drift_plus_penalty``), which keeps
each vehicle's serving server and migration-cost deficit queue, and publishes the slot's
``OffloadDecisionArray`` on /offloading/decisions. Topic names are parameters, so a launch file can
point the node at a local twin.

Nothing the inputs carry stops the node: a slot without fresh inputs is skipped, and bad or unknown
vehicles and servers are skipped; both are counted, logged (throttled) and summarised every
``log_period_s``.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass

from rclpy.node import Node
from std_msgs.msg import Header

from mobility_twin.ros import topics
from mobility_twin.ros.entry import run_node
from mobility_twin.ros.latest import LatestMessage
from mobility_twin.ros.params import declare_config, field
from mobility_twin.ros.qos import EVENTS, TWIN_STATE
from mobility_twin_msgs.msg import (
    EdgeServerStateArray,
    OffloadDecision,
    OffloadDecisionArray,
    TrackedObjectArray,
)


@dataclass(frozen=True)
class OffloadingNodeConfig:
    policy: str = field("actor_critic", "actor_critic | nearest_first | greedy | drift_plus_penalty")
    checkpoint: str = field("", "actor-critic checkpoint ('' = models/checkpoints/offloading_actor_critic.pt)")
    candidates: int = field(5, "N: each vehicle chooses among its N nearest edge servers (checkpoint has 5, 10)")
    slot_s: float = field(1.0, "seconds between two decisions (one slot)")
    budget_rate: float = field(0.2, "beta: long-term limit of the migration rate (eq. 11a)")
    migration_cost: float = field(1.0, "C: cost of one service migration (eq. 3)")
    latency_weight: float = field(10.0, "v: weight of latency (s) against migration cost (eq. 13, 16)")
    objects_topic: str = field(topics.GLOBAL_OBJECTS, "TrackedObjectArray with the vehicles of the twin")
    servers_topic: str = field(topics.GLOBAL_EDGE_SERVERS, "EdgeServerStateArray with the twins of the edge servers")
    decisions_topic: str = field(topics.OFFLOAD_DECISIONS, "where the OffloadDecisionArray of each slot goes")
    vehicle_classes: tuple[int, ...] = field(
        [1, 2, 3, 4], "TrackedObject.object_class values that are vehicles (1 car, 2 truck, 3 bus, 4 motorcycle)")
    objects_timeout_s: float = field(3.0, "skip the slot when the newest vehicles are older than this")
    servers_timeout_s: float = field(5.0, "skip the slot when the newest server twins are older than this")
    vehicle_timeout_s: float = field(10.0, "forget a vehicle's server and deficit queue after this long unseen")
    log_period_s: float = field(10.0, "seconds between summary log lines")


class OffloadingNode(Node):
    def __init__(self) -> None:
        super().__init__("offloading")
        self.config = declare_config(self, OffloadingNodeConfig)
        from mobility_twin_models.offloading.config import MigrationConfig
        from mobility_twin_models.offloading.controller import ControllerConfig, OffloadingController

        cfg = self.config
        migration = MigrationConfig(cost=cfg.migration_cost, budget_rate=cfg.budget_rate,
                                    latency_weight=cfg.latency_weight)
        self.controller = OffloadingController(ControllerConfig(
            policy=cfg.policy, candidates=cfg.candidates, checkpoint=cfg.checkpoint, slot_s=cfg.slot_s,
            vehicle_timeout_s=cfg.vehicle_timeout_s, migration=migration))
        self.vehicle_classes = set(cfg.vehicle_classes)
        self._objects = LatestMessage(TrackedObjectArray)  # deserialised once per slot, not per message
        self.servers: EdgeServerStateArray | None = None
        self.objects_at = self.servers_at = 0.0
        self.counts: Counter = Counter()
        self.slots = self.decisions = self.migrations = 0
        self.create_subscription(TrackedObjectArray, cfg.objects_topic, self.on_objects, TWIN_STATE, raw=True)
        self.create_subscription(EdgeServerStateArray, cfg.servers_topic, self.on_servers, TWIN_STATE)
        self.pub = self.create_publisher(OffloadDecisionArray, cfg.decisions_topic, EVENTS)
        self.timer = self.create_timer(cfg.slot_s, self.on_slot)
        self.last_log = time.monotonic()
        self.get_logger().info(
            f"policy {cfg.policy}, N={cfg.candidates}, slot {cfg.slot_s:g} s, beta {cfg.budget_rate:g}: "
            f"{cfg.objects_topic} + {cfg.servers_topic} -> {cfg.decisions_topic}")

    def now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    @property
    def objects(self) -> TrackedObjectArray | None:
        return self._objects.get()

    def on_objects(self, data: bytes) -> None:
        self._objects.set(data)
        self.objects_at = self.now_s()

    def on_servers(self, msg: EdgeServerStateArray) -> None:
        self.servers, self.servers_at = msg, self.now_s()

    def on_slot(self) -> None:
        from mobility_twin_models.offloading.controller import ServerTwin, Vehicle

        cfg, now = self.config, self.now_s()
        skip = None
        if self.servers is None:
            skip = "no_server_twins_yet"
        elif now - self.servers_at > cfg.servers_timeout_s:
            skip = "server_twins_stale"
        elif self.objects is None:
            skip = "no_vehicles_yet"
        elif now - self.objects_at > cfg.objects_timeout_s:
            skip = "vehicles_stale"
        elif self.objects.header.frame_id and self.servers.header.frame_id and \
                self.objects.header.frame_id != self.servers.header.frame_id:
            skip = "frame_mismatch"
        if skip is not None:
            self.counts[skip] += 1
            self.get_logger().warning(f"slot skipped: {skip}", throttle_duration_sec=10.0)
            self._maybe_log()
            return
        vehicles = []
        for o in self.objects.objects:
            if o.object_class not in self.vehicle_classes:
                self.counts["not_a_vehicle"] += 1
                continue
            vid = o.vehicle_id or f"track_{o.track_id}"
            p = o.pose.pose.position
            vehicles.append(Vehicle(vid, float(p.x), float(p.y), int(o.track_id)))
        servers = [ServerTwin(s.server_id, float(s.position.x), float(s.position.y), float(s.cpu_frequency_estimate),
                              float(s.cpu_frequency_deviation), float(s.coverage_radius))
                   for s in self.servers.servers]
        result = self.controller.decide(now, vehicles, servers)
        for reason, n in result.skipped.items():
            self.counts[reason] += n
            if n and reason not in ("vehicle_expired",):
                self.get_logger().warning(f"{n} skipped this slot: {reason}", throttle_duration_sec=10.0)
        msg = OffloadDecisionArray(header=Header(stamp=self.get_clock().now().to_msg(),
                                                 frame_id=self.servers.header.frame_id or "map"))
        msg.policy = result.policy
        msg.slot_duration = float(cfg.slot_s)
        msg.deficit_queue = float(result.mean_queue)
        msg.migration_budget = float(cfg.budget_rate)
        msg.decisions = [OffloadDecision(
            vehicle_id=d.vehicle_id, track_id=d.track_id, server_id=d.server_id,
            previous_server_id=d.previous_server_id, access_server_id=d.access_server_id, migrated=d.migrated,
            expected_latency=d.expected_latency_s, deadline=d.deadline_s, migration_cost=d.migration_cost)
            for d in result.decisions]
        self.pub.publish(msg)
        self.slots += 1
        self.decisions += len(result.decisions)
        self.migrations += result.migrations
        self._maybe_log()

    def _maybe_log(self) -> None:
        if time.monotonic() - self.last_log < self.config.log_period_s:
            return
        self.last_log = time.monotonic()
        skipped = ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items())) or "none"
        rate = self.migrations / self.decisions if self.decisions else 0.0
        self.get_logger().info(f"{self.slots} slots, {self.decisions} decisions, migration rate {rate:.3f}; "
                               f"skipped: {skipped}")


def main() -> int:
    return run_node(OffloadingNode)

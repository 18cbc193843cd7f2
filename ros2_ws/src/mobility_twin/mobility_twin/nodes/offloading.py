"""offloading: every slot, choose each vehicle's serving edge server from the twins of the edge servers (DITEN).

Reads a twin through the twin-state adapter (:class:`mobility_twin.ros.twin_reader.TwinReader`: vehicles
from ``objects_topic``, edge-server twins from ``servers_topic``, default the global twin); every
``slot_s`` it runs :class:`mobility_twin_models.offloading.controller.OffloadingController` (the trained
actor-critic of the shipped checkpoint, or any policy registered by name), which keeps each vehicle's
serving server and migration-cost deficit queue, and publishes the slot's ``OffloadDecisionArray`` on
``decisions_topic``. Topic names are parameters, so a launch file can point the node at a local twin.
``budget_rate``, ``migration_cost`` and ``latency_weight`` may be changed at run time.

Nothing the inputs carry stops the node: a slot without fresh inputs is skipped, and bad or unknown
vehicles and servers are skipped; both are counted, logged (throttled) and summarised every
``log_period_s``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from rclpy.node import Node

from mobility_twin.ros import topics
from mobility_twin.ros.entry import ConfigurationError, run_node
from mobility_twin.ros.guard import Every, count_summary
from mobility_twin.ros.node_params import TwinInputParams
from mobility_twin.ros.params import bind_dynamic, declare_config, field
from mobility_twin.ros.qos import EVENTS
from mobility_twin_msgs.msg import OffloadDecision, OffloadDecisionArray


@dataclass(frozen=True)
class OffloadingNodeConfig(TwinInputParams):
    CONFIG_FILE = "config/offloading.yaml"

    policy: str = field("actor_critic", "decision policy, registered by name (mobility_twin_models.offloading."
                                        "controller.POLICIES): actor_critic, nearest_first, greedy, drift_plus_penalty")
    checkpoint: str = field("", "actor-critic checkpoint ('' = the shipped offloading_actor_critic.pt)")
    candidates: int = field(5, "N: each vehicle chooses among its N nearest edge servers (checkpoint has 5, 10)",
                            low=1, high=64)
    slot_s: float = field(1.0, "seconds between two decisions (one slot)", low=0.01, high=3600.0)
    budget_rate: float = field(0.2, "beta: long-term limit of the migration rate (eq. 11a)", low=0.0, high=1.0,
                               dynamic=True)
    migration_cost: float = field(1.0, "C: cost of one service migration (eq. 3)", low=0.0, high=1e6, dynamic=True)
    latency_weight: float = field(10.0, "v: weight of latency (s) against migration cost (eq. 13, 16)", low=0.0,
                                  high=1e6, dynamic=True)
    decisions_topic: str = field(topics.OFFLOAD_DECISIONS, "where the OffloadDecisionArray of each slot goes")
    vehicle_timeout_s: float = field(10.0, "forget a vehicle's server and deficit queue after this long unseen (s)",
                                     low=0.0, high=86400.0)


class OffloadingNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("offloading", **kwargs)
        self.config = declare_config(self, OffloadingNodeConfig)
        from mobility_twin_models.offloading.controller import ControllerConfig, OffloadingController

        cfg = self.config
        try:
            self.controller = OffloadingController(ControllerConfig(
                policy=cfg.policy, candidates=cfg.candidates, checkpoint=cfg.checkpoint, slot_s=cfg.slot_s,
                vehicle_timeout_s=cfg.vehicle_timeout_s, migration=self._migration(cfg)))
        except ValueError as err:
            raise ConfigurationError(f"offloading: {err} (parameters policy, candidates, checkpoint in "
                                     f"{cfg.CONFIG_FILE})") from None
        bind_dynamic(self, on_change=self._apply)
        self.twin = cfg.twin_reader(self)
        self.counts: Counter = Counter()
        self.slots = self.decisions = self.migrations = 0
        self.pub = self.create_publisher(OffloadDecisionArray, cfg.decisions_topic, EVENTS)
        self.timer = self.create_timer(cfg.slot_s, self.on_slot)
        self.log_every = Every(cfg.log_period_s)
        self.get_logger().info(
            f"policy {cfg.policy}, N={cfg.candidates}, slot {cfg.slot_s:g} s, beta {cfg.budget_rate:g}: "
            f"{cfg.objects_topic} + {cfg.servers_topic} -> {cfg.decisions_topic}")

    @staticmethod
    def _migration(cfg: OffloadingNodeConfig):
        from mobility_twin_models.offloading.config import MigrationConfig

        return MigrationConfig(cost=cfg.migration_cost, budget_rate=cfg.budget_rate, latency_weight=cfg.latency_weight)

    def _apply(self, cfg: OffloadingNodeConfig) -> None:
        self.controller.set_migration(self._migration(cfg))

    def now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def on_slot(self) -> None:
        twin = self.twin.take("slot")
        if twin is None:
            self._maybe_log()
            return
        result = self.controller.decide(self.now_s(), twin)
        for reason, n in result.skipped.items():
            self.counts[reason] += n
            if n and reason not in ("vehicle_expired",):
                self.get_logger().warning(f"{n} skipped this slot: {reason}", throttle_duration_sec=10.0)
        msg = OffloadDecisionArray(header=self.twin.header())
        msg.policy = result.policy
        msg.slot_duration = float(self.config.slot_s)
        msg.deficit_queue = float(result.mean_queue)
        msg.migration_budget = float(self.config.budget_rate)
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
        if not self.log_every.due():
            return
        skipped = count_summary(self.counts + self.twin.counts)
        rate = self.migrations / self.decisions if self.decisions else 0.0
        self.get_logger().info(f"{self.slots} slots, {self.decisions} decisions, migration rate {rate:.3f}; "
                               f"skipped: {skipped}")


#: the parameters of each entry point (what `mtwin launch` checks a launch file against before it starts)
ENTRY_CONFIGS = {"main": OffloadingNodeConfig}


def main() -> int:
    return run_node(OffloadingNode)

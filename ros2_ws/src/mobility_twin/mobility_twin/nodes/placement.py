"""placement: periodically place the twins of the live mobility twin on edge servers or the cloud (Zhang et al.).

Subscribes to the vehicles of a twin (``TrackedObjectArray``, default /twin/global/objects: the
vehicles are the paper's data-collection devices) and the twins of the edge servers
(``EdgeServerStateArray``, default /twin/global/edge_servers: positions and clocks). Every
``period_s`` it runs :class:`mobility_twin_models.placement.live.PlacementController`: vehicles are grouped into
twins by edge site (nearest server, at most ``max_devices_per_twin`` per twin, sticky membership),
each twin is placed on an edge server or the cloud by the cost of eq. 17 (the shipped DDL checkpoint
plus refinement, or the exact per-twin optimum), and a ``MigrationEvent`` is published on
/placement/migrations for every twin placed for the first time (``from_host`` "") or moved, with the
twin's state size and the time the move costs. The server clock used is the twin's estimate
(``cpu_frequency_estimate``; ``cpu_frequency_max`` when the estimate is 0).

Nothing the inputs carry stops the node: a round without fresh inputs is skipped, bad vehicles and
servers are skipped; all are counted, logged (throttled) and summarised every ``log_period_s``.
"""

from __future__ import annotations

import math
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
from mobility_twin_msgs.msg import EdgeServerStateArray, MigrationEvent, TrackedObjectArray


@dataclass(frozen=True)
class PlacementNodeConfig:
    period_s: float = field(2.0, "seconds between two placement rounds")
    alpha: float = field(0.5, "weight alpha of eq. 17: time (s) against energy (mJ); the checkpoint was trained at 0.5")
    solver: str = field("ddl", "ddl (the shipped DDL checkpoint, best of K proposals) | exact (per-twin optimum)")
    checkpoint: str = field("", "DDL checkpoint ('' = models/checkpoints/placement_ddl.pt)")
    refine: bool = field(True, "polish the DDL decision with single-twin moves (reaches the optimum of eq. 18)")
    max_devices_per_twin: int = field(8, "vehicles per twin group at most (paper: 120 devices in 15 twins)")
    device_workload_mb: float = field(25.0, "data a vehicle uploads to its twin per synchronisation, MB (Table 2: 10-40)")
    hysteresis: float = field(0.05, "a placed twin moves only when the new host is cheaper by more than this fraction")
    backhaul_mbps: float = field(1000.0, "rate at which a twin's state moves between hosts, Mbit/s")
    cloud_id: str = field("cloud", "host name of the cloud in MigrationEvent")
    cloud_freq_ghz: float = field(3.5, "f_c, the cloud's clock (Table 2)")
    bandwidth_mbps: float = field(1000.0, "b_n, device to base station (Table 2)")
    gamma: float = field(0.5, "network discount of the cloud path (eq. 1)")
    lam_mb_m_per_s: float = field(40000.0, "lambda of eq. 4-5, MB*m/s")
    delta_ginstr_per_mb: float = field(0.008, "delta, giga-instructions per MB (eq. 2, 6)")
    theta_cloud_mj: float = field(0.1, "theta_c, execution energy in the cloud, mJ per Ginstr")
    theta_edge_mj: float = field(0.125, "theta_e, execution energy on an edge server, mJ per Ginstr")
    e_t_cloud_mj_per_mb: float = field(0.15, "e_t^c, transmission energy to the cloud, mJ per MB")
    e_t_edge_mj_per_mb: float = field(0.125, "e_t^e, transmission energy to an edge server, mJ per MB")
    objects_topic: str = field(topics.GLOBAL_OBJECTS, "TrackedObjectArray with the vehicles of the twin")
    servers_topic: str = field(topics.GLOBAL_EDGE_SERVERS, "EdgeServerStateArray with the twins of the edge servers")
    migrations_topic: str = field(topics.MIGRATIONS, "where MigrationEvents go")
    vehicle_classes: tuple[int, ...] = field(
        [1, 2, 3, 4], "TrackedObject.object_class values that are vehicles (1 car, 2 truck, 3 bus, 4 motorcycle)")
    objects_timeout_s: float = field(5.0, "skip the round when the newest vehicles are older than this")
    servers_timeout_s: float = field(10.0, "skip the round when the newest server twins are older than this")
    log_period_s: float = field(10.0, "seconds between summary log lines")


class PlacementNode(Node):
    def __init__(self) -> None:
        super().__init__("placement")
        self.config = cfg = declare_config(self, PlacementNodeConfig)
        import torch

        from mobility_twin_models.placement.config import SystemConfig
        from mobility_twin_models.placement.live import ControllerConfig, PlacementController

        torch.set_num_threads(1)  # the DDL is tiny: one thread is fastest and leaves the cores to the stack

        system = SystemConfig(
            cloud_freq_ghz=cfg.cloud_freq_ghz, bandwidth_mbps=cfg.bandwidth_mbps, gamma=cfg.gamma,
            lam_mb_m_per_s=cfg.lam_mb_m_per_s, delta_ginstr_per_mb=cfg.delta_ginstr_per_mb,
            theta_cloud_mj=cfg.theta_cloud_mj, theta_edge_mj=cfg.theta_edge_mj,
            e_t_cloud_mj_per_mb=cfg.e_t_cloud_mj_per_mb, e_t_edge_mj_per_mb=cfg.e_t_edge_mj_per_mb)
        self.controller = PlacementController(ControllerConfig(
            alpha=cfg.alpha, solver=cfg.solver, checkpoint=cfg.checkpoint, refine=cfg.refine,
            max_devices_per_twin=cfg.max_devices_per_twin, hysteresis=cfg.hysteresis,
            backhaul_mbps=cfg.backhaul_mbps, cloud_id=cfg.cloud_id, system=system))
        if self.controller.model_alpha is not None and abs(self.controller.model_alpha - cfg.alpha) > 1e-9:
            self.get_logger().warning(f"the DDL checkpoint was trained for alpha {self.controller.model_alpha:g}, "
                                      f"the node runs alpha {cfg.alpha:g}: its proposals will be worse")
        self.vehicle_classes = set(cfg.vehicle_classes)
        self._objects = LatestMessage(TrackedObjectArray)  # deserialised once per slot, not per message
        self.servers: EdgeServerStateArray | None = None
        self.objects_at = self.servers_at = 0.0
        self.counts: Counter = Counter()
        self.rounds = self.migrations = self.twins = 0
        self.decision_s = 0.0
        self.cost = self.optimal_cost = 0.0
        self.solver = cfg.solver
        self.create_subscription(TrackedObjectArray, cfg.objects_topic, self.on_objects, TWIN_STATE, raw=True)
        self.create_subscription(EdgeServerStateArray, cfg.servers_topic, self.on_servers, TWIN_STATE)
        self.pub = self.create_publisher(MigrationEvent, cfg.migrations_topic, EVENTS)
        self.timer = self.create_timer(cfg.period_s, self.on_round)
        self.last_log = time.monotonic()
        self.get_logger().info(
            f"solver {cfg.solver}{' + refine' if cfg.solver == 'ddl' and cfg.refine else ''}, alpha {cfg.alpha:g}, "
            f"every {cfg.period_s:g} s, <= {cfg.max_devices_per_twin} vehicles per twin: "
            f"{cfg.objects_topic} + {cfg.servers_topic} -> {cfg.migrations_topic}")

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

    def skip_reason(self) -> str | None:
        cfg, now = self.config, self.now_s()
        if self.servers is None:
            return "no_server_twins_yet"
        if now - self.servers_at > cfg.servers_timeout_s:
            return "server_twins_stale"
        if self.objects is None:
            return "no_vehicles_yet"
        if now - self.objects_at > cfg.objects_timeout_s:
            return "vehicles_stale"
        if self.objects.header.frame_id and self.servers.header.frame_id and \
                self.objects.header.frame_id != self.servers.header.frame_id:
            return "frame_mismatch"
        return None

    def on_round(self) -> None:
        from mobility_twin_models.placement.errors import PlacementError
        from mobility_twin_models.placement.live import Device, EdgeHost

        skip = self.skip_reason()
        if skip is not None:
            self.counts[skip] += 1
            self.get_logger().warning(f"round skipped: {skip}", throttle_duration_sec=10.0)
            self._maybe_log()
            return
        hosts = []
        for s in self.servers.servers:
            freq = s.cpu_frequency_estimate if s.cpu_frequency_estimate > 0 else s.cpu_frequency_max
            if not (s.server_id and math.isfinite(s.position.x) and math.isfinite(s.position.y)
                    and math.isfinite(freq) and freq > 0):
                self.counts["bad_server"] += 1
                self.get_logger().warning(f"server {s.server_id!r} skipped: no id, position or clock",
                                          throttle_duration_sec=10.0)
                continue
            hosts.append(EdgeHost(s.server_id, float(s.position.x), float(s.position.y), float(freq) * 1e-9))
        devices = []
        for o in self.objects.objects:
            if o.object_class not in self.vehicle_classes:
                self.counts["not_a_vehicle"] += 1
                continue
            p = o.pose.pose.position
            if not (math.isfinite(p.x) and math.isfinite(p.y)):
                self.counts["bad_vehicle"] += 1
                self.get_logger().warning(f"vehicle track {o.track_id} skipped: no position", throttle_duration_sec=10.0)
                continue
            devices.append(Device(o.vehicle_id or f"track_{o.track_id}", float(p.x), float(p.y),
                                  self.config.device_workload_mb))
        if not hosts:
            self.counts["no_usable_server"] += 1
            self._maybe_log()
            return
        try:
            result = self.controller.step(devices, hosts)
        except PlacementError as err:
            self.counts["placement_error"] += 1
            self.get_logger().error(f"round failed: {err}", throttle_duration_sec=10.0)
            self._maybe_log()
            return
        header = Header(stamp=self.get_clock().now().to_msg(), frame_id=self.servers.header.frame_id or "map")
        for m in result.migrations:
            self.pub.publish(MigrationEvent(header=header, twin_id=m.twin_id, from_host=m.from_host,
                                            to_host=m.to_host, size_bytes=float(m.size_bytes),
                                            transfer_time=float(m.transfer_time_s), reason="placement"))
        if result.solver.startswith("exact (fallback"):
            self.get_logger().warning(f"DDL not used: {result.solver}", throttle_duration_sec=30.0)
        self.rounds += 1
        self.migrations += len(result.migrations)
        self.decision_s += result.decision_s
        self.cost, self.optimal_cost, self.solver = result.cost, result.optimal_cost, result.solver
        self.twins = len(result.hosts)
        self._maybe_log()

    def _maybe_log(self) -> None:
        if time.monotonic() - self.last_log < self.config.log_period_s:
            return
        self.last_log = time.monotonic()
        skipped = ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items())) or "none"
        mean_ms = 1e3 * self.decision_s / self.rounds if self.rounds else 0.0
        gap = self.cost / self.optimal_cost - 1.0 if self.optimal_cost > 0 else 0.0
        self.get_logger().info(
            f"{self.rounds} rounds, {self.twins} twins, {self.migrations} placements/moves, "
            f"solver {self.solver}, decision {mean_ms:.2f} ms, cost {self.cost:.4g} ({gap:+.2%} vs optimum); "
            f"skipped: {skipped}")


def main() -> int:
    return run_node(PlacementNode)

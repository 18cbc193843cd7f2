"""placement: periodically place the twins of the live mobility twin on edge servers or the cloud (Zhang et al.).

Reads a twin through the twin-state adapter (:class:`mobility_twin.ros.twin_reader.TwinReader`): its
vehicles (the paper's data-collection devices) and its edge-server twins (positions and clocks), default
the global twin. Every
``period_s`` it runs :class:`mobility_twin_models.placement.live.PlacementController`: vehicles are grouped into
twins by edge site (nearest server, at most ``max_devices_per_twin`` per twin, sticky membership),
each twin is placed on an edge server or the cloud by the cost of eq. 17 (the shipped DDL checkpoint
plus refinement, or the exact per-twin optimum), and a ``MigrationEvent`` is published on
/placement/migrations for every twin placed for the first time (``from_host`` "") or moved, with the
twin's state size and the time the move costs. The server clock used is the twin's estimate
(``cpu_frequency_estimate``; ``cpu_frequency_max`` when the estimate is 0). ``alpha`` and ``hysteresis``
may be changed at run time.

Nothing the inputs carry stops the node: a round without fresh inputs is skipped, bad vehicles and
servers are skipped; all are counted, logged (throttled) and summarised every ``log_period_s``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace

from rclpy.node import Node

from mobility_twin.ros import topics
from mobility_twin.ros.entry import ConfigurationError, run_node
from mobility_twin.ros.guard import Every, count_summary
from mobility_twin.ros.node_params import TwinInputParams
from mobility_twin.ros.params import bind_dynamic, declare_config, field
from mobility_twin.ros.qos import EVENTS
from mobility_twin_msgs.msg import MigrationEvent


@dataclass(frozen=True)
class PlacementNodeConfig(TwinInputParams):
    CONFIG_FILE = "config/placement.yaml"

    period_s: float = field(2.0, "seconds between two placement rounds", low=0.01, high=86400.0)
    alpha: float = field(0.5, "weight alpha of eq. 17: time (s) against energy (mJ); the checkpoint was trained "
                              "at 0.5", low=0.0, high=1.0, dynamic=True)
    solver: str = field("ddl", "placement solver registered by name (mobility_twin_models.placement.live.SOLVERS): "
                               "ddl (the shipped DDL checkpoint, best of K proposals), exact (per-twin optimum)")
    checkpoint: str = field("", "DDL checkpoint ('' = the shipped placement_ddl.pt)")
    refine: bool = field(True, "polish the DDL decision with single-twin moves (reaches the optimum of eq. 18)")
    max_devices_per_twin: int = field(8, "vehicles per twin group at most (paper: 120 devices in 15 twins)",
                                      low=1, high=10000)
    device_workload_mb: float = field(25.0, "data a vehicle uploads to its twin per synchronisation, MB "
                                            "(Table 2: 10-40)", low=0.0, high=1e6)
    hysteresis: float = field(0.05, "a placed twin moves only when the new host is cheaper by more than this "
                                    "fraction", low=0.0, high=0.99, dynamic=True)
    backhaul_mbps: float = field(1000.0, "rate at which a twin's state moves between hosts, Mbit/s", low=1e-3, high=1e7)
    cloud_id: str = field("cloud", "host name of the cloud in MigrationEvent")
    cloud_freq_ghz: float = field(3.5, "f_c, the cloud's clock (Table 2)", low=1e-3, high=1e3)
    bandwidth_mbps: float = field(1000.0, "b_n, device to base station (Table 2)", low=1e-3, high=1e7)
    gamma: float = field(0.5, "network discount of the cloud path (eq. 1)", low=0.0, high=1.0)
    lam_mb_m_per_s: float = field(40000.0, "lambda of eq. 4-5, MB*m/s", low=1e-6, high=1e12)
    delta_ginstr_per_mb: float = field(0.008, "delta, giga-instructions per MB (eq. 2, 6)", low=0.0, high=1e6)
    theta_cloud_mj: float = field(0.1, "theta_c, execution energy in the cloud, mJ per Ginstr", low=0.0, high=1e6)
    theta_edge_mj: float = field(0.125, "theta_e, execution energy on an edge server, mJ per Ginstr", low=0.0, high=1e6)
    e_t_cloud_mj_per_mb: float = field(0.15, "e_t^c, transmission energy to the cloud, mJ per MB", low=0.0, high=1e6)
    e_t_edge_mj_per_mb: float = field(0.125, "e_t^e, transmission energy to an edge server, mJ per MB", low=0.0,
                                      high=1e6)
    migrations_topic: str = field(topics.MIGRATIONS, "where MigrationEvents go")
    objects_timeout_s: float = field(5.0, "skip the round when the newest vehicles are older than this (s)",
                                     low=0.0, high=86400.0)
    servers_timeout_s: float = field(10.0, "skip the round when the newest server twins are older than this (s)",
                                     low=0.0, high=86400.0)


class PlacementNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("placement", **kwargs)
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
        try:
            self.controller = PlacementController(ControllerConfig(
                alpha=cfg.alpha, solver=cfg.solver, checkpoint=cfg.checkpoint, refine=cfg.refine,
                max_devices_per_twin=cfg.max_devices_per_twin, hysteresis=cfg.hysteresis,
                backhaul_mbps=cfg.backhaul_mbps, cloud_id=cfg.cloud_id, system=system))
        except ValueError as err:
            raise ConfigurationError(f"placement: {err} (parameters solver, checkpoint in {cfg.CONFIG_FILE})") from None
        self._warn_alpha(cfg.alpha)
        bind_dynamic(self, on_change=self._apply)
        self.twin = cfg.twin_reader(self)
        self.counts: Counter = Counter()
        self.rounds = self.migrations = self.twins = 0
        self.decision_s = 0.0
        self.cost = self.optimal_cost = 0.0
        self.solver = cfg.solver
        self.pub = self.create_publisher(MigrationEvent, cfg.migrations_topic, EVENTS)
        self.timer = self.create_timer(cfg.period_s, self.on_round)
        self.log_every = Every(cfg.log_period_s)
        self.get_logger().info(
            f"solver {cfg.solver}{' + refine' if cfg.solver == 'ddl' and cfg.refine else ''}, alpha {cfg.alpha:g}, "
            f"every {cfg.period_s:g} s, <= {cfg.max_devices_per_twin} vehicles per twin: "
            f"{cfg.objects_topic} + {cfg.servers_topic} -> {cfg.migrations_topic}")

    def _warn_alpha(self, alpha: float) -> None:
        trained = self.controller.model_alpha
        if trained is not None and abs(trained - alpha) > 1e-9:
            self.get_logger().warning(f"the DDL checkpoint was trained for alpha {trained:g}, the node runs alpha "
                                      f"{alpha:g}: its proposals will be worse")

    def _apply(self, cfg: PlacementNodeConfig) -> None:
        self.controller.config = replace(self.controller.config, alpha=cfg.alpha, hysteresis=cfg.hysteresis)
        self._warn_alpha(cfg.alpha)

    def on_round(self) -> None:
        from mobility_twin_models.placement.errors import PlacementError

        twin = self.twin.take("round")
        if twin is None:
            self._maybe_log()
            return
        before = self.controller.skipped_servers
        try:
            result = self.controller.step(twin, self.config.device_workload_mb)
        except PlacementError as err:
            self.counts["placement_error"] += 1
            self.get_logger().error(f"round failed: {err}", throttle_duration_sec=10.0)
            self._maybe_log()
            return
        if self.controller.skipped_servers > before:
            self.counts["bad_server"] += self.controller.skipped_servers - before
            self.get_logger().warning("servers without a usable clock skipped", throttle_duration_sec=10.0)
        header = self.twin.header()
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
        if not self.log_every.due():
            return
        skipped = count_summary(self.counts + self.twin.counts)
        mean_ms = 1e3 * self.decision_s / self.rounds if self.rounds else 0.0
        gap = self.cost / self.optimal_cost - 1.0 if self.optimal_cost > 0 else 0.0
        self.get_logger().info(
            f"{self.rounds} rounds, {self.twins} twins, {self.migrations} placements/moves, "
            f"solver {self.solver}, decision {mean_ms:.2f} ms, cost {self.cost:.4g} ({gap:+.2%} vs optimum); "
            f"skipped: {skipped}")


#: the parameters of each entry point (what `mtwin launch` checks a launch file against before it starts)
ENTRY_CONFIGS = {"main": PlacementNodeConfig}


def main() -> int:
    return run_node(PlacementNode)

"""The online offloading loop (Algorithm 2 without retraining) on live twins: what the ROS node wraps.

Every slot the caller passes the vehicles of the twin (id, position) and the twins of the edge servers
(position, radius, the estimate ``f`` and deviation ``f_hat`` of the frequency a task gets); the
controller picks each vehicle's N nearest servers, scores them as the twin of the system does (eq. 4-10
with the *expected* task of :class:`TaskConfig`, since the vehicles' actual tasks are not in the twin),
asks the policy, and keeps per vehicle the serving server and the deficit queue (eq. 12).

Bad input never raises: a server with a non-finite position or a non-positive estimate, a vehicle with
a non-finite position or a repeated id is skipped and counted in :attr:`SlotResult.skipped`; a vehicle
unseen for ``vehicle_timeout_s`` is forgotten (its queue and server with it); a vehicle whose previous
server disappeared migrates. With fewer valid servers than N, the slot falls back to the greedy rule
over the servers there are (counted as ``too_few_servers``).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from mobility_twin_core import ServerSet
from mobility_twin_models.offloading import equations as eq
from mobility_twin_models.offloading.agent import (
    DEFAULT_CHECKPOINT,
    ActorCritic,
    ActorCriticPolicy,
    agent_for,
    load_checkpoint,
)
from mobility_twin_models.offloading.config import MigrationConfig, RadioConfig, TaskConfig
from mobility_twin_models.offloading.errors import OffloadingError
from mobility_twin_models.offloading.rollout import DriftPlusPenalty, Greedy, NearestFirst, Observation

POLICIES = ("actor_critic", "nearest_first", "greedy", "drift_plus_penalty")


@dataclass(frozen=True)
class ControllerConfig:
    """Args:
    policy: one of :data:`POLICIES`.
    candidates: N.
    checkpoint: actor-critic checkpoint ('' = the shipped one).
    slot_s: seconds per slot (reported, and the unit of ``vehicle_timeout_s`` bookkeeping).
    vehicle_timeout_s: forget a vehicle unseen for this long.
    wired_s_per_m: psi of eq. 7.
    """

    policy: str = "actor_critic"
    candidates: int = 5
    checkpoint: str = ""
    slot_s: float = 1.0
    vehicle_timeout_s: float = 10.0
    wired_s_per_m: float = 2e-5
    migration: MigrationConfig = field(default_factory=MigrationConfig)
    task: TaskConfig = field(default_factory=TaskConfig)
    radio: RadioConfig = field(default_factory=RadioConfig)

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise OffloadingError(f"policy must be one of {POLICIES}, got {self.policy!r}")
        if self.candidates < 1:
            raise OffloadingError(f"candidates must be >= 1, got {self.candidates}")
        for name in ("slot_s", "vehicle_timeout_s"):
            if not getattr(self, name) > 0:
                raise OffloadingError(f"{name} must be > 0, got {getattr(self, name)!r}")


@dataclass(frozen=True)
class ServerTwin:
    """One edge server's twin: position (m), coverage radius (m), frequency estimate and deviation (Hz)."""

    server_id: str
    x: float
    y: float
    f_est_hz: float
    deviation_hz: float = 0.0
    coverage_radius_m: float = 150.0


@dataclass(frozen=True)
class Vehicle:
    vehicle_id: str
    x: float
    y: float
    track_id: int = 0


@dataclass(frozen=True)
class Decision:
    vehicle_id: str
    track_id: int
    server_id: str
    previous_server_id: str
    access_server_id: str
    migrated: bool
    expected_latency_s: float
    deadline_s: float
    migration_cost: float
    covered: bool


@dataclass(frozen=True)
class SlotResult:
    decisions: list[Decision]
    mean_queue: float
    policy: str
    skipped: Counter

    @property
    def migrations(self) -> int:
        return sum(d.migrated for d in self.decisions)


@dataclass
class _Memory:
    server_id: str
    queue: float
    last_seen_s: float


class OffloadingController:
    """Per-slot decisions for the vehicles of a twin; keeps each vehicle's server and deficit queue."""

    def __init__(self, config: ControllerConfig, agent: ActorCritic | None = None) -> None:
        self.config = config
        self.memory: dict[str, _Memory] = {}
        self.totals: Counter = Counter()
        mig = config.migration
        if config.policy == "actor_critic":
            if agent is None:
                path = config.checkpoint or DEFAULT_CHECKPOINT
                agents, _ = load_checkpoint(path)
                agent = agent_for(agents, config.candidates, path)
            if agent.spec.candidates != config.candidates:
                raise OffloadingError(f"agent decides among N={agent.spec.candidates}, controller has "
                                      f"N={config.candidates}")
            self.policy = ActorCriticPolicy(agent, mig.cost)
        elif config.policy == "nearest_first":
            self.policy = NearestFirst()
        elif config.policy == "greedy":
            self.policy = Greedy()
        else:
            self.policy = DriftPlusPenalty(mig.latency_weight, mig.cost)
        self._fallback = Greedy()

    def decide(self, now_s: float, vehicles: list[Vehicle], servers: list[ServerTwin]) -> SlotResult:
        cfg = self.config
        skipped: Counter = Counter()
        good = [s for s in servers if _valid_server(s)]
        skipped["bad_server"] += len(servers) - len(good)
        seen_servers: set[str] = set()
        unique_servers = []
        for s in good:
            if s.server_id in seen_servers:
                skipped["duplicate_server"] += 1
                continue
            seen_servers.add(s.server_id)
            unique_servers.append(s)
        servers = unique_servers
        fleet: list[Vehicle] = []
        seen: set[str] = set()
        for v in vehicles:
            if not (math.isfinite(v.x) and math.isfinite(v.y)) or not v.vehicle_id:
                skipped["bad_vehicle"] += 1
            elif v.vehicle_id in seen:
                skipped["duplicate_vehicle"] += 1
            else:
                seen.add(v.vehicle_id)
                fleet.append(v)
        stale = [k for k, m in self.memory.items() if k not in seen and now_s - m.last_seen_s > cfg.vehicle_timeout_s]
        for vid in stale:
            del self.memory[vid]
            skipped["vehicle_expired"] += 1
        if not servers or not fleet:
            if fleet:
                skipped["no_server"] += len(fleet)
            self.totals.update(skipped)
            return SlotResult([], self._mean_queue(), self.config.policy, skipped)

        n = min(cfg.candidates, len(servers))
        policy = self.policy
        if n < cfg.candidates:
            skipped["too_few_servers"] += 1
            policy = self._fallback
        sxy = np.array([[s.x, s.y] for s in servers])
        f_est = np.array([s.f_est_hz for s in servers])
        dev = np.array([s.deviation_hz for s in servers])
        vxy = np.array([[v.x, v.y] for v in fleet])
        dist, idx = ServerSet.from_arrays([s.server_id for s in servers], sxy,
                                          [s.coverage_radius_m for s in servers]).nearest(vxy, n)
        index_of = {s.server_id: i for i, s in enumerate(servers)}
        previous = np.full(len(fleet), -1, dtype=np.int64)
        queue = np.zeros(len(fleet))
        for i, v in enumerate(fleet):
            mem = self.memory.get(v.vehicle_id)
            if mem is not None:
                queue[i] = mem.queue
                previous[i] = index_of.get(mem.server_id, -2)
                if previous[i] == -2:
                    skipped["previous_server_gone"] += 1
        latency = self._expected_latency(vxy, sxy, dist, idx, f_est, dev)
        deadline = np.full(len(fleet), cfg.task.mean_deadline_s)
        obs = Observation(0, idx, dist, f_est[idx], dev[idx], latency, deadline, previous, queue)
        actions = np.asarray(policy.act(obs), dtype=np.int64)
        rows = np.arange(len(fleet))
        chosen = idx[rows, actions]
        mig = cfg.migration
        migrated = (chosen != previous) & ((previous != -1) | (not mig.first_slot_free))
        cost = eq.migration_cost(migrated, mig.cost)
        new_queue = eq.deficit_queue_next(queue, cost, mig.cost, mig.budget_rate)
        decisions = []
        for i, v in enumerate(fleet):
            mem = self.memory.get(v.vehicle_id)
            server = servers[chosen[i]]
            access = servers[idx[i, 0]]
            decisions.append(Decision(
                v.vehicle_id, v.track_id, server.server_id, mem.server_id if mem else "", access.server_id,
                bool(migrated[i]), float(latency[i, actions[i]]), float(deadline[i]), float(cost[i]),
                bool(dist[i, 0] <= access.coverage_radius_m)))
            self.memory[v.vehicle_id] = _Memory(server.server_id, float(new_queue[i]), now_s)
        self.totals.update(skipped)
        return SlotResult(decisions, float(new_queue.mean()), policy.name if policy is not self._fallback
                          else f"{self.config.policy}->greedy", skipped)

    def _expected_latency(self, vxy, sxy, dist, idx, f_est, dev) -> np.ndarray:
        """Eq. 4-10 for the expected task, mean transmit power and interference averaged over channels."""
        cfg, radio = self.config, self.config.radio
        p = sum(radio.tx_power_w) / 2.0
        access = idx[:, 0]
        d2 = np.sum((sxy[access][:, None, :] - vxy[None, :, :]) ** 2, axis=-1)
        rx = eq.received_power(p, np.sqrt(d2), radio.path_loss_exponent, radio.min_distance_m)
        rx[access[:, None] == access[None, :]] = 0.0
        interference = rx.sum(axis=1) / radio.channels
        snr = eq.sinr(p, dist[:, 0], interference, radio.noise_w, radio.path_loss_exponent, radio.min_distance_m)
        uplink = eq.uplink_latency(cfg.task.mean_bits, radio.bandwidth_hz, snr)
        wired = eq.wired_latency(dist, cfg.wired_s_per_m)
        f = f_est[idx]
        d = np.maximum(f + dev[idx], 0.1 * f) - f
        return uplink[:, None] + wired + eq.computation_latency(cfg.task.mean_cycles, f, d)

    def _mean_queue(self) -> float:
        return float(np.mean([m.queue for m in self.memory.values()])) if self.memory else 0.0


def _valid_server(s: ServerTwin) -> bool:
    return bool(s.server_id) and all(math.isfinite(v) for v in (s.x, s.y, s.f_est_hz, s.deviation_hz)) \
        and s.f_est_hz > 0

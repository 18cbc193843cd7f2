"""The online offloading loop (Algorithm 2 without retraining) on live twins: what the ROS node wraps.

Every slot the caller passes the twin as a :class:`mobility_twin_core.TwinSnapshot`: its vehicles (id,
position, track id) and its edge-server twins (position, radius, the estimate ``f`` and deviation
``f_hat`` of the frequency a task gets); the controller picks each vehicle's N nearest servers, scores them as the twin of the system does (eq. 4-10
with the *expected* task of :class:`TaskConfig`, since the vehicles' actual tasks are not in the twin),
asks the policy, and keeps per vehicle the serving server and the deficit queue (eq. 12).

Bad input never raises: a server with a non-finite position or a non-positive estimate, a repeated
server or vehicle id is skipped and counted in :attr:`SlotResult.skipped`; a vehicle
unseen for ``vehicle_timeout_s`` is forgotten (its queue and server with it); a vehicle whose previous
server disappeared migrates. With fewer valid servers than N, the slot falls back to the greedy rule
over the servers there are (counted as ``too_few_servers``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace

import numpy as np

from mobility_twin_core import ServerSet, TwinSnapshot
from mobility_twin_core.registry import Registry
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
from mobility_twin_models.offloading.rollout import (
    DriftPlusPenalty,
    Greedy,
    NearestFirst,
    Observation,
    Policy,
)

#: name -> factory(config, agent) of a :class:`~mobility_twin_models.offloading.rollout.Policy`: the policies the
#: controller (and the node's ``policy`` parameter) can use. Add one with :func:`register_policy`.
POLICIES: Registry = Registry()  # name -> Callable[[ControllerConfig, ActorCritic | None], Policy]


def register_policy(name: str):
    """Register a policy factory ``factory(config, agent) -> Policy`` under ``name`` (a decorator)::

        @register_policy("random")
        def _random(config, agent):
            return MyRandomPolicy(seed=0)
    """
    return POLICIES.register(name)


@dataclass(frozen=True)
class ControllerConfig:
    """Args:
    policy: a name registered in :data:`POLICIES`.
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
            raise OffloadingError(f"policy must be one of {sorted(POLICIES)}, got {self.policy!r}")
        if self.candidates < 1:
            raise OffloadingError(f"candidates must be >= 1, got {self.candidates}")
        for name in ("slot_s", "vehicle_timeout_s"):
            if not getattr(self, name) > 0:
                raise OffloadingError(f"{name} must be > 0, got {getattr(self, name)!r}")


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
        self._agent = agent
        self.policy = self._make_policy(config)
        self._fallback = Greedy()

    def _make_policy(self, config: ControllerConfig) -> Policy:
        return POLICIES[config.policy](config, self._agent)

    def set_migration(self, migration: MigrationConfig) -> None:
        """Change the migration budget, cost and latency weight from the next slot on."""
        self.config = replace(self.config, migration=migration)
        self.policy = self._make_policy(self.config)

    def decide(self, now_s: float, twin: TwinSnapshot) -> SlotResult:
        """One slot's decisions for the vehicles of ``twin`` among its edge-server twins."""
        cfg = self.config
        skipped: Counter = Counter()
        server_ok = np.isfinite(twin.server_xy).all(axis=1) & np.isfinite(twin.server_estimate_hz) \
            & np.isfinite(twin.server_deviation_hz) & (twin.server_estimate_hz > 0) \
            & np.array([bool(str(i)) for i in twin.server_ids], dtype=bool)
        skipped["bad_server"] += int(np.count_nonzero(~server_ok))
        server_rows = _first_of_each(twin.server_ids, server_ok, skipped, "duplicate_server")
        vehicle_rows = _first_of_each(twin.vehicle_ids, np.array([bool(str(v)) for v in twin.vehicle_ids], dtype=bool),
                                      skipped, "duplicate_vehicle", invalid="bad_vehicle")
        servers = [str(twin.server_ids[k]) for k in server_rows]
        fleet = [str(twin.vehicle_ids[k]) for k in vehicle_rows]
        seen = set(fleet)
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
        sxy = twin.server_xy[server_rows]
        f_est = twin.server_estimate_hz[server_rows]
        dev = twin.server_deviation_hz[server_rows]
        coverage = twin.server_coverage_m[server_rows]
        vxy = twin.vehicle_xy[vehicle_rows]
        track_ids = twin.vehicle_track_id[vehicle_rows]
        dist, idx = ServerSet.from_arrays(servers, sxy, coverage).nearest(vxy, n)
        index_of = {sid: i for i, sid in enumerate(servers)}
        previous = np.full(len(fleet), -1, dtype=np.int64)
        queue = np.zeros(len(fleet))
        for i, vid in enumerate(fleet):
            mem = self.memory.get(vid)
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
        for i, vid in enumerate(fleet):
            mem = self.memory.get(vid)
            server, access = servers[chosen[i]], int(idx[i, 0])
            decisions.append(Decision(
                vid, int(track_ids[i]), server, mem.server_id if mem else "", servers[access],
                bool(migrated[i]), float(latency[i, actions[i]]), float(deadline[i]), float(cost[i]),
                bool(dist[i, 0] <= coverage[access])))
            self.memory[vid] = _Memory(server, float(new_queue[i]), now_s)
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


def _first_of_each(ids: np.ndarray, valid: np.ndarray, skipped: Counter, repeated: str,
                   invalid: str | None = None) -> np.ndarray:
    """Rows of the valid entries whose id was not seen before (counted as ``repeated`` otherwise)."""
    rows, seen = [], set()
    for k in np.flatnonzero(valid).tolist():
        key = str(ids[k])
        if key in seen:
            skipped[repeated] += 1
            continue
        seen.add(key)
        rows.append(k)
    if invalid is not None:
        skipped[invalid] += int(np.count_nonzero(~valid))
    return np.asarray(rows, dtype=np.int64)


@register_policy("actor_critic")
def _actor_critic(config: ControllerConfig, agent: ActorCritic | None) -> Policy:
    if agent is None:
        path = config.checkpoint or DEFAULT_CHECKPOINT
        agents, _ = load_checkpoint(path)
        agent = agent_for(agents, config.candidates, path)
    if agent.spec.candidates != config.candidates:
        raise OffloadingError(f"agent decides among N={agent.spec.candidates}, controller has N={config.candidates}")
    return ActorCriticPolicy(agent, config.migration.cost)


register_policy("nearest_first")(lambda config, agent: NearestFirst())
register_policy("greedy")(lambda config, agent: Greedy())
register_policy("drift_plus_penalty")(
    lambda config, agent: DriftPlusPenalty(config.migration.latency_weight, config.migration.cost))

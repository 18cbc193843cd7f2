"""Running a policy through an :class:`~mobility_twin_models.offloading.env.Episode`, with the deficit queue, and the metrics.

Every user keeps its own deficit queue (eq. 12) over its journey; a policy sees, per slot, the twins'
view of its candidates (:class:`Observation`) and returns one candidate index per user. The rollout
charges the latency of the chosen view (``"true"``: the real environment; ``"twin"``: the twin of the
system, for training) and the migration cost, and records everything the metrics need (Fig. 5-9).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from mobility_twin_models.offloading import equations as eq
from mobility_twin_models.offloading.env import Episode
from mobility_twin_models.offloading.errors import OffloadingError


@dataclass(frozen=True, eq=False)
class Observation:
    """What a policy sees at slot ``t`` for every user: the server twins' view of its candidates. (U[, N])."""

    t: int
    servers: np.ndarray
    distance_m: np.ndarray
    f_est_hz: np.ndarray
    deviation_hz: np.ndarray
    latency_est_s: np.ndarray
    deadline_s: np.ndarray
    previous: np.ndarray  # (U,) previous server index, -1 before the first slot
    queue: np.ndarray  # (U,) Q(t)

    @property
    def is_current(self) -> np.ndarray:
        return self.servers == self.previous[:, None]


def observe(ep: Episode, t: int, previous: np.ndarray, queue: np.ndarray) -> Observation:
    return Observation(t, ep.servers[t], ep.distance_m[t], ep.f_est_hz[t], ep.deviation_reported_hz[t],
                       ep.latency_twin_s[t], ep.deadline_s[t], previous, queue)


class Policy(Protocol):
    """Chooses one candidate index per user each slot."""

    name: str

    def reset(self, episode: Episode) -> None: ...

    def act(self, obs: Observation) -> np.ndarray: ...


class NearestFirst:
    """The paper's benchmark: always the nearest edge server."""

    name = "nearest_first"

    def reset(self, episode: Episode) -> None:
        pass

    def act(self, obs: Observation) -> np.ndarray:
        return np.zeros(len(obs.previous), dtype=np.int64)


class Greedy:
    """Least estimated latency now (eq. 10 with the twins' estimate and reported deviation), blind to migrations."""

    name = "greedy"

    def reset(self, episode: Episode) -> None:
        pass

    def act(self, obs: Observation) -> np.ndarray:
        return np.argmin(obs.latency_est_s, axis=1)


class DriftPlusPenalty:
    """The myopic solution of P2 (eq. 13): each slot, ``argmin v min(T, gamma) + Q(t) C(e_t)`` on the twins' view.

    Not in the paper; the one-step Lyapunov rule the actor-critic should at least match.
    """

    name = "drift_plus_penalty"

    def __init__(self, latency_weight: float, cost: float) -> None:
        self.v, self.cost = latency_weight, cost

    def reset(self, episode: Episode) -> None:
        pass

    def act(self, obs: Observation) -> np.ndarray:
        latency = np.minimum(obs.latency_est_s, obs.deadline_s[:, None])
        migrates = (~obs.is_current) & (obs.previous[:, None] != -1)  # -2: previous server gone
        return np.argmin(self.v * latency + obs.queue[:, None] * self.cost * migrates, axis=1)


class Planned:
    """Replays a precomputed (tau, U) plan, e.g. the oracle's."""

    def __init__(self, actions: np.ndarray, name: str = "oracle") -> None:
        self.actions, self.name = np.asarray(actions), name

    def reset(self, episode: Episode) -> None:
        if self.actions.shape != episode.servers.shape[:2]:
            raise OffloadingError(f"plan shape {self.actions.shape} does not fit the episode {episode.servers.shape[:2]}")

    def act(self, obs: Observation) -> np.ndarray:
        return self.actions[obs.t]


@dataclass(frozen=True, eq=False)
class Rollout:
    """One policy's journey for every user: (tau, U) arrays, ``queue`` (tau + 1, U)."""

    policy: str
    view: str
    episode: Episode
    actions: np.ndarray
    served: np.ndarray
    migrated: np.ndarray
    latency_s: np.ndarray
    failed: np.ndarray
    queue: np.ndarray
    reward: np.ndarray
    decide_s: float  # wall time spent in the policy

    def metrics(self) -> dict:
        """Average latency (capped at the deadline, and raw), failure and migration rates, budget, cost, reward."""
        ep = self.episode
        tau, n_users = self.served.shape
        cfg = ep.config.migration
        budget = cfg.budget_migrations(tau)
        per_user = self.migrated.sum(axis=0)
        capped = np.minimum(self.latency_s, ep.deadline_s)
        finite = np.isfinite(self.latency_s)
        return {
            "policy": self.policy,
            "users": n_users,
            "slots": tau,
            "avg_latency_s": float(capped.mean()),
            "avg_latency_raw_s": float(self.latency_s[finite].mean()) if finite.any() else float("inf"),
            "failure_rate": float(self.failed.mean()),
            "migration_rate": float(per_user.mean() / tau),
            "budget_migrations": budget,
            "budget_met": float(np.mean(per_user <= budget)),
            "mean_reward": float(self.reward.mean()),
            "final_queue": float(self.queue[-1].mean()),
            "system_cost_twin": float(ep.query_cost_twin.sum(axis=0).mean()),
            "system_cost_direct": float(ep.query_cost_direct.sum(axis=0).mean()),
            "decide_us_per_user_slot": 1e6 * self.decide_s / (tau * n_users),
        }


def slot_cost(latency_s: np.ndarray, deadline_s: np.ndarray, failure_penalty_s: float = 0.0) -> np.ndarray:
    """The latency a slot counts: capped at the deadline (a late task is dropped then), plus a penalty if late."""
    return np.minimum(latency_s, deadline_s) + failure_penalty_s * (latency_s > deadline_s)


def rollout(ep: Episode, policy: Policy, view: str = "true", *, failure_penalty_s: float = 0.0) -> Rollout:
    """Run ``policy`` through ``ep``; latencies and rewards (eq. 16) from ``view``."""
    import time

    latency_all = ep.latency(view)
    tau, n_users, _ = ep.servers.shape
    mig = ep.config.migration
    users = np.arange(n_users)
    previous = np.full(n_users, -1, dtype=np.int64)
    queue = np.zeros((tau + 1, n_users))
    actions = np.empty((tau, n_users), dtype=np.int64)
    served = np.empty((tau, n_users), dtype=np.int64)
    migrated = np.zeros((tau, n_users), dtype=bool)
    latency = np.empty((tau, n_users))
    reward = np.empty((tau, n_users))
    policy.reset(ep)
    spent = 0.0
    for t in range(tau):
        obs = observe(ep, t, previous, queue[t])
        start = time.perf_counter()
        a = np.asarray(policy.act(obs), dtype=np.int64)
        spent += time.perf_counter() - start
        if a.shape != (n_users,) or a.min() < 0 or a.max() >= ep.n_candidates:
            raise OffloadingError(f"policy {policy.name} returned actions {a!r} for {n_users} users x N={ep.n_candidates}")
        actions[t] = a
        served[t] = ep.servers[t, users, a]
        migrated[t] = (served[t] != previous) & ((previous >= 0) | (not mig.first_slot_free))
        cost = eq.migration_cost(migrated[t], mig.cost)
        latency[t] = latency_all[t, users, a]
        counted = slot_cost(latency[t], ep.deadline_s[t], failure_penalty_s)
        reward[t] = eq.reward(counted, queue[t], cost, mig.latency_weight)
        queue[t + 1] = eq.deficit_queue_next(queue[t], cost, mig.cost, mig.budget_rate)
        previous = served[t]
    failed = latency > ep.deadline_s
    return Rollout(policy.name, view, ep, actions, served, migrated, latency, failed, queue, reward, spent)

r"""The offline oracle: the exact optimum of P1 (eq. 11) when the whole journey is known.

With the user's trajectory, tasks and the true server states of every slot known, P1 for one user is

    min_{e_1..e_tau}  sum_t c_t(e_t)   s.t.   sum_t h_t <= B = floor(beta tau),   e_t in E_t,

where ``c_t(e)`` is the per-slot cost (the latency capped at the deadline, as the metrics count it;
eq. 11b is kept as the cap: a task that misses its deadline counts its deadline, and never beats a
server that meets it) and ``h_t = 1`` when ``e_t != e_{t-1}``. The budget is exactly a count of
migrations: ``sum C h_t <= beta C tau`` with ``C > 0`` is ``sum h_t <= beta tau``, an integer on the left,
so ``floor(beta tau)`` loses nothing (:meth:`MigrationConfig.budget_migrations`).

Dynamic programming over (slot, candidate, migrations used). ``V_t[k, m]`` is the least cost of slots
``1..t`` ending on candidate ``k`` of slot ``t`` with *at most* ``m`` migrations:

    V_1[k, m] = c_1(k)                                           (m >= 0; the first attachment is free)
    V_t[k, m] = c_t(k) + min( V_{t-1}[stay(k), m],  min_j V_{t-1}[j, m - 1] )

``stay(k)`` is the candidate of slot ``t-1`` that is the same server as ``k`` (none if ``k`` was not a
candidate then). Exactness: every feasible sequence is one path of this recursion with at most ``m``
migrations counted, and the recursion only combines feasible prefixes. The ``min_j`` term also admits
``j = stay(k)`` counted as a migration; that path is never better than staying, because "at most"
makes ``V`` non-increasing in ``m`` (by induction: true at ``t = 1`` and kept by both terms), so
``V_{t-1}[stay(k), m] <= V_{t-1}[stay(k), m - 1]``. Cost: ``O(tau N B)`` per user, vectorised over users.

When even the fewest possible migrations exceed ``B`` (the user outruns its candidates), P1 has no
feasible point; the oracle then solves it with the budget raised to that minimum and says so
(``feasible``). :func:`brute_force_p1` enumerates all ``N^tau`` sequences for the tests.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from mobility_twin_models.offloading.errors import OffloadingError


@dataclass(frozen=True)
class OracleResult:
    """Per user: the optimal candidate indices (tau, U), objective (U,), migrations used (U,), budget (U,)."""

    actions: np.ndarray
    objective: np.ndarray
    migrations: np.ndarray
    budget: np.ndarray
    feasible: np.ndarray


def _stay_index(servers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For t >= 1: index j of slot t-1 holding the same server as candidate k of slot t, and whether it exists."""
    same = servers[1:, :, :, None] == servers[:-1, :, None, :]  # (tau-1, U, N_k, N_j)
    return same.argmax(-1), same.any(-1)


def min_migrations(servers: np.ndarray) -> np.ndarray:
    """(U,) the fewest migrations any feasible sequence needs (forced by candidates leaving the set)."""
    servers = np.asarray(servers)
    tau, n_users, n = servers.shape
    jstay, has = _stay_index(servers)
    m = np.zeros((n_users, n))
    rows = np.arange(n_users)[:, None]
    for t in range(1, tau):
        stay = np.where(has[t - 1], m[rows, jstay[t - 1]], np.inf)
        m = np.minimum(stay, m.min(axis=1, keepdims=True) + 1)
    return m.min(axis=1).astype(np.int64)


def solve_p1(cost: np.ndarray, servers: np.ndarray, budget: int) -> OracleResult:
    """Exact minimum of ``sum_t cost[t, u, e_t]`` with at most ``budget`` migrations, for every user ``u``.

    Args:
        cost: (tau, U, N) per-slot cost of each candidate (finite).
        servers: (tau, U, N) server index of each candidate (a migration is a change of server index).
        budget: B, the largest number of migrations (raised per user to the fewest possible, see module).
    """
    cost = np.asarray(cost, dtype=float)
    servers = np.asarray(servers)
    if cost.shape != servers.shape or cost.ndim != 3:
        raise OffloadingError(f"cost {cost.shape} and servers {servers.shape} must be the same (tau, U, N) shape")
    if not np.all(np.isfinite(cost)):
        raise OffloadingError("oracle costs must be finite (cap latencies at the deadline first)")
    if budget < 0:
        raise OffloadingError(f"budget must be >= 0 migrations, got {budget}")
    tau, n_users, n = cost.shape
    floor_m = min_migrations(servers)
    per_user = np.maximum(budget, floor_m)
    b = int(per_user.max())
    jstay, has = _stay_index(servers)
    rows = np.arange(n_users)[:, None]
    v = np.repeat(cost[0][:, :, None], b + 1, axis=2)  # (U, N, B+1)
    stay_taken = np.zeros((tau, n_users, n, b + 1), dtype=bool)
    came_from = np.zeros((tau, n_users, b + 1), dtype=np.int16)  # argmin_j V_{t-1}[j, m - 1]
    for t in range(1, tau):
        v_stay = np.where(has[t - 1][:, :, None], v[rows, jstay[t - 1]], np.inf)
        best_j = v.argmin(axis=1)  # (U, B+1)
        best_v = np.take_along_axis(v, best_j[:, None, :], axis=1)[:, 0]
        v_mig = np.full_like(v, np.inf)
        v_mig[:, :, 1:] = best_v[:, None, :-1]
        stay = v_stay <= v_mig
        stay_taken[t] = stay
        came_from[t, :, 1:] = best_j[:, :-1]
        v = cost[t][:, :, None] + np.where(stay, v_stay, v_mig)
    u = np.arange(n_users)
    m = per_user.copy()
    k = v[u, :, m].argmin(axis=1)
    objective = v[u, k, m]
    actions = np.empty((tau, n_users), dtype=np.int64)
    actions[-1] = k
    for t in range(tau - 1, 0, -1):
        s = stay_taken[t, u, k, m]
        k_prev = np.where(s, jstay[t - 1][u, k], came_from[t, u, m])
        m = np.where(s, m, m - 1)
        k = k_prev
        actions[t - 1] = k
    chosen = np.take_along_axis(servers, actions[..., None], axis=2)[..., 0]
    migrations = np.sum(chosen[1:] != chosen[:-1], axis=0)
    return OracleResult(actions, objective, migrations, per_user, floor_m <= budget)


def brute_force_p1(cost: np.ndarray, servers: np.ndarray, budget: int) -> tuple[float, tuple[int, ...]]:
    """Enumerate every sequence of one user (cost, servers: (tau, N)); the best within the budget.

    Returns ``(inf, ())`` when no sequence fits the budget. For tests: ``N ** tau`` sequences.
    """
    cost = np.asarray(cost, dtype=float)
    servers = np.asarray(servers)
    tau, n = cost.shape
    best, best_seq = np.inf, ()
    for seq in itertools.product(range(n), repeat=tau):
        chosen = servers[np.arange(tau), seq]
        if np.sum(chosen[1:] != chosen[:-1]) > budget:
            continue
        total = float(cost[np.arange(tau), seq].sum())
        if total < best - 1e-12:
            best, best_seq = total, seq
    return best, best_seq


def oracle_plan(episode, view: str = "true", *, failure_penalty_s: float = 0.0):
    """The oracle of an :class:`~mobility_twin_models.offloading.env.Episode` as a replayable policy, with its result."""
    from mobility_twin_models.offloading.rollout import Planned, slot_cost

    cost = slot_cost(episode.latency(view), episode.deadline_s[..., None], failure_penalty_s)
    budget = episode.config.migration.budget_migrations(episode.n_slots)
    result = solve_p1(cost, episode.servers, budget)
    return Planned(result.actions, "oracle"), result

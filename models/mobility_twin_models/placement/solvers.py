"""Placements without learning: the paper's three baselines (Sec. 5.3) and the exact optimum of P (eq. 18).

A placement is one host index per twin, ``hosts`` (M,), with ``0..S-1`` the edge servers and ``S`` the
cloud. Solvers take the per-twin cost table ``C`` (M, S + 1) of :func:`mobility_twin_models.placement.cost.twin_cost_table`
unless they need the instance itself (the MIP builds eq. 18 from the matrices of eq. 11-14).

Exact solvers, all returning a minimiser of Q:

* :func:`enumerate_optimum` tries all ``(S + 1)^M`` placements (the paper's decision space);
* :func:`mip_optimum` solves eq. 18 as a mixed-integer linear programme with HiGHS, the max of eq. 15
  linearised by one continuous ``tau_m >= T^t_n`` per device;
* :func:`separable_optimum` takes the per-twin argmin, exact because Q is a sum of per-twin terms.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass

import numpy as np

from mobility_twin_models.placement.config import SystemConfig
from mobility_twin_models.placement.cost import delay_matrices, placement_costs
from mobility_twin_models.placement.errors import PlacementError
from mobility_twin_models.placement.instance import Instance

# --- baselines (Sec. 5.3) -----------------------------------------------------------------------------


def random_placement(n_twins: int, n_hosts: int, rng: np.random.Generator) -> np.ndarray:
    """RO: every twin on a host drawn uniformly ("all the decisions ... chosen randomly with the same probability")."""
    return rng.integers(0, n_hosts, size=n_twins)


def cloud_only(n_twins: int, n_hosts: int) -> np.ndarray:
    """CO: every twin in the cloud (host ``S``)."""
    return np.full(n_twins, n_hosts - 1, dtype=np.int64)


def average_distribution(twin_workload_mb: np.ndarray, n_hosts: int) -> np.ndarray:
    """AD: "each server shares an average amount of workload".

    Our reading: the twins, largest total workload first, go one by one to the host (edge servers and the
    cloud alike) with the least workload so far (longest-processing-time-first balancing); ties go to
    the lower host index.
    """
    load = np.zeros(n_hosts)
    hosts = np.empty(len(twin_workload_mb), dtype=np.int64)
    for m in np.argsort(-np.asarray(twin_workload_mb), kind="stable"):
        s = int(np.argmin(load))
        hosts[m] = s
        load[s] += twin_workload_mb[m]
    return hosts


def twin_workloads(instance: Instance) -> np.ndarray:
    """(M,) total workload of each twin, MB."""
    return np.bincount(instance.owner, weights=instance.workload_mb, minlength=instance.n_twins)


# --- exact --------------------------------------------------------------------------------------------


def separable_optimum(table: np.ndarray) -> np.ndarray:
    """The per-twin argmin of the cost table: an optimum of P, since Q = sum_m C[m, host(m)]."""
    return np.asarray(table).argmin(axis=1)


def enumerate_optimum(table: np.ndarray, max_placements: int = 2_000_000, chunk: int = 65_536) -> np.ndarray:
    """The first (lexicographic) minimiser of Q among all ``(S + 1)^M`` placements.

    Raises:
        PlacementError: when ``(S + 1)^M`` exceeds ``max_placements``.
    """
    table = np.asarray(table)
    m, hosts = table.shape
    total = hosts**m
    if total > max_placements:
        raise PlacementError(f"enumeration needs (S+1)^M = {hosts}^{m} = {total} placements, over max_placements={max_placements}")
    best_cost, best = np.inf, None
    product = itertools.product(range(hosts), repeat=m)
    while True:
        block = np.fromiter(itertools.chain.from_iterable(itertools.islice(product, chunk)), dtype=np.int64)
        if block.size == 0:
            break
        block = block.reshape(-1, m)
        costs = placement_costs(table, block)
        i = int(np.argmin(costs))
        if costs[i] < best_cost:
            best_cost, best = costs[i], block[i].copy()
    return best


@dataclass(frozen=True)
class MipResult:
    """What HiGHS returned: the placement, its objective (Q) and the wall time of the solve."""

    hosts: np.ndarray
    objective: float
    seconds: float
    status: str


def mip_optimum(instance: Instance, system: SystemConfig, alpha: float, *, threads: int = 1,
                time_limit_s: float = 60.0) -> MipResult:
    r"""Solve P (eq. 18) exactly as a MILP with HiGHS.

    Variables: ``X[m, s]`` binary (eq. 18b) with ``sum_s X[m, s] = 1`` (eq. 18c), and ``tau_m >= 0``,
    the synchronisation time of twin m. The max of eq. 15 becomes, for every device n of twin m,
    ``tau_m >= sum_s X[m, s] psi_t[n, s]``; minimising a positive multiple of ``tau_m`` makes it equal to
    the max at the optimum. Objective (eq. 17 with eq. 14, 16):
    ``alpha sum_m ||I_m|| (tau_m + sum_s X[m, s] sum_{n in m} psi_c[n, s]) + (1 - alpha) sum_m sum_s X[m, s] sum_{n in m} xi[n, s]``.
    """
    import highspy

    if not 0.0 <= alpha <= 1.0:
        raise PlacementError(f"alpha must be in [0, 1], got {alpha!r}")
    psi_t, psi_c, xi = delay_matrices(instance, system)
    m, hosts = instance.n_twins, instance.servers.n_hosts
    sizes = instance.twin_sizes.astype(np.float64)
    exec_sum = np.zeros((m, hosts))
    np.add.at(exec_sum, instance.owner, psi_c)
    energy = np.zeros((m, hosts))
    np.add.at(energy, instance.owner, xi)
    n_x = m * hosts
    n_col = n_x + m  # X (row-major m, s), then tau
    cost = np.concatenate([(alpha * sizes[:, None] * exec_sum + (1.0 - alpha) * energy).ravel(), alpha * sizes])

    starts, index, value, lower, upper = [0], [], [], [], []
    for t in range(m):  # eq. 18c
        index += list(range(t * hosts, (t + 1) * hosts))
        value += [1.0] * hosts
        starts.append(len(index))
        lower.append(1.0)
        upper.append(1.0)
    for n in range(instance.n_devices):  # tau_m - sum_s psi_t[n, s] X[m, s] >= 0
        t = int(instance.owner[n])
        index += [n_x + t, *range(t * hosts, (t + 1) * hosts)]
        value += [1.0, *(-psi_t[n]).tolist()]
        starts.append(len(index))
        lower.append(0.0)
        upper.append(np.inf)

    lp = highspy.HighsLp()
    lp.num_col_ = n_col
    lp.num_row_ = len(lower)
    lp.col_cost_ = cost
    lp.col_lower_ = np.zeros(n_col)
    lp.col_upper_ = np.concatenate([np.ones(n_x), np.full(m, np.inf)])
    lp.row_lower_ = np.asarray(lower)
    lp.row_upper_ = np.asarray(upper)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
    lp.a_matrix_.start_ = np.asarray(starts, dtype=np.int32)
    lp.a_matrix_.index_ = np.asarray(index, dtype=np.int32)
    lp.a_matrix_.value_ = np.asarray(value, dtype=np.float64)
    lp.integrality_ = [highspy.HighsVarType.kInteger] * n_x + [highspy.HighsVarType.kContinuous] * m

    solver = highspy.Highs()
    solver.silent()
    solver.setOptionValue("threads", threads)
    solver.setOptionValue("time_limit", float(time_limit_s))
    solver.setOptionValue("mip_rel_gap", 1e-9)
    solver.setOptionValue("mip_abs_gap", 1e-9)
    solver.passModel(lp)
    start = time.perf_counter()
    solver.run()
    seconds = time.perf_counter() - start
    status = solver.modelStatusToString(solver.getModelStatus())
    if solver.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        raise PlacementError(f"HiGHS did not prove optimality: status {status!r}")
    x = np.asarray(solver.getSolution().col_value[:n_x]).reshape(m, hosts)
    return MipResult(x.argmax(axis=1), float(solver.getInfo().objective_function_value), seconds, status)


def solve_exact(instance: Instance, system: SystemConfig, alpha: float, table: np.ndarray | None = None,
                *, max_placements: int = 200_000) -> np.ndarray:
    """An optimum of P: enumeration when ``(S + 1)^M <= max_placements``, else the HiGHS MILP."""
    hosts = instance.servers.n_hosts
    if hosts**instance.n_twins <= max_placements:
        if table is None:
            from mobility_twin_models.placement.cost import twin_cost_table

            table = twin_cost_table(instance, system, alpha)
        return enumerate_optimum(table, max_placements=max_placements)
    return mip_optimum(instance, system, alpha).hosts


# --- refinement ---------------------------------------------------------------------------------------


def refine_single_moves(table: np.ndarray, hosts: np.ndarray, max_sweeps: int = 10) -> np.ndarray:
    """Local search from ``hosts``: move one twin at a time to its best host while Q drops.

    Beyond the paper. On the paper's cost (a sum of per-twin terms) one sweep reaches the optimum; it is
    kept separate from :func:`separable_optimum` so that a DDL decision plus refinement is reported as
    what it is.
    """
    table = np.asarray(table)
    hosts = np.asarray(hosts, dtype=np.int64).copy()
    rows = np.arange(table.shape[0])
    for _ in range(max_sweeps):
        best = table.argmin(axis=1)
        better = table[rows, best] < table[rows, hosts] - 1e-12
        if not better.any():
            break
        hosts[better] = best[better]
    return hosts

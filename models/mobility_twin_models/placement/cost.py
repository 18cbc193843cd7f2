r"""The cost model of Zhang et al., eq. 1-17, in the units of :mod:`mobility_twin_models.placement.config`.

Per device ``n`` and host ``s`` (edge servers ``0..S-1``, cloud ``S``):

* eq. 1  ``T^c_{t,n} = w_n / (b_n gamma)``               cloud transmission, s
* eq. 2  ``T^c_{c,n} = delta w_n / f_c``                 cloud execution, s
* eq. 3  ``E^c_n = e^c_t w_n + theta_c delta w_n``       cloud energy, mJ
* eq. 4  ``p_{ns} = lambda / ||L_n - L_s||``             edge rate, MB/s
* eq. 5  ``T^e_{t,ns} = w_n ||L_n - L_s|| / lambda``     edge transmission, s
* eq. 6  ``T^e_{c,ns} = delta w_n / f^s_e``              edge execution, s
* eq. 7  ``E^e_{ns} = e^e_t w_n + theta^s_e delta w_n``  edge energy, mJ

stacked into the rows ``psi^t_n``, ``psi^c_n``, ``xi_n`` (eq. 11-13). With the ownership ``G`` (eq. 8)
and the one-hot placement ``X`` (eq. 9), ``D = G X`` (eq. 10) and

* eq. 11-12  ``T^t_n = G_n X psi^t_n``, ``T^c_n = G_n X psi^c_n``
* eq. 13-14  ``E = sum_m sum_{n in m} G_n X xi_n``
* eq. 15     ``T^t_m = max_{n in m} T^t_n``: a twin synchronises when its slowest device has uploaded
* eq. 16     ``T = sum_m ||I_m|| (T^t_m + sum_{n in m} T^c_n)``
* eq. 17     ``Q = alpha T + (1 - alpha) E``

Nothing in eq. 16-18 couples two twins (no server capacity, no shared bandwidth): ``Q`` is a sum of
per-twin terms ``C[m, s]`` (:func:`twin_cost_table`), so the minimum of problem P (eq. 18) is the
per-twin argmin. The paper calls P NP-hard; under its own model it is not. The matrix form below is
the paper's; the table form is what solvers and the DDL use to score many decisions at once.
"""

from __future__ import annotations

import numpy as np

from mobility_twin_models.placement.config import SystemConfig
from mobility_twin_models.placement.errors import PlacementError
from mobility_twin_models.placement.instance import Instance

# --- eq. 1-7: one device, one host -------------------------------------------------------------------


def cloud_transmission_time(w_mb, system: SystemConfig):
    """Eq. 1: ``w / (b gamma)``, seconds."""
    return np.asarray(w_mb, dtype=np.float64) / (system.bandwidth_mb_per_s * system.gamma)


def cloud_execution_time(w_mb, system: SystemConfig, cloud_freq_ghz: float | None = None):
    """Eq. 2: ``delta w / f_c``, seconds."""
    f = system.cloud_freq_ghz if cloud_freq_ghz is None else cloud_freq_ghz
    return system.delta_ginstr_per_mb * np.asarray(w_mb, dtype=np.float64) / f


def cloud_energy(w_mb, system: SystemConfig):
    """Eq. 3: ``e^c_t w + theta_c delta w``, mJ."""
    w = np.asarray(w_mb, dtype=np.float64)
    return system.e_t_cloud_mj_per_mb * w + system.theta_cloud_mj * system.delta_ginstr_per_mb * w


def edge_rate(distance_m, system: SystemConfig):
    """Eq. 4: ``lambda / ||L_n - L_s||``, MB/s (infinite at distance 0)."""
    d = np.asarray(distance_m, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return system.lam_mb_m_per_s / d


def edge_transmission_time(w_mb, distance_m, system: SystemConfig):
    """Eq. 5: ``w ||L_n - L_s|| / lambda``, seconds."""
    return np.asarray(w_mb, dtype=np.float64) * np.asarray(distance_m, dtype=np.float64) / system.lam_mb_m_per_s


def edge_execution_time(w_mb, edge_freq_ghz, system: SystemConfig):
    """Eq. 6: ``delta w / f^s_e``, seconds."""
    return system.delta_ginstr_per_mb * np.asarray(w_mb, dtype=np.float64) / np.asarray(edge_freq_ghz, dtype=np.float64)


def edge_energy(w_mb, system: SystemConfig):
    """Eq. 7: ``e^e_t w + theta^s_e delta w``, mJ (the same on every edge server)."""
    w = np.asarray(w_mb, dtype=np.float64)
    return system.e_t_edge_mj_per_mb * w + system.theta_edge_mj * system.delta_ginstr_per_mb * w


# --- eq. 8-12: the matrices ---------------------------------------------------------------------------


def distances(instance: Instance) -> np.ndarray:
    """(N, S) ``||L_n - L_s||``, metres."""
    diff = instance.xy_m[:, None, :] - instance.servers.edge_xy_m[None, :, :]
    return np.sqrt((diff**2).sum(-1))


def delay_matrices(instance: Instance, system: SystemConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(psi_t, psi_c, xi)``, each (N, S + 1): transmission time, execution time (s), energy (mJ) per host."""
    w = instance.workload_mb
    servers = instance.servers
    psi_t = np.column_stack([edge_transmission_time(w[:, None], distances(instance), system),
                             cloud_transmission_time(w, system)])
    psi_c = np.column_stack([edge_execution_time(w[:, None], servers.edge_freq_ghz[None, :], system),
                             cloud_execution_time(w, system, servers.cloud_freq_ghz)])
    e_edge = edge_energy(w, system)
    xi = np.column_stack([np.repeat(e_edge[:, None], servers.n_edge, axis=1), cloud_energy(w, system)])
    return psi_t, psi_c, xi


def ownership_matrix(instance: Instance) -> np.ndarray:
    """Eq. 8: ``G`` (N, M), ``G[n, m] = 1`` when device n belongs to twin m."""
    g = np.zeros((instance.n_devices, instance.n_twins))
    g[np.arange(instance.n_devices), instance.owner] = 1.0
    return g


def placement_matrix(hosts, n_hosts: int) -> np.ndarray:
    """Eq. 9: the one-hot ``X`` (M, S + 1) of a placement given as one host index per twin."""
    hosts = np.asarray(hosts, dtype=np.int64)
    if hosts.ndim != 1 or (hosts.size and (hosts.min() < 0 or hosts.max() >= n_hosts)):
        raise PlacementError(f"a placement is one host index in [0, {n_hosts}) per twin, got {hosts.tolist()}")
    x = np.zeros((hosts.size, n_hosts))
    x[np.arange(hosts.size), hosts] = 1.0
    return x


def _check_placement(x: np.ndarray, instance: Instance) -> None:
    shape = (instance.n_twins, instance.servers.n_hosts)
    if x.shape != shape:
        raise PlacementError(f"X must have shape {shape} (twins x hosts), got {x.shape}")
    if not (np.all((x == 0) | (x == 1)) and np.all(x.sum(1) == 1)):
        raise PlacementError("X must be one-hot per twin (eq. 18b-c)")


def device_decisions(instance: Instance, x: np.ndarray) -> np.ndarray:
    """Eq. 10: ``D = G X`` (N, S + 1), the host of every device."""
    _check_placement(x, instance)
    return ownership_matrix(instance) @ x


# --- eq. 13-17: the cost of a placement ---------------------------------------------------------------


def system_energy(instance: Instance, system: SystemConfig, x: np.ndarray) -> float:
    """Eq. 14 (summing eq. 13 over twins): total energy, mJ."""
    _, _, xi = delay_matrices(instance, system)
    return float((device_decisions(instance, x) * xi).sum())


def twin_energy(instance: Instance, system: SystemConfig, x: np.ndarray) -> np.ndarray:
    """Eq. 13: (M,) energy of each twin, mJ."""
    _, _, xi = delay_matrices(instance, system)
    per_device = (device_decisions(instance, x) * xi).sum(1)
    return np.bincount(instance.owner, weights=per_device, minlength=instance.n_twins)


def twin_times(instance: Instance, system: SystemConfig, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eq. 15 and the group time below it: ``(T^t_m, T_m)``, each (M,), seconds.

    ``T^t_m`` is the upload time of the twin's slowest device; ``T_m = ||I_m|| (T^t_m + sum T^c_n)``.
    A twin without devices costs nothing.
    """
    psi_t, psi_c, _ = delay_matrices(instance, system)
    d = device_decisions(instance, x)
    t_t = (d * psi_t).sum(1)  # eq. 11
    t_c = (d * psi_c).sum(1)  # eq. 12
    sync = np.zeros(instance.n_twins)
    np.maximum.at(sync, instance.owner, t_t)
    exec_sum = np.bincount(instance.owner, weights=t_c, minlength=instance.n_twins)
    return sync, instance.twin_sizes * (sync + exec_sum)


def system_time(instance: Instance, system: SystemConfig, x: np.ndarray) -> float:
    """Eq. 16: ``T``, seconds."""
    return float(twin_times(instance, system, x)[1].sum())


def system_cost(instance: Instance, system: SystemConfig, x: np.ndarray, alpha: float) -> float:
    """Eq. 17: ``Q = alpha T + (1 - alpha) E`` of the one-hot placement ``x`` (M, S + 1)."""
    if not 0.0 <= alpha <= 1.0:
        raise PlacementError(f"alpha must be in [0, 1], got {alpha!r}")
    return alpha * system_time(instance, system, x) + (1.0 - alpha) * system_energy(instance, system, x)


# --- the same cost as a per-twin table -----------------------------------------------------------------


def twin_cost_table(instance: Instance, system: SystemConfig, alpha: float) -> np.ndarray:
    """(M, S + 1) ``C[m, s]``: twin m's share of Q when it is placed on host s.

    ``C[m, s] = alpha ||I_m|| (max_{n in m} psi_t[n, s] + sum_{n in m} psi_c[n, s]) + (1 - alpha) sum_{n in m} xi[n, s]``
    and ``Q(X) = sum_m C[m, host(m)]`` for every placement (eq. 16-17 regrouped by twin).
    """
    if not 0.0 <= alpha <= 1.0:
        raise PlacementError(f"alpha must be in [0, 1], got {alpha!r}")
    psi_t, psi_c, xi = delay_matrices(instance, system)
    m, hosts = instance.n_twins, instance.servers.n_hosts
    sync = np.zeros((m, hosts))
    np.maximum.at(sync, instance.owner, psi_t)
    exec_sum = np.zeros((m, hosts))
    np.add.at(exec_sum, instance.owner, psi_c)
    energy = np.zeros((m, hosts))
    np.add.at(energy, instance.owner, xi)
    sizes = instance.twin_sizes[:, None]
    return alpha * sizes * (sync + exec_sum) + (1.0 - alpha) * energy


def placement_costs(table: np.ndarray, hosts: np.ndarray) -> np.ndarray:
    """Q of one or many placements from a cost table: ``hosts`` (..., M) -> (...)."""
    hosts = np.asarray(hosts, dtype=np.int64)
    return np.take_along_axis(np.broadcast_to(table, (*hosts.shape[:-1], *table.shape)),
                              hosts[..., None], axis=-1)[..., 0].sum(-1)

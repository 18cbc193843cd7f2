r"""The equations of the DITEN model (Sun et al., Sec. III-IV), one function each, vectorised with numpy.

* eq. 3   ``C(e_t) = h_t C``                                       migration cost
* eq. 4   ``T^com = T_u^com(b_t) + T_p^com(e_t)``                   communication latency
* eq. 5   ``T_u^com = eta / (W log2(1 + SINR))``                     wireless uplink
* eq. 6   ``SINR = p d^-alpha / (sigma^2 + sum_j p_j d_j^-alpha)``   uplink SINR at the access station
* eq. 7   ``T_p^com = psi d_e``                                      wired latency to the serving server
* eq. 8   ``T~^cmp = lambda / f``                                    computation latency the twin estimates
* eq. 9   ``G^cmp = -lambda f_hat / (f (f + f_hat))``                 gap between estimate and truth
* eq. 10  ``T^cmp = T~^cmp + G^cmp`` (= ``lambda / (f + f_hat)``)      actual computation latency
* eq. 11  ``T^glob = T^com + T^cmp``; P1 minimises its sum s.t. sum C h_t <= beta C tau
* eq. 12  ``Q(t+1) = max(Q(t) + C(e_t) - beta C, 0)``               migration-cost deficit queue
* eq. 16  ``R_t = -v T^glob(e_t) - Q(t) C(e_t)``                     reward (and the P2 summand, eq. 13)

Units: bits, cycles, Hz, W, m, s.
"""

from __future__ import annotations

import numpy as np


def migration_cost(migrated, cost: float):
    """Eq. 3: ``h_t C`` with ``h_t`` 1 when the serving server changed."""
    return np.asarray(migrated, dtype=float) * cost


def sinr(tx_power_w, distance_m, interference_w, noise_w: float, path_loss_exponent: float,
         min_distance_m: float = 1.0):
    """Eq. 6 with the interference sum already taken: ``p d^-alpha / (sigma^2 + I)``."""
    d = np.maximum(np.asarray(distance_m, dtype=float), min_distance_m)
    return np.asarray(tx_power_w, dtype=float) * d ** (-path_loss_exponent) / (noise_w + np.asarray(interference_w))


def received_power(tx_power_w, distance_m, path_loss_exponent: float, min_distance_m: float = 1.0):
    """``p d^-alpha``, the received power of one transmitter (the terms of eq. 6)."""
    d = np.maximum(np.asarray(distance_m, dtype=float), min_distance_m)
    return np.asarray(tx_power_w, dtype=float) * d ** (-path_loss_exponent)


def uplink_latency(size_bits, bandwidth_hz: float, sinr_value):
    """Eq. 5: ``eta / (W log2(1 + SINR))``, seconds."""
    return np.asarray(size_bits, dtype=float) / (bandwidth_hz * np.log2(1.0 + np.asarray(sinr_value, dtype=float)))


def wired_latency(distance_m, s_per_m: float):
    """Eq. 7: ``psi d_e``, seconds."""
    return s_per_m * np.asarray(distance_m, dtype=float)


def communication_latency(uplink_s, wired_s):
    """Eq. 4: wireless uplink to the access station plus wired latency to the serving server."""
    return np.asarray(uplink_s, dtype=float) + np.asarray(wired_s, dtype=float)


def estimated_computation_latency(cycles, f_est_hz):
    """Eq. 8: ``lambda / f``, the computation latency the server's twin predicts."""
    return np.asarray(cycles, dtype=float) / np.asarray(f_est_hz, dtype=float)


def computation_gap(cycles, f_est_hz, deviation_hz):
    """Eq. 9: ``-lambda f_hat / (f (f + f_hat))``, the true minus the estimated computation latency."""
    f = np.asarray(f_est_hz, dtype=float)
    dev = np.asarray(deviation_hz, dtype=float)
    return -np.asarray(cycles, dtype=float) * dev / (f * (f + dev))


def computation_latency(cycles, f_est_hz, deviation_hz):
    """Eq. 10: eq. 8 plus eq. 9."""
    return estimated_computation_latency(cycles, f_est_hz) + computation_gap(cycles, f_est_hz, deviation_hz)


def offloading_latency(uplink_s, wired_s, cycles, f_est_hz, deviation_hz):
    """``T^glob = T^com + T^cmp`` (Sec. III-E), seconds."""
    return communication_latency(uplink_s, wired_s) + computation_latency(cycles, f_est_hz, deviation_hz)


def deficit_queue_next(queue, migration_cost_now, cost: float, budget_rate: float):
    """Eq. 12: ``max(Q + C(e_t) - beta C, 0)``."""
    return np.maximum(np.asarray(queue, dtype=float) + np.asarray(migration_cost_now, dtype=float)
                      - budget_rate * cost, 0.0)


def reward(latency_s, queue, migration_cost_now, latency_weight: float):
    """Eq. 16: ``-v T^glob - Q(t) C(e_t)``."""
    return -latency_weight * np.asarray(latency_s, dtype=float) - np.asarray(queue, dtype=float) * np.asarray(
        migration_cost_now, dtype=float)


def deficit_queue_trace(migrated, cost: float, budget_rate: float, q0: float = 0.0) -> np.ndarray:
    """``Q(1..tau+1)`` for a sequence of migration indicators (eq. 12 iterated); ``Q(1) = q0``."""
    h = np.asarray(migrated, dtype=float)
    out = np.empty(h.shape[0] + 1, dtype=float)
    out[0] = q0
    for t in range(h.shape[0]):
        out[t + 1] = max(out[t] + h[t] * cost - budget_rate * cost, 0.0)
    return out

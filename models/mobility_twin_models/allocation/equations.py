r"""The equations of both allocation settings, one function each, vectorised with numpy.

**VR setting** (Yu et al., "Bi-directional digital twin and edge computing in the metaverse", Sec. IV-D,
with the QoE model of its reference [15]). User ``u`` is rendered a group of pictures (GOP) of
``D_u(r)`` bits at resolution level ``r`` on a share ``c_u`` of the server's CPU ``F`` and downloads it on a
share ``b_u`` of the bandwidth ``B``:

* rendering latency   ``T^ren_u = kappa D_u(r) / (c_u F)``            (cycles ``kappa D`` on ``c_u F`` Hz)
* downloading latency ``T^dl_u  = D_u(r) / (b_u B)``
* latency             ``T_u = T^ren_u + T^dl_u``; delivered in time iff ``T_u <= T_th`` (150 ms)
* resolution score    ``s_r = ln(p_r / p_0) / ln(p_max / p_0)``        (Weber-Fechner: perceived quality grows
  with the logarithm of the pixel count ``p_r``; ``p_0`` the resolution perceived as worthless)
* perceived quality   ``V_u = 1 - a_u (1 - s_r)``                       (attention ``a_u`` in [0, 1]: content the
  user does not look at is not judged on its resolution; content the user attends to is judged fully)
* QoE                 ``Q_u = 1[T_u <= T_th] (w_v V_u + w_l (1 - T_u / T_th))``, in [0, 1]
* horizon fairness    ``hfQoE = (sum_u Qbar_u)^2 / (U sum_u Qbar_u^2)`` (Jain's index of each user's mean QoE
  over the last ``H`` DT updates); the constraint is ``hfQoE >= hfQoE_th`` (0.97)
* reward              ``R = mean_u Q_u - rho max(0, hfQoE_th - hfQoE)``

**Vehicular setting** (DITEN, Sun et al., eq. 4-10 and Table II). Vehicle ``i`` uploads a task of ``eta_i``
bits on a share ``beta_i`` of the cell's uplink band ``W`` and has its ``lambda_i`` cycles computed on a share
``phi_i`` of the server's frequency ``F``:

* uplink              ``T^up_i = eta_i / (beta_i W log2(1 + SINR_i))``  (eq. 5, the band shared by FDMA)
* computation         ``T^cmp_i = lambda_i / (phi_i F)``                (eq. 8)
* latency             ``T_i = T^up_i + psi d_i + T^cmp_i``              (eq. 4, 7, 10); success iff ``T_i <= gamma_i``
* a task not finished by its deadline is dropped there: its latency counts as ``gamma_i`` (so, as in
  DITEN's Fig. 5, the mean latency of an overloaded server tends to the mean deadline)
* utility             ``U = (1/N) sum_i 1[T_i <= gamma_i] (1 + w_l (1 - T_i / gamma_i)) / (1 + w_l)``, in [0, 1]

Both latencies have the form ``A_i / x_i + B_i / y_i (+ const)`` with two shared resources ``x`` and ``y``;
:mod:`.exact` solves the per-update allocation problem of that form exactly.

Units: bits, cycles, Hz, bit/s, s.
"""

from __future__ import annotations

import numpy as np


def _share_latency(work, share, capacity):
    """``work / (share capacity)`` with ``inf`` where the share is 0 and ``0`` where the work is 0."""
    work = np.asarray(work, dtype=float)
    rate = np.asarray(share, dtype=float) * capacity
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(work > 0, work / rate, 0.0)
    return np.where((work > 0) & ~(rate > 0), np.inf, out)


# ------------------------------------------------------------------------------------------------ VR


def rendering_latency(gop_bits, cycles_per_bit: float, cpu_share, cpu_hz: float):
    """``kappa D / (c F)``, seconds."""
    return _share_latency(np.asarray(gop_bits, dtype=float) * cycles_per_bit, cpu_share, cpu_hz)


def downloading_latency(gop_bits, bandwidth_share, bandwidth_bps: float):
    """``D / (b B)``, seconds."""
    return _share_latency(gop_bits, bandwidth_share, bandwidth_bps)


def resolution_score(pixels, reference_pixels: float):
    """``s_r = ln(p_r / p_0) / ln(p_max / p_0)`` over the levels ``pixels`` (increasing): 1 at the top level."""
    p = np.asarray(pixels, dtype=float)
    return np.log(p / reference_pixels) / np.log(p[-1] / reference_pixels)


def perceived_quality(attention, score):
    """``V = 1 - a (1 - s)``: attention ``a`` in [0, 1], resolution score ``s`` in [0, 1]."""
    return 1.0 - np.asarray(attention, dtype=float) * (1.0 - np.asarray(score, dtype=float))


def vr_qoe(latency_s, quality, threshold_s: float, quality_weight: float, latency_weight: float):
    """``1[T <= T_th] (w_v V + w_l (1 - T / T_th))``; 0 for a GOP delivered late."""
    t = np.asarray(latency_s, dtype=float)
    on_time = t <= threshold_s
    value = quality_weight * np.asarray(quality, dtype=float) + latency_weight * (1.0 - np.minimum(t, threshold_s)
                                                                               / threshold_s)
    return np.where(on_time, value, 0.0)


def jain_index(values, axis: int = -1):
    """Jain's fairness index ``(sum x)^2 / (n sum x^2)`` along ``axis``: 1 when all equal, 1/n when one has all.
    All zeros count as fair (1)."""
    x = np.asarray(values, dtype=float)
    n = x.shape[axis]
    num = np.sum(x, axis=axis) ** 2
    den = n * np.sum(x * x, axis=axis)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), 1.0)


def vr_reward(qoe, hf_qoe, threshold: float, fairness_penalty: float):
    """``mean_u Q_u - rho max(0, hfQoE_th - hfQoE)`` (the last axis of ``qoe`` is the user)."""
    return np.mean(np.asarray(qoe, dtype=float), axis=-1) - fairness_penalty * np.maximum(
        0.0, threshold - np.asarray(hf_qoe, dtype=float))


# ------------------------------------------------------------------------------------------------ vehicular


def spectral_efficiency(sinr):
    """``log2(1 + SINR)``, bit/s/Hz (Shannon, DITEN eq. 5)."""
    return np.log2(1.0 + np.asarray(sinr, dtype=float))


def uplink_latency(size_bits, bandwidth_share, bandwidth_hz: float, spectral_eff):
    """DITEN eq. 5 on a share of the band: ``eta / (beta W log2(1 + SINR))``, seconds."""
    rate = np.asarray(bandwidth_share, dtype=float) * bandwidth_hz * np.asarray(spectral_eff, dtype=float)
    return _share_latency(size_bits, rate, 1.0)


def computation_latency(cycles, cpu_share, cpu_hz: float):
    """DITEN eq. 8 on a share of the server: ``lambda / (phi F)``, seconds."""
    return _share_latency(cycles, cpu_share, cpu_hz)


def task_latency(size_bits, cycles, spectral_eff, wired_s, bandwidth_share, cpu_share, bandwidth_hz: float,
                 cpu_hz: float):
    """``T = T^up + psi d + T^cmp`` (DITEN eq. 4-10), seconds; ``inf`` for a task given no share."""
    return (uplink_latency(size_bits, bandwidth_share, bandwidth_hz, spectral_eff) + np.asarray(wired_s, dtype=float)
            + computation_latency(cycles, cpu_share, cpu_hz))


def dropped_latency(latency_s, deadline_s):
    """The latency a task counts with: its latency if it made its deadline, else the deadline (dropped)."""
    return np.minimum(np.asarray(latency_s, dtype=float), np.asarray(deadline_s, dtype=float))


def task_utility(latency_s, deadline_s, latency_weight: float):
    """Per task: ``1[T <= gamma] (1 + w_l (1 - T / gamma)) / (1 + w_l)`` in [0, 1]."""
    t = np.asarray(latency_s, dtype=float)
    g = np.asarray(deadline_s, dtype=float)
    ok = t <= g
    return np.where(ok, (1.0 + latency_weight * (1.0 - np.minimum(t, g) / g)) / (1.0 + latency_weight), 0.0)

"""The QoE, fairness and task equations against hand computations."""

import math

import numpy as np
import pytest

from mobility_twin_models.allocation import equations as eq
from mobility_twin_models.allocation.config import VRConfig
from mobility_twin_models.allocation.exact import VRDecision
from mobility_twin_models.allocation.vr import FairnessWindow, VRTrace, vr_outcome


def test_vr_latency_quality_and_qoe_by_hand():
    # 300 kbit rendered at 700 cycles/bit on 0.25 of 15 GHz: 2.1e8 / 3.75e9 = 56 ms;
    # downloaded on 0.5 of 10 Mbps: 3e5 / 5e6 = 60 ms
    ren = eq.rendering_latency(3e5, 700.0, 0.25, 15e9)
    dl = eq.downloading_latency(3e5, 0.5, 10e6)
    assert ren == pytest.approx(0.056)
    assert dl == pytest.approx(0.060)
    # resolution scores against 720p: ln(p/p0) / ln(p_max/p0)
    pixels = np.array([1920 * 1080, 2560 * 1440, 3840 * 2160], dtype=float)
    score = eq.resolution_score(pixels, 1280 * 720)
    assert score == pytest.approx([math.log(2.25) / math.log(9.0), math.log(4.0) / math.log(9.0), 1.0])
    # attention 0.8 at 2K: V = 1 - 0.8 (1 - 0.6309) = 0.7047
    v = eq.perceived_quality(0.8, score[1])
    assert v == pytest.approx(1 - 0.8 * (1 - math.log(4.0) / math.log(9.0)))
    # QoE = 0.7 V + 0.3 (1 - 0.116 / 0.150)
    q = eq.vr_qoe(ren + dl, v, 0.150, 0.7, 0.3)
    assert q == pytest.approx(0.7 * v + 0.3 * (1 - 0.116 / 0.150))
    # late: 0
    assert eq.vr_qoe(0.151, 1.0, 0.150, 0.7, 0.3) == 0.0
    assert eq.vr_qoe(0.150, 1.0, 0.150, 0.7, 0.3) == pytest.approx(0.7)


def test_no_share_means_never_delivered():
    assert eq.downloading_latency(1e5, 0.0, 10e6) == math.inf
    assert eq.downloading_latency(0.0, 0.0, 10e6) == 0.0


def test_jain_index_by_hand():
    assert eq.jain_index([0.5, 0.5, 0.5, 0.5]) == pytest.approx(1.0)
    assert eq.jain_index([1.0, 0.0, 0.0, 0.0]) == pytest.approx(0.25)
    # (0.6 + 0.6 + 0.6 + 0.5)^2 / (4 (3 * 0.36 + 0.25)) = 5.29 / 5.32
    assert eq.jain_index([0.6, 0.6, 0.6, 0.5]) == pytest.approx(5.29 / 5.32)
    assert eq.jain_index([0.0, 0.0]) == 1.0


def test_horizon_fairness_window_is_jain_of_the_users_means_over_the_horizon():
    w = FairnessWindow(users=2, horizon=3)
    for q in ([1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]):  # the first falls out of the 3-update horizon
        w.push(np.array(q))
    assert w.means() == pytest.approx([1 / 3, 2 / 3])
    assert eq.jain_index(w.means()) == pytest.approx(1.0 / (2 * (1 / 9 + 4 / 9)))
    # hf_with: the oldest kept update ([1, 0], the second pushed) leaves and [0.5, 0.5] comes in
    hf = w.hf_with(np.array([0.5, 0.5]))
    means = np.array([[0.0, 1.0], [0.0, 1.0], [0.5, 0.5]]).mean(axis=0)
    assert hf == pytest.approx(means.sum() ** 2 / (2 * (means ** 2).sum()))


def test_vr_reward_penalises_unfairness_and_late_gops():
    cfg = VRConfig()
    trace = VRTrace(cfg, 5, seed=1)
    p = trace.problem(0)
    w = FairnessWindow(cfg.users, cfg.fairness_horizon)
    starve = VRDecision(np.zeros(4, dtype=np.int64), np.array([1.0, 0.0, 0.0, 0.0]), np.array([1.0, 0.0, 0.0, 0.0]))
    out = vr_outcome(cfg, p, starve, w)
    assert out.success.tolist() == [True, False, False, False]
    assert out.qoe[1:].tolist() == [0.0, 0.0, 0.0]
    assert out.hf_qoe == pytest.approx(0.25)
    expected = out.qoe.mean() - cfg.fairness_penalty * (cfg.fairness_threshold - 0.25) - cfg.late_penalty * 0.75
    assert out.reward == pytest.approx(expected)


def test_task_latency_and_utility_by_hand():
    # 5.6 Mbit on 0.5 of 20 MHz at 8 bit/s/Hz: 5.6e6 / 8e7 = 70 ms; 2 ms wired;
    # 1.68e9 cycles on 0.5 of 20 GHz: 168 ms -> 240 ms
    lat = eq.task_latency(5.6e6, 1.68e9, 8.0, 0.002, 0.5, 0.5, 20e6, 20e9)
    assert lat == pytest.approx(0.240)
    assert eq.task_utility(lat, 0.25, 0.5) == pytest.approx((1 + 0.5 * (1 - 0.24 / 0.25)) / 1.5)
    assert eq.task_utility(lat, 0.20, 0.5) == 0.0
    assert eq.dropped_latency(lat, 0.20) == pytest.approx(0.20)
    assert eq.spectral_efficiency(255.0) == pytest.approx(8.0)

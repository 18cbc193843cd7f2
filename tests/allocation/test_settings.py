"""The two settings' worlds and learners' views: vehicles come and go, regimes apply, decoding and the
twin's shields behave as documented, and the paper's benchmarks decide as the paper says."""

import itertools

import numpy as np
import pytest

from mobility_twin_models.allocation import (
    NORMAL,
    RUSH_HOUR,
    SLOW_SERVER,
    AllocationError,
    Regime,
    ServerProblem,
    SiteConfig,
    SiteFeatures,
    SiteTrace,
    VRConfig,
    VRFeatures,
    VRTrace,
)
from mobility_twin_models.allocation.exact import spectral_radius
from mobility_twin_models.allocation.site import equal_share, exact_shares, shield_deadlines, slot_outcome
from mobility_twin_models.allocation.vr import FairnessWindow, adaptive_average, two_k_average


def test_vehicles_join_and_leave_and_regimes_apply():
    regimes = ((0, NORMAL), (300, SLOW_SERVER), (600, RUSH_HOUR))
    trace = SiteTrace(SiteConfig(), 900, regimes, seed=4)
    ids = [set(v.tolist()) for v in trace.vehicle_ids]
    assert any(a - b for a, b in itertools.pairwise(ids))  # someone left
    assert any(b - a for a, b in itertools.pairwise(ids))  # someone joined
    cpu = np.array([p.cpu_hz for p in trace.problems])
    assert 15e9 <= cpu[0] <= 25e9
    assert cpu[300] == pytest.approx(0.6 * cpu[0])
    n = np.array([p.n for p in trace.problems])
    assert n[650:].mean() > n[:300].mean()  # rush hour: twice the arrivals
    assert trace.regime_names[0] == "normal" and trace.regime_names[-1] == "rush_hour"
    p = trace.problem(100)
    assert np.all((p.deadline_s >= 0.15) & (p.deadline_s <= 0.25))
    assert np.all((p.size_bits >= 8 * 600e3) & (p.size_bits <= 8 * 800e3))


def test_a_bad_regime_schedule_is_refused():
    with pytest.raises(AllocationError, match="regimes"):
        SiteTrace(SiteConfig(), 10, ((5, NORMAL),))


def _problem(n, cpu=20e9):
    rng = np.random.default_rng(n)
    size = 8 * rng.uniform(600e3, 800e3, n)
    return ServerProblem(size, size * 300.0, rng.uniform(0.15, 0.25, n), rng.uniform(6, 10, n), np.zeros(n), 20e6,
                         cpu, 0.5)


def test_the_deadline_shield_frees_the_resources_of_tasks_predicted_late():
    p = _problem(4)
    bw, cpu = equal_share(p)
    assert not slot_outcome(p, bw, cpu).success.any()  # four Table II tasks on one server: all late
    sbw, scpu = shield_deadlines(p, bw, cpu)
    held = sbw > 0
    assert held.any() and not held.all()
    assert np.all(p.latency(sbw, scpu)[held] <= p.deadline_s[held])
    assert sbw.sum() == pytest.approx(1.0) and scpu.sum() == pytest.approx(1.0)


def test_site_features_sort_by_hardness_and_decode_to_exact_shares_of_the_admitted():
    q = _problem(3, cpu=60e9)
    p = ServerProblem(q.size_bits, q.cycles, q.deadline_s, 3.0 * q.spectral_eff, q.wired_s, q.bandwidth_hz, q.cpu_hz,
                      q.latency_weight)  # fast uplinks, a fast server: the three tasks all fit
    assert spectral_radius(p.upload_s, p.compute_s, p.budget_s, np.ones(3, dtype=bool)) < 0.9
    f = SiteFeatures(SiteConfig())
    k = f.k
    obs = f.encode(p)
    assert obs.shape == (f.obs_dim,) == (5 * k + 2,)
    assert obs[:3].tolist() == [1, 1, 1] and obs[3:k].sum() == 0
    hard = (obs[k:k + 3] + obs[2 * k:2 * k + 3]).tolist()
    assert hard == sorted(hard)
    # no priorities, no corrections, everything fits: the per-slot exact reference's shares
    bw, cpu = f.decode(np.zeros(f.act_dim), p)
    ref_bw, ref_cpu = exact_shares(p)
    assert bw == pytest.approx(ref_bw, rel=1e-6) and cpu == pytest.approx(ref_cpu, rel=1e-6)
    assert slot_outcome(p, bw, cpu).success.all()
    with pytest.raises(AllocationError, match="16 values"):
        f.decode(np.zeros(3), p)


def test_site_decoding_admits_by_priority_and_never_spends_on_a_task_it_predicts_late():
    p = _problem(6)  # six Table II tasks on 20 GHz: not all fit
    f = SiteFeatures(SiteConfig())
    idx = f.order(p)
    rng = np.random.default_rng(0)
    for _ in range(20):
        a = np.zeros(f.act_dim)
        a[:len(idx)] = rng.uniform(-1, 1, len(idx))
        bw, cpu = f.decode(a, p)
        held = bw > 0
        assert held.any() and not held.all()
        assert np.all(p.latency(bw, cpu)[held] <= p.deadline_s[held])  # the twin is right here: all on time
        assert bw.sum() == pytest.approx(1.0) and cpu.sum() == pytest.approx(1.0)
        # admission follows the priorities: the first skipped task, in priority order, had a lower priority
        # than every admitted one ahead of it, and adding it to the admitted set would break a deadline
        order = idx[np.argsort(-a[:len(idx)], kind="stable")]
        first_skipped = next(i for i in order if not held[i])
        ahead = order[:list(order).index(first_skipped)]
        assert held[ahead].all()
        trial = held.copy()
        trial[first_skipped] = True
        A, B, D = p.upload_s, p.compute_s, p.budget_s
        assert spectral_radius(A, B, D, trial) >= 1.0 - 1e-9
    # the top-priority task is always admitted when it can meet its deadline alone
    alone = (p.upload_s + p.compute_s) / p.budget_s < 1.0
    assert alone[idx].all()
    for j in idx:
        a = np.zeros(f.act_dim)
        a[list(idx).index(j)] = 1.0
        assert f.decode(a, p)[0][j] > 0


def test_site_correction_stretches_the_predicted_uplinks():
    q = _problem(2, cpu=60e9)
    p = ServerProblem(q.size_bits, q.cycles, q.deadline_s, 4.0 * q.spectral_eff, q.wired_s, q.bandwidth_hz, q.cpu_hz,
                      q.latency_weight)  # both fit even with uplinks twice as slow
    f = SiteFeatures(SiteConfig())
    a = np.zeros(f.act_dim)
    a[f.k:f.k + 2] = 1.0  # uploads taken as twice the twin's prediction
    assert f.upload_factor(a[None, :], p)[0] == pytest.approx([2.0, 2.0])
    bw, cpu = f.decode(a, p)
    slower = ServerProblem(p.size_bits, p.cycles, p.deadline_s, p.spectral_eff / 2.0, p.wired_s, p.bandwidth_hz,
                           p.cpu_hz, p.latency_weight)
    ref_bw, ref_cpu = exact_shares(slower)  # the exact shares of the slot whose uplinks are twice as slow
    assert bw == pytest.approx(ref_bw, rel=1e-6) and cpu == pytest.approx(ref_cpu, rel=1e-6)


def test_rush_hour_hides_part_of_the_path_loss_from_the_twin():
    regime = Regime("hidden", unseen_loss_db=6.0)
    trace = SiteTrace(SiteConfig(), 50, ((0, regime),), seed=1)
    for t in range(50):
        actual, predicted = trace.problem(t), trace.predicted(t)
        assert np.array_equal(actual.size_bits, predicted.size_bits)
        if actual.n:
            assert np.all(actual.spectral_eff < predicted.spectral_eff)
    same = SiteTrace(SiteConfig(), 50, seed=1)
    assert all(np.array_equal(same.problem(t).spectral_eff, same.predicted(t).spectral_eff) for t in range(50))


def test_vr_trace_drifts_after_the_offline_data():
    cfg = VRConfig()
    trace = VRTrace(cfg, 3000, seed=2)
    assert trace.attention.shape == (3000, 4) and np.all((trace.attention > 0) & (trace.attention < 1))
    assert trace.attention[2000:].mean() > trace.attention[:1500].mean()
    assert trace.complexity[2000:].mean() > trace.complexity[:1500].mean()


def test_vr_decoding_bins_levels_and_shields_late_gops():
    cfg = VRConfig()
    p = VRTrace(cfg, 3, seed=0).problem(0)
    f = VRFeatures(cfg, 3.0, shield=False)
    d = f.decode(np.array([-1, -0.2, 0.5, 1.0] + [0.0] * 8), p)
    assert d.level.tolist() == [0, 1, 2, 2]
    assert d.cpu_share == pytest.approx(np.full(4, 0.25))
    starved = np.array([1.0] * 4 + [1, -1, -1, -1] + [1, -1, -1, -1])  # 4K for all, nearly all to user 0
    late = VRFeatures(cfg, 3.0, shield=False).decode(starved, p)
    shielded = VRFeatures(cfg, 3.0, shield=True).decode(starved, p)
    ren, dl = p.latencies(late)
    assert (ren + dl > cfg.threshold_s)[1:].all()
    assert (shielded.level[1:] < late.level[1:]).all()  # lowered, shares untouched
    assert shielded.cpu_share == pytest.approx(late.cpu_share)
    assert f.encode(p, FairnessWindow(4, 100)).shape == (f.obs_dim,)


def test_paper_benchmarks_decide_as_described():
    cfg = VRConfig()
    p = VRTrace(cfg, 3, seed=0).problem(0)
    assert two_k_average(cfg, p).level.tolist() == [1, 1, 1, 1]
    d = adaptive_average(cfg, p)
    expected = [0 if a < 1 / 3 else 1 if a < 2 / 3 else 2 for a in p.attention]
    assert d.level.tolist() == expected
    assert d.bandwidth_share == pytest.approx(np.full(4, 0.25))

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
    ServerProblem,
    SiteConfig,
    SiteFeatures,
    SiteTrace,
    VRConfig,
    VRFeatures,
    VRTrace,
)
from mobility_twin_models.allocation.site import equal_share, shield_deadlines, slot_outcome
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


def test_site_features_sort_by_hardness_and_decode_to_shares():
    p = _problem(3)
    f = SiteFeatures(SiteConfig(), temperature=3.0, shield=False)
    obs = f.encode(p)
    assert obs.shape == (f.obs_dim,) and obs[:3].tolist() == [1, 1, 1] and obs[3:8].sum() == 0
    hard = (obs[8:11] + obs[16:19]).tolist()
    assert hard == sorted(hard)
    bw, cpu = f.decode(np.zeros(f.act_dim), p)
    assert bw == pytest.approx(np.full(3, 1 / 3)) and cpu == pytest.approx(np.full(3, 1 / 3))
    with pytest.raises(AllocationError, match="16 values"):
        f.decode(np.zeros(3), p)


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

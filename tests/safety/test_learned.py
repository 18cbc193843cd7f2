"""The learned rear-end conflict model: follower-leader pairs, training, its checkpoint, and the predictor the
warnings take it through (constructed cases; the model trained here on a known rule, in a second)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mobility_twin.safety import REAR_END, Motion, WarningConfig, WarningTracker
from mobility_twin.safety.learned import LearnedConflictPredictor, learned_warning_config
from mobility_twin_core import CheckpointError
from mobility_twin_models.safety import FEATURES, follower_pairs, load_checkpoint, save_checkpoint
from mobility_twin_models.safety.features import Accelerations
from mobility_twin_models.safety.train import row_scores, train

COL = {name: k for k, name in enumerate(FEATURES)}


def pairs(rows, length=4.5, **kw):
    x = np.asarray(rows, float).reshape(-1, 4)
    return follower_pairs(x, np.full(len(x), length), None, **kw)


def test_a_follower_closing_on_a_stopped_car_ahead_in_its_lane_is_a_pair_with_its_gap_and_time_to_collision():
    i, j, f = pairs([[0, 0, 10, 0], [20, 0.5, 0, 0]])
    assert i.tolist() == [0] and j.tolist() == [1]
    assert f[0, COL["gap_m"]] == pytest.approx(15.5, abs=1e-4)  # centres 20 m apart, two 4.5 m bodies
    assert f[0, COL["closing_mps"]] == pytest.approx(10.0, abs=1e-4)
    assert f[0, COL["ttc_s"]] == pytest.approx(1.55, abs=1e-4)
    assert f[0, COL["lateral_m"]] == pytest.approx(0.5, abs=1e-4)


def test_only_the_nearest_road_user_ahead_in_the_lane_and_the_same_direction_leads():
    rows = [[0, 0, 10, 0],  # follower
            [30, 0, 5, 0],  # ahead, farther
            [15, 0, 5, 0],  # ahead, nearest: the leader
            [10, 4.0, 10, 0],  # the next lane
            [20, -0.5, -10, 0],  # oncoming
            [-15, 0, 10, 0]]  # behind (it follows the follower)
    i, j, _ = pairs(rows)
    leader_of = dict(zip(i.tolist(), j.tolist(), strict=True))
    assert leader_of[0] == 2 and leader_of[5] == 0 and leader_of[2] == 1
    assert 4 not in leader_of and 4 not in leader_of.values() and 3 not in leader_of  # oncoming, next lane


def test_a_stopped_leader_off_the_lanes_leads_whatever_way_its_box_faces():
    # a car stopped ahead whose box faces across the road (or backwards): still the one the follower closes on
    x = np.array([[0, 0, 10, 0], [20, 0.3, 0, 0]], float)
    for facing in (math.pi / 2, math.pi, -math.pi / 2):
        i, j, _ = follower_pairs(x, np.full(2, 4.5), np.array([0.0, facing]))
        assert i.tolist() == [0] and j.tolist() == [1]
    # a moving car facing the other way is oncoming, not a leader
    x[1, 2] = -5.0
    assert len(follower_pairs(x, np.full(2, 4.5), np.array([0.0, math.pi]))[0]) == 0


def test_rows_that_are_not_finite_take_no_part_and_fewer_than_two_give_no_pairs():
    i, j, f = pairs([[0, 0, 10, 0], [float("nan"), 0, 0, 0], [15, 0, 0, 0]])
    assert i.tolist() == [0] and j.tolist() == [2] and np.isfinite(f).all()
    assert len(pairs([[0, 0, 10, 0]])[0]) == 0
    assert follower_pairs([[0, 0, 10, 0], [15, 0, 0, 0]], [4.5, 4.5], None)[0].tolist() == [0]  # lists as well
    assert len(pairs(np.zeros((0, 4)))[0]) == 0


def test_the_lane_heading_decides_who_is_ahead():
    # two cars side by side on the x axis, moving slowly (heading from the body): the lane runs along y
    x = np.array([[0, 0, 0.2, 0], [0, 12, 0.2, 0]], float)
    i, _, _ = follower_pairs(x, np.full(2, 4.5), np.zeros(2), lane_heading=np.full(2, math.pi / 2))
    assert i.tolist() == [0]
    assert len(follower_pairs(x, np.full(2, 4.5), np.zeros(2))[0]) == 0  # along x: beside each other


def test_accelerations_come_from_each_road_users_own_velocity_over_the_window_and_need_half_of_it():
    acc = Accelerations(window_s=0.8)
    # id 1 brakes at 3 m/s^2 along x, id 2 keeps its speed; id 3 appears at 1.0 s
    for k in range(7):
        t = 0.2 * k
        ids = [1, 2] if k < 5 else [1, 2, 3]
        x = [[0, 0, 12 - 3 * t, 0], [0, 5, 0, 8]] + ([[9, 9, 1, 1]] if len(ids) == 3 else [])
        a = acc.update(t, ids, np.array(x, float))
        if k == 0:
            assert np.isnan(a).all()  # nobody seen before
    assert a[0] == pytest.approx([-3.0, 0.0]) and a[1] == pytest.approx([0.0, 0.0])
    assert np.isnan(a[2]).all()  # seen for 0.2 s: less than half the window
    a = acc.update(1.4, [3], np.array([[9, 9, 1, 1]], float))  # id 1 and 2 gone: forgotten
    assert set(acc._past) == {3}
    # a NaN velocity neither breaks nor enters the memory; a lone road user has one too
    a = acc.update(1.6, [3], np.array([[9, 9, np.nan, 1]], float))
    assert np.isnan(a).all()


def test_the_pair_rows_carry_each_ones_acceleration_along_the_followers_heading_and_zero_when_not_known():
    x = [[0, 0, 10, 0], [20, 0, 5, 0]]
    _, _, f = pairs(x, accel=np.array([[1.0, 2.0], [-4.0, 0.5]]))
    assert f[0, COL["follower_accel_mps2"]] == pytest.approx(1.0) and f[0, COL["leader_accel_mps2"]] == pytest.approx(-4.0)
    _, _, f = pairs(x, accel=np.array([[np.nan, np.nan], [-4.0, 0.5]]))
    assert f[0, COL["follower_accel_mps2"]] == 0.0
    _, _, f = pairs(x)
    assert f[0, COL["leader_accel_mps2"]] == 0.0


def _rule_data(n=4000, seed=0):
    """Pairs whose label is a known rule of their features: closing fast on a short gap."""
    rng = np.random.default_rng(seed)
    gap, v_l = rng.uniform(0, 40, n), rng.uniform(0, 12, n)
    v_f = np.maximum(v_l + rng.uniform(-4, 10, n), 0.0)
    rows = np.stack([[0.0, 0.0, vf, 0.0] for vf in v_f])
    feats = []
    for k in range(n):
        _, _, f = pairs([rows[k], [gap[k] + 4.5, 0.0, v_l[k], 0.0]])
        feats.append(f[0])
    feats = np.array(feats)
    labels = feats[:, COL["ttc_s"]] < 3.0
    return feats, labels


@pytest.fixture(scope="module")
def rule_model():
    feats, labels = _rule_data()
    return train(feats, labels, epochs=300)


def test_training_learns_a_rule_it_was_not_told_and_holds_on_rows_it_did_not_see(rule_model):
    feats, labels = _rule_data(seed=1)
    s = row_scores(rule_model, feats, labels)
    assert s["precision"] > 0.9 and s["recall"] > 0.9


def test_training_refuses_rows_of_one_kind():
    feats, labels = _rule_data(n=50)
    with pytest.raises(ValueError, match="both kinds"):
        train(feats, np.zeros(len(labels), bool))


def test_the_checkpoint_gives_the_same_model_back_and_refuses_another_kind(rule_model, tmp_path):
    path = save_checkpoint(tmp_path / "m.pt", rule_model, extra={"note": "test"})
    back, meta = load_checkpoint(path)
    feats, _ = _rule_data(n=200, seed=2)
    assert np.allclose(back.probability(feats), rule_model.probability(feats))
    assert meta["note"] == "test"
    from mobility_twin_core import checkpoint as core_checkpoint

    core_checkpoint.save_checkpoint(tmp_path / "other.pt", kind="placement_ddl", version=1, state={})
    with pytest.raises(CheckpointError, match="not 'rear_end_conflict'"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


def motion(rows, t=10.0, last_update=None) -> Motion:
    x = np.asarray(rows, float).reshape(-1, 4)
    n = len(x)
    P = np.tile(np.diag([0.09, 0.09, 0.09, 0.09]), (n, 1, 1))
    lu = np.full(n, t) if last_update is None else np.asarray(last_update, float)
    return Motion(t, np.arange(11, 11 + n, dtype=np.int64), x, P, np.full(n, 4.5), np.full(n, 1.8), None, lu)


def test_the_learned_predictor_warns_the_follower_closing_fast_and_not_the_one_keeping_its_distance(rule_model):
    predictor = LearnedConflictPredictor(rule_model)
    # ids 11..14: 11 closes at 10 m/s on a stopped 12 (gap 10.5 m: 1 s); 13 follows 14 at the same speed
    conflicts = predictor.predict(motion([[0, 0, 10, 0], [15, 0, 0, 0], [0, 50, 10, 0], [20, 50, 10, 0]]))
    hot = [c for c in conflicts if c.probability >= 0.5]
    assert [(c.a, c.b) for c in hot] == [(11, 12)]
    c = hot[0]
    assert c.kind == REAR_END and c.yield_a and not c.yield_b  # the follower (11) yields
    assert c.ttc_s == pytest.approx(1.05, abs=0.01)
    assert c.point[0] == pytest.approx(12.75, abs=0.01)  # the leader's rear
    # the warnings take it with the learned rule (no TTC bar of their own)
    warner = WarningTracker(learned_warning_config(WarningConfig(confirm=1), predictor.horizon_s))
    events = warner.update(10.0, conflicts)
    assert [(e.kind, e.warning.a, e.warning.b) for e in events] == [("start", 11, 12)]


def test_the_learned_predictor_skips_stale_and_broken_rows_and_counts_them(rule_model):
    predictor = LearnedConflictPredictor(rule_model)
    m = motion([[0, 0, 10, 0], [15, 0, 0, 0], [float("nan"), 0, 0, 0]], last_update=[10.0, 7.0, 10.0])
    assert predictor.predict(m) == []  # the leader is 3 s old: no pair left
    assert predictor.counts["stale"] == 1 and predictor.counts["not_finite"] == 1


def test_the_shipped_model_loads_and_ranks_a_follower_closing_fast_above_one_keeping_its_distance():
    model, meta = load_checkpoint()  # models/mobility_twin_models/checkpoints/rear_end_conflict.pt
    assert meta.get("scores", {}).get("held_out")  # what it was measured at when made
    _, _, close = pairs([[0, 0, 10, 0], [14, 0, 0, 0]])  # 9.5 m to a stopped car at 10 m/s
    _, _, far = pairs([[0, 0, 10, 0], [40, 0, 10, 0]])  # 35.5 m behind a car at the same speed
    p_close, p_far = model.probability(close)[0], model.probability(far)[0]
    assert p_close > 0.5 > p_far


def test_the_learned_predictor_remembers_velocities_and_the_shipped_model_fears_a_braking_leader_more():
    model, _ = load_checkpoint()

    def last_probability(leader_accel):
        predictor = LearnedConflictPredictor(model, min_probability=0.0)
        for k in range(6):  # 1 s of a car at 10 m/s following one 15 m ahead, whose speed reaches 10 m/s at the end
            t = 10.0 + 0.2 * k
            v_leader = 10.0 + leader_accel * (0.2 * k - 1.0)
            conflicts = predictor.predict(motion([[10 * t, 0, 10, 0], [10 * t + 19.5, 0, v_leader, 0]], t=t))
        return conflicts[0].probability

    steady, braking = last_probability(0.0), last_probability(-6.0)
    assert braking > 2 * steady  # the same pair now: only the leader's last second differs

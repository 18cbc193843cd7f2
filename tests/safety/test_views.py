"""What the LiDARs saw of the road, for the warnings: the stretch of a gap no fresh view saw clear
(:class:`mobility_twin.safety.views.SensorViews`), and the learned predictor leaving out a pair whose gap was
hidden long enough for a car (constructed views: a grid of bearing bins x 1 m range cells around a sensor at
the origin)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from mobility_twin.perception.visibility import Visibility
from mobility_twin.safety.learned import LearnedConflictPredictor
from mobility_twin.safety.views import SensorViews

from .test_learned import motion, rule_model  # noqa: F401 (the fixture)

BINS, CELLS = 360, 80


def view(hidden_from_m: float | None = None) -> Visibility:
    """A sensor at the origin that saw every cell clear; with ``hidden_from_m``, something stands there on the
    bearings along +x (bins 178-182), and the view beyond it along them is hidden."""
    clear = np.ones((BINS, CELLS), bool)
    blocked = np.full(BINS, np.inf, np.float32)
    if hidden_from_m is not None:
        clear[178:183, int(hidden_from_m):] = False
        blocked[178:183] = hidden_from_m
    return Visibility(np.packbits(clear, axis=None), CELLS, 1.0, blocked)


def test_a_gap_seen_clear_has_no_unseen_stretch_and_one_behind_something_standing_has_it_from_there():
    views = SensorViews()
    start, end = np.array([[10.0, 0.0]]), np.array([[30.0, 0.0]])
    views.add("rsu_0", 5.0, view(), (0.0, 0.0))
    assert views.unseen_m(5.0, start, end)[0] == pytest.approx(0.0)
    views.add("rsu_0", 5.1, view(hidden_from_m=15.0), (0.0, 0.0))  # the newest frame of a sensor counts
    assert views.unseen_m(5.1, start, end)[0] == pytest.approx(15.0, abs=1.0)
    # a second sensor that saw nothing clear changes nothing
    blind = Visibility(np.packbits(np.zeros((BINS, CELLS), bool), axis=None), CELLS, 1.0,
                       np.full(BINS, np.inf, np.float32))
    views.add("cav_1", 5.1, blind, (40.0, 0.0))
    assert views.unseen_m(5.1, start, end)[0] == pytest.approx(15.0, abs=1.0)
    # one at (40, 0) looking back along the road that saw clear only within 15 m of it: the part between the two
    # stays unseen (a sample is clear when the metre around it is: x 14.5 to 25.5)
    near = np.zeros((BINS, CELLS), bool)
    near[:, :15] = True
    views.add("cav_1", 5.1, Visibility(np.packbits(near, axis=None), CELLS, 1.0, np.full(BINS, np.inf, np.float32)),
              (40.0, 0.0))
    assert views.unseen_m(5.1, start, end)[0] == pytest.approx(12.0, abs=1.0)
    views.add("rsu_2", 5.1, view(), (0.0, 0.0))  # a sensor beside the first that saw it all
    assert views.unseen_m(5.1, start, end)[0] == pytest.approx(0.0)


def test_no_fresh_view_means_nothing_was_seen_and_a_segment_of_no_length_has_nothing_unseen():
    views = SensorViews(max_age_s=0.3)
    start, end = np.array([[10.0, 0.0], [5.0, 5.0]]), np.array([[30.0, 0.0], [5.0, 5.0]])
    assert views.unseen_m(1.0, start, end).tolist() == pytest.approx([20.0, 0.0])
    views.add("rsu_0", 1.0, view(), (0.0, 0.0))
    views.add("rsu_0", 1.05, None, (0.0, 0.0))  # a frame that says nothing of the space keeps the view before
    assert views.unseen_m(1.1, start, end).tolist() == pytest.approx([0.0, 0.0])
    assert views.unseen_m(2.0, start, end).tolist() == pytest.approx([20.0, 0.0])  # a second old: stale ...
    assert views.fresh(1.0) == []  # ... and forgotten
    assert views.unseen_m(1.0, np.zeros((0, 2)), np.zeros((0, 2))).shape == (0,)
    with pytest.raises(ValueError):
        SensorViews(max_age_s=0.0)


def test_the_learned_predictor_leaves_out_a_follower_whose_gap_was_hidden_long_enough_for_a_car(rule_model):  # noqa: F811
    # 11 closes at 10 m/s on a stopped 12 along +x: the gap runs from x = 2.25 to 12.75 m
    m = motion([[0, 0, 10, 0], [15, 0, 0, 0]])
    for hidden_from, expect in ((None, [(11, 12)]), (11.0, [(11, 12)]), (5.0, [])):
        predictor = LearnedConflictPredictor(rule_model, max_unseen_gap_m=4.5)
        views = SensorViews()
        views.add("rsu_0", m.t, view(hidden_from), (0.0, 0.0))
        got = [(c.a, c.b) for c in predictor.predict(replace(m, views=views)) if c.probability >= 0.5]
        assert got == expect, hidden_from
        assert predictor.counts["gap_unseen"] == (1 if not expect else 0)
    # without views, with none fresh (a sensor silent, a wrong topic), or without the gate: warned as before
    assert [(c.a, c.b) for c in LearnedConflictPredictor(rule_model, max_unseen_gap_m=4.5).predict(m)
            if c.probability >= 0.5] == [(11, 12)]
    predictor = LearnedConflictPredictor(rule_model, max_unseen_gap_m=4.5)
    views = SensorViews()
    views.add("rsu_0", m.t - 5.0, view(5.0), (0.0, 0.0))
    assert [(c.a, c.b) for c in predictor.predict(replace(m, views=views)) if c.probability >= 0.5] == [(11, 12)]
    assert predictor.counts["no_fresh_views"] == 1 and predictor.counts["gap_unseen"] == 0
    views = SensorViews()
    assert [(c.a, c.b) for c in LearnedConflictPredictor(rule_model).predict(replace(m, views=views))
            if c.probability >= 0.5] == [(11, 12)]


def test_the_gate_reads_the_unseen_stretch_measured_with_the_motion_when_it_carries_one(rule_model):  # noqa: F811
    # (a run's saved inputs carry each follower's unseen stretch: the same pairs, no views needed again)
    m = motion([[0, 0, 10, 0], [15, 0, 0, 0]])
    for unseen, expect in (([12.0, np.nan], []), ([3.0, np.nan], [(11, 12)]), ([np.nan, np.nan], [(11, 12)])):
        predictor = LearnedConflictPredictor(rule_model, max_unseen_gap_m=9.5)
        got = predictor.predict(replace(m, unseen_ahead_m=np.array(unseen)))
        assert [(c.a, c.b) for c in got if c.probability >= 0.5] == expect


def test_the_bench_measures_each_followers_unseen_stretch_to_the_one_ahead():
    from mobility_twin_bench.collision import unseen_ahead

    # 11 follows 12 along +x (gap 2.25 -> 12.75 m), 13 follows no one (across the road, 50 m off)
    m = motion([[0, 0, 10, 0], [15, 0, 0, 0], [0, 50, 0, 10]])
    views = SensorViews()
    views.add("rsu_0", m.t, view(hidden_from_m=5.0), (0.0, 0.0))
    got = unseen_ahead(m, views)
    assert got[0] == pytest.approx(12.75 - 5.0, abs=1.0) and np.isnan(got[1]) and np.isnan(got[2])
    views.add("rsu_0", m.t, view(), (0.0, 0.0))
    assert unseen_ahead(m, views)[0] == pytest.approx(0.0)

"""The AB3DMOT-style baseline the RSU tracker is compared with: confirmation, motion, matching, ageing."""

import numpy as np

from mobility_twin.evaluation.ab3dmot import Ab3dmotBaseline, BaselineConfig


def straight_line(t):
    return np.array([[5.0 + 12.0 * t, -3.0 + 4.0 * t]])  # 12.6 m/s, diagonal


def test_baseline_tracks_a_straight_line_vehicle_and_confirms_on_the_third_hit():
    rng = np.random.default_rng(0)
    tracker = Ab3dmotBaseline()
    confirmed_after = []
    for k in range(50):
        t = 0.1 * k
        tracker.update(t, straight_line(t) + rng.normal(0, 0.1, (1, 2)))
        ids, xy = tracker.confirmed()
        confirmed_after.append(len(ids))
        if len(ids):
            assert ids.tolist() == [1]  # one identity all along
            assert np.linalg.norm(xy[0] - straight_line(t)[0]) < 0.5
    assert confirmed_after[:3] == [0, 0, 1]
    assert all(n == 1 for n in confirmed_after[2:])
    assert np.allclose(tracker.x[0, 2:], [12.0, 4.0], atol=1.0)  # the velocity was learnt


def test_baseline_predicts_through_a_gap_and_keeps_the_identity():
    tracker = Ab3dmotBaseline()
    for k in range(20):
        tracker.update(0.1 * k, straight_line(0.1 * k))
    for k in range(20, 30):  # 1 s unseen: coasts (reported, AB3DMOT's rule) along its velocity
        tracker.update(0.1 * k, np.zeros((0, 2)))
    ids, xy = tracker.confirmed()
    assert ids.tolist() == [1] and np.linalg.norm(xy[0] - straight_line(2.9)[0]) < 0.5
    tracker.update(3.0, straight_line(3.0))
    assert tracker.confirmed()[0].tolist() == [1] and len(tracker) == 1


def test_baseline_deletes_a_track_unseen_for_longer_than_max_age():
    tracker = Ab3dmotBaseline(BaselineConfig(max_age_s=2.0))
    for k in range(10):
        tracker.update(0.1 * k, [[0.0, 0.0]])
    tracker.update(2.9, np.zeros((0, 2)))
    assert len(tracker) == 1  # 2.0 s since its last update at 0.9
    tracker.update(3.0, np.zeros((0, 2)))
    assert len(tracker) == 0
    tracker.update(3.1, [[0.0, 0.0]])
    assert tracker.ids.tolist() == [2]  # a new identity, never reused


def test_baseline_matches_within_the_match_distance_only():
    tracker = Ab3dmotBaseline(BaselineConfig(match_distance_m=2.0, output_coasting=False))
    for k in range(5):
        tracker.update(0.1 * k, [[0.0, 0.0]])
    tracker.update(0.5, [[2.5, 0.0]])  # 2.5 m from a parked vehicle: another object
    assert sorted(tracker.ids.tolist()) == [1, 2]
    assert tracker.confirmed()[0].size == 0  # SORT's rule: the parked one was not updated in this frame
    tracker.update(0.6, [[0.1, 0.0], [2.5, 0.0]])
    assert tracker.confirmed()[0].tolist() == [1]  # the new one has 2 hits


def test_baseline_assigns_two_close_vehicles_one_to_one():
    tracker = Ab3dmotBaseline()
    for k in range(10):
        t = 0.1 * k
        tracker.update(t, [[10.0 * t, 0.0], [10.0 * t, 3.0]])
    ids, xy = tracker.confirmed()
    assert sorted(ids.tolist()) == [1, 2]
    assert np.allclose(xy[np.argsort(ids)][:, 1], [0.0, 3.0], atol=0.2)

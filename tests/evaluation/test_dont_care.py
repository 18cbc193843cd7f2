"""Ground-truth vehicles whose bodies overlap (the replayed GPS puts queued taxis into each other) are
"don't care": neither missed nor matched, and a track on their blob is no false positive."""

import numpy as np

from mobility_twin.evaluation.mot import DiscRegion, MotEvaluator, overlapping_bodies


def test_overlapping_footprints_are_found_by_separating_axes():
    xy = np.array([[0.0, 0.0], [4.2, 0.0], [20.0, 0.0], [20.0, 2.5], [40.0, 0.0], [42.0, 2.0]])
    yaw = np.array([0.0, 0.0, 0.0, 0.0, 0.0, np.pi / 2])
    # 4.6 m x 1.8 m cars: nose to tail 4.2 m apart overlap; side by side 2.5 m apart do not; a car across
    # the nose of another 2 m ahead and 2 m aside overlaps it
    assert overlapping_bodies(xy, yaw, 4.6, 1.8).tolist() == [True, True, False, False, True, True]


def test_dont_care_vehicles_are_neither_missed_nor_matched_and_their_blob_is_no_false_positive():
    ev = MotEvaluator("t", DiscRegion.of([[0.0, 0.0]], 60.0))
    gt_ids, gt_xy = [1, 2, 3], [[0.0, 0.0], [4.2, 0.0], [20.0, 0.0]]
    ignore = [True, True, False]
    for _ in range(5):  # one track on the blob of 1 and 2, one on vehicle 3
        ev.add(gt_ids, gt_xy, [7, 8], [[2.1, 0.0], [20.2, 0.0]], ignore)
    m = ev.summary()
    assert m["num_objects"] == 5 and m["num_misses"] == 0 and m["num_false_positives"] == 0
    assert m["mota"] == 1.0 and m["num_ignored"] == 10
    # without the mask the same frames count one miss per frame and the blob as a false positive
    plain = MotEvaluator("t", DiscRegion.of([[0.0, 0.0]], 60.0))
    for _ in range(5):
        plain.add(gt_ids, gt_xy, [7, 8], [[2.1, 0.0], [20.2, 0.0]])
    assert plain.summary()["num_misses"] == 10 and plain.summary()["num_false_positives"] == 5


def test_without_a_mask_vehicles_far_outside_the_region_are_left_out_not_an_error():
    """The peers' benchmark scores streams without a don't-care mask; ground truth far outside the disc (beyond
    the evaluator's margin) is dropped before the mask is applied, whose length must follow."""
    ev = MotEvaluator("t", DiscRegion.of([[0.0, 0.0]], 60.0))
    ev.add([1, 2, 3], [[0.0, 0.0], [10.0, 0.0], [900.0, 0.0]], [7, 8], [[0.1, 0.0], [10.1, 0.0]])
    m = ev.summary()
    assert m["num_objects"] == 2 and m["mota"] == 1.0 and m["num_ignored"] == 0

"""Frames a perception node never saw are counted from the stamps of those it did."""

from mobility_twin.perception.frame_gaps import FrameGaps


def test_gaps_of_k_periods_count_k_minus_one_missing_frames():
    gaps = FrameGaps()
    stamps = [0.1 * k for k in range(10)] + [1.2, 1.3, 1.7, 1.8]  # 1.0 and 1.1 missing, then 1.4-1.6
    missing = [gaps.add(t) for t in stamps]
    assert missing[10] == 2 and missing[12] == 3
    assert gaps.missing == 5 and gaps.out_of_order == 0


def test_jitter_is_not_a_missing_frame_and_late_stamps_are_counted_apart():
    gaps = FrameGaps()
    for k in range(20):
        gaps.add(0.1 * k + (0.02 if k % 3 == 0 else -0.01))  # gaps of 0.07 to 0.13 s
    assert gaps.missing == 0
    gaps.add(1.0)  # earlier than the last
    assert gaps.out_of_order == 1 and gaps.missing == 0


def test_nothing_is_counted_before_the_period_is_known():
    gaps = FrameGaps()
    assert [gaps.add(t) for t in (0.0, 0.1, 0.5)] == [0, 0, 0]

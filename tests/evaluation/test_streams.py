"""Recorded per-RSU detection streams: the file round-trips, recording is deterministic, and a hypothesis file
scores exactly as the same hypotheses in memory."""

import numpy as np
import pytest

from mobility_twin.evaluation.mot import DiscRegion, MotEvaluator
from mobility_twin.evaluation.stream_format import (
    Frame,
    Hypotheses,
    RsuStream,
    StreamFormatError,
    load_hypotheses,
    load_stream,
    save_hypotheses,
    save_stream,
)
from mobility_twin.evaluation.streams import (
    StreamOptions,
    detections_of,
    overall,
    record_streams,
    score_stream,
    track_stream,
)

SENSOR = (100.0, -50.0)
T0 = 1_000.0


def vehicle_xy(t):
    """Two vehicles: one along x at 10 m/s, one parked; world positions at time t (s after T0)."""
    return np.array([[SENSOR[0] - 40.0 + 10.0 * t, SENSOR[1] + 5.0], [SENSOR[0] + 20.0, SENSOR[1] - 12.0]])


def synthetic_stream(frames=40, period=0.1, seed=0) -> RsuStream:
    rng = np.random.default_rng(seed)
    out = []
    for k in range(frames):
        t = k * period
        gt = vehicle_xy(t)
        seen = gt if k % 7 != 3 else gt[:1]  # the parked one is missed now and then; frame 10: nothing
        if k == 10:
            seen = gt[:0]
        m = len(seen)
        out.append(Frame(T0 + t, seen + rng.normal(0, 0.1, (m, 2)), np.tile(np.eye(2) * 0.04, (m, 1, 1)),
                         np.zeros(m), np.tile([4.6, 1.8, 1.5], (m, 1)), np.full((m, 2), np.nan),
                         np.linspace(0.9, 0.12, m), np.full(m, 40), np.ones(m, dtype=np.int64),
                         np.array([""] * m), np.array([7, 9])[: len(gt)], gt))
    meta = {"scenario": "synthetic", "t0": T0, "warmup_s": 0.5, "eval_range_m": 60.0, "gt_radius_m": 100.0}
    return RsuStream.from_frames("rsu_09", SENSOR, 80.0, out, meta)


def test_a_stream_file_round_trips(tmp_path):
    stream = synthetic_stream()
    back = load_stream(save_stream(tmp_path / "rsu_09.npz", stream))
    assert back.rsu_id == "rsu_09" and back.sensor_xy == SENSOR and back.sensor_range_m == 80.0
    assert back.meta["scenario"] == "synthetic" and back.meta["warmup_s"] == 0.5
    assert len(back) == len(stream) == 40
    for a, b in zip(stream.frames(), back.frames(), strict=True):
        assert a.stamp == b.stamp
        for key in ("xy", "cov", "yaw", "dims", "velocity", "confidence", "num_points", "object_class",
                    "self_report", "gt_ids", "gt_xy"):
            np.testing.assert_array_equal(getattr(a, key), getattr(b, key), err_msg=key)
    assert len(back.frame(10).xy) == 0 and back.frame(10).xy.shape == (0, 2)
    d = detections_of(back, back.frame(3))
    assert d.source_id == "rsu_09" and d.stamp == T0 + 0.3 and len(d) == 1 and d.sensor_xy == SENSOR


def test_a_file_that_is_not_a_stream_is_refused_naming_it(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, meta=np.array('{"format": "something else", "version": 1}'))
    with pytest.raises(StreamFormatError, match=r"other\.npz is 'something else'"):
        load_stream(path)
    (tmp_path / "broken.npz").write_bytes(b"not a zip")
    with pytest.raises(StreamFormatError, match="Could not read"):
        load_stream(tmp_path / "broken.npz")


def test_hypotheses_round_trip(tmp_path):
    stream = synthetic_stream()
    hyps = track_stream(stream)
    back = load_hypotheses(save_hypotheses(tmp_path / "h.npz", hyps))
    assert back.tracker == "mobility_twin" and back.rsu_id == "rsu_09" and len(back) == len(stream)
    for k in range(len(stream)):
        for a, b in zip(hyps.frame(k), back.frame(k), strict=True):
            np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(hyps.update_ms, back.update_ms)
    assert (back.update_ms > 0).all()


def test_scoring_a_hypothesis_file_equals_scoring_the_same_hypotheses_in_memory(tmp_path):
    stream = synthetic_stream()
    rng = np.random.default_rng(1)
    frames = []  # a tracker's output with its faults: a late start, an id switch, a false track
    for k in range(len(stream)):
        gt = vehicle_xy(k * 0.1)
        ids = [1, 2] if k < 25 else [1, 3]
        xy = gt + rng.normal(0, 0.3, gt.shape)
        if k < 4:
            ids, xy = ids[:1], xy[:1]
        if 15 <= k < 20:
            ids, xy = [*ids, 99], np.vstack([xy, [SENSOR[0], SENSOR[1] + 30.0]])
        frames.append((np.array(ids), np.asarray(xy)))
    hyps = Hypotheses.from_frames("fake", "rsu_09", stream.stamps, frames, np.ones(len(frames)))
    from_file = score_stream(stream, load_hypotheses(save_hypotheses(tmp_path / "fake.npz", hyps))).summary()

    in_memory = MotEvaluator("fake/rsu_09", DiscRegion.of([SENSOR], 60.0))
    for k, (ids, xy) in enumerate(frames):
        if k * 0.1 >= 0.5 - 1e-9:  # the stream's warm-up
            in_memory.add([7, 9], vehicle_xy(k * 0.1), ids, xy)
    expected = in_memory.summary()
    assert from_file == expected
    assert expected["num_switches"] == 1 and expected["num_false_positives"] == 5 and expected["num_frames"] == 35


def test_overall_of_one_rsu_is_that_rsus_score():
    stream = synthetic_stream()
    ev = score_stream(stream, track_stream(stream))
    one, total = ev.summary(), overall([ev])
    for key in ("num_objects", "num_misses", "num_false_positives", "num_switches", "mota", "idf1"):
        assert total[key] == pytest.approx(one[key]), key


def test_hypotheses_of_another_stream_are_refused():
    a, b = synthetic_stream(40), synthetic_stream(30)
    with pytest.raises(ValueError, match="do not match the stream"):
        score_stream(a, track_stream(b))


def test_recording_is_deterministic_and_keeps_the_ground_truth_near_each_rsu(tmp_path):
    from mobility_twin_sim.scenario import load_scenario
    from mobility_twin_sim.world import build_world

    world = build_world(load_scenario("default"))
    options = StreamOptions(duration_s=0.35, start_s=20.0, gt_radius_m=90.0)
    first = record_streams(world, tmp_path / "a", options)
    second = record_streams(world, tmp_path / "b", options)
    assert [p.name for p in first] == [f"{r.rsu_id}.npz" for r in world.rsus]
    for pa, pb in zip(first, second, strict=True):
        a, b = load_stream(pa), load_stream(pb)
        assert len(a) in (3, 4) and a.meta["scenario"] == "default" and a.meta["start_s"] == 20.0
        np.testing.assert_array_equal(a.stamps, b.stamps)
        np.testing.assert_array_equal(a.detections["xy"], b.detections["xy"])
        np.testing.assert_array_equal(a.gt_ids, b.gt_ids)
        assert (np.hypot(*(a.gt_xy - np.asarray(a.sensor_xy)).T) <= 90.0).all()
    assert sum(int(load_stream(p).det_offsets[-1]) for p in first) > 0
    # what each LiDAR frame saw of the space is recorded with it, and read back as the tracker gets it
    stream = load_stream(first[0])
    assert stream.meta["vis_bins"] == 360 and stream.vis_clear.shape[0] == len(stream)
    seen = detections_of(stream, stream.frame(1)).visibility
    assert seen is not None and np.array_equal(seen.clear_bits, stream.vis_clear[1])


def test_a_visibility_that_not_every_frame_carries_is_counted_not_lost_silently():
    from dataclasses import replace

    stream = synthetic_stream(frames=6)
    grid = (8, 1.0, np.zeros(10, dtype=np.uint8), np.full(8, np.inf, dtype=np.float32))
    frames = [replace(f, visibility=grid if k % 2 else None) for k, f in enumerate(stream.frames())]
    mixed = RsuStream.from_frames("rsu_09", SENSOR, 80.0, frames, stream.meta)
    assert mixed.vis_clear is None and mixed.meta["vis_dropped_frames"] == 3
    assert all(f.visibility is None for f in mixed.frames())
    whole = RsuStream.from_frames("rsu_09", SENSOR, 80.0, [replace(f, visibility=grid) for f in frames], stream.meta)
    assert whole.meta["vis_bins"] == 8 and "vis_dropped_frames" not in whole.meta
    assert all(np.array_equal(f.visibility[2], grid[2]) for f in whole.frames())

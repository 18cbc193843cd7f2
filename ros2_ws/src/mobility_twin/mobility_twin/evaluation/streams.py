"""Per-RSU detection streams: record them from the simulator, run a tracker on them, score the hypotheses.

What lets trackers that cannot share the project's environment (norfair needs numpy < 2) be compared with
the project's on the same input and by the same scoring:

* :func:`record_streams` runs the code path of :func:`mobility_twin.evaluation.offline.run_offline`
  (the replay engine, one :class:`LidarDetector` per RSU) for a scenario and a duration and writes, per
  RSU, every frame's detections and the ground truth at the frame's stamp
  (:mod:`.stream_format`: ``.npz`` read without pickling). Deterministic: the replay is seeded.
* :func:`track_stream` feeds a stream to a tracker of the project (the :class:`Tracker` protocol) and
  keeps, after each frame, its confirmed tracks at the frame's stamp and the wall time of the step.
* :func:`score_stream` scores hypotheses (a tracker's, from memory or a file) with :class:`MotEvaluator`
  (py-motmetrics) in the disc of ``eval_range_m`` around the RSU, frames after the warm-up only;
  :func:`overall` sums the RSUs' scores (py-motmetrics' overall row).

Scoring is per frame of the RSU: hypotheses after frame k against the ground truth at frame k's stamp.
(``run_offline`` scores an RSU alone at the ground-truth clock instead, predicting the tracks to it;
a peer tracker has no prediction to an arbitrary time, so the streams use the frames' own stamps.)
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mobility_twin.evaluation.mot import METRICS, DiscRegion, MotEvaluator
from mobility_twin.evaluation.stream_format import (
    Frame,
    Hypotheses,
    RsuStream,
    frame_of,
    load_stream,
    save_stream,
    stream_paths,
)
from mobility_twin.perception import SOURCE_RSU, Detections, DetectorConfig, LidarDetector, SensorPose2D
from mobility_twin.perception.visibility import Visibility
from mobility_twin.tracking import MultiSourceTracker, Tracker, TrackerConfig, object_array

__all__ = ["StreamOptions", "default_tracker", "detections_of", "load_streams", "overall", "record_streams",
           "score_stream", "track_stream", "update_times"]


@dataclass(frozen=True)
class StreamOptions:
    duration_s: float = 60.0  # recorded from start_s
    start_s: float = 0.0  # offset from the scenario's start
    warmup_s: float = 3.0  # frames before start_s + warmup_s are not scored (as run_offline)
    eval_range_m: float = 60.0  # scored within this distance of the RSU (as run_offline)
    gt_radius_m: float = 100.0  # ground truth kept within this distance of the RSU (>= eval range + margin)
    # CAV LiDARs cast too (their frames are not kept): the sensors are staggered over all LiDARs, so with
    # them the RSUs' frames have the stamps (and noise) of the full run; False is faster, other stamps
    cav_lidar: bool = True
    detector: DetectorConfig = DetectorConfig()


def record_streams(world, out_dir: Path | str, options: StreamOptions = StreamOptions(),
                   progress: Callable[[float, float], None] | None = None) -> list[Path]:
    """Run the replay engine and the detector of each RSU over ``options.duration_s`` of
    ``world`` (a :func:`mobility_twin_sim.world.build_world` result, either world); write one stream per RSU to
    ``out_dir/<rsu_id>.npz``. Returns the paths, in RSU order. ``progress(done_s, total_s)`` is called
    once per simulated second."""
    from mobility_twin_sim.replay import Replay, ReplayOptions

    if options.gt_radius_m < options.eval_range_m + 2.0:
        raise ValueError(f"gt_radius_m {options.gt_radius_m} must cover the evaluated disc "
                         f"(eval_range_m {options.eval_range_m} + the 2 m scoring margin).")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    replay = Replay(world, ReplayOptions(cav_lidar=options.cav_lidar))
    replay.seek(options.start_s)
    end = options.start_s + options.duration_s
    rsus = {r.rsu_id: r for r in world.rsus}
    detectors = {rid: LidarDetector(options.detector) for rid in rsus}
    frames: dict[str, list[Frame]] = {rid: [] for rid in rsus}
    last_report = options.start_s
    while not replay.finished and replay.next_time() <= end + 1e-9:
        tick = replay.step()
        if not tick.frames:
            continue
        state = world.advance(tick.t).vehicles  # the replay is there already: nothing moves
        gxy_all = np.stack([state.x, state.y], axis=1)
        for f in tick.frames:
            if f.kind != "rsu":
                continue
            p = f.pose
            d = detectors[f.sensor_id].detect(f.scan.points, SensorPose2D(p.x, p.y, p.z, p.yaw),
                                              source_id=f.sensor_id, source_type=SOURCE_RSU, stamp=f.stamp)
            near = np.hypot(gxy_all[:, 0] - p.x, gxy_all[:, 1] - p.y) <= options.gt_radius_m
            frames[f.sensor_id].append(frame_of(f.stamp, d, np.asarray(state.ids)[near], gxy_all[near]))
        if progress is not None and replay.position - last_report >= 1.0:
            last_report = replay.position
            progress(replay.position - options.start_s, options.duration_s)
    sc = world.scenario
    meta = {"scenario": sc.name, "seed": sc.seed, "start_s": options.start_s, "duration_s": options.duration_s,
            "warmup_s": options.warmup_s, "eval_range_m": options.eval_range_m, "gt_radius_m": options.gt_radius_m,
            "source_type": SOURCE_RSU, "t0": float(world.start_s + options.start_s), "cav_lidar": options.cav_lidar}
    paths = []
    for rid, rsu in rsus.items():
        stream = RsuStream.from_frames(rid, (rsu.x, rsu.y), options.detector.max_range_m, frames[rid], meta)
        paths.append(save_stream(out_dir / f"{rid}.npz", stream))
    (out_dir / "manifest.json").write_text(json.dumps({**meta, "rsus": list(rsus)}, indent=2))
    return paths


def load_streams(folder: Path | str) -> list[RsuStream]:
    paths = stream_paths(folder)
    if not paths:
        raise FileNotFoundError(f"No stream (*.npz) in {folder}: record them with record_streams first.")
    return [load_stream(p) for p in paths]


def detections_of(stream: RsuStream, frame: Frame) -> Detections:
    """The :class:`Detections` the RSU's detector produced for ``frame`` (what a project tracker takes)."""
    reports = frame.self_report  # (objects as a loaded stream holds them; strings as a recorder's frames)
    return Detections(stream.rsu_id, int(stream.meta.get("source_type", SOURCE_RSU)), frame.stamp,
                      stream.sensor_xy, stream.sensor_range_m, frame.xy, frame.cov, frame.yaw, frame.dims,
                      frame.velocity, frame.confidence, frame.num_points, frame.object_class,
                      reports if reports.dtype == object else object_array(reports.tolist()),
                      visibility=None if frame.visibility is None else Visibility.unpacked(*frame.visibility))


def track_stream(stream: RsuStream, make_tracker: Callable[[], Tracker] = MultiSourceTracker,
                 name: str = "mobility_twin") -> Hypotheses:
    """Run a fresh tracker over every frame of ``stream``; the hypotheses after each frame are its confirmed
    tracks at the frame's stamp. ``update_ms``: the tracker's step per frame, from the frame's arrays to the
    ids and positions of its confirmed tracks (building its input, update, reading out), the same span
    the peers' runner times."""
    tracker = make_tracker()
    out, times = [], []
    for f in stream.frames():
        t0 = time.perf_counter()
        tracker.update(detections_of(stream, f))
        h = tracker.confirmed_at(f.stamp)
        ids, xy = np.asarray(h.ids), np.asarray(h.x[:, :2])
        times.append(1000.0 * (time.perf_counter() - t0))
        out.append((ids, xy))
    settings = getattr(tracker, "config", None)
    meta = {"settings": repr(settings) if settings is not None else ""}
    return Hypotheses.from_frames(name, stream.rsu_id, stream.stamps, out, times, meta)


def score_stream(stream: RsuStream, hyps: Hypotheses, *, warmup_s: float | None = None,
                 eval_range_m: float | None = None, name: str | None = None) -> MotEvaluator:
    """Score ``hyps`` against the stream's ground truth, frames from the stream's start + ``warmup_s`` on,
    in the disc of ``eval_range_m`` around the RSU (both default to the stream's own)."""
    if len(hyps) != len(stream) or not np.allclose(hyps.stamps, stream.stamps):
        raise ValueError(f"Hypotheses of {hyps.tracker} on {hyps.rsu_id} ({len(hyps)} frames) do not match "
                         f"the stream of {stream.rsu_id} ({len(stream)} frames).")
    warmup = stream.meta.get("warmup_s", 3.0) if warmup_s is None else warmup_s
    radius = stream.meta.get("eval_range_m", 60.0) if eval_range_m is None else eval_range_m
    if radius + 2.0 > stream.meta.get("gt_radius_m", np.inf):
        raise ValueError(f"eval_range_m {radius} exceeds the ground truth recorded ({stream.meta['gt_radius_m']} m).")
    first = stream.meta.get("t0", float(stream.stamps[0]) if len(stream) else 0.0) + warmup
    ev = MotEvaluator(name or f"{hyps.tracker}/{stream.rsu_id}", DiscRegion.of([stream.sensor_xy], radius))
    for k in range(len(stream)):
        if stream.stamps[k] < first - 1e-9:
            continue
        g0, g1 = stream.gt_offsets[k], stream.gt_offsets[k + 1]
        ids, xy = hyps.frame(k)
        ev.add(stream.gt_ids[g0:g1], stream.gt_xy[g0:g1], ids, xy)
    return ev


def overall(evaluators: Iterable[MotEvaluator], name: str = "overall") -> dict:
    """The scores of several evaluators together (counts summed, then MOTA, IDF1, ... of the sums), as
    :meth:`MotEvaluator.summary` gives them for one."""
    import motmetrics as mm

    evs = [e for e in evaluators if e.frames]
    if not evs:
        return {"name": name, "num_frames": 0}
    df = mm.metrics.create().compute_many([e.acc for e in evs], metrics=METRICS, names=[e.name for e in evs],
                                          generate_overall=True)
    row = df.loc["OVERALL"]
    return {"name": name, **{k: (int(v) if k.startswith(("num_", "mostly_")) else float(v)) for k, v in row.items()}}


def update_times(update_ms) -> dict:
    """Summary of per-frame step times (ms; e.g. ``Hypotheses.update_ms``): mean, median, p90 and count."""
    v = np.asarray(update_ms, dtype=float)
    if not len(v):
        return {"mean_ms": float("nan"), "median_ms": float("nan"), "p90_ms": float("nan"), "frames": 0}
    return {"mean_ms": float(v.mean()), "median_ms": float(np.median(v)), "p90_ms": float(np.percentile(v, 90)),
            "frames": len(v)}


def default_tracker(config: TrackerConfig = TrackerConfig()) -> Callable[[], Tracker]:
    """The project's RSU-alone tracker as run_offline builds it: ``MultiSourceTracker(config)``."""
    return lambda: MultiSourceTracker(config)

"""Scoring a recorded run of the stack: tracking metrics against ground truth, and latency per stage.

A :class:`RunRecord` holds what a run published (ground truth, each twin's track publications, each
RSU's detection frames), decoded from the messages by whoever recorded them (the live evaluator node,
or a recording played back). :func:`score_run` is ROS-free.

Twins are scored *as of* each ground-truth instant: the newest publication at or before it, its tracks
predicted to that instant (what a consumer of the twin would believe then). An RSU alone is scored by
running the same tracker on that RSU's detections only.

Latency comes from the provenance the pipeline attaches to every sensor frame: wall-clock times of each
stage; with hardware-in-the-loop stamps (wall-clock sensor stamps) the first stage is the sensor itself.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from mobility_twin.evaluation.mot import DiscRegion, MotEvaluator
from mobility_twin.perception.detections import Detections
from mobility_twin.tracking import MultiSourceTracker, TrackerConfig
from mobility_twin_core import Layout

STAGES = ["sensor", "received", "perception", "local_received", "local_twin", "global_received", "global_twin"]


@dataclass
class TrackFrame:
    """One publication of a twin (or ground truth): stamp, ids, positions and velocities."""

    stamp: float
    ids: np.ndarray
    xy: np.ndarray
    v: np.ndarray
    ignore: np.ndarray | None = None  # ground truth: vehicles whose bodies overlap another's ("don't care")

    def at(self, t: float) -> np.ndarray:
        return self.xy + self.v * max(0.0, t - self.stamp)


@dataclass
class RunRecord:
    layout: Layout  # the run's infrastructure: which RSUs and sites are scored
    ground_truth: list[TrackFrame] = field(default_factory=list)
    twins: dict[str, list[TrackFrame]] = field(default_factory=dict)  # "global", "local/site_0", ...
    detections: dict[str, list[Detections]] = field(default_factory=dict)  # per RSU id
    provenance: list[tuple[str, float, tuple[tuple[str, float], ...]]] = field(default_factory=list)
    hil: bool = True


def _as_of(frames: list[TrackFrame], stamps: np.ndarray, t: float) -> TrackFrame | None:
    i = int(np.searchsorted(stamps, t + 1e-6, side="right")) - 1
    return frames[i] if i >= 0 else None


def score_run(record: RunRecord, *, eval_range_m: float = 60.0, warmup_s: float = 3.0,
              tracker: TrackerConfig = TrackerConfig()) -> dict:
    """Metrics per RSU alone, per local twin, for the global twin (overall and per RSU disc), and latency."""
    rsus = {r.rsu_id: (r.x, r.y) for r in record.layout.rsus}
    evaluators = {f"rsu/{rid}": MotEvaluator(f"rsu/{rid}", DiscRegion.of([xy], eval_range_m))
                  for rid, xy in rsus.items() if rid in record.detections}
    for site in record.layout.sites:
        name = f"local/{site.site_id}"
        centres = [rsus[r.rsu_id] for r in record.layout.rsus_of(site.site_id)]
        if name in record.twins and centres:
            evaluators[name] = MotEvaluator(name, DiscRegion.of(centres, eval_range_m))
    if "global" in record.twins:
        evaluators["global"] = MotEvaluator("global", DiscRegion.of(list(rsus.values()), eval_range_m))
        for rid, xy in rsus.items():
            if rid in record.detections:
                evaluators[f"global@{rid}"] = MotEvaluator(f"global@{rid}", DiscRegion.of([xy], eval_range_m))
    twin_stamps = {k: np.array([f.stamp for f in v]) for k, v in record.twins.items()}
    # An RSU alone is a tracker on that RSU's detections, scored like the twins: at a ground-truth instant it
    # knows the frames it had by then. With HIL stamps that is when its perception published them (the
    # last stage of their provenance), so it pays its own pipeline's latency as the twins pay theirs;
    # without, the sensor stamp (no latency at all: a bound in its favour).
    def available(frame) -> float:
        return frame.provenance[-1][1] if record.hil and frame.provenance else frame.stamp

    alone = {rid: (MultiSourceTracker(tracker), sorted(frames, key=available), [0])
             for rid, frames in record.detections.items()}
    gts = sorted(record.ground_truth, key=lambda f: f.stamp)
    # scoring starts warmup_s after the whole stack is up: every twin has published and every RSU's perception
    # has sent a frame (a twin that publishes before its sensors' first frames would be charged for every
    # vehicle present while perception processes were still starting)
    firsts = [s[0] for s in twin_stamps.values() if len(s)]
    firsts += [available(frames[0]) for _, frames, _ in alone.values() if frames]
    start = max(firsts, default=np.inf) + warmup_s
    tracked = []
    for gt in gts:
        if gt.stamp < start:
            continue
        for rid, (trk, frames, cursor) in alone.items():
            while cursor[0] < len(frames) and available(frames[cursor[0]]) <= gt.stamp + 1e-6:
                trk.update(frames[cursor[0]])
                cursor[0] += 1
            h = trk.confirmed_at(gt.stamp)
            evaluators[f"rsu/{rid}"].add(gt.ids, gt.xy, h.ids, h.x[:, :2], gt.ignore)
        for name, frames in record.twins.items():
            pub = _as_of(frames, twin_stamps[name], gt.stamp)
            if pub is None:
                continue
            hyp = pub.at(gt.stamp)
            for key, ev in evaluators.items():
                if key == name or (name == "global" and key.startswith("global@")):
                    ev.add(gt.ids, gt.xy, pub.ids, hyp, gt.ignore)
            if name == "global":
                tracked.append(len(pub.ids))
    metrics = {name: ev.summary() for name, ev in evaluators.items()}
    return {"tracking": metrics, "latency_ms": latency(record, since=start), "global_tracks": _stats(tracked),
            "warmup_s": warmup_s}


def _stats(values) -> dict:
    if not len(values):
        return {"n": 0}
    v = np.asarray(values, dtype=float)
    return {"n": len(v), "mean": float(v.mean()), "p50": float(np.percentile(v, 50)), "p99": float(np.percentile(v, 99)),
            "max": float(v.max())}


def source_kind(source_id: str) -> str:
    """'rsu_lidar', 'cav_lidar' or 'v2x' from a source id."""
    if source_id.endswith("/v2x"):
        return "v2x"
    return "cav_lidar" if source_id.startswith("cav") else "rsu_lidar"


def latency(record: RunRecord, since: float = -np.inf) -> dict:
    """Per stage (time since the previous stage) and end to end, in ms, over every frame measured at or
    after ``since`` (the scoring's warm-up: processes still starting) that reached the global twin. With
    HIL stamps the end-to-end latency starts at the sensor stamp; else at reception."""
    per_stage: dict[str, list[float]] = {}
    total: list[float] = []
    by_kind: dict[str, list[float]] = {}
    warmup = 0
    for source, sensor_stamp, stages in record.provenance:
        times = dict(stages)
        if "global_twin" not in times:
            continue
        if sensor_stamp < since:
            warmup += 1
            continue
        chain = ([("sensor", sensor_stamp)] if record.hil else []) + [(s, times[s]) for s in STAGES[1:] if s in times]
        for (_, t0), (name, t1) in itertools.pairwise(chain):
            per_stage.setdefault(name, []).append(1000.0 * (t1 - t0))
        total.append(1000.0 * (chain[-1][1] - chain[0][1]))
        by_kind.setdefault(source_kind(source), []).append(total[-1])
    out = {stage: _stats(v) for stage, v in per_stage.items()}
    out["end_to_end"] = _stats(total)
    out["end_to_end_by_source"] = {kind: _stats(v) for kind, v in sorted(by_kind.items())}
    out["end_to_end_from"] = "sensor stamp (HIL wall clock)" if record.hil else "perception input"
    out["frames_in_warmup"] = warmup
    return out

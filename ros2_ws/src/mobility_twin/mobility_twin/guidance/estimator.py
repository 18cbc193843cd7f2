"""Traffic state per road edge from what the twin holds: speed and travel time, smoothed over signal cycles.

Input: point observations (edge, position along it, speed, stamp) of map-matched twin tracks and V2X
self-reports, each sampled at the twin's rate. Each edge is cut into segments of about ``segment_m``. Over
a window of ``horizon_s`` (at least one signal cycle: an estimate that forgets within a cycle sees a red
light as a jam and the next green as free flow), the arithmetic mean of the time-sampled speeds in a
segment is the segment's length over the mean time vehicles spend in it (a vehicle contributes one sample
per twin update for as long as it is there, stopped or not), so

    travel_time[e] = sum over e's segments s of  length[s] / mean_speed[s]

Segments, not whole edges, because sensors see parts of roads: an RSU at a junction sees the queue at the
stop line, not the free-flowing rest of the road; a per-edge mean of its samples would take the queue's
speed for the whole road. Segments with few samples in the window are blended towards free flow
(``prior_samples`` pseudo-samples at the speed limit); one not observed for ``horizon_s`` is at free flow.
Free flow is optimistic there (on the bench's incident scenario, seed 11, vehicles entering an unobserved road took
a median 1.35 times its free-flow time to the next road, the junction included), but a prior taken from the
observed segments instead (the median ratio of the well-observed ones, per class: stop-line segment or not) made
the guided CAVs slower on every one of four seeds (11-14 of ``mtwin bench guidance``: 7 to 11 s more per CAV, 1.6
to 1.9 times the reroutes). Nor does the prior's weight matter beyond the seeds' spread: ``prior_samples`` 1 and 6
instead of 3, on seeds 1-6 of the bench's headline (twin arm alone), gave the guided CAVs 178.2 and 175.8 s on
average against 176.4 s, with 1.74 and 0.60 times the reroutes. Free flow is optimistic where the twin sees little:
with the headline's sensing (about half the vehicles held) the travel time of an edge it had not observed was 0.70
times what the same estimator gave it with every vehicle observed (seed 7, edges with 20 samples or more in the
latter, every 60 s; geometric means), 0.82-0.88 times on partly observed edges; with every vehicle observed, the
unobserved edges' times were a median 1.41 times free flow and the fully observed ones' 1.76, so a prior from the
well-observed roads overstates the others.
Edges, not movements: a road's time depends on where a vehicle leaves it for (on seed 11 of the bench's
incident scenario, no guidance, 965 (road, next road) pairs passed ten times or more: a pair's mean time was a
median 1.9 s from its road's, 8.5 s at the 90th percentile, more than 15 s for 51 pairs, e.g. a left turn
116 s slower than its road's 84 s mean; the passes' spread about their road's mean, 26 s, is 23 s about their
pair's). Per-lane segments giving each arc of the graph the time of the lanes that lead to its next road,
routed on, made the guided CAVs no faster over seeds 7, 8, 11-14 (mean 175.4 s against 174.6 s, 2.5 to 3
times the reroutes, all vehicles slower on two seeds; leaving out the turns from the road a CAV is on: 179.7
s, 195.8 s on seed 11).
Nor does a segment remember its last well-sampled window once it leaves the window (its speed fading to free
flow over 10 minutes, as the prior of the segments seen too little): 179.8 s over the same seeds, 190.6 s
on seed 13 against 167.8, with 2.5-3.5 times the reroutes; each of these made the twin reroute more, and
the CAVs lost.
The age of information (seconds since the newest observation of each edge) is kept beside the estimate.
Closures (an incident report) make an edge's travel time infinite until reopened. Vectorised: ring
buffers of ``bin_s`` bins x segments.

**Forecast** (``forecast_s`` > 0): a CAV reaches a road minutes after its route is chosen, and at rush hour a
queue grows meanwhile; a window's mean lags it by half a window. Each segment observed in both the window
and the window before it (``forecast_min_samples`` each) gets its trend between the two, extrapolated
``forecast_s`` ahead:

    travel_time[s] = tt_window[s] + (tt_window[s] - tt_before[s]) * forecast_s / horizon_s

never below the segment's free flow nor half its window's mean. Both windows are whole (at least a signal
cycle each), so a red light is not a trend.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mobility_twin_core.roads import RoadGraph


@dataclass(frozen=True)
class EstimatorConfig:
    horizon_s: float = 180.0  # window of the average: >= the longest signal cycle (SUMO's device: 10 s x 18)
    bin_s: float = 10.0
    segment_m: float = 25.0  # edges are cut into segments of about this length
    prior_samples: float = 3.0  # pseudo-samples per segment at free flow (few samples: near free flow)
    min_speed_mps: float = 0.5  # floor of an edge's mean speed (travel time <= length / this)
    forecast_s: float = 0.0  # travel times extrapolated this far ahead on the trend from the window before
    forecast_min_samples: float = 10.0  # ... on segments with this many samples in both windows
    change_rel: float = 0.5  # an edge's travel time changed by this share ...
    change_s: float = 30.0  # ... and this many seconds since the last check: a change (reroute now)

    def validate(self) -> None:
        if not (self.bin_s > 0 and self.horizon_s >= self.bin_s):
            raise ValueError(f"horizon_s ({self.horizon_s}) must be >= bin_s ({self.bin_s}) > 0")
        if self.prior_samples < 0 or self.min_speed_mps <= 0 or self.segment_m <= 0:
            raise ValueError("prior_samples >= 0, min_speed_mps > 0 and segment_m > 0")
        if not (self.forecast_s >= 0 and self.forecast_min_samples >= 0):
            raise ValueError(f"forecast_s ({self.forecast_s}) and forecast_min_samples ({self.forecast_min_samples}) "
                             f"must be >= 0")


class TrafficStateEstimator:
    """Per-edge speed / travel time of a :class:`RoadGraph` from observations; see the module docstring."""

    def __init__(self, graph: RoadGraph, config: EstimatorConfig = EstimatorConfig()) -> None:
        config.validate()
        self.graph = graph
        self.config = config
        self.n_window = math.ceil(config.horizon_s / config.bin_s)
        self.n_bins = self.n_window * (2 if config.forecast_s > 0 else 1)  # the window, and the one before it
        E = len(graph)
        n_seg = np.maximum(1, np.ceil(graph.length / config.segment_m)).astype(np.int64)
        self.seg_start = np.concatenate([[0], np.cumsum(n_seg)[:-1]]).astype(np.int64)
        self.n_seg = n_seg
        self.seg_edge = np.repeat(np.arange(E), n_seg)
        self.seg_length = (graph.length / n_seg)[self.seg_edge]
        self.seg_free = graph.speed[self.seg_edge]
        S = int(n_seg.sum())
        self._sum = np.zeros((self.n_bins, S))
        self._cnt = np.zeros((self.n_bins, S))
        self._bin_of = np.full(self.n_bins, -1, np.int64)  # absolute bin number held by each slot
        self.last_seen = np.full(E, -np.inf)
        self.closed = np.zeros(E, bool)
        self.newest_s = -math.inf  # stamp of the newest observation taken
        self.observations = 0
        self._ref_tt: np.ndarray | None = None

    # ------------------------------------------------------------------------------------------ input
    def observe(self, stamp: float, edges: np.ndarray, speeds: np.ndarray, along: np.ndarray | None = None) -> int:
        """Take one twin update's samples (edge index, speed m/s, position along the edge as a share of its
        length: 0 start, 1 end; None: the middle) stamped ``stamp``; unmatched (-1) and non-finite ones are
        dropped. Returns how many were used."""
        edges = np.asarray(edges, np.int64)
        speeds = np.asarray(speeds, float)
        along = np.full(len(edges), 0.5) if along is None else np.asarray(along, float)
        ok = (edges >= 0) & (edges < len(self.graph)) & np.isfinite(speeds) & np.isfinite(along)
        if not math.isfinite(stamp):
            return 0
        b = math.floor(stamp / self.config.bin_s)
        slot = b % self.n_bins
        if self._bin_of[slot] != b:
            if self._bin_of[slot] > b:  # older than the window: nothing to add to
                return 0
            self._sum[slot] = 0.0
            self._cnt[slot] = 0.0
            self._bin_of[slot] = b
        e, v = edges[ok], np.clip(speeds[ok], 0.0, None)
        k = np.minimum((np.clip(along[ok], 0.0, 1.0) * self.n_seg[e]).astype(np.int64), self.n_seg[e] - 1)
        seg = self.seg_start[e] + k
        np.add.at(self._sum[slot], seg, v)
        np.add.at(self._cnt[slot], seg, 1.0)
        self.last_seen[e] = np.maximum(self.last_seen[e], stamp)
        self.newest_s = max(self.newest_s, stamp)
        self.observations += int(ok.sum())
        return int(ok.sum())

    def close(self, edge: int) -> None:
        self.closed[edge] = True

    def reopen(self, edge: int) -> None:
        self.closed[edge] = False

    # ------------------------------------------------------------------------------------------ output
    def _window(self, now: float, back: int = 0) -> np.ndarray:
        b = math.floor(now / self.config.bin_s) - back * self.n_window
        return (self._bin_of > b - self.n_window) & (self._bin_of <= b)

    def samples(self, now: float) -> np.ndarray:
        """[E] samples in the window ending at ``now``."""
        n = self._cnt[self._window(now)].sum(axis=0)
        return np.bincount(self.seg_edge, n, minlength=len(self.graph))

    def segment_speed(self, now: float) -> np.ndarray:
        """[S] estimated mean speed of each segment (m/s), free flow where unobserved."""
        return self._segment_speed(now)[0]

    def _segment_speed(self, now: float, back: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """(speed, samples) of each segment in the window ``back`` windows before the one ending at ``now``."""
        cfg = self.config
        w = self._window(now, back)
        s, n = self._sum[w].sum(axis=0), self._cnt[w].sum(axis=0)
        k = cfg.prior_samples
        v = (s + k * self.seg_free) / np.maximum(n + k, 1e-9)
        return np.clip(v, cfg.min_speed_mps, self.seg_free), n

    def travel_time(self, now: float) -> np.ndarray:
        """[E] estimated travel time (s); inf on closed edges."""
        cfg = self.config
        v, n = self._segment_speed(now)
        seg_tt = self.seg_length / v
        if cfg.forecast_s > 0:
            v1, n1 = self._segment_speed(now, 1)
            trend = seg_tt - self.seg_length / v1
            both = (n >= cfg.forecast_min_samples) & (n1 >= cfg.forecast_min_samples)
            fore = seg_tt + np.where(both, trend, 0.0) * (cfg.forecast_s / (self.n_window * cfg.bin_s))
            seg_tt = np.clip(fore, np.maximum(self.seg_length / self.seg_free, 0.5 * seg_tt),
                             self.seg_length / cfg.min_speed_mps)
        tt = np.bincount(self.seg_edge, seg_tt, minlength=len(self.graph))
        return np.where(self.closed, np.inf, tt)

    def speed(self, now: float) -> np.ndarray:
        """[E] estimated space-mean speed of each edge (m/s) in the window: its length over its travel time
        there (no forecast)."""
        tt = np.bincount(self.seg_edge, self.seg_length / self.segment_speed(now), minlength=len(self.graph))
        return self.graph.length / tt

    def age(self, now: float) -> np.ndarray:
        """[E] age of information (s since the newest observation of each edge; inf: never observed)."""
        return now - self.last_seen

    def changed(self, now: float) -> np.ndarray:
        """Indices of edges whose travel time changed by more than ``change_rel`` and ``change_s`` since the
        last call (closures and reopenings included); the first call sets the reference and reports none."""
        tt = self.travel_time(now)
        if self._ref_tt is None:
            self._ref_tt = tt
            return np.zeros(0, np.int64)
        ref = self._ref_tt
        both = np.isfinite(tt) & np.isfinite(ref)
        diff = np.zeros_like(tt)
        np.subtract(tt, ref, out=diff, where=both)
        diff = np.abs(diff)
        big = both & (diff > self.config.change_rel * np.where(both, ref, 0.0)) & (diff > self.config.change_s)
        flipped = np.isfinite(tt) != np.isfinite(ref)
        hit = np.flatnonzero(big | flipped)
        self._ref_tt = np.where(big | flipped, tt, ref)
        return hit

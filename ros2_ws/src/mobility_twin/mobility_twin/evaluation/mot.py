"""CLEAR-MOT and identity metrics of a twin's tracks against ground truth, with py-motmetrics.

A frame pairs the ground-truth vehicles and the hypotheses (tracks) at one instant, within the evaluated
region (the union of coverage discs: a sensor or twin is scored where it is meant to see). The region's
edge is an ignore band of ``margin_m``: vehicles and tracks are first matched over the region widened by
the band; then a vehicle outside the region is dropped together with the track matched to it, and an
unmatched track outside the region is dropped, so a vehicle on the edge counts neither as a miss nor
its track as a false positive. A hypothesis matches a vehicle within ``match_threshold_m`` of its
centre (2 m, as the nuScenes tracking benchmark uses). MOTP is reported in metres (mean distance).

Vehicles whose bodies overlap another's (:func:`overlapping_bodies`) are "don't care", as crowds are in
the MOT benchmarks: the replayed GPS trajectories put parked or queued taxis into each other, a
physically impossible scene no sensor can resolve (the LiDAR sees one blob). Such a vehicle counts
neither as a miss nor as a match, the track matched to it (or lying within ``ignore_radius_m`` of it,
unmatched) is dropped, and the number of vehicle-frames so ignored is reported (``num_ignored``).
"""

from __future__ import annotations

from dataclasses import dataclass

import motmetrics as mm
import numpy as np
from scipy.optimize import linear_sum_assignment

METRICS = ["num_frames", "num_objects", "num_matches", "num_false_positives", "num_misses", "num_switches",
           "mota", "motp", "idf1", "precision", "recall", "mostly_tracked", "mostly_lost"]


@dataclass(frozen=True)
class DiscRegion:
    """The union of discs: ``centres`` (K, 2) metres, one ``radius`` each (or one for all)."""

    centres: np.ndarray
    radii: np.ndarray

    @staticmethod
    def of(centres, radius) -> DiscRegion:
        c = np.asarray(centres, dtype=float).reshape(-1, 2)
        return DiscRegion(c, np.broadcast_to(np.asarray(radius, dtype=float), (len(c),)).copy())

    def contains(self, xy: np.ndarray, margin: float = 0.0) -> np.ndarray:
        xy = np.asarray(xy, dtype=float).reshape(-1, 2)
        if len(self.centres) == 0 or len(xy) == 0:
            return np.zeros(len(xy), dtype=bool)
        d = np.linalg.norm(xy[:, None, :] - self.centres[None, :, :], axis=2)
        return np.any(d <= self.radii[None, :] + margin, axis=1)


def overlapping_bodies(xy, yaw, length, width) -> np.ndarray:
    """Whether each vehicle's footprint (an oriented rectangle) overlaps another's (separating axes)."""
    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    n = len(xy)
    out = np.zeros(n, dtype=bool)
    if n < 2:
        return out
    yaw, length, width = (np.broadcast_to(np.asarray(v, dtype=float), (n,)) for v in (yaw, length, width))
    from scipy.spatial import cKDTree

    pairs = cKDTree(xy).query_pairs(float(np.hypot(length.max(), width.max())), output_type="ndarray")
    if not len(pairs):
        return out
    a, b = pairs[:, 0], pairs[:, 1]
    half = np.stack([length / 2, width / 2], axis=1)
    axes = np.stack([np.stack([np.cos(yaw), np.sin(yaw)], 1), np.stack([-np.sin(yaw), np.cos(yaw)], 1)], 1)  # (n,2,2)
    d = xy[b] - xy[a]
    separated = np.zeros(len(pairs), dtype=bool)
    for own, other in ((a, b), (b, a)):
        for k in range(2):
            axis = axes[own, k]  # (p, 2)
            reach = half[own, k] + np.abs(np.einsum("pij,pj->pi", axes[other], axis) * half[other]).sum(axis=1)
            separated |= np.abs(np.einsum("pj,pj->p", d, axis)) >= reach
    hit = pairs[~separated]
    out[hit[:, 0]] = out[hit[:, 1]] = True
    return out


class MotEvaluator:
    def __init__(self, name: str, region: DiscRegion, *, match_threshold_m: float = 2.0, margin_m: float = 2.0,
                 ignore_radius_m: float = 3.0):
        self.name = name
        self.region = region
        self.threshold = match_threshold_m
        self.margin = margin_m
        self.ignore_radius = ignore_radius_m
        self.acc = mm.MOTAccumulator(auto_id=True)
        self.frames = 0
        self.ignored = 0

    def add(self, gt_ids, gt_xy, hyp_ids, hyp_xy, ignore=None) -> None:
        """One frame. ``ignore``: per ground-truth vehicle, whether it is "don't care" (see the module)."""
        gt_ids, hyp_ids = np.asarray(gt_ids), np.asarray(hyp_ids)
        gt_xy = np.asarray(gt_xy, dtype=float).reshape(-1, 2)
        hyp_xy = np.asarray(hyp_xy, dtype=float).reshape(-1, 2)
        g = self.region.contains(gt_xy, self.margin)
        h = self.region.contains(hyp_xy, self.margin)
        ignore = np.zeros(int(np.count_nonzero(g)), dtype=bool) if ignore is None else np.asarray(ignore, dtype=bool)[g]
        gt_ids, gt_xy, hyp_ids, hyp_xy = gt_ids[g], gt_xy[g], hyp_ids[h], hyp_xy[h]
        g_in = self.region.contains(gt_xy)
        self.ignored += int(np.count_nonzero(g_in & ignore))
        g_in &= ~ignore
        h_in = self.region.contains(hyp_xy)
        if ignore.any() and len(hyp_xy):  # unmatched tracks on a don't-care blob are dropped too (below)
            near = np.linalg.norm(hyp_xy[:, None, :] - gt_xy[None, ignore, :], axis=2).min(axis=1)
            h_in &= near > self.ignore_radius
        keep_h = h_in.copy()
        if len(gt_xy) and len(hyp_xy):
            d = np.linalg.norm(gt_xy[:, None, :] - hyp_xy[None, :, :], axis=2)
            rows, cols = linear_sum_assignment(np.where(d <= self.threshold, d, 1e9))
            matched = d[rows, cols] <= self.threshold
            rows, cols = rows[matched], cols[matched]
            keep_h[cols] = g_in[rows]  # a track matched to a vehicle counts where the vehicle is
        dist = mm.distances.norm2squared_matrix(gt_xy[g_in], hyp_xy[keep_h], max_d2=self.threshold**2)
        self.acc.update(gt_ids[g_in].tolist(), hyp_ids[keep_h].tolist(), np.sqrt(dist))
        self.frames += 1

    def summary(self) -> dict:
        if self.frames == 0:
            return {"name": self.name, "num_frames": 0}
        df = mm.metrics.create().compute(self.acc, metrics=METRICS, name=self.name)
        row = {k: (int(v) if k.startswith(("num_", "mostly_")) else float(v)) for k, v in df.iloc[0].items()}
        return {"name": self.name, **row, "num_ignored": self.ignored}

"""The raw-detection baseline: time to collision from the unfused detections and reports alone (no twin).

What a roadside unit could do without a twin: each source's newest frame as it is (a LiDAR's boxes, a
vehicle's own report), a velocity for a LiDAR box from the nearest box of the same source's previous frame
(frame differencing; V2X reports carry their own), and each detection keeps the id of the box it came from so
that a warning can persist. No filter, no fusion across sources (one vehicle seen by two sources is two road
users: they overlap at once and the predictor sets such pairs aside), no covariance: the predictor runs on the
mean motion (probability 0 or 1).
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy.spatial import cKDTree

from mobility_twin.safety.predictor import Motion


class RawDetections:
    def __init__(self, match_m: float = 3.0, max_age_s: float = 0.25) -> None:
        self.match_m = match_m
        self.max_age_s = max_age_s
        self._frames: dict[str, tuple] = {}
        self._ids = itertools.count(1)
        self.source_of: dict[int, str] = {}

    def add(self, d) -> None:
        """A :class:`mobility_twin.perception.Detections` frame."""
        xy = np.asarray(d.xy, float).reshape(-1, 2)
        n = len(xy)
        vel = np.asarray(d.velocity, float).reshape(n, 2).copy()
        ids = np.zeros(n, dtype=np.int64)
        prev = self._frames.get(d.source_id)
        if prev is not None and len(prev[1]) and n:
            dt = d.stamp - prev[0]
            dist, k = cKDTree(prev[1]).query(xy, distance_upper_bound=self.match_m)
            matched = np.isfinite(dist)
            # one previous box to one new box: the nearest new box keeps the id
            order = np.argsort(np.where(matched, dist, np.inf))
            used = set()
            for r in order:
                if not matched[r] or int(k[r]) in used:
                    continue
                used.add(int(k[r]))
                ids[r] = prev[2][k[r]]
                if not np.isfinite(vel[r]).all() and 0 < dt < 0.5:
                    vel[r] = (xy[r] - prev[1][k[r]]) / dt
        for r in np.flatnonzero(ids == 0):
            ids[r] = next(self._ids)
            self.source_of[int(ids[r])] = d.source_id
        dims = np.asarray(d.dims, float).reshape(n, 3)
        cls = np.asarray(d.object_class, dtype=np.int64).reshape(n)
        self._frames[d.source_id] = (float(d.stamp), xy, ids, vel, dims, cls)

    def motion(self, t: float, classes=None) -> Motion:
        """Every source's newest frame (not older than ``max_age_s``), moved on to ``t``; detections without a
        velocity yet (first sight), and of other ``classes`` than those given, are left out."""
        rows = []
        for stamp, xy, ids, vel, dims, cls in self._frames.values():
            if t - stamp > self.max_age_s or not len(xy):
                continue
            ok = np.isfinite(vel).all(axis=1)
            if classes is not None:
                ok &= np.isin(cls, np.asarray(list(classes), dtype=np.int64))
            if not ok.any():
                continue
            dt = t - stamp
            p = xy[ok] + vel[ok] * dt
            rows.append((ids[ok], np.column_stack([p, vel[ok]]), dims[ok]))
        if not rows:
            return Motion(t, np.zeros(0, np.int64), np.zeros((0, 4)), None, np.zeros(0), np.zeros(0))
        ids = np.concatenate([r[0] for r in rows])
        x = np.concatenate([r[1] for r in rows])
        dims = np.concatenate([r[2] for r in rows])
        return Motion(t, ids, x, None, dims[:, 0], dims[:, 1])

"""What the LiDARs saw of the road just now, for the warnings: whether the gap between two road users was in
plain view.

A rear-end warning names the follower and the road user ahead of it that the twin holds. When a stretch of
road between them at least a car long was hidden from every sensor (behind a truck, a building, another car),
a car the twin does not hold may stand there, and the follower's conflict is then with that car, not with
the one the warning names. :class:`SensorViews` keeps the newest view of each LiDAR (its frame's
:class:`mobility_twin.perception.visibility.Visibility`, sent with its detections) and measures, for a
segment of road, the longest stretch of it that no fresh view saw clear (:meth:`SensorViews.unseen_m`).

ROS-free.
"""

from __future__ import annotations

import numpy as np

from mobility_twin.perception.visibility import CLEAR


class SensorViews:
    """The newest view of each sensor: ``add(source, t, visibility, sensor_xy)`` as frames come; views older
    than ``max_age_s`` at the time asked take no part."""

    def __init__(self, max_age_s: float = 0.3) -> None:
        if not max_age_s > 0:
            raise ValueError(f"sensor views: max_age_s must be > 0, got {max_age_s}")
        self.max_age_s = max_age_s
        self._views: dict[str, tuple[float, object, tuple[float, float]]] = {}

    def add(self, source: str, t: float, visibility, sensor_xy) -> None:
        """The frame of ``source`` at ``t`` saw ``visibility`` (None: it says nothing: ignored) from ``sensor_xy``;
        it replaces the sensor's view before it (frames come in order)."""
        if visibility is None:
            return
        self._views[source] = (float(t), visibility, (float(sensor_xy[0]), float(sensor_xy[1])))  # (the newest frame)

    def fresh(self, t: float) -> list[tuple[object, tuple[float, float]]]:
        """The views within ``max_age_s`` of ``t`` (the sensors' whose newest view is older are forgotten)."""
        for source in [k for k, (when, _, _) in self._views.items() if when < t - self.max_age_s]:
            del self._views[source]
        return [(v, xy) for when, v, xy in self._views.values() if when <= t + self.max_age_s]

    def unseen_m(self, t: float, start: np.ndarray, end: np.ndarray, step_m: float = 1.0) -> np.ndarray:
        """(K,) the longest stretch (m) of each segment ``start`` -> ``end`` ((K, 2) each, in ``map``) that no
        fresh view saw clear, sampled every ``step_m``; a segment of no length: 0. With no fresh view at all,
        the whole length of each (nothing was seen)."""
        start, end = np.asarray(start, float).reshape(-1, 2), np.asarray(end, float).reshape(-1, 2)
        length = np.hypot(*(end - start).T)
        if not len(start):
            return np.zeros(0)
        n = np.maximum(np.ceil(length / step_m).astype(np.int64), 1)
        width = int(n.max())
        s = (np.arange(width)[None, :] + 0.5) / n[:, None]  # (K, W) the samples' share of each segment
        valid = np.arange(width)[None, :] < n[:, None]
        pts = start[:, None, :] + s[:, :, None] * (end - start)[:, None, :]
        flat = pts[valid]
        seen = np.zeros(len(flat), bool)
        for visibility, sensor_xy in self.fresh(t):
            todo = np.flatnonzero(~seen)
            if not len(todo):
                break
            seen[todo] = visibility.classify(flat[todo], sensor_xy) == CLEAR
        unseen = np.zeros((len(start), width), bool)
        unseen[valid] = ~seen
        run = np.zeros(len(start), np.int64)
        best = np.zeros(len(start), np.int64)
        for k in range(width):  # the longest run of unseen samples in each row
            run = np.where(unseen[:, k], run + 1, 0)
            best = np.maximum(best, run)
        return np.where(length > 0, np.minimum(best * (length / n), length), 0.0)

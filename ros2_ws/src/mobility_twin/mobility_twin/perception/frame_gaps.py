"""Frames missing from a sensor's stream, counted from the stamps of those that arrived.

A node that takes only the newest frame (``NEWEST_FRAME``) never sees a frame replaced while it was busy, and
a sensor or link that drops frames says nothing either: the stamps tell. The sensor's period is the median
of the recent gaps between consecutive stamps (robust to the gaps themselves), and a gap of k periods means
k - 1 frames never arrived.
"""

from __future__ import annotations

from collections import deque
from statistics import median


class FrameGaps:
    def __init__(self, window: int = 21, min_gaps: int = 5) -> None:
        self._gaps: deque[float] = deque(maxlen=window)
        self._min_gaps = min_gaps
        self.last: float | None = None
        self.missing = 0  # frames that never arrived
        self.out_of_order = 0  # stamps not later than the previous one

    def add(self, stamp: float) -> int:
        """Record the frame stamped ``stamp``; returns how many frames are missing right before it."""
        if self.last is None:
            self.last = stamp
            return 0
        if not stamp > self.last:
            self.out_of_order += 1
            return 0
        gap, self.last = stamp - self.last, stamp
        period = median(self._gaps) if len(self._gaps) >= self._min_gaps else 0.0
        self._gaps.append(gap)
        if period <= 0.0:
            return 0
        missing = max(0, round(gap / period) - 1)
        self.missing += missing
        return missing

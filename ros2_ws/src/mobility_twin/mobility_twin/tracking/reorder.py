"""Out-of-order input handled by time, not arrival: the reorder buffer of the tracker.

Before each frame it processes, the tracker keeps a snapshot of its state; a frame that arrives late (its
stamp before the newest processed one, but within ``window_s``) rewinds to the snapshot before its stamp,
and it and the frames after it are processed again in stamp order, so the result equals in-order
processing. Frames older than the window are stale; a frame seen before (same source and stamp) is a
duplicate; both are refused (the caller counts them).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Any

from mobility_twin.perception.detections import Detections


@dataclass
class Checkpoint:
    """A frame and the tracker state just before it was processed."""

    stamp: float
    frame: Detections
    state: Any


class ReorderBuffer:
    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self.history: list[Checkpoint] = []  # frames processed within the window, by stamp
        self._seen: set[tuple[str, float]] = set()

    def is_duplicate(self, frame: Detections) -> bool:
        return frame.key in self._seen

    def is_stale(self, frame: Detections, newest: float) -> bool:
        return frame.stamp < newest - self.window_s

    def accept(self, frame: Detections) -> None:
        self._seen.add(frame.key)

    def record(self, frame: Detections, state: Any) -> None:
        """Keep ``state`` (the tracker before ``frame``) and forget what fell out of the window."""
        self.history.append(Checkpoint(frame.stamp, frame, state))
        horizon = frame.stamp - self.window_s
        while self.history and self.history[0].stamp < horizon:
            old = self.history.pop(0)
            self._seen.discard(old.frame.key)

    def rewind(self, stamp: float) -> tuple[Any, list[Detections]]:
        """The state before the first frame later than ``stamp``, and the frames from there on (removed from
        the history: the caller processes them again)."""
        i = bisect.bisect_right([c.stamp for c in self.history], stamp)
        later = self.history[i:]
        del self.history[i:]
        return later[0].state, [c.frame for c in later]

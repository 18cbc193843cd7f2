"""Out-of-order input handled by time, not arrival: the reorder buffer of the tracker.

The tracker keeps the frames it processed within ``window_s``, and before every ``snapshot_every``-th of
them a snapshot of its state; a frame that arrives late (its stamp before the newest processed one, but
within ``window_s``) rewinds to the newest snapshot before its stamp, and the frames from there are
processed again in stamp order with it, so the result equals in-order processing. (Copying the state is
most of what a frame with few vehicles costs; a late frame replays at most ``snapshot_every - 1`` frames
more for it.) Frames older than the window are stale; a frame seen before (same source and stamp) is a
duplicate; both are refused (the caller counts them). A frame that gathers several sources' frames of one
instant (``Detections.of_instant``) is kept under each of their keys.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from typing import Any, NamedTuple

from mobility_twin.perception.detections import Detections

#: a snapshot of the tracker's state before every this many frames
SNAPSHOT_EVERY = 4


class Checkpoint(NamedTuple):
    """A frame and the tracker state just before it was processed (None: not kept for this frame)."""

    stamp: float
    frame: Detections
    state: Any


class ReorderBuffer:
    def __init__(self, window_s: float, snapshot_every: int = SNAPSHOT_EVERY) -> None:
        if snapshot_every < 1:
            raise ValueError(f"snapshot_every must be >= 1, got {snapshot_every}")
        self.window_s = window_s
        self.snapshot_every = snapshot_every
        # frames processed within the window, by stamp; the first always with a state (a rewind starts there)
        self.history: list[Checkpoint] = []
        self._unsaved = 0  # frames recorded since the newest snapshot
        self._seen: set[tuple[str, float]] = set()

    def admit(self, frame: Detections, newest: float) -> str:
        """Whether ``frame`` is new and within the window of ``newest`` (the newest stamp fused): "" when it is
        (it is marked seen), else why not: "duplicate" (seen before) or "stale" (older than the window)."""
        keys = _keys(frame)
        if not self._seen.isdisjoint(keys):
            return "duplicate"
        if frame.stamp < newest - self.window_s:
            return "stale"
        self._seen.update(keys)
        return ""

    def record(self, frame: Detections, snapshot: Callable[[], Any]) -> None:
        """Keep ``frame`` and, every ``snapshot_every`` frames, ``snapshot()`` (the tracker before ``frame``);
        forget what fell out of the window (all but the newest snapshot before it and the frames after it)."""
        h = self.history
        keep = not h or self._unsaved >= self.snapshot_every - 1
        h.append(Checkpoint(frame.stamp, frame, snapshot() if keep else None))
        if not keep:
            self._unsaved += 1
            return
        self._unsaved = 0
        # forget a snapshot and its frames once the next snapshot holds only frames older than the window
        # (looked at when a snapshot is taken)
        horizon = frame.stamp - self.window_s
        while len(h) > 1 and h[0].stamp < horizon:
            nxt = 1
            while nxt < len(h) and h[nxt].state is None:
                nxt += 1
            if nxt == len(h) or h[nxt - 1].stamp >= horizon:
                break
            for c in h[:nxt]:
                self._seen.difference_update(_keys(c.frame))
            del h[:nxt]

    def holds(self, key: tuple[str, float]) -> bool:
        """Whether the frame of ``key`` is still kept (a rewind may process it again)."""
        return key in self._seen

    def rewind(self, stamp: float) -> tuple[Any, list[Detections], list[Detections]]:
        """The state of the newest snapshot before the first frame later than ``stamp``, the frames from it up
        to ``stamp`` and the frames after ``stamp`` (both removed from the history: the caller processes them
        again, the late frame between them)."""
        i = bisect.bisect_right([c.stamp for c in self.history], stamp)
        j = min(i, len(self.history) - 1)
        while self.history[j].state is None:
            j -= 1
        replay = self.history[j:]
        del self.history[j:]
        self._unsaved = 0
        for c in reversed(self.history):  # (the frames after the newest snapshot left)
            if c.state is not None:
                break
            self._unsaved += 1
        return replay[0].state, [c.frame for c in replay[:i - j]], [c.frame for c in replay[i - j:]]


def _keys(frame: Detections) -> tuple[tuple[str, float], ...]:
    """The keys a frame is known by: its own, or those of the sources' frames it gathers (``Detections.keys``)."""
    return (frame.key,) if frame.sources is None else frame.keys

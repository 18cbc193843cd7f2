"""Callbacks that never let an exception out: one bad message must not take a node down.

Every subscription callback of the stack's nodes is wrapped with :func:`guarded`: an exception (a decoder
that meets bytes it cannot read, a value a library refuses) drops that one input, is counted under
``callback_error`` and logged with its type and message (throttled), and the node carries on. What a node
drops is counted by reason and summed up in its log every so often (:class:`Every`, :func:`count_summary`).
"""

from __future__ import annotations

import functools
import time
from collections import Counter
from collections.abc import Callable

from rclpy.node import Node


def guarded(node: Node, counts: Counter, what: str) -> Callable[[Callable], Callable]:
    def wrap(callback: Callable) -> Callable:
        @functools.wraps(callback)
        def run(*args, **kwargs):
            try:
                return callback(*args, **kwargs)
            except Exception as err:  # the point: any failure drops the input, not the node
                counts["callback_error"] += 1
                node.get_logger().error(f"{what}: input dropped after {type(err).__name__}: {err}",
                                        throttle_duration_sec=5.0)
                return None

        return run

    return wrap


def count_summary(counts: Counter) -> str:
    """The counts as ``reason n, reason n`` (sorted by reason); ``none`` when there are none."""
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"


class Every:
    """A period of the monotonic clock: :meth:`due` is True once per ``period_s``, the first time a period
    after the object was made (a node's summary lines)."""

    def __init__(self, period_s: float) -> None:
        self.period_s = period_s
        self._last = time.monotonic()

    def due(self) -> bool:
        now = time.monotonic()
        if now - self._last < self.period_s:
            return False
        self._last = now
        return True

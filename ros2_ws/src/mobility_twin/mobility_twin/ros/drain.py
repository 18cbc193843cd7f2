"""Run a callback once the input already queued for a node has been handled ("drain, then publish").

A twin node fuses every message as it arrives but should publish once per burst, not once per message:
sixteen V2X relays or two local twins arriving together are one update downstream. ``request()`` hands
the callback to the executor as a task, which runs behind the messages already waiting in it (the
EventsExecutor has no guard conditions; tasks it has), so the callback runs after they are fused, and as
soon as they are. Under light load that is right after the one message
(no added latency); under heavy load publications coalesce by themselves, so the node keeps up.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from rclpy.node import Node


class AfterQueuedInput:
    def __init__(self, node: Node, callback: Callable[[], None]) -> None:
        self._node = node
        self._callback = callback
        self._pending = False

    def request(self) -> None:
        """Call the callback after the input queued now; requests before it runs are merged."""
        if self._pending:
            return
        executor = self._node.executor
        if executor is None:  # not spinning yet
            self._callback()
            return
        self._pending = True
        executor.create_task(self._run)

    def _run(self) -> None:
        self._pending = False
        self._callback()


class EventPublication:
    """When a twin node publishes its objects: once the input queued with a fused frame is fused too (see
    :class:`AfterQueuedInput`), never closer than ``min_interval_s`` (0: no limit; held-back publications go
    out on a steady clock, whatever the ROS clock), and from the node's heartbeat when nothing came.

    ``publish`` builds and sends one publication; call :meth:`publish` (not it) so that the time of the
    last one is kept, and :meth:`input_fused` after each fused input.
    """

    def __init__(self, node: Node, publish: Callable[[], None], min_interval_s: float) -> None:
        from rclpy.clock import Clock, ClockType

        self._publish = publish
        self.min_interval_s = min_interval_s
        self.last_wall = 0.0
        self._dirty = False
        self._after_input = AfterQueuedInput(node, self.flush)
        if min_interval_s > 0:
            node.create_timer(max(min_interval_s / 2, 0.002), self.flush, clock=Clock(clock_type=ClockType.STEADY_TIME))

    def input_fused(self) -> None:
        self._dirty = True
        self._after_input.request()

    def flush(self) -> None:
        """Publish the fused input, unless the last publication is less than min_interval_s old."""
        if self._dirty and self.since_last() >= self.min_interval_s:
            self.publish()

    def since_last(self) -> float:
        """Wall seconds since the last publication."""
        return time.time() - self.last_wall

    def publish(self) -> None:
        self.last_wall = time.time()
        self._dirty = False
        self._publish()

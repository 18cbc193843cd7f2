"""Run a callback once the input already queued for a node has been handled ("drain, then publish").

A twin node fuses every message as it arrives but should publish once per burst, not once per message:
sixteen V2X relays or two local twins arriving together are one update downstream. ``request()`` hands
the callback to the executor as a task, which runs behind the messages already waiting in it (the
EventsExecutor has no guard conditions; tasks it has), so the callback runs after they are fused, and as
soon as they are. Under light load that is right after the one message
(no added latency); under heavy load publications coalesce by themselves, so the node keeps up.
"""

from __future__ import annotations

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

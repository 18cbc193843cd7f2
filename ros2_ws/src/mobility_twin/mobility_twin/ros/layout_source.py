"""Where a node gets the deployment's layout: a layout file, or the latched ``/infrastructure/layout`` topic.

Deployment first: neither is assumed. A node that needs a layout is given ``layout_file`` (the site's
``config/layout.yaml``, the same file the ``layout`` node publishes) or told ``layout_from_topic: true``
(the ``layout`` node or the simulator publishes it latched); with neither, it stops at once with an error
naming the parameter and the file to set it in. A layout from the topic that is not valid is logged and
counted, and the node keeps waiting; with no valid layout after ``layout_timeout_s`` it stops with an error
saying so.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from rclpy.clock import Clock, ClockType
from rclpy.node import Node

from mobility_twin.ros import topics
from mobility_twin.ros.entry import ConfigurationError
from mobility_twin.ros.layout_msg import layout_from_msg
from mobility_twin.ros.qos import LATCHED
from mobility_twin_core import Layout, LayoutError
from mobility_twin_core.layout_io import load_layout
from mobility_twin_msgs.msg import Layout as LayoutMsg


class LayoutSource:
    """Calls ``on_layout(layout)`` once, with the layout of the file or the first valid one of the topic."""

    def __init__(self, node: Node, on_layout: Callable[[Layout], None], *, layout_file: str, from_topic: bool,
                 timeout_s: float, config_file: str) -> None:
        self.node = node
        self.on_layout = on_layout
        self.layout: Layout | None = None
        self.rejected = 0
        self.timeout_s = timeout_s
        self.config_file = config_file
        if layout_file:
            try:
                layout = load_layout(layout_file)
            except LayoutError as err:
                raise ConfigurationError(f"parameter 'layout_file': {err}") from None
            self._use(layout, f"file {layout_file}")
        elif from_topic:
            self._sub = node.create_subscription(LayoutMsg, topics.LAYOUT, self._on_message, LATCHED)
            self._started = time.monotonic()  # wall time: a simulated clock may not run yet
            self._timer = node.create_timer(1.0, self._check_timeout, clock=Clock(clock_type=ClockType.STEADY_TIME))
            node.get_logger().info(f"waiting for the layout on {topics.LAYOUT}")
        else:
            raise ConfigurationError(
                f"no layout: set parameter 'layout_file' to the site's layout.yaml in {config_file} (or as a launch "
                f"argument), or 'layout_from_topic: true' where a layout node or the simulator publishes "
                f"{topics.LAYOUT}")

    def _use(self, layout: Layout, origin: str) -> None:
        self.layout = layout
        self.node.get_logger().info(f"layout {layout.name or '(unnamed)'} from {origin}")
        self.on_layout(layout)

    def _on_message(self, msg: LayoutMsg) -> None:
        if self.layout is not None:
            return
        try:
            layout = layout_from_msg(msg)
        except LayoutError as err:
            self.rejected += 1
            self.node.get_logger().error(f"invalid layout on {topics.LAYOUT}: {err}", throttle_duration_sec=10.0)
            return
        self._timer.cancel()
        self._use(layout, topics.LAYOUT)

    def _check_timeout(self) -> None:
        if self.layout is not None:
            self._timer.cancel()
            return
        waited = time.monotonic() - self._started
        if waited > self.timeout_s:
            self._timer.cancel()
            self.node.get_logger().fatal(
                f"no valid layout on {topics.LAYOUT} after {waited:.0f} s ({self.rejected} invalid): start the layout "
                f"node (layout.launch.xml) or give parameter 'layout_file' in {self.config_file}")
            self.node.exit_code = 2

"""Where a node gets the deployment's layout: a layout file, or the latched ``/infrastructure/layout`` topic.

Deployment first: neither is assumed. A node that needs a layout is given ``layout_file`` (the site's
``config/layout.yaml``, the same file the ``layout`` node publishes) or told ``layout_from_topic: true``
(the ``layout`` node or the simulator publishes it latched); with neither, it stops at once with an error
naming the parameter and the file to set it in. A layout from the topic that is not valid is logged and
counted, and the node keeps waiting; with no valid layout after ``layout_timeout_s`` it stops with an error
saying so. With ``layout_name`` set, a layout of another name (from the file, the topic or the cache) is
refused as not the deployment's.

The cache: a node that takes the layout from the topic keeps the last one it received in its state folder
(``layout_cache_path``: '' = ``layout.json`` in the node's folder of :mod:`mobility_twin.ros.state`, 'none'
= no cache), and after a restart it starts at once from it instead of waiting for the topic's latched
message (seconds over a network: discovery, then the transient-local handshake). The cached copy is
validated as a message is, and used only when it is recent (the node held it at most
``layout_cache_max_age_s`` ago; a running node refreshes the file) and of this deployment (written in the
same ROS domain, and named ``layout_name`` when that is set); otherwise it is not used and a warning says
why. Which layout a node uses (file, cache or topic) is logged. When the topic's layout then arrives, it
replaces the cached one if it differs (``on_layout`` is called again) and becomes the cache.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from rclpy.clock import Clock, ClockType
from rclpy.node import Node

from mobility_twin.ros import topics
from mobility_twin.ros.entry import ConfigurationError
from mobility_twin.ros.layout_msg import layout_from_msg
from mobility_twin.ros.qos import LATCHED
from mobility_twin.ros.state import read_state, resolve_state_path, save_state
from mobility_twin_core import Layout, LayoutError
from mobility_twin_core.layout_io import layout_from_dict, layout_to_dict, load_layout
from mobility_twin_msgs.msg import Layout as LayoutMsg

#: the cache's file in the node's state folder
CACHE_FILE = "layout.json"


def same_layout(a: Layout, b: Layout) -> bool:
    """Whether two layouts describe the same deployment, value for value (NaN equal to NaN)."""
    return layout_to_dict(a) == layout_to_dict(b)


class LayoutSource:
    """Calls ``on_layout(layout)`` with the layout of the file, or with the cached or the first valid one of the
    topic; a second time when the node started from the cache and the topic's layout differs from it."""

    def __init__(self, node: Node, on_layout: Callable[[Layout], None], *, layout_file: str, from_topic: bool,
                 timeout_s: float, config_file: str, name: str = "", cache: str = "none",
                 cache_max_age_s: float = 300.0) -> None:
        self.node = node
        self.on_layout = on_layout
        self.layout: Layout | None = None
        self.origin = ""  # where self.layout came from: "file", "cache" or "topic"
        self.rejected = 0
        self.timeout_s = timeout_s
        self.config_file = config_file
        self.expected_name = name
        self.cache_path: Path | None = None
        self.cache_max_age_s = cache_max_age_s
        if layout_file:
            try:
                layout = load_layout(layout_file)
                self._check_name(layout)
            except LayoutError as err:
                raise ConfigurationError(f"parameter 'layout_file': {err}") from None
            self._use(layout, "file", f"file {layout_file}")
        elif from_topic:
            self.cache_path = resolve_state_path(cache, node.get_fully_qualified_name(), CACHE_FILE)
            self._sub = node.create_subscription(LayoutMsg, topics.LAYOUT, self._on_message, LATCHED)
            self._started = time.monotonic()  # wall time: a simulated clock may not run yet
            steady = Clock(clock_type=ClockType.STEADY_TIME)
            self._timer = node.create_timer(1.0, self._check_timeout, clock=steady)
            if self.cache_path is not None:  # the file says the node held this layout recently: keep it fresh
                self._refresh = node.create_timer(min(60.0, max(1.0, cache_max_age_s / 4.0)), self._save_cache,
                                                  clock=steady)
            cached = self._load_cache()
            if cached is not None:
                layout, age = cached
                self._use(layout, "cache", f"the cache {self.cache_path} (held {age:.0f} s ago; the layout on "
                                           f"{topics.LAYOUT} replaces it if it differs)")
            else:
                node.get_logger().info(f"waiting for the layout on {topics.LAYOUT}")
        else:
            raise ConfigurationError(
                f"no layout: set parameter 'layout_file' to the site's layout.yaml in {config_file} (or as a launch "
                f"argument), or 'layout_from_topic: true' where a layout node or the simulator publishes "
                f"{topics.LAYOUT}")

    def _use(self, layout: Layout, origin: str, described: str) -> None:
        self.layout = layout
        self.origin = origin
        self.node.get_logger().info(f"layout {layout.name or '(unnamed)'} from {described}")
        self.on_layout(layout)

    def _check_name(self, layout: Layout) -> None:
        if self.expected_name and layout.name != self.expected_name:
            raise LayoutError(f"layout {layout.name!r} is not this deployment's: parameter 'layout_name' is "
                              f"{self.expected_name!r} (in {self.config_file})")

    # ---------------------------------------------------------------------------------- the topic
    def _on_message(self, msg: LayoutMsg) -> None:
        if self.origin == "topic":  # the topic's layout is taken once, as before
            return
        try:
            layout = layout_from_msg(msg)
            self._check_name(layout)
        except LayoutError as err:
            self.rejected += 1
            self.node.get_logger().error(f"invalid layout on {topics.LAYOUT}: {err}", throttle_duration_sec=10.0)
            return
        self._timer.cancel()
        if self.layout is not None and same_layout(layout, self.layout):
            self.origin = "topic"
            self.node.get_logger().info(f"layout {layout.name or '(unnamed)'} on {topics.LAYOUT} is the cached one: "
                                        "kept")
        else:
            if self.layout is not None:
                self.node.get_logger().warning(
                    f"layout {layout.name or '(unnamed)'} on {topics.LAYOUT} differs from the cached layout "
                    f"{self.layout.name or '(unnamed)'}: replacing it")
            self._use(layout, "topic", topics.LAYOUT)
        self._save_cache()

    def _check_timeout(self) -> None:
        if self.origin == "topic":
            self._timer.cancel()
            return
        waited = time.monotonic() - self._started
        if waited <= self.timeout_s:
            return
        self._timer.cancel()
        if self.layout is not None:
            self.node.get_logger().warning(
                f"no valid layout on {topics.LAYOUT} after {waited:.0f} s ({self.rejected} invalid): running on the "
                f"cached layout {self.layout.name or '(unnamed)'} ({self.cache_path})")
            return
        self.node.get_logger().fatal(
            f"no valid layout on {topics.LAYOUT} after {waited:.0f} s ({self.rejected} invalid): start the layout "
            f"node (layout.launch.xml) or give parameter 'layout_file' in {self.config_file}")
        self.node.exit_code = 2

    # ---------------------------------------------------------------------------------- the cache
    def _domain_id(self) -> int:
        return self.node.context.get_domain_id()

    def _save_cache(self) -> None:
        if self.cache_path is not None and self.layout is not None:
            save_state(self.cache_path, {"layout": layout_to_dict(self.layout), "domain_id": self._domain_id(),
                                         "node": self.node.get_fully_qualified_name()}, self.node.get_logger())

    def _load_cache(self) -> tuple[Layout, float] | None:
        """The cached layout and its age, if it may be used; else None, with a warning saying why."""
        path, log = self.cache_path, self.node.get_logger()
        if path is None or not path.exists():
            return None
        try:
            state, age = read_state(path)
            layout = layout_from_dict(state["layout"], source=f"cached layout {path}")
            domain = int(state["domain_id"])
        except (OSError, ValueError, KeyError, TypeError) as err:  # LayoutError is a ValueError
            log.warning(f"cached layout {path} not used: {err}; waiting for {topics.LAYOUT}")
            return None
        name = layout.name or "(unnamed)"
        why = None
        if not 0.0 <= age <= self.cache_max_age_s:
            why = (f"this node held it {age:.0f} s ago, longer than parameter 'layout_cache_max_age_s' "
                   f"({self.cache_max_age_s:g} s)")
        elif domain != self._domain_id():
            why = f"it was received in ROS domain {domain}, this node runs in domain {self._domain_id()}"
        else:
            try:
                self._check_name(layout)
            except LayoutError as err:
                why = str(err)
        if why is not None:
            log.warning(f"cached layout {name} ({path}) not used: {why}; waiting for {topics.LAYOUT}")
            return None
        return layout, age

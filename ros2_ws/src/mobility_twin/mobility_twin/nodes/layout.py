"""layout: publishes a deployment's infrastructure (RSUs, CAVs, edge servers, sites, cloud) from its layout file.

Reads ``layout_file`` (a site's ``config/layout.yaml``, documented key by key in the shipped one), validates
it (a wrong key, a repeated id or an out-of-range value stops the node with an error naming the entry), and
publishes it once, latched (transient local), on /infrastructure/layout as a ``mobility_twin_msgs/Layout``:
nodes started later still receive it. The simulator publishes its scenario's layout on the same topic, so
the rest of the stack cannot tell a real site from a simulated one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rclpy.node import Node

from mobility_twin.ros import topics
from mobility_twin.ros.entry import ConfigurationError, run_node
from mobility_twin.ros.layout_msg import describe, layout_to_msg
from mobility_twin.ros.params import declare_config, field
from mobility_twin.ros.qos import LATCHED
from mobility_twin_core import LayoutError
from mobility_twin_core.layout_io import load_layout
from mobility_twin_msgs.msg import Layout as LayoutMsg


@dataclass(frozen=True)
class LayoutNodeConfig:
    CONFIG_FILE = "config/layout.yaml"

    layout_file: str = field("", "the deployment's layout file ('' = the shipped config/layout.yaml, an example)")
    frame_id: str = field("map", "frame of every position in the layout")


def shipped_layout_file() -> Path:
    from mobility_twin.twin.channels import default_channels_file

    return default_channels_file().with_name("layout.yaml")


class LayoutNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("layout", **kwargs)
        self.config = cfg = declare_config(self, LayoutNodeConfig)
        path = Path(cfg.layout_file) if cfg.layout_file else shipped_layout_file()
        try:
            self.layout = load_layout(path)
        except LayoutError as err:
            raise ConfigurationError(f"parameter 'layout_file': {err}") from None
        self.pub = self.create_publisher(LayoutMsg, topics.LAYOUT, LATCHED)
        now = self.get_clock().now().nanoseconds * 1e-9
        self.pub.publish(layout_to_msg(self.layout, now, cfg.frame_id))
        self.get_logger().info(f"{describe(self.layout)} from {path}, published latched on {topics.LAYOUT}")


#: the parameters of each entry point (what `mtwin launch` checks a launch file against before it starts)
ENTRY_CONFIGS = {"main": LayoutNodeConfig}


def main() -> int:
    return run_node(LayoutNode)

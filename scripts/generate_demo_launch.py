"""Write launch/demo.launch.xml (the whole stack for the default scenario's layout) and config/layout.yaml
(that layout as a site's layout file: the example the layout node ships with).

    python scripts/generate_demo_launch.py          (after changing the default scenario)

tests/launch_runner/test_demo_launch.py checks that the files in the repository are what this writes.
"""

from pathlib import Path

import yaml

from mobility_twin.deploy.stack import StackOptions, stack_launch_xml
from mobility_twin_core.layout_io import layout_to_dict
from mobility_twin_sim.scenario import load_scenario
from mobility_twin_sim.world import build_world

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "launch" / "demo.launch.xml"
LAYOUT = REPO / "config" / "layout.yaml"

LAYOUT_HEADER = """\
# A deployment's layout: what the `layout` node publishes (latched) on /infrastructure/layout and what the
# twins and perception nodes read with `layout_file` / `layout_from_topic`. This one is the default
# scenario's (Beijing CBD, written by scripts/generate_demo_launch.py): copy it and enter a real site's.
#
# layout:
#   name                       the deployment's name
#   origin: [lat, lon]         WGS84 of the `map` frame's origin (degrees)
#   area                       the deployment's polygon in `map`, [[x, y], ...] metres
#   sites                      edge sites (one local twin each): id, polygon [[x, y], ...]
#   rsus                       roadside units: id, x, y, z (LiDAR height, m), yaw (rad), site, range_m
#   cavs                       connected automated vehicles: id, lidar_height_m (above base_link), range_m
#   edge_servers               base stations with an edge server: id, x, y, coverage_radius_m, cpu_hz, site
#   cloud                      x, y (m), cpu_hz
# A key not listed here, a repeated id, a site that does not exist, a non-positive radius or range stops
# the node that reads the file with an error naming the entry.
"""


def world():
    return build_world(load_scenario("default"))


def demo_launch_xml(w=None) -> str:
    return stack_launch_xml((w or world()).layout, StackOptions(scenario="default"))


def layout_yaml(w=None) -> str:
    return LAYOUT_HEADER + yaml.safe_dump({"layout": layout_to_dict((w or world()).layout)}, sort_keys=False,
                                          default_flow_style=None, width=120)


if __name__ == "__main__":
    w = world()
    DEMO.write_text(demo_launch_xml(w))
    LAYOUT.write_text(layout_yaml(w))
    print(f"wrote {DEMO} and {LAYOUT}")

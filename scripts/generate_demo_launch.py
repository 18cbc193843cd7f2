"""Write launch/demo.launch.xml: the whole stack for the default scenario's layout.

    python scripts/generate_demo_launch.py          (after changing sim/scenarios/default.yaml)

tests/deploy/test_demo_launch.py checks that the file in the repository is what this writes.
"""

from pathlib import Path

from mobility_twin.deploy.stack import StackOptions, stack_launch_xml
from mobility_twin_sim.scenario import load_scenario
from mobility_twin_sim.world import build_world

DEMO = Path(__file__).resolve().parents[1] / "launch" / "demo.launch.xml"


def demo_launch_xml() -> str:
    return stack_launch_xml(build_world(load_scenario("default")).describe(), StackOptions(scenario="default"))


if __name__ == "__main__":
    DEMO.write_text(demo_launch_xml())
    print(f"wrote {DEMO}")

"""The demo launch file is the stack of the default scenario, and every node in it resolves."""

from pathlib import Path

import pytest

from mobility_twin.launch_runner import load_launch_file

REPO = Path(__file__).resolve().parents[2]


def test_demo_launch_file_is_current():
    import sys

    sys.path.insert(0, str(REPO / "scripts"))
    from generate_demo_launch import DEMO, LAYOUT, demo_launch_xml, layout_yaml, world

    w = world()
    assert DEMO.read_text() == demo_launch_xml(w), "run: python scripts/generate_demo_launch.py"
    assert LAYOUT.read_text() == layout_yaml(w), "run: python scripts/generate_demo_launch.py"


@pytest.mark.ros
def test_demo_launch_starts_every_role_with_a_resolvable_executable():
    plan = load_launch_file(REPO / "launch" / "demo.launch.xml", {"record": "/tmp/demo.mcap"})
    names = sorted(n.executable for n in plan.nodes)
    assert names.count("rsu_perception") == 8 and names.count("cav_perception") == 4
    assert names.count("local_twin") == 2 and names.count("offloading") == 2
    assert {"replay", "global_twin", "relation_learner", "placement", "twin_viz", "recorder"} <= set(names)
    for node in plan.nodes:
        assert node.executable_path().is_file()
    sim_time = {n.executable: dict((p.name, p.value) for p in n.parameters if hasattr(p, "name")).get("use_sim_time")
                for n in load_launch_file(REPO / "launch" / "demo.launch.xml", {"hil": "false"}).nodes}
    assert sim_time["local_twin"] is True and sim_time["global_twin"] is True

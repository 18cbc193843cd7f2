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
    assert "route_follower" not in names  # the T-Drive replay takes no route commands


@pytest.mark.ros
def test_a_stack_on_roads_runs_the_followers_the_guidance_and_a_collision_warning_per_site(tmp_path):
    from mobility_twin.deploy.stack import StackOptions, stack_launch_xml
    from mobility_twin_core import Cav, Cloud, EdgeServer, Layout, Rsu, Site

    square = ((-300.0, -300.0), (300.0, -300.0), (300.0, 300.0), (-300.0, 300.0), (-300.0, -300.0))
    layout = Layout(rsus=(Rsu("rsu_00", 0.0, 0.0, 6.0),), cavs=(Cav("cav_0", 1.9), Cav("cav_1", 1.9)),
                    servers=(EdgeServer("edge_0", 0.0, 0.0, 400.0, 2e10),), sites=(Site("site_0", square),), cloud=Cloud())
    launch = tmp_path / "stack.launch.xml"
    launch.write_text(stack_launch_xml(layout, StackOptions(scenario="city_conflicts", network="beijing_cbd",
                                                            guidance=True, collision_warning=True)))
    nodes = load_launch_file(launch, {}).nodes
    names = sorted(n.executable for n in nodes)
    assert names.count("route_follower") == 2 and names.count("collision_warning") == 1
    assert "route_guidance" in names
    params = {n.executable: dict((p.name, p.value) for p in n.parameters if hasattr(p, "name")) for n in nodes}
    assert params["route_follower"]["network"] == "beijing_cbd" and params["collision_warning"]["brake"] is True
    assert params["twin_viz"]["network"] == "beijing_cbd"
    off = {n.executable for n in load_launch_file(launch, {"guidance": "false", "collision_warning": "false"}).nodes}
    assert "route_guidance" not in off and "collision_warning" not in off and "route_follower" in off

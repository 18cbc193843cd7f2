"""Launch values checked at load time: a value a node would refuse stops the launch before anything starts,
naming the launch file, the node and the parameter."""

from pathlib import Path

import pytest

from mobility_twin.launch_runner import LaunchError, load_launch_file
from tests.conftest import REPO, run_mtwin

pytestmark = pytest.mark.ros  # the node modules (and their declared parameters) import rclpy


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def replay_launch(tmp_path: Path, params: str = "", name: str = "replay") -> Path:
    return write(tmp_path / "r.launch.xml", f"""<launch>
  <arg name="duration_s" default="0.0"/>
  <node pkg="mobility_twin" exec="replay" name="{name}">
    {params}
    <param name="duration_s" value="$(var duration_s)"/>
  </node>
</launch>""")


def test_a_bad_launch_argument_is_refused_before_the_replay_starts():
    result = run_mtwin("launch", str(REPO / "launch" / "replay.launch.xml"), "duration_s:=abc", "--duration", "30")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "replay.launch.xml" in result.stderr and "node 'replay'" in result.stderr
    assert "parameter 'duration_s': cannot use 'abc' as float" in result.stderr
    assert "process started" not in result.stdout  # nothing was started


def test_values_out_of_range_or_of_the_wrong_type_name_file_node_and_parameter(tmp_path):
    launch = replay_launch(tmp_path, '<param name="rate" value="-1.0"/><param name="hil" value="maybe"/>')
    with pytest.raises(LaunchError) as err:
        load_launch_file(launch, {"duration_s": "5"})
    text = str(err.value)
    assert text.startswith(f"{launch}: 2 parameter values would be refused")
    assert "node 'replay' (mobility_twin/replay" in text
    assert "parameter 'rate': -1.0 is below its minimum 0.0" in text
    assert "parameter 'hil': cannot use 'maybe' as bool" in text


def test_a_parameter_file_value_is_checked_and_the_file_named(tmp_path):
    params = write(tmp_path / "replay.yaml", "/**:\n  ros__parameters:\n    deadline_tolerance_s: 120.0\n")
    launch = replay_launch(tmp_path, f'<param from="{params}"/>')
    with pytest.raises(LaunchError, match=rf"parameter 'deadline_tolerance_s': 120.0 is above its maximum 60.0 \(in "
                                          rf"{params}\)"):
        load_launch_file(launch)


def test_the_value_the_node_receives_is_checked_a_later_one_winning_and_other_nodes_sections_ignored(tmp_path):
    params = write(tmp_path / "replay.yaml", "/**:\n  ros__parameters:\n    rate: -3.0\n"
                                             "other_node:\n  ros__parameters:\n    progress_period_s: -1.0\n")
    launch = replay_launch(tmp_path, f'<param from="{params}"/><param name="rate" value="2.0"/>')
    (node,) = load_launch_file(launch).nodes  # rate -3 is overridden; other_node's section is not the replay's
    assert node.executable == "replay"
    own = write(tmp_path / "own.yaml", "replay:\n  ros__parameters:\n    progress_period_s: -1.0\n")
    with pytest.raises(LaunchError, match=r"'progress_period_s': -1.0 is below its minimum"):
        load_launch_file(replay_launch(tmp_path, f'<param from="{own}"/>'))


def test_a_configs_own_check_runs_at_load_time(tmp_path):
    launch = write(tmp_path / "edge.launch.xml", """<launch>
  <node pkg="mobility_twin" exec="local_twin" name="local_twin"><param name="site_id" value="''"/></node>
</launch>""")
    with pytest.raises(LaunchError, match=r"node 'local_twin' .*parameter 'site_id' is required"):
        load_launch_file(launch)


def test_other_packages_and_undeclared_parameters_are_left_to_the_node(tmp_path):
    launch = write(tmp_path / "x.launch.xml", """<launch>
  <node pkg="somebody_else" exec="replay" name="replay"><param name="duration_s" value="abc"/></node>
  <node pkg="mobility_twin" exec="replay" name="replay2"><param name="not_a_parameter" value="abc"/></node>
</launch>""")
    assert len(load_launch_file(launch).nodes) == 2


def test_the_shipped_stack_launch_file_passes_with_its_defaults():
    plan = load_launch_file(REPO / "launch" / "demo.launch.xml")
    assert {n.executable for n in plan.nodes} >= {"replay", "rsu_perception", "local_twin", "global_twin"}

"""The launch file reader: what a launch file says reaches the plan of node processes (no ROS needed)."""

from pathlib import Path

import pytest

from mobility_twin.launch_runner import LaunchError, ParamFile, ParamValue, load_launch_file
from mobility_twin.launch_runner.substitutions import Context, substitute


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_args_defaults_and_overrides_reach_node_parameters(tmp_path):
    f = write(tmp_path / "a.launch.xml", """<launch>
  <arg name="rate" default="10.0"/>
  <arg name="site" default="site_0" description="edge site"/>
  <node pkg="p" exec="e" name="n">
    <param name="rate_hz" value="$(var rate)"/>
    <param name="site" value="$(var site)"/>
    <param name="count" value="3"/>
    <param name="flag" value="true"/>
    <param name="quoted" value="'7'"/>
    <param name="ids" value="a;b;c" value-sep=";"/>
    <param name="grp"><param name="inner" value="1.5"/></param>
  </node>
</launch>""")
    plan = load_launch_file(f, {"site": "site_9"})
    (node,) = plan.nodes
    values = {p.name: p.value for p in node.parameters}
    assert values == {"rate_hz": 10.0, "site": "site_9", "count": 3, "flag": True, "quoted": "7",
                      "ids": ["a", "b", "c"], "grp.inner": 1.5}
    assert [a.name for a in plan.arguments] == ["rate", "site"]


def test_param_files_keep_their_order_among_inline_params(tmp_path):
    params = write(tmp_path / "p.yaml", "/**:\n  ros__parameters:\n    x: 1\n")
    f = write(tmp_path / "a.launch.xml", f"""<launch>
  <node pkg="p" exec="e"><param name="a" value="1"/><param from="{params}"/><param name="b" value="2"/></node>
</launch>""")
    (node,) = load_launch_file(f).nodes
    assert node.parameters == (ParamValue("a", 1), ParamFile(params), ParamValue("b", 2))


def test_remaps_namespaces_and_groups(tmp_path):
    f = write(tmp_path / "a.launch.xml", """<launch>
  <group>
    <push-ros-namespace namespace="rsu"/>
    <set_remap from="points" to="/sim/points"/>
    <node pkg="p" exec="e" name="one" namespace="r1"><remap from="out" to="detections"/></node>
    <node pkg="p" exec="e" name="two" namespace="/abs"/>
  </group>
  <node pkg="p" exec="e" name="three"/>
</launch>""")
    one, two, three = load_launch_file(f).nodes
    assert one.namespace == "/rsu/r1"
    assert one.remappings == (("points", "/sim/points"), ("out", "detections"))
    assert two.namespace == "/abs"
    assert three.namespace == "/" and three.remappings == ()


def test_include_passes_args_and_resolves_relative_paths(tmp_path):
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub" / "child.launch.xml", """<launch>
  <arg name="who"/>
  <arg name="rate" default="1"/>
  <node pkg="p" exec="e" name="$(var who)"><param name="rate" value="$(var rate)"/>
    <param name="here" value="$(dirname)"/></node>
</launch>""")
    f = write(tmp_path / "top.launch.xml", """<launch>
  <include file="$(dirname)/sub/child.launch.xml"><arg name="who" value="alpha"/></include>
  <include file="sub/child.launch.xml"><arg name="who" value="beta"/><arg name="rate" value="5"/></include>
</launch>""")
    a, b = load_launch_file(f).nodes
    assert (a.name, b.name) == ("alpha", "beta")
    assert dict((p.name, p.value) for p in a.parameters)["rate"] == 1
    assert dict((p.name, p.value) for p in b.parameters)["rate"] == 5
    assert dict((p.name, p.value) for p in a.parameters)["here"] == str(tmp_path / "sub")


def test_if_and_unless_select_actions(tmp_path):
    f = write(tmp_path / "a.launch.xml", """<launch>
  <arg name="on" default="false"/>
  <node pkg="p" exec="e" name="a" if="$(var on)"/>
  <node pkg="p" exec="e" name="b" unless="$(var on)"/>
  <let name="n" value="3"/>
  <node pkg="p" exec="e" name="c" if="$(eval $(var n) > 2)"/>
</launch>""")
    assert [n.name for n in load_launch_file(f).nodes] == ["b", "c"]
    assert [n.name for n in load_launch_file(f, {"on": "true"}).nodes] == ["a", "c"]


def test_respawn_attributes_reach_the_plan_as_ros2_launch_reads_them(tmp_path):
    f = write(tmp_path / "a.launch.xml", """<launch>
  <arg name="supervise" default="true"/>
  <node pkg="p" exec="e" name="plain"/>
  <node pkg="p" exec="e" name="kept" respawn="$(var supervise)" respawn_delay="1.5"/>
  <node pkg="p" exec="e" name="bounded" respawn="True" respawn_max_retries="3" on_exit="shutdown"/>
</launch>""")
    plain, kept, bounded = load_launch_file(f).nodes
    assert (plain.respawn, plain.respawn_delay, plain.respawn_max_retries) == (False, 0.0, -1)
    assert (kept.respawn, kept.respawn_delay, kept.respawn_max_retries) == (True, 1.5, -1)
    assert (bounded.respawn, bounded.respawn_max_retries, bounded.shutdown_on_exit) == (True, 3, True)
    assert not load_launch_file(f, {"supervise": "false"}).nodes[1].respawn


BAD_SUPERVISION = [
    ('respawn="sometimes"', r"respawn='sometimes' is not a boolean"),
    ('respawn="true" respawn_delay="-1"', r"respawn_delay=-1 must be a non-negative number of seconds"),
    ('respawn="true" respawn_delay="soon"', r"respawn_delay='soon' is not a number"),
    ('respawn="true" respawn_delay="nan"', r"respawn_delay='nan' is not a number"),
    ('respawn="true" respawn_max_retries="2.5"', r"respawn_max_retries='2.5' is not an integer"),
    ('on_exit="restart"', r"on_exit='restart': only 'shutdown' is supported"),
]

#: launch files the reader refuses: (file name, text, launch arguments, the error it must name)
LOAD_ERRORS = [
    pytest.param("bad", "<launch>\n  <node pkg='p' exec='e'/>\n  <executable cmd='ls'/>\n</launch>", {},
                 r"bad\.launch\.xml:3: unsupported tag <executable>", id="unsupported_tag"),
    pytest.param("bad", "<launch>\n\n  <node pkg='p' exec='e' launch-prefix='gdb'/>\n</launch>", {},
                 r"bad\.launch\.xml:3: unsupported attribute\(s\) launch-prefix on <node>", id="unsupported_attribute"),
    *(pytest.param("bad", f"<launch>\n  <node pkg='p' exec='e' {attribute}/>\n</launch>", {},
                   r"bad\.launch\.xml:2: " + message, id=f"bad_supervision:{attribute}")
      for attribute, message in BAD_SUPERVISION),
    pytest.param("bad", "<launch>\n<node pkg='p' exec='e'>\n<rosparam/>\n</node>\n</launch>", {},
                 r":3: unsupported tag <rosparam> inside <node>", id="unsupported_tag_inside_node"),
    pytest.param("a", '<launch>\n<arg name="rsu_id" description="which RSU"/>\n</launch>', {},
                 r"a\.launch\.xml:2: launch argument 'rsu_id' is required.*which RSU", id="missing_required_argument"),
    pytest.param("a", '<launch><arg name="x" default="1"/><node pkg="p" exec="e"/></launch>', {"typo": "1"},
                 r"argument.*typo given but not declared", id="undeclared_argument"),
    pytest.param("a", '<launch>\n<node pkg="p" exec="$(var nope)"/>\n</launch>', {},
                 r":2: \$\(var nope\): no launch argument", id="unknown_variable"),
    pytest.param("b", "<launch>\n<node pkg='p'\n</launch>", {}, r"b\.launch\.xml:3: malformed XML", id="malformed_xml"),
    pytest.param("a", '<launch>\n<node pkg="p" exec="e"><param from="nope.yaml"/></node>\n</launch>', {},
                 r":2: parameter file .*nope\.yaml does not exist", id="missing_param_file"),
    pytest.param("b", '<launch>\n<include file="missing.launch.xml"/>\n</launch>', {},
                 r":2: included launch file .*missing\.launch\.xml does not exist", id="missing_include"),
]


@pytest.mark.parametrize(("name", "text", "args", "message"), LOAD_ERRORS)
def test_a_launch_file_that_cannot_run_is_an_error_naming_file_and_line(tmp_path, name, text, args, message):
    f = write(tmp_path / f"{name}.launch.xml", text)
    with pytest.raises(LaunchError, match=message):
        load_launch_file(f, args)


def test_substitutions_nest_and_evaluate(tmp_path):
    ctx = Context({"a": "2", "name": "b"}, tmp_path / "x.launch.xml", environment={"HOME_X": "/h"})
    assert substitute("$(eval $(var a) * 3)", ctx, 1) == "6"
    assert substitute("$(env HOME_X)/$(env NOPE dflt)", ctx, 1) == "/h/dflt"
    assert substitute("$(optenv NOPE)", ctx, 1) == ""
    assert substitute("$(eval '$(var name)' == 'b')", ctx, 1) == "true"
    assert substitute("$(eval '$(var name)' == '')", ctx, 1) == "false"
    with pytest.raises(LaunchError, match="unsupported substitution \\$\\(command"):
        substitute("$(command ls)", ctx, 4)
    with pytest.raises(LaunchError, match="unsupported expression element"):
        substitute("$(eval __import__('os'))", ctx, 4)

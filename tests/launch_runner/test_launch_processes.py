"""`mtwin launch` with real node processes talking over DDS."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.conftest import REPO, run_mtwin

pytestmark = pytest.mark.ros


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_parameters_remaps_args_and_includes_reach_the_node(tmp_path):
    write(tmp_path / "probe.yaml", "/**:\n  ros__parameters:\n    from_file: 42\n    overridden: 'file'\n")
    write(tmp_path / "child.launch.xml", f"""<launch>
  <arg name="who"/>
  <arg name="gain" default="0.5"/>
  <node pkg="mobility_twin" exec="launch_probe" name="$(var who)" namespace="site_0">
    <param from="$(dirname)/probe.yaml"/>
    <param name="overridden" value="inline"/>
    <param name="gain" value="$(var gain)"/>
    <param name="topics" value="['points', 'objects']"/>
    <param name="report_path" value="{tmp_path}/$(var who).json"/>
    <remap from="points" to="/rsu/r7/points"/>
  </node>
</launch>""")
    top = write(tmp_path / "top.launch.xml", """<launch>
  <arg name="second" default="beta"/>
  <include file="child.launch.xml"><arg name="who" value="alpha"/></include>
  <include file="child.launch.xml"><arg name="who" value="$(var second)"/><arg name="gain" value="2"/></include>
</launch>""")
    result = run_mtwin("launch", str(top), "second:=gamma", "--duration", "20", timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    alpha = json.loads((tmp_path / "alpha.json").read_text())
    gamma = json.loads((tmp_path / "gamma.json").read_text())
    assert alpha["fully_qualified_name"] == "/site_0/alpha"
    assert gamma["fully_qualified_name"] == "/site_0/gamma"
    assert alpha["parameters"]["from_file"] == {"value": 42, "type": "INTEGER"}
    assert alpha["parameters"]["overridden"]["value"] == "inline"
    assert alpha["parameters"]["gain"] == {"value": 0.5, "type": "DOUBLE"}
    assert gamma["parameters"]["gain"] == {"value": 2, "type": "INTEGER"}
    assert alpha["topics"] == {"points": "/rsu/r7/points", "objects": "/site_0/objects"}
    assert "[alpha-0]" in result.stdout and "[gamma-1]" in result.stdout


def test_custom_messages_cross_between_two_processes(tmp_path):
    report = tmp_path / "selftest.json"
    result = run_mtwin("launch", str(REPO / "launch" / "selftest.launch.xml"), f"report_path:={report}",
                       "expected_count:=5", timeout=90)
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads(report.read_text())
    assert data["passed"] is True
    assert data["interfaces"] == 15
    assert all(n >= 5 for n in data["intact"].values())
    assert not any(data["corrupt"].values())
    assert "process started with pid" in result.stdout and "[talker-0]" in result.stdout


def test_crashing_node_stops_the_launch_with_its_exit_status(tmp_path):
    f = write(tmp_path / "crash.launch.xml", """<launch>
  <node pkg="mobility_twin" exec="selftest_talker" name="bystander"/>
  <node pkg="mobility_twin" exec="launch_probe" name="crasher">
    <param name="report_after_s" value="1.5"/>
    <param name="exit_code" value="3"/>
  </node>
</launch>""")
    start = time.monotonic()
    result = run_mtwin("launch", str(f), "--duration", "60", timeout=90)
    assert result.returncode == 3, result.stdout + result.stderr
    assert time.monotonic() - start < 30
    assert "process has died" in result.stdout and "crasher-1" in result.stdout


def test_unsupported_tag_fails_before_starting_anything(tmp_path):
    f = write(tmp_path / "bad.launch.xml", "<launch>\n  <node pkg='mobility_twin' exec='selftest_talker'/>\n"
                                           "  <timer period='1'/>\n</launch>")
    result = run_mtwin("launch", str(f), timeout=30)
    assert result.returncode == 2
    assert f"{f}:3: unsupported tag <timer>" in result.stderr
    assert "process started" not in result.stdout


def test_unknown_executable_is_a_clear_error(tmp_path):
    f = write(tmp_path / "a.launch.xml", "<launch>\n  <node pkg='mobility_twin' exec='no_such_node'/>\n</launch>")
    result = run_mtwin("launch", str(f), timeout=30)
    assert result.returncode == 2
    assert "no executable 'no_such_node' in package 'mobility_twin'" in result.stderr
    assert "selftest_talker" in result.stderr  # lists what is available


def test_ctrl_c_stops_every_node_and_exits_non_zero(tmp_path):
    f = write(tmp_path / "a.launch.xml", """<launch>
  <node pkg="mobility_twin" exec="selftest_talker" name="t1"/>
  <node pkg="mobility_twin" exec="selftest_talker" name="t2"/>
</launch>""")
    proc = subprocess.Popen([sys.executable, "-m", "mobility_twin.cli", "launch", str(f)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        children = []
        while time.monotonic() < deadline and len(children) < 2:
            time.sleep(0.3)
            children = psutil.Process(proc.pid).children(recursive=True)
        assert len(children) >= 2
        time.sleep(1.0)
        os.kill(proc.pid, signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, out
    assert "SIGINT received: shutting down" in out
    assert not any(c.is_running() and c.status() != psutil.STATUS_ZOMBIE for c in children)


def test_print_shows_the_node_commands(tmp_path):
    result = run_mtwin("launch", "mobility_twin", "selftest.launch.xml", "--print", timeout=30)
    assert result.returncode == 0, result.stderr
    assert "selftest_talker --ros-args -r __node:=talker -r __ns:=/selftest --params-file" in result.stdout


def test_show_args_lists_declared_arguments():
    result = run_mtwin("launch", str(REPO / "launch" / "selftest.launch.xml"), "--show-args", timeout=30)
    assert result.returncode == 0
    assert "'expected_count': intact messages needed on every topic" in result.stdout

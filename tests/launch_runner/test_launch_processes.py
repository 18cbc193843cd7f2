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
    from mobility_twin.ros.interface_samples import SAMPLES

    assert data["interfaces"] == len(SAMPLES)
    assert all(n >= 5 for n in data["intact"].values())
    assert not any(data["corrupt"].values())
    assert "process started with pid" in result.stdout and "[talker-0]" in result.stdout


def test_a_crashing_node_is_reported_and_the_others_keep_running_as_under_ros2_launch(tmp_path):
    f = write(tmp_path / "crash.launch.xml", """<launch>
  <node pkg="mobility_twin" exec="selftest_talker" name="bystander"><param name="count" value="60"/></node>
  <node pkg="mobility_twin" exec="launch_probe" name="crasher">
    <param name="report_after_s" value="0.5"/>
    <param name="exit_code" value="3"/>
  </node>
</launch>""")
    result = run_mtwin("launch", str(f), "--duration", "60", timeout=90)
    out = result.stdout
    assert result.returncode == 3, out + result.stderr  # the status of the node that died
    died = out.index("process has died")
    assert "exit code 3]: crasher-1" in out[died:]
    assert out.index("process has finished cleanly", died) > died  # the bystander ran on to its end
    assert "bystander-0" in out[out.index("process has finished cleanly"):]
    assert "all processes have finished" in out and out.count("process started with pid") == 2


def _launch_children(proc: subprocess.Popen) -> dict[str, psutil.Process]:
    """Node name -> its process, for the nodes a running `mtwin launch` has started."""
    out = {}
    for child in psutil.Process(proc.pid).children(recursive=True):
        try:
            for arg in child.cmdline():
                if arg.startswith("__node:="):
                    out[arg.removeprefix("__node:=")] = child
        except psutil.Error:
            continue
    return out


def test_kill_9_of_a_respawning_node_brings_it_back_within_its_delay_while_the_others_keep_running(tmp_path):
    from mobility_twin_msgs.msg import MigrationEvent
    from tests.ros_helpers import Collector, start_mtwin, stop

    delay = 1.0
    f = write(tmp_path / "respawn.launch.xml", f"""<launch>
  <node pkg="mobility_twin" exec="selftest_talker" name="bystander" namespace="/bystander"/>
  <node pkg="mobility_twin" exec="selftest_talker" name="victim" namespace="/victim" respawn="true"
        respawn_delay="{delay}"/>
</launch>""")
    victim_topic, bystander_topic = "/victim/selftest/MigrationEvent", "/bystander/selftest/MigrationEvent"
    log = tmp_path / "launch.log"
    proc = start_mtwin("launch", str(f), log=log)
    try:
        with Collector({victim_topic: MigrationEvent, bystander_topic: MigrationEvent}) as c:
            assert c.wait_for(lambda m: len(m[victim_topic]) >= 5 and len(m[bystander_topic]) >= 5, 60), log.read_text()
            nodes = _launch_children(proc)
            victim, bystander = nodes["victim"], nodes["bystander"]
            killed_at = time.time()
            victim.kill()  # SIGKILL: no chance to clean up
            victim.wait(timeout=10)

            def back(m) -> bool:
                return any(t > killed_at + 0.5 for t in c.arrival[victim_topic])

            assert c.wait_for(back, delay + 20), log.read_text()
            back_s = min(t for t in c.arrival[victim_topic] if t > killed_at + 0.5) - killed_at
            during = [t for t in c.arrival[bystander_topic] if killed_at < t < killed_at + back_s]
            restarted = _launch_children(proc)["victim"]
            c.spin(1.0)
            assert bystander.is_running() and _launch_children(proc)["bystander"].pid == bystander.pid
    finally:
        status = stop(proc)
    text = log.read_text()
    print(f"victim back (publishing again) {back_s:.2f} s after kill -9, respawn_delay {delay} s")
    assert restarted.pid != victim.pid
    assert back_s < delay + 5.0, text  # the delay, plus starting a Python ROS node on a busy machine
    assert len(during) >= 5, "the bystander kept publishing while the victim was down"
    assert "signal 9 (SIGKILL)]: victim-1" in text and "respawning victim-1 in 1 s" in text
    assert "victim-1 (mobility_twin/selftest_talker) (start 2)" in text
    assert status == 130, text


def test_a_node_that_cannot_stay_up_is_given_up_and_reported_with_its_status_and_stderr(tmp_path):
    f = write(tmp_path / "loop.launch.xml", """<launch>
  <node pkg="mobility_twin" exec="selftest_talker" name="bystander"><param name="count" value="200"/></node>
  <node pkg="mobility_twin" exec="launch_probe" name="crasher" respawn="true" respawn_delay="0.2">
    <param name="report_after_s" value="0.1"/>
    <param name="exit_code" value="3"/>
  </node>
</launch>""")
    result = run_mtwin("launch", str(f), "--respawn-limit", "3", "--respawn-window", "60", "--duration", "90",
                       timeout=120)
    out = result.stdout
    assert result.returncode == 3, out + result.stderr
    assert out.count("crasher-1 (mobility_twin/launch_probe)") == 3  # started 3 times, then never again
    gave_up = out.index("giving up on crasher-1: it exited 3 times within 60 s; last exit code 3")
    assert '"fully_qualified_name": "/crasher"' in out[gave_up:]  # the tail of its stderr: its last log line
    finished = out.index("process has finished cleanly", gave_up)  # the bystander went on to its end
    assert "bystander-0" in out[finished:finished + 200]
    assert "given up (could not stay up): crasher-1" in out


def test_respawn_follows_ros2_launch_clean_exits_max_retries_and_on_exit_shutdown(tmp_path):
    probe = """<param name="report_after_s" value="0.1"/><param name="exit_code" value="0"/>"""
    f = write(tmp_path / "retries.launch.xml", f"""<launch>
  <node pkg="mobility_twin" exec="launch_probe" name="again" respawn="true" respawn_max_retries="2">{probe}</node>
</launch>""")
    result = run_mtwin("launch", str(f), "--duration", "60", timeout=90)
    assert result.returncode == 0, result.stdout + result.stderr  # clean exits: respawned all the same
    assert result.stdout.count("process started with pid") == 3
    assert "not respawning again-0 again: respawn_max_retries=2 reached" in result.stdout

    g = write(tmp_path / "shutdown.launch.xml", f"""<launch>
  <node pkg="mobility_twin" exec="selftest_talker" name="bystander"/>
  <node pkg="mobility_twin" exec="launch_probe" name="last" respawn="true" on_exit="shutdown">{probe}</node>
</launch>""")
    result = run_mtwin("launch", str(g), "--duration", "60", timeout=90)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "last-1 has respawn and on_exit=shutdown" in out  # said before anything starts
    assert "last-1 has on_exit=shutdown: shutting down" in out
    assert out.count("last-1 (mobility_twin/launch_probe)") == 1 and "respawning" not in out


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


def test_bad_respawn_bounds_are_errors_before_anything_starts(tmp_path):
    f = write(tmp_path / "a.launch.xml", "<launch><node pkg='mobility_twin' exec='selftest_talker'/></launch>")
    result = run_mtwin("launch", str(f), "--respawn-limit", "0", timeout=30)
    assert result.returncode == 2 and "respawn limit 0: must be at least 1" in result.stderr
    result = run_mtwin("launch", str(f), "--respawn-window", "-5", timeout=30)
    assert result.returncode == 2 and "respawn window -5.0 s: must be positive" in result.stderr
    assert "process started" not in result.stdout

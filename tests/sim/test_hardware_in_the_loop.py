"""Hardware-in-the-loop: wall-clock stamped sensor topics consumed by another process, and another host."""

import json
import sys

import pytest
import yaml

from tests.netns import Hosts, netns_unavailable
from tests.ros_helpers import REPO, start_mtwin, stop
from tests.sim.test_scenario_world_replay import SMALL

pytestmark = pytest.mark.ros

HIL = {**SMALL, "time": {**SMALL["time"], "duration_s": 30.0}}


def _scenario(tmp_path):
    path = tmp_path / "hil.yaml"
    path.write_text(yaml.safe_dump(HIL))
    return path


def _hz_result(text: str) -> dict:
    return json.loads([line for line in text.splitlines() if line.startswith("{")][-1])


def test_hil_clouds_arrive_in_another_process_paced_by_the_wall_clock(tmp_path):
    replay = start_mtwin("replay", "--scenario", str(_scenario(tmp_path)), "--hil", "--progress", "2",
                         log=tmp_path / "replay.log")
    try:
        hz = start_mtwin("topic", "hz", "/rsu/rsu_00/points", "--type", "sensor_msgs/msg/PointCloud2",
                         "--duration", "8", "--json")
        out, _ = hz.communicate(timeout=60)
    finally:
        stop(replay)
    log = (tmp_path / "replay.log").read_text()
    result = _hz_result(out)
    assert result["rate_hz"] == pytest.approx(2.0, rel=0.15), log  # the scenario's LiDAR rate, in wall time
    assert 0 <= result["latency_ms"]["p50"] < 100, result  # stamps are wall-clock time
    assert "deadline misses" in log


def test_hil_clouds_cross_to_another_host(tmp_path):
    reason = netns_unavailable()
    if reason:
        pytest.skip(f"network namespaces unavailable here: {reason}")
    scenario = _scenario(tmp_path)
    with Hosts(["sim", "rsu"]) as hosts:
        replay = hosts.popen("sim", [sys.executable, "-m", "mobility_twin.cli", "replay", "--scenario", str(scenario),
                                     "--hil", "--progress", "2"], tmp_path / "replay.log", cwd=REPO)
        try:
            hz = hosts.popen("rsu", [sys.executable, "-m", "mobility_twin.cli", "topic", "hz", "/rsu/rsu_01/points",
                                     "--type", "sensor_msgs/msg/PointCloud2", "--duration", "10", "--json"],
                             tmp_path / "hz.log", cwd=REPO)
            hz.wait(timeout=90)
        finally:
            stop(replay)
    result = _hz_result((tmp_path / "hz.log").read_text())
    assert result["messages"] >= 10, (tmp_path / "replay.log").read_text()
    assert result["rate_hz"] == pytest.approx(2.0, rel=0.2)
    assert result["latency_ms"]["p50"] < 100

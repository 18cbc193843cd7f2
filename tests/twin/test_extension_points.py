"""The seams of the stack: a sensor added by YAML alone, a tracker through the protocol, deployment-first
nodes that stop naming what to set, and honest parameters."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest
import yaml

from mobility_twin.perception.detections import Detections
from mobility_twin.tracking import TrackerStats, TrackSet
from mobility_twin.tracking.trackset import CONFIRMED, object_array
from mobility_twin.twin import LocalTwin, LocalTwinConfig, default_channels
from mobility_twin.twin.channels import ChannelError, channels_from_dict, default_channels_file
from mobility_twin_core import EdgeServer
from mobility_twin_core.layout_io import layout_from_dict
from tests.ros_helpers import REPO, Collector, stop
from tests.twin.test_tracker import frame

SQUARE = [[-100.0, -100.0], [100.0, -100.0], [100.0, 100.0], [-100.0, 100.0]]
LAYOUT = {"name": "test_site", "sites": [{"id": "site_x", "polygon": SQUARE}],
          "rsus": [{"id": "rsu_a", "x": -50.0, "y": 0.0, "site": "site_x"}],
          "edge_servers": [{"id": "edge_a", "x": 0.0, "y": 0.0, "coverage_radius_m": 150.0, "cpu_hz": 3e9,
                            "site": "site_x"}]}
RADAR = {"topic": "/radar/{id}/detections", "members": "ids", "ids": ["radar_1"], "entity_kind": "rsu",
         "may_spawn_tracks": True, "position_sigma_m": 0.5}


def channels_with_radar() -> dict:
    data = yaml.safe_load(default_channels_file().read_text())["input_channels"]
    return {**data, "radar": RADAR}


# ------------------------------------------------------------------------------------------ library
def test_a_channel_declared_in_yaml_is_fused_and_claims_of_other_sources_are_refused():
    channels = channels_from_dict(channels_with_radar())
    twin = LocalTwin(LocalTwinConfig("site_x", rsus=("rsu_a",), area=tuple(map(tuple, SQUARE))), [], channels=channels)
    for k in range(5):
        assert twin.ingest(frame("radar_1", 0.1 * k, [(10.0, 5.0)], sensor=(0.0, 0.0)), "radar", "radar_1")
    assert not twin.ingest(frame("rsu_a", 0.6, [(30.0, 5.0)], sensor=(0.0, 0.0)), "radar", "radar_1")
    assert not twin.ingest(frame("radar_9", 0.6, [(30.0, 5.0)], sensor=(0.0, 0.0)), "radar")
    assert twin.stats.rejected["source_id_mismatch"] == 1 and twin.stats.rejected["unknown_source"] == 1
    tracks = twin.snapshot(0.5).tracks
    assert len(tracks) == 1 and np.allclose(tracks.x[0, :2], (10.0, 5.0), atol=0.5)
    assert tracks.sources[0] == {"radar_1"}
    assert tracks.P[0, 0, 0] >= 0.25 * 0.5  # the channel's position floor (0.5 m) reached the filter


def test_a_cavs_frames_are_fused_inside_its_site_and_refused_outside():
    """The site's CAVs and area are separate settings (a polygon passed where the CAV ids go once made every
    CAV frame an unknown source)."""
    from mobility_twin.twin.channels import default_channels

    twin = LocalTwin(LocalTwinConfig("site_x", rsus=("rsu_a",), cavs=("cav_1",), area=tuple(map(tuple, SQUARE)),
                                     area_margin_m=10.0), [], channels=default_channels())
    for k in range(5):
        assert twin.ingest(frame("cav_1", 0.1 * k, [(10.0, 5.0)], sensor=(5.0, 5.0)), "cav_lidar", "cav_1")
    assert len(twin.snapshot(0.5).tracks) == 1
    assert not twin.ingest(frame("cav_1", 0.6, [(10.0, 5.0)], sensor=(5000.0, 5.0)), "cav_lidar", "cav_1")
    assert not twin.ingest(frame("cav_2", 0.7, [(10.0, 5.0)], sensor=(5.0, 5.0)), "cav_lidar", "cav_2")
    assert twin.stats.rejected == {"moving_sensor_outside_site": 1, "unknown_source": 1}


def test_a_channel_that_may_not_spawn_tracks_only_updates_tracks_others_started():
    data = channels_with_radar()
    data["radar"] = {**RADAR, "may_spawn_tracks": False}
    twin = LocalTwin(LocalTwinConfig("site_x", rsus=("rsu_a",)), [], channels=channels_from_dict(data))
    for k in range(5):
        twin.ingest(frame("radar_1", 0.1 * k, [(10.0, 5.0)], sensor=(0.0, 0.0)), "radar")
    assert len(twin.snapshot(0.5).tracks) == 0
    for k in range(5, 10):
        twin.ingest(frame("rsu_a", 0.1 * k, [(10.0, 5.0)], sensor=(0.0, 0.0)), "rsu_lidar")
        twin.ingest(frame("radar_1", 0.1 * k + 0.05, [(10.2, 5.0)], sensor=(0.0, 0.0)), "radar")
    (sources,) = twin.snapshot(1.0).tracks.sources
    assert sources == {"rsu_a", "radar_1"}


@pytest.mark.parametrize(("patch", "message"), [
    ({"topic": "/radar/detections"}, r"radar.topic: expected a topic pattern with \{id\}"),
    ({"members": "trucks"}, r"radar.members: expected one of"),
    ({"entity_kind": "drone"}, r"radar.entity_kind"),
    ({"may_spawn_tracks": "yes"}, r"radar.may_spawn_tracks: expected true or false"),
    ({"position_sigma_m": -1}, r"radar.position_sigma_m"),
    ({"systematic_share": 1.5}, r"radar.systematic_share: expected a number in \[0, 1\]"),
    ({"colour": "red"}, r"radar: unknown key\(s\) \['colour'\]"),
])
def test_a_bad_channel_is_refused_naming_it(patch, message):
    with pytest.raises(ChannelError, match=message):
        channels_from_dict({"radar": {**RADAR, **patch}})


class GridTracker:
    """A toy tracker through the protocol: one track per 10 m cell that saw a detection, no filtering."""

    def __init__(self) -> None:
        self.stats = TrackerStats()
        self.time = -np.inf
        self.cells: dict[tuple[int, int], tuple[float, np.ndarray, str]] = {}

    def update(self, frame: Detections, *, may_spawn: bool = True) -> bool:
        self.time = max(self.time, frame.stamp)
        for xy in frame.xy:
            self.cells[(int(xy[0] // 10), int(xy[1] // 10))] = (frame.stamp, xy.copy(), frame.source_id)
        return True

    def confirmed_at(self, t: float) -> TrackSet:
        keys = sorted(self.cells)
        n = len(keys)
        x = np.zeros((n, 4))
        x[:, :2] = [self.cells[k][1] for k in keys] if n else np.zeros((0, 2))
        return TrackSet(ids=np.arange(1, n + 1), x=x, P=np.tile(np.eye(4), (n, 1, 1)), dims=np.ones((n, 3)),
                        box_yaw=np.zeros(n), object_class=np.ones(n, dtype=np.int64),
                        status=np.full(n, CONFIRMED), hits=np.ones(n, dtype=np.int64),
                        misses=np.zeros(n, dtype=np.int64), born=np.zeros(n),
                        last_update=np.array([self.cells[k][0] for k in keys]), existence=np.ones(n),
                        sources=object_array([frozenset({self.cells[k][2]}) for k in keys]),
                        vehicle_id=object_array([""] * n))


def test_a_tracker_through_the_protocol_runs_the_local_twin():
    twin = LocalTwin(LocalTwinConfig("site_x", rsus=("rsu_a",)), [EdgeServer("edge_a", 0.0, 0.0, 150.0, 3e9)],
                     channels=default_channels(), tracker=GridTracker())
    assert twin.ingest(frame("rsu_a", 0.0, [(12.0, 3.0), (55.0, -20.0)], sensor=(0.0, 0.0)), "rsu_lidar")
    snap = twin.snapshot(0.1)
    assert sorted(map(tuple, snap.tracks.x[:, :2].round(1))) == [(12.0, 3.0), (55.0, -20.0)]
    assert snap.servers[0].estimated_served == 2  # the server twin reads whatever tracker it is given


# ------------------------------------------------------------------------------------------ ROS
def _write(tmp_path, name: str, data: dict):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def _ros_params(params) -> list[str]:
    return [arg for p in params for arg in ("-p", p)]


def _node(executable: str, *params: str, log) -> subprocess.Popen:
    from mobility_twin.launch_runner.ament import package_prefix

    exe = package_prefix("mobility_twin") / "lib" / "mobility_twin" / executable
    return subprocess.Popen([sys.executable, str(exe), "--ros-args", *_ros_params(params)],
                            stdout=log, stderr=subprocess.STDOUT, text=True, start_new_session=True)


@pytest.mark.ros
def test_a_sensor_added_by_yaml_alone_reaches_the_running_twin(tmp_path):
    from mobility_twin.ros.cdr import encode_detections
    from mobility_twin.ros.tables import detections_to_table
    from mobility_twin_msgs.msg import DetectedObjectArray, TrackedObjectArray

    layout = _write(tmp_path, "layout.yaml", {"layout": LAYOUT})
    channels = _write(tmp_path, "channels.yaml", {"input_channels": channels_with_radar()})
    log = (tmp_path / "node.log").open("w")
    proc = _node("local_twin", "site_id:=site_x", f"layout_file:={layout}", f"input_channels_file:={channels}",
                 log=log)
    try:
        with Collector({"/twin/local/site_x/objects": TrackedObjectArray}) as c:
            pub = c.node.create_publisher(DetectedObjectArray, "/radar/radar_1/detections", 10)
            found = None
            end = time.monotonic() + 30.0
            k = 0
            while time.monotonic() < end and found is None:
                now = time.time()
                real = frame("radar_1", now, [(20.0 + 0.1 * k, 5.0)], sensor=(0.0, 0.0))
                fake = frame("rsu_a", now, [(-60.0, 40.0)], sensor=(0.0, 0.0))  # claims another source
                for f in (real, fake):
                    pub.publish(encode_detections(detections_to_table(f)))
                k += 1
                c.spin(0.1)
                for msg in c.messages["/twin/local/site_x/objects"][-3:]:
                    near = [o for o in msg.objects if abs(o.pose.pose.position.y - 5.0) < 1.0]
                    if near:
                        found = near[0]
            assert found is not None, (tmp_path / "node.log").read_text()
            assert "radar_1" in found.sources
            assert not any(abs(o.pose.pose.position.y - 40.0) < 2.0 for m in c.messages["/twin/local/site_x/objects"]
                           for o in m.objects), "a frame claiming another source was fused"
    finally:
        stop(proc)
    assert "channels ['cav_lidar', 'radar', 'rsu_lidar', 'v2x']" in (tmp_path / "node.log").read_text()


@pytest.mark.ros
@pytest.mark.parametrize(("executable", "params", "message"), [
    ("rsu_perception", ["sensor_id:=rsu_03"], r"parameter 'extrinsic' is required: set it in config/rsu_perception.yaml"),
    ("cav_perception", ["sensor_id:=cav_7"], r"parameter 'lidar_height_m' is required: set it in config/cav_perception.yaml"),
    ("local_twin", ["site_id:=site_0"], r"no layout: set parameter 'layout_file' to the site's layout.yaml in config/local_twin.yaml"),
    ("local_twin", [], r"parameter 'site_id' is required"),
    ("offloading", ["slot_s:=-1.0"], r"parameter 'slot_s': -1.0 is outside its range \[0.01, 3600.0\] \(set it in config/offloading.yaml"),
])
def test_a_node_started_with_the_shipped_config_and_no_simulator_stops_at_once_naming_what_to_set(
        tmp_path, executable, params, message):
    import re

    from mobility_twin.launch_runner.ament import package_prefix

    config = package_prefix("mobility_twin") / "share" / "mobility_twin" / "config" / f"{executable}.yaml"
    args = ["--params-file", str(config)] if config.exists() else []
    exe = package_prefix("mobility_twin") / "lib" / "mobility_twin" / executable
    started = time.monotonic()
    result = subprocess.run([sys.executable, str(exe), "--ros-args", *args, *_ros_params(params)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert re.search(message, result.stdout + result.stderr), result.stdout + result.stderr
    assert time.monotonic() - started < 30  # at once: it does not wait for a simulator


@pytest.mark.ros
def test_read_only_parameters_are_refused_and_dynamic_ones_validated_and_applied():
    import rclpy
    from rclpy.context import Context
    from rclpy.parameter import Parameter

    from mobility_twin.nodes.offloading import OffloadingNode

    context = Context()
    rclpy.init(context=context, args=["--ros-args", "-p", "policy:=greedy"])
    try:
        node = OffloadingNode(context=context)
        (refused,) = node.set_parameters([Parameter("slot_s", value=5.0)])
        assert not refused.successful and "read-only" in refused.reason
        assert node.config.slot_s == 1.0
        (applied,) = node.set_parameters([Parameter("budget_rate", value=0.5)])
        assert applied.successful and node.config.budget_rate == 0.5
        assert node.controller.config.migration.budget_rate == 0.5
        (bad,) = node.set_parameters([Parameter("budget_rate", value=1.5)])
        assert not bad.successful and "out of range" in bad.reason and node.config.budget_rate == 0.5
        node.destroy_node()
    finally:
        context.try_shutdown()


def test_the_shipped_layout_file_is_a_valid_layout():
    layout = layout_from_dict(yaml.safe_load((REPO / "config" / "layout.yaml").read_text())["layout"])
    assert len(layout.rsus) == 8 and len(layout.sites) == 2 and layout.servers

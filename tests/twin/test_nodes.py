"""The perception and twin nodes as real processes over DDS."""

import json

import numpy as np
import pytest
import yaml

from tests.ros_helpers import Collector, start_mtwin, stop

pytestmark = pytest.mark.ros

TWO_RSUS = {
    "name": "two_rsus", "seed": 5,
    "area": {"box_m": [300, 250, 600, 500]},
    "time": {"start": "2008-02-02 16:10:00", "duration_s": 40.0, "max_gap_s": 300.0, "fold": 3},
    "rsus": {"layout": {"kind": "positions"}, "positions": [[450, 350], [390, 350]]},
    "cavs": {"count": 0},
    "sites": {"count": 1},
}


def test_rsu_perception_survives_bad_clouds_and_detects_in_good_ones(tmp_path):
    from sensor_msgs.msg import PointCloud2

    from mobility_twin.ros.convert import make_cloud
    from mobility_twin.ros.qos import SENSOR_STREAM
    from mobility_twin_msgs.msg import DetectedObjectArray

    launch = tmp_path / "rsu.launch.xml"
    launch.write_text("""<launch><node pkg="mobility_twin" exec="rsu_perception" name="perception" namespace="/rsu/r9">
      <param name="sensor_id" value="r9"/><param name="extrinsic" value="'0.0,0.0,6.0,0.0'"/>
      <param name="extrinsic_from_sim" value="false"/><param name="stats_period_s" value="1.0"/></node></launch>""")
    proc = start_mtwin("launch", str(launch), log=tmp_path / "rsu.log")
    rng = np.random.default_rng(0)
    car = np.column_stack([rng.uniform(13, 17.6, 600), rng.uniform(4, 5.8, 600), rng.uniform(-6, -4.5, 600)])
    try:
        with Collector({"/rsu/r9/detections": DetectedObjectArray}) as c:
            pub = c.node.create_publisher(PointCloud2, "/rsu/r9/points", SENSOR_STREAM)
            # best-effort: what is published before the node's subscription is matched is lost, not queued
            assert c.wait_for(lambda m: pub.get_subscription_count() > 0, timeout=60), \
                (tmp_path / "rsu.log").read_text()
            c.spin(0.5)
            nan_cloud = np.vstack([car, np.full((30, 3), np.nan)]).astype(np.float32)
            for k in range(30):
                t = 1_202_000_000.0 + 0.1 * k
                n = len(nan_cloud)
                for cloud in (make_cloud(nan_cloud, np.zeros(n, np.float32), np.zeros(n, np.uint16), "r9/lidar", t),
                              make_cloud(car.astype(np.float32), np.zeros(600, np.float32), np.zeros(600, np.uint16),
                                         "somewhere_else", t),
                              make_cloud(np.zeros((0, 3), np.float32), np.zeros(0, np.float32), np.zeros(0, np.uint16),
                                         "r9/lidar", t + 0.05)):
                    pub.publish(cloud)
                    c.spin(0.05)  # the node takes the newest cloud only (NEWEST_FRAME): one at a time
            got = c.wait_for(lambda m: len(m["/rsu/r9/detections"]) >= 40, timeout=20)
            c.spin(1.5)
            alive = proc.poll() is None
    finally:
        stop(proc)
    log = (tmp_path / "rsu.log").read_text()
    assert got and alive, log
    frames = c.messages["/rsu/r9/detections"]
    with_car = [f for f in frames if len(f.objects)]
    assert len(with_car) >= 20 and all(len(f.objects) == 1 for f in with_car)
    assert abs(with_car[-1].objects[0].pose.pose.position.x - 15.3) < 1.0
    assert "wrong frame 30" in log or "wrong frame" in log
    assert "invalid points" in log


def test_multi_process_stack_reaches_the_mota_floor(tmp_path):
    scenario = tmp_path / "two_rsus.yaml"
    scenario.write_text(yaml.safe_dump(TWO_RSUS))
    out = tmp_path / "eval"
    result = start_mtwin("eval", "tracking", "--scenario", str(scenario), "--json", "--out", str(out))
    text, _ = result.communicate(timeout=400)
    assert result.returncode == 0, text + (out / "stack.log").read_text()
    results = json.loads(text[text.index("{"):])
    glob = results["tracking"]["global"]
    assert glob["num_objects"] > 100
    assert glob["mota"] > 0.7, results["tracking"]
    assert results["tracking"]["local/site_0"]["mota"] > 0.7
    assert results["latency_ms"]["end_to_end"]["n"] > 100
    assert results["latency_ms"]["perception"]["p50"] < 100


@pytest.mark.slow
def test_demo_writes_a_report_a_snapshot_and_a_recording(tmp_path):
    result = start_mtwin("demo", "--duration", "20", "--runs-dir", str(tmp_path))
    text, _ = result.communicate(timeout=600)
    (run,) = list(tmp_path.iterdir())
    assert result.returncode == 0, text + (run / "stack.log").read_text()[-3000:]
    report = json.loads((run / "report.json").read_text())
    assert report["tracking"]["global"]["num_frames"] > 50
    assert report["latency_ms"]["end_to_end"]["n"] > 100
    assert report["extras"]["offloading"]["decisions"] > 0
    assert (run / "snapshot.png").stat().st_size > 50_000
    assert (run / "demo.mcap").stat().st_size > 100_000
    assert "## Tracking and latency" in (run / "report.md").read_text()

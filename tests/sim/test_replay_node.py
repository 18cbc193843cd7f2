"""The replay node's topics reach a real subscriber in another process."""

import pytest
import yaml

from tests.ros_helpers import Collector, start_mtwin, stop
from tests.sim.test_scenario_world_replay import SMALL

pytestmark = pytest.mark.ros


def test_replay_topics_reach_a_subscriber_in_another_process(tmp_path):
    from nav_msgs.msg import Odometry
    from rosgraph_msgs.msg import Clock
    from sensor_msgs.msg import PointCloud2

    from mobility_twin.ros.convert import from_time, read_xyz
    from mobility_twin.ros.layout_msg import layout_from_msg
    from mobility_twin.ros.qos import LATCHED, SENSOR_STREAM
    from mobility_twin_msgs.msg import EdgeServerStateArray, Layout, TrackedObjectArray

    scenario = tmp_path / "small.yaml"
    scenario.write_text(yaml.safe_dump(SMALL))
    topics = {"/clock": Clock, "/sim/ground_truth": TrackedObjectArray, "/infrastructure/edge_servers/reports": EdgeServerStateArray,
              "/infrastructure/layout": Layout, "/rsu/rsu_00/points": PointCloud2, "/rsu/rsu_01/points": PointCloud2}
    with Collector(topics, qos={"/infrastructure/layout": LATCHED}) as c:
        proc = start_mtwin("replay", "--scenario", str(scenario), "--rate", "2", log=tmp_path / "replay.log")
        try:
            ok = c.wait_for(lambda m: all(len(m[t]) >= 2 for t in topics if t != "/infrastructure/layout")
                            and m["/infrastructure/layout"], timeout=60)
            message = c.messages["/infrastructure/layout"][0]
            layout, start_s = layout_from_msg(message), from_time(message.header.stamp)
            cav = layout.cavs[0].cav_id
            c.node.create_subscription(Odometry, f"/cav/{cav}/odom", lambda m: c.messages["odom"].append(m),
                                     SENSOR_STREAM)
            got_odom = c.wait_for(lambda m: len(m["odom"]) >= 2, timeout=30)
            json_layout = c.node.get_publishers_info_by_topic("/sim/world")
        finally:
            status = stop(proc)
    log = (tmp_path / "replay.log").read_text()
    assert ok, f"missing topics: { {t: len(c.messages[t]) for t in topics} }\n{log}"
    assert got_odom, log
    assert status in (0, -2, 130), log
    assert [r.rsu_id for r in layout.rsus] == ["rsu_00", "rsu_01"]
    assert json_layout == []  # the JSON layout of /sim/world is gone
    cloud = c.messages["/rsu/rsu_00/points"][0]
    assert cloud.header.frame_id == "rsu_00/lidar" and cloud.width > 1000
    xyz = read_xyz(cloud)
    assert xyz.shape == (cloud.width, 3)
    gt = c.messages["/sim/ground_truth"][-1]
    assert gt.header.frame_id == "map" and len(gt.objects) > 0
    clocks = [from_time(m.clock) for m in c.messages["/clock"]]
    assert clocks == sorted(clocks) and clocks[0] >= start_s  # the layout is stamped with the scenario start


def _set(collector, node_name: str, **values) -> None:
    """Set parameters of a running node through its real parameter service."""
    from rclpy.parameter import Parameter
    from rclpy.parameter_client import AsyncParameterClient

    client = AsyncParameterClient(collector.node, node_name)
    assert client.wait_for_services(timeout_sec=20.0), f"no parameter services on {node_name}"
    future = client.set_parameters([Parameter(k, value=v) for k, v in values.items()])
    collector.executor.spin_until_future_complete(future, timeout_sec=20.0)
    assert future.done() and all(r.successful for r in future.result().results), future.result()


def test_replay_pauses_resumes_and_seeks_on_parameter_changes(tmp_path):
    from rosgraph_msgs.msg import Clock

    from mobility_twin.ros.convert import from_time
    from mobility_twin.ros.qos import LATCHED
    from mobility_twin_msgs.msg import Layout

    scenario = tmp_path / "small.yaml"
    scenario.write_text(yaml.safe_dump({**SMALL, "time": {**SMALL["time"], "duration_s": 120.0}}))
    with Collector({"/clock": Clock, "/infrastructure/layout": Layout}, qos={"/infrastructure/layout": LATCHED}) as c:
        proc = start_mtwin("replay", "--scenario", str(scenario), "--rate", "2", log=tmp_path / "replay.log")
        try:
            clock = lambda: [from_time(m.clock) for m in c.messages["/clock"]]  # noqa: E731
            assert c.wait_for(lambda m: len(m["/clock"]) >= 6 and m["/infrastructure/layout"], timeout=60), \
                (tmp_path / "replay.log").read_text()
            start = from_time(c.messages["/infrastructure/layout"][0].header.stamp)  # the scenario start
            _set(c, "/replay", paused=True)
            c.spin(1.0)  # what was in flight arrives
            at_pause = len(clock())
            c.spin(3.0)
            during_pause = len(clock()) - at_pause
            _set(c, "/replay", paused=False)
            assert c.wait_for(lambda m: len(m["/clock"]) >= at_pause + during_pause + 4, timeout=30)
            before_seek = max(clock())
            _set(c, "/replay", seek_to_s=60.0)
            assert c.wait_for(lambda m: from_time(m["/clock"][-1].clock) >= start + 60.0, timeout=30)
            _set(c, "/replay", seek_to_s=2.0)  # and back
            assert c.wait_for(lambda m: from_time(m["/clock"][-1].clock) < start + 30.0, timeout=30)
        finally:
            stop(proc)
    log = (tmp_path / "replay.log").read_text()
    assert during_pause == 0, f"{during_pause} clock messages while paused\n{log}"
    assert before_seek < start + 60.0  # the jump forward was the seek, not the run reaching it
    assert "paused" in log and "resumed" in log and "seek to 60.0 s" in log and "seek to 2.0 s" in log
    after = clock()
    back = next(i for i in range(1, len(after)) if after[i] < after[i - 1])  # the clock jumped back once
    assert after[back] - start == pytest.approx(2.0, abs=0.6)

"""The replay node's topics reach a real subscriber in another process."""

import numpy as np
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


# a SUMO world small enough to start in seconds: no demand but the CAV, one RSU, small LiDARs
SMALL_SUMO = {
    "name": "small_sumo", "seed": 5,
    "world": {"kind": "sumo", "demand": {"kind": "none"}, "buildings": {"kind": "none"}, "warmup_s": 70.0},
    "area": {"box_m": [-300, -300, 300, 300]},
    "time": {"start": "2008-02-02 16:10:00", "duration_s": 400.0, "slot_s": 0.1},
    "rsus": {"layout": {"kind": "positions"}, "positions": [[0, 0]],
             "lidar": {"channels": 8, "azimuth_steps": 256, "rate_hz": 2.0}},
    "cavs": {"count": 1, "lidar": {"channels": 8, "azimuth_steps": 256, "rate_hz": 2.0}},
}


def test_a_route_command_through_ros_makes_the_cav_take_the_new_road(tmp_path, monkeypatch):
    sumolib = pytest.importorskip("sumolib")
    pytest.importorskip("libsumo")
    from nav_msgs.msg import Odometry
    from shapely.geometry import LineString, Point
    from std_msgs.msg import Header

    from mobility_twin.ros.convert import to_time
    from mobility_twin.ros.qos import EVENTS
    from mobility_twin_msgs.msg import RouteCommand, RouteCommandStatus, RouteRequest, SignalStateArray
    from mobility_twin_sim.sumo import load_network

    monkeypatch.setenv("MTWIN_SUMO_CACHE", str(tmp_path / "cache"))  # the replay process inherits it
    network = load_network("beijing_cbd")  # built once here, read from the cache by the replay process
    net = sumolib.net.readNet(str(network.net_file))
    scenario = tmp_path / "small_sumo.yaml"
    scenario.write_text(yaml.safe_dump(SMALL_SUMO))
    # the simulated CAV's drive interface (what its route follower passes checked commands to), and its mission
    status_topic, odom_topic = "/cav/cav_0/control/route_command/status", "/cav/cav_0/odom"
    mission = "/cav/cav_0/destination"
    topics = {status_topic: RouteCommandStatus, "/infrastructure/signals": SignalStateArray, odom_topic: Odometry,
              mission: RouteRequest}
    with Collector(topics, qos={status_topic: EVENTS, mission: EVENTS}) as c:
        pub = c.node.create_publisher(RouteCommand, "/cav/cav_0/control/route_command", EVENTS)

        def ask(command_id: str, timeout: float = 30.0, **fields) -> RouteCommandStatus | None:
            """Send a command stamped with the newest odometry stamp (sim time); wait for its answer."""
            msg = RouteCommand(command_id=command_id, **fields)
            if "header" not in fields:
                msg.header.stamp = c.messages[odom_topic][-1].header.stamp
            pub.publish(msg)
            c.wait_for(lambda m: any(s.command_id == command_id for s in m[status_topic]), timeout=timeout)
            return next((s for s in c.messages[status_topic] if s.command_id == command_id), None)

        proc = start_mtwin("replay", "--scenario", str(scenario), "--rate", "5", "--out", str(tmp_path / "out"),
                           log=tmp_path / "replay.log")
        try:
            started = c.wait_for(lambda m: len(m[odom_topic]) >= 2 and m["/infrastructure/signals"], timeout=120)
            assert started, (tmp_path / "replay.log").read_text()
            # where is it going? a speed release changes nothing and answers with the road and the route
            for k in range(200):
                probe = ask(f"probe-{k}", set_speed=True, speed=-1.0)
                assert probe is not None and probe.status == RouteCommandStatus.STATUS_ACCEPTED, probe
                if len(probe.route) >= 3 and not probe.road.startswith(":"):
                    break
                c.spin(0.3)
            old = list(probe.route)
            # its mission: the destination it drives to, as its route follower asks the guidance for it
            assert c.wait_for(lambda m: m[mission], timeout=30), "no /cav/cav_0/destination"
            assert all(d.vehicle_id == "cav_0" and d.destination_edge for d in c.messages[mission])
            # keep its current and next road, then turn off the planned route at the next junction
            turn = net.getEdge(old[1]).getToNode()
            alternatives = [e.getID() for e in net.getEdge(old[1]).getOutgoing()
                            if e.getID() != old[2] and e.getToNode() != net.getEdge(old[1]).getFromNode()
                            and e.getID() not in old]
            assert alternatives, f"no other road out of junction {turn.getID()}"
            new_road = alternatives[0]
            answer = ask("guidance-1", edges=[old[0], old[1], new_road], validity=30.0)
            assert answer.status == RouteCommandStatus.STATUS_ACCEPTED, answer.reason
            assert new_road in answer.route and answer.vehicle_id == "cav_0"
            # bad commands: a clear status each, and the simulation carries on
            bad = ask("bad-edge", edges=["no_such_road"])
            assert bad.status == RouteCommandStatus.STATUS_UNKNOWN_EDGE and "unknown edge" in bad.reason
            other = ask("other-cav", vehicle_id="cav_7", target_edge=new_road)
            assert other.status == RouteCommandStatus.STATUS_INVALID
            long_ago = Header(stamp=to_time(1.0))  # valid for a second, issued decades ago
            assert ask("stale", header=long_ago, target_edge=new_road, validity=1.0).status == \
                RouteCommandStatus.STATUS_EXPIRED
            # it drives along the new road: its odometry runs along that road's lanes
            lanes = [LineString(np.column_stack(network.frame.to_map(*np.asarray(lane.getShape()).T)))
                     for lane in net.getEdge(new_road).getLanes()]

            def on_new_road(m) -> bool:
                for o in m[odom_topic][-20:]:
                    p = Point(o.pose.pose.position.x, o.pose.pose.position.y)
                    for lane in lanes:
                        along = lane.project(p)
                        if lane.distance(p) < 2.0 and 0.2 * lane.length < along < 0.8 * lane.length:
                            return True
                return False

            took = c.wait_for(on_new_road, timeout=120)
            signals = c.messages["/infrastructure/signals"][-1]
        finally:
            status = stop(proc)
    log = (tmp_path / "replay.log").read_text()
    assert took, f"cav_0 never drove along {new_road} (old route {old[:4]})\n{log[-3000:]}"
    assert status in (0, -2, 130), log
    assert len(signals.signals) > 10 and all(set(s.state) <= set("GgyrRuoOs") for s in signals.signals)
    assert "refused (unknown_edge)" in log and "refused (expired)" in log
    assert (tmp_path / "out" / "tripinfo.xml").exists()  # SUMO's outputs went to the run folder

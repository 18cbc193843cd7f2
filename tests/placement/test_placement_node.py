"""The placement node as a real process: twins published from this process, MigrationEvents back over DDS."""

import pytest

from tests.ros_helpers import Collector, start_mtwin, stop

pytestmark = pytest.mark.ros

PREFIX = "/test_placement"
SERVERS = {"edge_a": (250.0, 200.0), "edge_b": (750.0, 200.0), "edge_c": (500.0, 600.0)}
CARS_PER_SERVER = {"edge_a": 10, "edge_b": 5, "edge_c": 3}  # edge_a's cars make two twins of <= 8
TWINS = {"edge_a/0": 8, "edge_a/1": 2, "edge_b/0": 5, "edge_c/0": 3}
WORKLOAD_MB = 20.0


def launch_file(tmp_path):
    path = tmp_path / "placement.launch.xml"
    path.write_text(f"""<launch>
  <node pkg="mobility_twin" exec="placement" name="placement_test">
    <param from="$(find-pkg-share mobility_twin)/config/placement.yaml"/>
    <param name="period_s" value="0.5"/>
    <param name="log_period_s" value="2.0"/>
    <param name="device_workload_mb" value="{WORKLOAD_MB}"/>
    <param name="objects_topic" value="{PREFIX}/objects"/>
    <param name="servers_topic" value="{PREFIX}/edge_servers"/>
    <param name="migrations_topic" value="{PREFIX}/migrations"/>
  </node>
</launch>""")
    return path


def twin_messages(slow: str = ""):
    from geometry_msgs.msg import Point
    from std_msgs.msg import Header

    from mobility_twin_msgs.msg import (
        EdgeServerState,
        EdgeServerStateArray,
        TrackedObject,
        TrackedObjectArray,
    )

    servers = EdgeServerStateArray(header=Header(frame_id="map"))
    for sid, (x, y) in SERVERS.items():
        servers.servers.append(EdgeServerState(server_id=sid, position=Point(x=x, y=y), coverage_radius=400.0,
                                               cpu_frequency_max=3.0e9,
                                               cpu_frequency_estimate=0.2e9 if sid == slow else 2.5e9))
    objects = TrackedObjectArray(header=Header(frame_id="map"), twin_id="global")
    k = 0
    for sid, n in CARS_PER_SERVER.items():
        x0, y0 = SERVERS[sid]
        for i in range(n):
            k += 1
            o = TrackedObject(track_id=k, object_class=1, state=1, vehicle_id=f"{sid}_car_{i:02d}")
            o.pose.pose.position.x, o.pose.pose.position.y = x0 + 20.0 + 5.0 * i, y0 - 10.0
            objects.objects.append(o)
    objects.objects.append(TrackedObject(track_id=99, object_class=5))  # a pedestrian is not a vehicle
    return objects, servers


def test_node_places_every_twin_then_moves_twins_off_a_server_that_slows_down(tmp_path):
    from mobility_twin.ros.qos import EVENTS, TWIN_STATE
    from mobility_twin_msgs.msg import EdgeServerStateArray, MigrationEvent, TrackedObjectArray

    topic = f"{PREFIX}/migrations"
    objects, servers = twin_messages()
    _, slowed = twin_messages(slow="edge_a")
    current = {"servers": servers}
    with Collector({topic: MigrationEvent}, qos={topic: EVENTS}, name="placement_test_collector") as c:
        pub_o = c.node.create_publisher(TrackedObjectArray, f"{PREFIX}/objects", TWIN_STATE)
        pub_s = c.node.create_publisher(EdgeServerStateArray, f"{PREFIX}/edge_servers", TWIN_STATE)
        c.node.create_timer(0.2, lambda: (pub_o.publish(objects), pub_s.publish(current["servers"])))
        proc = start_mtwin("launch", str(launch_file(tmp_path)), "--duration", "120", log=tmp_path / "node.log")
        try:
            placed = c.wait_for(lambda m: {e.twin_id for e in m[topic]} >= set(TWINS), timeout=75)
            first = list(c.messages[topic])
            current["servers"] = slowed
            moved = c.wait_for(lambda m: any(e.from_host == "edge_a" for e in m[topic]), timeout=30)
            c.spin(2.5)  # past one summary line
            alive = proc.poll() is None
        finally:
            status = stop(proc)
    log = (tmp_path / "node.log").read_text()
    assert placed, log
    assert moved, log
    assert alive, log
    assert status in (0, -2, 130), log

    hosts = {*SERVERS, "cloud"}
    for e in first:  # first placements: one per twin, its size, its upload time
        assert e.from_host == "" and e.to_host in hosts and e.reason == "placement"
        assert e.size_bytes == pytest.approx(TWINS[e.twin_id] * WORKLOAD_MB * 1e6)
        assert 0.0 < e.transfer_time < 1.0
        assert e.header.frame_id == "map"
    assert sorted(e.twin_id for e in first) == sorted(TWINS)
    assert {e.twin_id: e.to_host for e in first}["edge_a/0"] == "edge_a"  # its own site, at alpha 0.5

    moves = [e for e in c.messages[topic] if e.from_host == "edge_a"]
    for e in moves:
        assert e.to_host in hosts - {"edge_a"}
        rate_mb_s = 125.0 * (0.5 if e.to_host == "cloud" else 1.0)  # 1000 Mbit/s backhaul, gamma to the cloud
        assert e.transfer_time == pytest.approx(e.size_bytes / 1e6 / rate_mb_s, rel=1e-6)
    assert "not_a_confirmed_vehicle" in log and "solver ddl+refine" in log

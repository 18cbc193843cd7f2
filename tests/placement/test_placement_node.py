"""The placement node as a real process: twins published from this process, MigrationEvents back over DDS."""

import pytest

from tests.ros_helpers import Collector, launched, node_launch_file, publish_twin, server_twins, vehicle_twins

pytestmark = pytest.mark.ros

PREFIX = "/test_placement"
SERVERS = {"edge_a": (250.0, 200.0), "edge_b": (750.0, 200.0), "edge_c": (500.0, 600.0)}
CARS_PER_SERVER = {"edge_a": 10, "edge_b": 5, "edge_c": 3}  # edge_a's cars make two twins of <= 8
TWINS = {"edge_a/0": 8, "edge_a/1": 2, "edge_b/0": 5, "edge_c/0": 3}
WORKLOAD_MB = 20.0


def twin_messages(slow: str = ""):
    from mobility_twin_msgs.msg import TrackedObject

    servers = server_twins(SERVERS, coverage_radius=400.0, cpu_frequency_max=3.0e9,
                           cpu_frequency_estimate=lambda sid: 0.2e9 if sid == slow else 2.5e9)
    objects = vehicle_twins({f"{sid}_car_{i:02d}": (SERVERS[sid][0] + 20.0 + 5.0 * i, SERVERS[sid][1] - 10.0)
                             for sid, n in CARS_PER_SERVER.items() for i in range(n)})
    objects.objects.append(TrackedObject(track_id=99, object_class=5))  # a pedestrian is not a vehicle
    return objects, servers


def test_node_places_every_twin_then_moves_twins_off_a_server_that_slows_down(tmp_path):
    from mobility_twin.ros.qos import EVENTS
    from mobility_twin_msgs.msg import MigrationEvent

    topic = f"{PREFIX}/migrations"
    objects, servers = twin_messages()
    _, slowed = twin_messages(slow="edge_a")
    current = {"servers": servers}
    with Collector({topic: MigrationEvent}, qos={topic: EVENTS}, name="placement_test_collector") as c:
        publish_twin(c, PREFIX, objects, lambda: current["servers"])
        launch = node_launch_file(tmp_path / "placement.launch.xml", "placement", "placement_test", period_s=0.5,
                                  log_period_s=2.0, device_workload_mb=WORKLOAD_MB, objects_topic=f"{PREFIX}/objects",
                                  servers_topic=f"{PREFIX}/edge_servers", migrations_topic=topic)
        with launched(launch, 120, tmp_path / "node.log") as run:
            placed = c.wait_for(lambda m: {e.twin_id for e in m[topic]} >= set(TWINS), timeout=75)
            first = list(c.messages[topic])
            current["servers"] = slowed
            moved = c.wait_for(lambda m: any(e.from_host == "edge_a" for e in m[topic]), timeout=30)
            c.spin(2.5)  # past one summary line
    log = run.log
    assert placed, log
    assert moved, log
    run.assert_ran_cleanly()

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

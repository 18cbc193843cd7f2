"""The offloading node as a real process: twins published from this process, decisions back over DDS."""

import math

import numpy as np
import pytest

from tests.ros_helpers import Collector, launched, node_launch_file, publish_twin, server_twins, vehicle_twins

pytestmark = pytest.mark.ros

SPACING = 150.0
BUSY = "edge_1_1"
CARS = {"car_a": (160.0, 140.0), "car_b": (20.0, 10.0), "car_c": (300.0, 300.0), "car_d": (440.0, 80.0)}


def server_positions():
    return {f"edge_{i}_{j}": (SPACING * i, SPACING * j) for i in range(4) for j in range(4)}


def twin_messages():
    from mobility_twin_msgs.msg import TrackedObject

    servers = server_twins(server_positions(), coverage_radius=150.0, cpu_frequency_max=20e9,
                           cpu_frequency_estimate=lambda sid: 1e9 if sid == BUSY else 18e9,
                           cpu_frequency_deviation=0.5e9, load=0.1)
    objects = vehicle_twins(CARS)
    bad = TrackedObject(track_id=90, object_class=1, state=1, vehicle_id="lost")  # no position
    bad.pose.pose.position.x = math.nan
    walker = TrackedObject(track_id=91, object_class=5)  # a pedestrian is not a vehicle
    objects.objects += [bad, walker]
    return objects, servers


@pytest.mark.parametrize("policy", ["actor_critic", "greedy"])
def test_node_publishes_sensible_decisions_for_the_vehicles_of_a_running_twin(tmp_path, policy):
    from mobility_twin.ros.qos import EVENTS
    from mobility_twin_msgs.msg import OffloadDecisionArray

    prefix = f"/test_offloading_{policy}"
    objects, servers = twin_messages()
    with Collector({f"{prefix}/decisions": OffloadDecisionArray}, qos={f"{prefix}/decisions": EVENTS},
                   name=f"offloading_test_{policy}") as c:
        publish_twin(c, prefix, objects, lambda: servers)
        launch = node_launch_file(tmp_path / f"offloading_{policy}.launch.xml", "offloading", f"offloading_{policy}",
                                  policy=policy, slot_s=0.5, log_period_s=2.0, objects_topic=f"{prefix}/objects",
                                  servers_topic=f"{prefix}/edge_servers", decisions_topic=f"{prefix}/decisions")
        with launched(launch, 90, tmp_path / "node.log") as run:
            got = c.wait_for(lambda m: sum(bool(a.decisions) for a in m[f"{prefix}/decisions"]) >= 4, timeout=75)
            c.spin(2.5)  # past one summary line
    log = run.log
    assert got, log
    run.assert_ran_cleanly()
    arrays = [a for a in c.messages[f"{prefix}/decisions"] if a.decisions]
    positions = server_positions()
    ids = np.array(list(positions))
    xy = np.array(list(positions.values()))
    served: dict[str, str] = {}
    for a in arrays:
        assert a.policy == policy
        assert a.slot_duration == pytest.approx(0.5)
        assert a.migration_budget == pytest.approx(0.2)
        assert a.deficit_queue >= 0.0
        assert sorted(d.vehicle_id for d in a.decisions) == sorted(CARS)
        for d in a.decisions:
            order = ids[np.argsort(np.hypot(*(xy - CARS[d.vehicle_id]).T))]
            assert d.access_server_id == order[0]
            assert d.server_id in order[:5]
            assert d.server_id != BUSY  # a twin reporting 1 GHz is never worth it
            assert 0.0 < d.expected_latency < 1.0
            assert d.deadline == pytest.approx(0.2)
            assert d.previous_server_id == served.get(d.vehicle_id, "")
            assert d.migrated == (d.previous_server_id not in ("", d.server_id))
            assert d.migration_cost == (1.0 if d.migrated else 0.0)
            served[d.vehicle_id] = d.server_id
    assert "vehicle_not_finite" in log and "not_a_confirmed_vehicle" in log  # counted and summarised, not fatal

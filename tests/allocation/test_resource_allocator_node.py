"""The resource_allocator node: its helpers (no running ROS), and the node as a real process over DDS."""

from __future__ import annotations

import math
import re
import subprocess
import sys
import time
from collections import Counter

import numpy as np
import pytest

msgs = pytest.importorskip("mobility_twin_msgs.msg")
node_module = pytest.importorskip("mobility_twin.nodes.resource_allocator")

from mobility_twin_core import TwinSnapshot  # noqa: E402
from tests.ros_helpers import Collector, stop  # noqa: E402

SERVERS = {"edge_0": (0.0, 0.0), "edge_1": (300.0, 0.0), "edge_2": (600.0, 0.0)}
CPU_HZ = {"edge_0": 20e9, "edge_1": 15e9, "edge_2": 25e9}
# vehicle -> (position, the server offloading sends it to; None: no decision, the association rule serves it)
VEHICLES = {
    "v0": ((20.0, 10.0), "edge_0"), "v1": ((-40.0, 30.0), "edge_0"), "v2": ((60.0, -20.0), "edge_1"),
    "v3": ((310.0, 40.0), "edge_1"), "v4": ((280.0, -50.0), "edge_1"), "v5": ((590.0, 5.0), "edge_2"),
    "v6": ((650.0, 60.0), None),  # association: edge_2
    "v7": ((330.0, 0.0), "edge_9"),  # a server the twin does not have: left out
}
SERVED = {v: (s or "edge_2") for v, (_, s) in VEHICLES.items() if s != "edge_9"}


# ---------------------------------------------------------------------------------------------- helpers, no ROS
def snapshot() -> TwinSnapshot:
    ids = list(VEHICLES)
    return TwinSnapshot(
        t=0.0, vehicle_ids=np.array(ids, dtype=object), vehicle_xy=np.array([VEHICLES[v][0] for v in ids]),
        vehicle_vel=np.zeros((len(ids), 2)), server_ids=np.array(list(SERVERS), dtype=object),
        server_xy=np.array(list(SERVERS.values())), server_coverage_m=np.full(3, 150.0),
        server_capacity_ghz=np.array([CPU_HZ[s] / 1e9 for s in SERVERS]), rsu_ids=np.array([], dtype=object),
        rsu_xy=np.zeros((0, 2)))


def test_the_nodes_names_are_the_librarys():
    from mobility_twin_models.allocation.allocator import POLICIES
    from mobility_twin_models.allocation.config import STRATEGIES

    assert node_module.POLICIES == POLICIES and node_module.STRATEGIES == STRATEGIES


def test_vehicles_go_to_the_server_offloading_chose_or_to_the_association_rule():
    decisions = {v: s for v, (_, s) in VEHICLES.items() if s} | {"ghost": "edge_0"}
    counts = Counter()
    routed, by_association = node_module.route_vehicles(snapshot(), decisions, fallback=True, counts=counts)
    assert list(routed.vehicle_ids) == [v for v in VEHICLES if v != "v7"]
    assert by_association == 1
    assert counts == {"decision_unknown_server": 1, "decision_unknown_vehicle": 1}
    servers = [str(s) for s in routed.server_ids]
    assert [servers[j] if j >= 0 else None for j in routed.vehicle_server] == \
        [VEHICLES[v][1] for v in routed.vehicle_ids]
    counts.clear()
    routed, _ = node_module.route_vehicles(snapshot(), decisions, fallback=False, counts=counts)
    assert "v6" not in set(routed.vehicle_ids) and counts["no_offloading_decision"] == 1


def test_diten_tasks_are_table_two_tasks_and_repeat_with_the_seed():
    from mobility_twin_models.offloading.config import TaskConfig

    a = node_module.draw_tasks(np.random.default_rng(3), ["a", "b", "c"], TaskConfig())
    b = node_module.draw_tasks(np.random.default_rng(3), ["a", "b", "c"], TaskConfig())
    assert a == b and list(a) == ["a", "b", "c"]
    for size, cycles, deadline in a.values():
        assert 8 * 600e3 <= size <= 8 * 800e3
        assert 200 * size <= cycles <= 400 * size
        assert 0.150 <= deadline <= 0.250


def test_the_message_lists_the_usable_servers_and_every_allocation():
    from mobility_twin_models.allocation import (
        AgentConfig,
        ServerState,
        SiteAllocator,
        SiteConfig,
        requests_from_snapshot,
    )
    from mobility_twin_models.offloading.config import TaskConfig

    routed, _ = node_module.route_vehicles(snapshot(), {v: s for v, (_, s) in VEHICLES.items() if s},
                                           fallback=True, counts=Counter())
    tasks = node_module.draw_tasks(np.random.default_rng(0), routed.vehicle_ids, TaskConfig())
    servers, requests, skipped = requests_from_snapshot(routed, tasks)
    assert not skipped
    decision = SiteAllocator(SiteConfig(), AgentConfig(hidden=(16,), seed=1)).decide(
        [*servers, ServerState("broken", float("nan"), 20e6)], requests)
    msg = node_module.allocation_message(decision, [*servers, ServerState("broken", float("nan"), 20e6)],
                                         site_id="s", task_source="diten", slot_s=1.0, model_updates=0,
                                         stamp=msgs.TrackedObjectArray().header.stamp, frame_id="map")
    assert msg.server_ids == list(SERVERS) and list(msg.server_bandwidth) == [20e6] * 3
    assert {a.vehicle_id: a.server_id for a in msg.allocations} == SERVED
    _check_capacity(msg)


def _check_capacity(msg) -> None:
    cpu = dict(zip(msg.server_ids, msg.server_cpu_frequency, strict=True))
    band = dict(zip(msg.server_ids, msg.server_bandwidth, strict=True))
    for sid in cpu:
        mine = [a for a in msg.allocations if a.server_id == sid]
        assert sum(a.cpu_frequency for a in mine) <= cpu[sid] * (1 + 1e-9)
        assert sum(a.bandwidth for a in mine) <= band[sid] * (1 + 1e-9)
        assert all(a.cpu_frequency >= 0 and a.bandwidth >= 0 for a in mine)


# ---------------------------------------------------------------------------------------------- the node
def twin_messages(stamp):
    objects = msgs.TrackedObjectArray(twin_id="local/alloc_test")
    objects.header.frame_id, objects.header.stamp = "map", stamp
    for k, (vid, ((x, y), _)) in enumerate(VEHICLES.items()):
        o = msgs.TrackedObject(track_id=k + 1, object_class=1, state=msgs.TrackedObject.STATE_CONFIRMED,
                               vehicle_id=vid)
        o.pose.pose.position.x, o.pose.pose.position.y = x, y
        objects.objects.append(o)
    lost = msgs.TrackedObject(track_id=90, object_class=1, state=msgs.TrackedObject.STATE_CONFIRMED, vehicle_id="nan")
    lost.pose.pose.position.x = math.nan
    objects.objects.append(lost)
    servers = msgs.EdgeServerStateArray()
    servers.header.frame_id, servers.header.stamp = "map", stamp
    for sid, (x, y) in SERVERS.items():
        s = msgs.EdgeServerState(server_id=sid, coverage_radius=150.0, cpu_frequency_max=CPU_HZ[sid],
                                 cpu_frequency_estimate=CPU_HZ[sid] * 0.8, cpu_frequency_deviation=0.5e9)
        s.position.x, s.position.y = x, y
        servers.servers.append(s)
    return objects, servers


def decisions_message(stamp):
    msg = msgs.OffloadDecisionArray(policy="actor_critic", slot_duration=1.0)
    msg.header.frame_id, msg.header.stamp = "map", stamp
    msg.decisions = [msgs.OffloadDecision(vehicle_id=v, server_id=s) for v, (_, s) in VEHICLES.items() if s]
    msg.decisions += [msgs.OffloadDecision(vehicle_id="ghost", server_id="edge_0"),  # not in the twin
                      msgs.OffloadDecision(vehicle_id="v0", server_id=""),  # malformed
                      msgs.OffloadDecision(vehicle_id="", server_id="edge_1")]
    return msg


def _start(tmp_path, site: str, *params: str) -> subprocess.Popen:
    args = [sys.executable, "-m", "mobility_twin.nodes.resource_allocator", "--ros-args", "-r",
            f"__ns:=/edge/{site}", "-p", f"site_id:={site}", "-p", "slot_s:=0.3", "-p", "log_period_s:=1.0"]
    for p in params:
        args += ["-p", p]
    log = (tmp_path / "node.log").open("a")
    return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, text=True, start_new_session=True)


class Feed:
    """Publishes a site's twin (and more) from the test process, as the local twin and offloading would."""

    def __init__(self, c: Collector, site: str) -> None:
        from mobility_twin.ros.qos import EVENTS, TWIN_STATE

        self.c, self.site = c, site
        self.objects = c.node.create_publisher(msgs.TrackedObjectArray, f"/twin/local/{site}/objects", TWIN_STATE)
        self.servers = c.node.create_publisher(msgs.EdgeServerStateArray, f"/twin/local/{site}/edge_servers",
                                               TWIN_STATE)
        self.decisions = c.node.create_publisher(msgs.OffloadDecisionArray, f"/offloading/{site}/decisions", EVENTS)
        self.tasks = c.node.create_publisher(msgs.TaskRequestArray, f"/allocation/{site}/tasks", EVENTS)
        self.extra = []  # callables publishing more, each time

    def stamp(self, offset_s: float = 0.0):
        from mobility_twin.ros.convert import to_time

        return to_time(time.time() + offset_s)

    def until(self, condition, timeout: float) -> bool:
        topic = f"/allocation/{self.site}/allocations"
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            objects, servers = twin_messages(self.stamp())
            self.objects.publish(objects)
            self.servers.publish(servers)
            self.decisions.publish(decisions_message(self.stamp()))
            for publish in self.extra:
                publish()
            self.c.spin(0.1)
            if condition(self.c.messages[topic]):
                return True
        return False


@pytest.mark.ros
def test_node_allocates_every_served_vehicle_within_capacity_learns_and_resumes(tmp_path):
    site = "alloc_a"
    topic = f"/allocation/{site}/allocations"
    checkpoint = tmp_path / "allocator.pt"
    params = (f"state_path:={checkpoint}", "save_period_s:=1.0")
    proc = _start(tmp_path, site, *params)
    try:
        with Collector({topic: msgs.ResourceAllocationArray}, name="alloc_test_a") as c:
            feed = Feed(c, site)
            stale = decisions_message(feed.stamp(-3600.0))
            stale.decisions = [msgs.OffloadDecision(vehicle_id=v, server_id="edge_0") for v in VEHICLES]
            future = decisions_message(feed.stamp(3600.0))
            future.decisions = stale.decisions
            feed.extra = [lambda: feed.decisions.publish(stale), lambda: feed.decisions.publish(future)]
            got = feed.until(lambda m: any(x.model_updates >= 12 for x in m), 120.0)  # 4 slots of 3 servers
            assert got, (tmp_path / "node.log").read_text()
            arrays = [x for x in c.messages[topic] if x.allocations]
            assert arrays
            for msg in arrays:
                assert msg.site_id == site and msg.policy == "cddpg" and msg.task_source == "diten"
                assert msg.server_ids == list(SERVERS)
                assert msg.server_cpu_frequency == pytest.approx([CPU_HZ[s] * 0.8 + 0.5e9 for s in SERVERS])
                # every vehicle offloading sends to a server of the site, and the one left to the association
                # rule, is allocated on that server; the stale and future decisions never took effect
                assert {a.vehicle_id: a.server_id for a in msg.allocations} == SERVED
                assert all(0.150 <= a.deadline <= 0.250 for a in msg.allocations)
                _check_capacity(msg)
            assert proc.poll() is None
            assert stop(proc) == 0
            log = (tmp_path / "node.log").read_text()
            for reason in ("decision_unknown_server", "decision_unknown_vehicle", "bad_decision", "stamp_too_old",
                           "stamp_in_future", "vehicle_not_finite"):
                assert reason in log, reason
            # learning: rounds counted with their wall times, against the budget (no timing assertion beyond
            # "not over by half in more than a tenth of the rounds", a loaded machine preempts threads)
            lines = re.findall(r"learning: \d+ rounds.*over by half", log)
            assert lines, log
            print(lines[-1])
            rounds, by_half = (int(x) for x in re.search(r"(\d+) rounds.*, (\d+) over by half", lines[-1]).groups())
            assert rounds >= 1 and by_half <= max(1, rounds // 10), lines[-1]
            from mobility_twin_models.allocation import SiteAllocator

            saved = SiteAllocator.load(checkpoint).learner.updates
            assert saved > 0
            # a restarted node resumes its checkpoint: the learner's update count continues from there
            c.messages[topic].clear()
            proc = _start(tmp_path, site, *params)
            got = feed.until(lambda m: len([x for x in m if x.allocations]) >= 2, 120.0)
            assert got, (tmp_path / "node.log").read_text()
            first = next(x for x in c.messages[topic] if x.allocations)
            assert first.model_updates >= saved
            assert f"resumed {checkpoint}" in (tmp_path / "node.log").read_text()
    finally:
        stop(proc)


@pytest.mark.ros
def test_node_allocates_the_tasks_vehicles_send_and_refuses_bad_ones(tmp_path):
    site = "alloc_b"
    topic = f"/allocation/{site}/allocations"
    proc = _start(tmp_path, site, "task_source:=topic", "state_path:=none", "policy:=equal_share")
    try:
        with Collector({topic: msgs.ResourceAllocationArray}, name="alloc_test_b") as c:
            feed = Feed(c, site)

            def tasks():
                good = msgs.TaskRequestArray(tasks=[
                    msgs.TaskRequest(vehicle_id=v, size_bits=4.8e6, cycles=1.2e9, deadline=0.2 + 0.01 * k)
                    for k, v in enumerate(("v0", "v3", "v5"))])
                good.header.stamp = feed.stamp()
                good.tasks += [msgs.TaskRequest(vehicle_id="v1", size_bits=math.nan, cycles=1e9, deadline=0.2),
                               msgs.TaskRequest(vehicle_id="v2", size_bits=4.8e6, cycles=-1.0, deadline=0.2),
                               msgs.TaskRequest(vehicle_id="v4", size_bits=4.8e6, cycles=1e9, deadline=math.inf),
                               msgs.TaskRequest(vehicle_id="", size_bits=4.8e6, cycles=1e9, deadline=0.2),
                               msgs.TaskRequest(vehicle_id="ghost", size_bits=4.8e6, cycles=1e9, deadline=0.2)]
                stale = msgs.TaskRequestArray(tasks=[msgs.TaskRequest(vehicle_id="v6", size_bits=4.8e6, cycles=1e9,
                                                                      deadline=0.2)])
                stale.header.stamp = feed.stamp(-3600.0)
                feed.tasks.publish(good)
                feed.tasks.publish(stale)

            feed.extra = [tasks]
            got = feed.until(lambda m: sum(bool(x.allocations) for x in m) >= 5, 120.0)
            assert got, (tmp_path / "node.log").read_text()
            c.spin(1.5)  # past one summary line
            assert proc.poll() is None, (tmp_path / "node.log").read_text()
    finally:
        status = stop(proc)
    log = (tmp_path / "node.log").read_text()
    assert status == 0, log
    arrays = [x for x in c.messages[topic] if x.allocations]
    for msg in arrays:
        assert msg.task_source == "topic" and msg.policy == "equal_share" and msg.model_updates == 0
        # only the vehicles that sent a good, fresh task are allocated, with their own deadlines
        assert {a.vehicle_id: round(a.deadline, 3) for a in msg.allocations} == {"v0": 0.2, "v3": 0.21, "v5": 0.22}
        assert {a.vehicle_id: a.server_id for a in msg.allocations} == {"v0": "edge_0", "v3": "edge_1", "v5": "edge_2"}
        _check_capacity(msg)
    for reason in ("bad_task_request", "task_unknown_vehicle", "stamp_too_old"):
        assert reason in log, reason

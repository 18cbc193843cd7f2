"""The relation_learner node: message conversions (no running ROS), and the node as a real process."""

from __future__ import annotations

import math
import subprocess
import sys
import time

import numpy as np
import pytest

msgs = pytest.importorskip("mobility_twin_msgs.msg")
node_module = pytest.importorskip("mobility_twin.nodes.relation_learner")

from mobility_twin_models.relations import GraphConfig, ModelConfig, RelationLearner, TrainConfig  # noqa: E402
from mobility_twin_models.relations.online import OnlineRelationLearner  # noqa: E402
from tests.ros_helpers import Collector, stop  # noqa: E402

SERVERS = {"edge_0": (0.0, 0.0), "edge_1": (300.0, 0.0), "edge_2": (600.0, 0.0), "edge_3": (900.0, 0.0)}


def objects_message(t: float, n: int = 12, *, tentative: int = 0):
    """``n`` vehicles driving east at 10 m/s along y = 0, wrapping around at x = 1000."""
    msg = msgs.TrackedObjectArray()
    msg.header.stamp.sec = math.floor(t)
    msg.header.stamp.nanosec = round((t - math.floor(t)) * 1e9) % 1_000_000_000
    msg.header.frame_id = "map"
    for i in range(n + tentative):
        o = msgs.TrackedObject()
        o.track_id = i
        o.vehicle_id = f"taxi_{i}"
        o.object_class = 1
        o.state = msgs.TrackedObject.STATE_TENTATIVE if i >= n else msgs.TrackedObject.STATE_CONFIRMED
        o.pose.pose.position.x = float((i * 83.0 + 10.0 * t) % 1000.0 - 50.0)
        o.pose.pose.position.y = float(10.0 * (i % 3))
        o.twist.twist.linear.x = 10.0
        msg.objects.append(o)
    return msg


def servers_message(coverage: float = 200.0):
    msg = msgs.EdgeServerStateArray()
    msg.header.frame_id = "map"
    for sid, (x, y) in SERVERS.items():
        s = msgs.EdgeServerState()
        s.server_id = sid
        s.position.x, s.position.y = x, y
        s.coverage_radius = coverage if sid != "edge_3" else 0.0  # no radius reported: the default applies
        s.cpu_frequency_max = 2.5e9
        msg.servers.append(s)
    return msg


def state_message():
    msg = msgs.TwinStateArray()
    e = msgs.TwinEntity()
    e.entity_id, e.kind = "rsu_0", msgs.TwinEntity.KIND_RSU
    e.pose.position.x, e.pose.position.y = 310.0, 20.0
    car = msgs.TwinEntity()
    car.entity_id, car.kind = "cav_1", msgs.TwinEntity.KIND_CAV
    msg.entities = [e, car]
    return msg


def twin_snapshot(objects, servers, rsus):
    """What the node's twin reader builds from these messages (no running node needed)."""
    from collections import Counter

    from rclpy.serialization import serialize_message

    from mobility_twin.ros.cdr import decode_tracks
    from mobility_twin.ros.twin_reader import TwinReaderConfig, snapshot_from_messages

    counts = Counter()
    snap = snapshot_from_messages(decode_tracks(serialize_message(objects)), servers, rsus,
                                  TwinReaderConfig("objects", "servers"), counts)
    return snap, counts


def test_twin_snapshot_keeps_confirmed_vehicles_and_fills_in_missing_coverage():
    snap, skipped = twin_snapshot(objects_message(5.0, tentative=2), servers_message(), {"rsu_0": (310.0, 20.0)})
    assert list(snap.vehicle_ids) == [f"taxi_{i}" for i in range(12)]
    assert skipped["not_a_confirmed_vehicle"] == 2
    assert snap.t == pytest.approx(5.0)
    assert snap.server_coverage_m.tolist() == [200.0, 200.0, 200.0, 200.0]  # the default for a server without a radius
    assert snap.server_capacity_ghz.tolist() == [2.5] * 4
    assert np.allclose(snap.vehicle_vel, [[10.0, 0.0]] * 12)
    assert list(snap.rsu_ids) == ["rsu_0"]


def test_relation_message_carries_the_graph_and_one_prediction_per_vehicle_and_server():
    learner = RelationLearner(GraphConfig(horizon_s=2.0, candidate_radius_m=400.0), ModelConfig(hidden=8),
                              TrainConfig())
    online = OnlineRelationLearner(learner)
    snap, _ = twin_snapshot(objects_message(0.0), servers_message(), {"rsu_0": (310.0, 20.0)})
    result = online.observe(snap)
    msg = node_module.relation_message(result, online, True, "map")
    n_v = len(result.obs.snapshot.vehicle_ids)
    assert msg.node_ids[:n_v] == list(result.obs.snapshot.vehicle_ids)
    assert msg.node_ids[n_v:] == [*SERVERS, "rsu_0"]
    assert list(msg.node_kinds).count(msgs.TwinEntity.KIND_EDGE_SERVER) == 4
    kinds = set(msg.edge_kinds)
    assert {msgs.RelationGraph.EDGE_VEHICLE_SERVER, msgs.RelationGraph.EDGE_SERVER_SERVER,
            msgs.RelationGraph.EDGE_RSU_SERVER} <= kinds
    assert all(a != b for a, b in zip(msg.edge_source, msg.edge_target, strict=True))
    assert len(msg.handovers) == n_v and len(msg.load_forecasts) == 4
    assert all(h.predicted_server_id in SERVERS and 0.0 <= h.probability <= 1.0 for h in msg.handovers)
    assert sum(f.current_load for f in msg.load_forecasts) == n_v


def test_online_learner_labels_a_snapshot_once_its_horizon_has_passed():
    learner = RelationLearner(GraphConfig(horizon_s=2.0, candidate_radius_m=400.0), ModelConfig(hidden=8),
                              TrainConfig(strategy="replay", buffer_graphs=4))
    online = OnlineRelationLearner(learner)
    labelled = []
    for t in np.arange(0.0, 4.01, 0.5):
        snap, _ = twin_snapshot(objects_message(float(t)), servers_message(), {})
        labelled.append(online.observe(snap).labelled)
    assert labelled[:4] == [False] * 4 and all(labelled[4:])  # from t = 2 s on, the t - 2 s snapshot is labelled
    assert online.train_for(10.0) == online.labelled_total == 5
    assert online.updates == 5 and online.queued == 0


def _start_node(tmp_path, checkpoint, topics: dict[str, str]):
    args = [sys.executable, "-m", "mobility_twin.nodes.relation_learner", "--ros-args",
            "-p", "slot_s:=0.5", "-p", "horizon_s:=2.0", "-p", "initial_checkpoint:=none",
            "-p", f"checkpoint_path:={checkpoint}", "-p", "checkpoint_every_s:=2.0", "-p", "update_budget_s:=0.1",
            "-p", "update_pause_s:=0.2", "-p", "log_period_s:=2.0"]
    for name, topic in topics.items():
        args += ["-p", f"{name}:={topic}"]
    log = (tmp_path / "node.log").open("a")
    return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, text=True, start_new_session=True)


@pytest.mark.ros
def test_node_publishes_predictions_for_a_running_twin_learns_and_resumes_after_a_restart(tmp_path):
    topics = {"objects_topic": "/rl_test/objects", "servers_topic": "/rl_test/edge_servers",
              "state_topic": "/rl_test/state", "relations_topic": "/rl_test/relations"}
    checkpoint = tmp_path / "relations.pt"
    proc = _start_node(tmp_path, checkpoint, topics)
    try:
        with Collector({topics["relations_topic"]: msgs.RelationGraph}) as c:
            pubs = {name: c.node.create_publisher(t, topics[name], 10) for name, t in
                    (("objects_topic", msgs.TrackedObjectArray), ("servers_topic", msgs.EdgeServerStateArray),
                     ("state_topic", msgs.TwinStateArray))}
            start = time.monotonic()

            def publish_until(condition, timeout: float) -> bool:
                end = time.monotonic() + timeout
                while time.monotonic() < end:
                    t = time.monotonic() - start
                    pubs["objects_topic"].publish(objects_message(t))
                    pubs["servers_topic"].publish(servers_message())
                    pubs["state_topic"].publish(state_message())
                    c.spin(0.1)
                    if condition(c.messages[topics["relations_topic"]]):
                        return True
                return False

            got = publish_until(lambda m: any(x.model_updates > 0 for x in m), 60.0)
            assert got, (tmp_path / "node.log").read_text()
            last = c.messages[topics["relations_topic"]][-1]
            assert len(last.handovers) == 12 and len(last.load_forecasts) == 4
            assert {h.vehicle_id for h in last.handovers} == {f"taxi_{i}" for i in range(12)}
            assert "rsu_0" in last.node_ids
            assert stop(proc) == 0
            assert checkpoint.exists()
            saved = RelationLearner.load(checkpoint).updates
            assert saved > 0
            # a restarted node resumes the checkpoint: its update count continues from there
            c.messages[topics["relations_topic"]].clear()
            proc = _start_node(tmp_path, checkpoint, topics)
            got = publish_until(lambda m: len(m) >= 2, 60.0)
            assert got, (tmp_path / "node.log").read_text()
            assert c.messages[topics["relations_topic"]][0].model_updates >= saved
            assert "resumed" in (tmp_path / "node.log").read_text()
    finally:
        stop(proc)


@pytest.mark.ros
def test_node_with_a_road_model_and_a_network_it_cannot_load_stops_naming_the_parameter(tmp_path):
    model = tmp_path / "roads.pt"
    RelationLearner(GraphConfig(horizon_s=2.0, candidate_radius_m=400.0, roads=True), ModelConfig(hidden=8),
                    TrainConfig()).save(model, with_buffer=False)
    args = [sys.executable, "-m", "mobility_twin.nodes.relation_learner", "--ros-args",
            "-p", f"initial_checkpoint:={model}", "-p", "checkpoint_path:=none",
            "-p", f"network:={tmp_path / 'missing.net.xml'}", "-p", "objects_topic:=/rl_bad/objects"]
    with (tmp_path / "node.log").open("w") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        code = proc.wait(timeout=120)
    finally:
        stop(proc)
    text = (tmp_path / "node.log").read_text()
    assert code == 2, text
    assert "parameter 'network'" in text and "missing.net.xml" in text


@pytest.mark.ros
def test_node_with_a_road_model_puts_the_live_twin_on_the_city_network(tmp_path, monkeypatch):
    from mobility_twin_core.roads import RoadGraph
    from mobility_twin_sim.sumo.network import load_network

    monkeypatch.setenv("MTWIN_SUMO_CACHE", str(tmp_path / "sumo"))  # the node builds the network there too
    network = load_network("beijing_cbd")
    graph = RoadGraph.from_net_file(network.net_file).in_frame(network.frame.to_map)
    start, end, direction = graph.geometry
    mid = (start + end) / 2.0
    servers = np.asarray(list(SERVERS.values()))
    near = np.flatnonzero(np.min(np.linalg.norm(mid[:, None] - servers[None], axis=2), axis=1) < 150.0)[:12]
    assert len(near) == 12

    def on_roads(t: float):
        msg = objects_message(t, n=0)
        for i, e in enumerate(near):
            o = msgs.TrackedObject()
            o.track_id, o.vehicle_id, o.object_class = i, f"car_{i}", 1
            o.state = msgs.TrackedObject.STATE_CONFIRMED
            o.pose.pose.position.x, o.pose.pose.position.y = (float(v) for v in mid[e] + direction[e] * 2.0 * t)
            o.twist.twist.linear.x, o.twist.twist.linear.y = (float(v) for v in 2.0 * direction[e])
            msg.objects.append(o)
        return msg

    model = tmp_path / "roads.pt"
    RelationLearner(GraphConfig(horizon_s=2.0, candidate_radius_m=400.0, roads=True), ModelConfig(hidden=8),
                    TrainConfig()).save(model, with_buffer=False)
    topics = {"objects_topic": "/rl_road/objects", "servers_topic": "/rl_road/edge_servers",
              "state_topic": "/rl_road/state", "relations_topic": "/rl_road/relations"}
    args = [sys.executable, "-m", "mobility_twin.nodes.relation_learner", "--ros-args", "-p", "slot_s:=0.5",
            "-p", f"initial_checkpoint:={model}", "-p", "checkpoint_path:=none", "-p", "network:=beijing_cbd",
            "-p", "learn:=false"] + [a for name, topic in topics.items() for a in ("-p", f"{name}:={topic}")]
    with (tmp_path / "node.log").open("w") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        with Collector({topics["relations_topic"]: msgs.RelationGraph}) as c:
            pubs = {name: c.node.create_publisher(t, topics[name], 10) for name, t in
                    (("objects_topic", msgs.TrackedObjectArray), ("servers_topic", msgs.EdgeServerStateArray),
                     ("state_topic", msgs.TwinStateArray))}
            start_t, end = time.monotonic(), time.monotonic() + 60.0
            while time.monotonic() < end and len(c.messages[topics["relations_topic"]]) < 2:
                pubs["objects_topic"].publish(on_roads(time.monotonic() - start_t))
                pubs["servers_topic"].publish(servers_message())
                pubs["state_topic"].publish(state_message())
                c.spin(0.1)
            got = c.messages[topics["relations_topic"]]
            assert len(got) >= 2, (tmp_path / "node.log").read_text()
            assert {h.vehicle_id for h in got[-1].handovers} == {f"car_{i}" for i in range(12)}
            # the forward pass compiled in the background (compile_model, the default) takes over the slots
            end, compiled_at = time.monotonic() + 240.0, None
            while time.monotonic() < end:
                pubs["objects_topic"].publish(on_roads(time.monotonic() - start_t))
                pubs["servers_topic"].publish(servers_message())
                pubs["state_topic"].publish(state_message())
                c.spin(0.1)
                if compiled_at is None and "forward pass compiled" in (tmp_path / "node.log").read_text():
                    compiled_at = len(c.messages[topics["relations_topic"]])
                if compiled_at is not None and len(c.messages[topics["relations_topic"]]) >= compiled_at + 2:
                    break
            assert compiled_at is not None, (tmp_path / "node.log").read_text()
            last = c.messages[topics["relations_topic"]][-1]  # (the cars have driven on, some out of the cells)
            assert last.handovers and {h.vehicle_id for h in last.handovers} <= {f"car_{i}" for i in range(12)}
    finally:
        stop(proc)
    text = (tmp_path / "node.log").read_text()
    assert f"on the road network beijing_cbd ({len(graph)} roads)" in text, text
    assert "not compiled" not in text, text

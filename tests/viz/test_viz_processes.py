"""twin_viz and `mtwin snapshot --live` as real processes over DDS: against test publishers, and against a small
running stack (which also checks that the topics config/mobility_twin.rviz subscribes to exist with their types)."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from tests.ros_helpers import Collector, start_mtwin, stop
from tests.twin.test_nodes import TWO_RSUS
from tests.viz.rviz_config import rviz_subscriptions
from tests.viz.scenes import LAYOUT, LAYOUT_STAMP, tracks_at

pytestmark = pytest.mark.ros


def _tracks_bytes(k: int, ids, id_offset: int = 0) -> bytes:
    from mobility_twin.ros.cdr import TrackTable, encode_tracks, seconds_to_ns

    t = tracks_at(k, ids)
    n = len(t["ids"])
    rec = TrackTable.allocate(n)
    rec["track_id"] = t["ids"] + id_offset
    rec["object_class"] = 1
    rec["state"] = 1
    rec["px"], rec["py"] = t["xy"][:, 0], t["xy"][:, 1]
    rec["qz"], rec["qw"] = np.sin(t["yaw"] / 2), np.cos(t["yaw"] / 2)
    rec["vx"], rec["vy"] = t["v"][:, 0], t["v"][:, 1]
    rec["length"], rec["width"], rec["height"] = t["dims"].T
    rec["age"] = t["age"]
    return encode_tracks(TrackTable(seconds_to_ns(t["stamp"]), "map", "global", rec, t["sources"], ["site_0"] * n,
                                    t["vehicle_ids"]))


def _ids(msg, ns: str, action: int = 0) -> set[int]:
    return {m.id for m in msg.markers if m.ns == ns and m.action == action}


def _link_count(msg) -> int:
    return sum(len(m.points) // 2 for m in msg.markers if m.ns == "links" and m.action == 0)


def test_twin_viz_draws_the_tracks_it_is_sent_and_deletes_those_that_vanish(tmp_path):
    from visualization_msgs.msg import Marker, MarkerArray

    from mobility_twin.ros import topics
    from mobility_twin.ros.layout_msg import layout_to_msg
    from mobility_twin.ros.qos import EVENTS, LATCHED, TWIN_STATE
    from mobility_twin_msgs.msg import (
        EdgeServerState,
        EdgeServerStateArray,
        OffloadDecision,
        OffloadDecisionArray,
        TrackedObjectArray,
    )
    from mobility_twin_msgs.msg import Layout as LayoutMsg

    log = tmp_path / "viz.log"
    proc = start_mtwin("launch", "launch/viz.launch.xml", log=log)
    try:
        with Collector({topics.VIZ_MARKERS: MarkerArray}) as c:
            layout = c.node.create_publisher(LayoutMsg, topics.LAYOUT, LATCHED)
            tracks = c.node.create_publisher(TrackedObjectArray, topics.GLOBAL_OBJECTS, TWIN_STATE)
            servers = c.node.create_publisher(EdgeServerStateArray, topics.GLOBAL_EDGE_SERVERS, TWIN_STATE)
            decisions = c.node.create_publisher(OffloadDecisionArray, topics.OFFLOAD_DECISIONS, EVENTS)
            # a site's offloading node decides on its local twin, whose track ids are its own
            local = c.node.create_publisher(TrackedObjectArray, topics.local_objects("site_1"), TWIN_STATE)
            site_decisions = c.node.create_publisher(OffloadDecisionArray, topics.offload_decisions("site_1"), EVENTS)
            layout.publish(layout_to_msg(LAYOUT, LAYOUT_STAMP))
            markers = c.messages[topics.VIZ_MARKERS]

            def feed(k: int, ids) -> None:
                tracks.publish(_tracks_bytes(k, ids))
                srv = EdgeServerStateArray()
                srv.header.frame_id = "map"
                srv.servers = [EdgeServerState(server_id="edge_0", coverage_radius=220.0, load=0.5, vehicles_served=3)]
                srv.servers[0].position.x, srv.servers[0].position.y = 100.0, 250.0
                servers.publish(srv)
                decisions.publish(OffloadDecisionArray(decisions=[
                    OffloadDecision(vehicle_id=f"veh_{i}", track_id=int(i), server_id="edge_0") for i in ids if i < 5]))
                local.publish(_tracks_bytes(k, ids, id_offset=100))
                site_decisions.publish(OffloadDecisionArray(decisions=[
                    OffloadDecision(vehicle_id=f"track_{100 + i}", track_id=100 + int(i), server_id="edge_1")
                    for i in ids if i >= 5]))

            def seen(condition) -> bool:
                for k in range(300):
                    feed(k, ids)
                    c.spin(0.1)
                    if any(condition(m) for m in markers):
                        return True
                return False

            ids = (1, 2, 3, 4, 5, 6)
            drawn = seen(lambda m: _ids(m, "tracks") == set(ids) and _link_count(m) == 6)
            ids = (1, 2)
            deleted = seen(lambda m: {3, 4, 5, 6} <= _ids(m, "tracks", Marker.DELETE))
            alive = proc.poll() is None
    finally:
        stop(proc)
    text = log.read_text()
    assert drawn and deleted and alive, text
    full = next(m for m in markers if _ids(m, "tracks") == {1, 2, 3, 4, 5, 6})
    assert all(m.header.frame_id == "map" for m in full.markers)
    boxes = [m for m in full.markers if m.ns == "tracks"]
    assert all(m.type == Marker.CUBE and abs(m.scale.x - 4.5) < 1e-6 for m in boxes)
    assert {m.text for m in full.markers if m.ns == "track_labels"} == {"1", "2", "3", "4", "5", "6"}
    assert _ids(full, "rsus") == {0, 1, 2} and _ids(full, "servers")
    assert "static_transform_publisher --x 100 --y 150 --z 6" in text


@pytest.fixture(scope="module")
def small_stack(tmp_path_factory):
    """Replay of two RSUs, their perception, a local and the global twin, and twin_viz, running for the module."""
    from mobility_twin.deploy.stack import StackOptions, stack_launch_xml
    from mobility_twin_sim.scenario import load_scenario
    from mobility_twin_sim.world import build_world

    folder = tmp_path_factory.mktemp("viz_stack")
    scenario = folder / "two_rsus.yaml"
    # longer than the module's tests take, so the replay (and its topics) is still there for the last of them
    scenario.write_text(yaml.safe_dump({**TWO_RSUS, "time": {**TWO_RSUS["time"], "duration_s": 240.0}}))
    viz = ('  <include file="$(find-pkg-share mobility_twin)/launch/viz.launch.xml">'
           '<arg name="use_sim_time" value="true"/></include>')
    launch = folder / "stack.launch.xml"
    launch.write_text(stack_launch_xml(build_world(load_scenario(str(scenario))).layout,
                                       StackOptions(scenario=str(scenario), extra=viz)))
    log = folder / "stack.log"
    proc = start_mtwin("launch", str(launch), "--duration", "240", log=log)
    yield log, folder
    stop(proc)


def _wait_for_track_markers(c: Collector, timeout: float = 90.0) -> bool:
    return c.wait_for(lambda m: any(_ids(a, "tracks") for a in m["/twin/markers"]), timeout)


def test_a_running_stack_with_twin_viz_gives_marker_boxes_for_its_tracks(small_stack):
    from visualization_msgs.msg import Marker, MarkerArray

    log, _ = small_stack
    with Collector({"/twin/markers": MarkerArray}) as c:
        got = _wait_for_track_markers(c)
        # the latched layout may reach the viz node after the first tracks on a loaded machine
        with_layout = c.wait_for(lambda m: any(_ids(a, "tracks") and _ids(a, "rsus") for a in m["/twin/markers"]),
                                 30.0)
    assert got, log.read_text()[-5000:]
    array = next(a for a in c.messages["/twin/markers"] if _ids(a, "tracks"))
    boxes = [m for m in array.markers if m.ns == "tracks" and m.action == Marker.ADD]
    assert boxes and all(m.type == Marker.CUBE and m.header.frame_id == "map" for m in boxes)
    assert with_layout, log.read_text()[-5000:]
    array = next(a for a in c.messages["/twin/markers"] if _ids(a, "tracks") and _ids(a, "rsus"))
    assert {m.id for m in array.markers if m.ns == "rsus"} == {0, 1}  # the layout came from /infrastructure/layout


def test_the_topics_the_rviz_config_subscribes_to_exist_with_the_types_and_qos_rviz_expects(small_stack):
    from rclpy.qos import ReliabilityPolicy
    from visualization_msgs.msg import MarkerArray

    log, _ = small_stack
    wanted = rviz_subscriptions()
    with Collector({"/twin/markers": MarkerArray}) as c:
        assert _wait_for_track_markers(c), log.read_text()[-5000:]
        # discovery of a dozen processes' endpoints by this new participant takes a moment on a busy machine
        c.wait_for(lambda _: all(c.node.get_publishers_info_by_topic(t) for t, _, _ in wanted), timeout=30)
        graph = dict(c.node.get_topic_names_and_types())
        publishers = {topic: c.node.get_publishers_info_by_topic(topic) for topic, _, _ in wanted}
    for topic, msg_type, reliability in wanted:
        assert topic in graph, f"{topic} is not on the graph: {sorted(graph)}"
        assert msg_type in graph[topic], (topic, graph[topic])
        assert publishers[topic], topic
        if reliability == "Reliable":
            assert all(p.qos_profile.reliability == ReliabilityPolicy.RELIABLE for p in publishers[topic]), topic


def test_snapshot_live_writes_a_png_of_a_running_stack(small_stack):
    from PIL import Image
    from visualization_msgs.msg import MarkerArray

    log, folder = small_stack
    with Collector({"/twin/markers": MarkerArray}) as c:
        assert _wait_for_track_markers(c), log.read_text()[-5000:]
    out = folder / "live.png"
    snap = start_mtwin("snapshot", "--live", "--duration", "6", "--out", str(out), "--size", "1200x700",
                       "--ground-truth")
    text, _ = snap.communicate(timeout=120)
    assert snap.returncode == 0, text
    assert "tracks" in text and " 0 tracks" not in text, text
    with Image.open(out) as img:
        assert img.format == "PNG" and img.size == (1200, 700)

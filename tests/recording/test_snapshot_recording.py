"""`mtwin snapshot --recording`: a recording feeds the scene builder as the live topics would."""

import json

import numpy as np
import pytest

from mobility_twin.recording import RecordingError, RecordingWriter
from mobility_twin.ros.cdr import TrackTable, encode_tracks
from mobility_twin.viz.builder import BuilderConfig, SceneBuilder
from mobility_twin.viz.recorded import feed_from_recording
from mobility_twin.viz.scene import ServerView
from tests.conftest import run_mtwin
from tests.viz.scenes import LAYOUT, LAYOUT_STAMP, LEGACY_WORLD, tracks_at

pytestmark = pytest.mark.ros

T0 = 1_700_000_000_000_000_000
STEPS = 20  # track updates 0.5 s apart


def _encoded_tracks(k: int) -> bytes:
    a = tracks_at(k)
    rec = TrackTable.allocate(len(a["ids"]))
    rec["track_id"] = a["ids"]
    rec["px"], rec["py"] = a["xy"][:, 0], a["xy"][:, 1]
    rec["vx"], rec["vy"] = a["v"][:, 0], a["v"][:, 1]
    rec["length"], rec["width"], rec["height"] = a["dims"][:, 0], a["dims"][:, 1], a["dims"][:, 2]
    rec["age"] = a["age"]
    n = len(a["ids"])
    return encode_tracks(TrackTable(round(a["stamp"] * 1e9), "map", "global", rec, a["sources"], [""] * n,
                                    a["vehicle_ids"]))


def _write(path, *, legacy: bool = False) -> None:
    """A recording of the hand-made scene; ``legacy``: its layout as an older recording holds it (the JSON on
    /sim/world) instead of the Layout message."""
    from builtin_interfaces.msg import Time
    from geometry_msgs.msg import Point
    from rclpy.serialization import serialize_message
    from std_msgs.msg import Header, String

    from mobility_twin.ros.layout_msg import layout_to_msg
    from mobility_twin_msgs.msg import (
        EdgeServerState,
        EdgeServerStateArray,
        MigrationEvent,
        OffloadDecision,
        OffloadDecisionArray,
    )

    last = T0 + (STEPS - 1) * 500_000_000
    header = Header(stamp=Time(sec=1000 + (STEPS - 1) // 2, nanosec=500_000_000 * ((STEPS - 1) % 2)), frame_id="map")
    with RecordingWriter(path) as w:
        if legacy:
            w.add_topic("/sim/world", "std_msgs/msg/String")
            w.write("/sim/world", serialize_message(String(data=json.dumps(LEGACY_WORLD))), T0)
        else:
            w.add_topic("/infrastructure/layout", "mobility_twin_msgs/msg/Layout")
            w.write("/infrastructure/layout", serialize_message(layout_to_msg(LAYOUT, LAYOUT_STAMP)), T0)
        for topic, type_name in (("/twin/global/objects", "mobility_twin_msgs/msg/TrackedObjectArray"),
                                 ("/twin/global/edge_servers", "mobility_twin_msgs/msg/EdgeServerStateArray"),
                                 ("/offloading/decisions", "mobility_twin_msgs/msg/OffloadDecisionArray"),
                                 ("/placement/migrations", "mobility_twin_msgs/msg/MigrationEvent")):
            w.add_topic(topic, type_name)
        for k in range(STEPS):
            w.write("/twin/global/objects", _encoded_tracks(k), T0 + k * 500_000_000)
        w.write("/twin/global/edge_servers", serialize_message(EdgeServerStateArray(header=header, servers=[
            EdgeServerState(server_id="edge_0", position=Point(x=100.0, y=250.0), coverage_radius=220.0, load=0.375,
                            vehicles_served=4)])), last + 1)
        w.write("/offloading/decisions", serialize_message(OffloadDecisionArray(header=header, decisions=[
            OffloadDecision(vehicle_id="veh_1", track_id=1, server_id="edge_0")])), last + 2)
        w.write("/placement/migrations", serialize_message(MigrationEvent(header=header, twin_id="group_3",
                                                                          from_host="edge_0", to_host="edge_1")),
                last + 3)


def _expected(upto: int, window_steps: int) -> SceneBuilder:
    """The same messages fed as the live subscriptions would, arriving at their log times."""
    b = SceneBuilder(BuilderConfig(trail_s=window_steps * 0.5))
    first = max(0, upto - window_steps)
    b.on_layout(LAYOUT, stamp=LAYOUT_STAMP, received=(T0 + first * 500_000_000) * 1e-9)
    for k in range(first, upto + 1):
        b.on_tracks(**tracks_at(k), received=(T0 + k * 500_000_000) * 1e-9)
    return b


def test_a_recording_draws_the_picture_the_same_messages_draw_live(tmp_path):
    _write(tmp_path / "run.mcap")
    got = SceneBuilder(BuilderConfig(trail_s=20.0))
    assert feed_from_recording(got, tmp_path / "run.mcap", window_s=20.0) == 0
    expected = _expected(STEPS - 1, 40)
    stamp = 1000.0 + 0.5 * (STEPS - 1)
    last = (T0 + (STEPS - 1) * 500_000_000) * 1e-9
    expected.on_servers(stamp, [ServerView("edge_0", 100.0, 250.0, 220.0, 0.375, 4)], received=last + 1e-9)
    expected.on_decisions(stamp, [("veh_1", 1, "edge_0")], received=last + 2e-9)
    expected.on_migration(stamp, "group_3", "edge_0", "edge_1", received=last + 3e-9)
    a, b = got.scene(), expected.scene()
    assert a.layout == b.layout and a.layout_stamp == b.layout_stamp == LAYOUT_STAMP
    np.testing.assert_array_equal(a.tracks.ids, b.tracks.ids)
    np.testing.assert_allclose(a.tracks.xy, b.tracks.xy)
    assert a.tracks.sources == b.tracks.sources
    assert sorted(a.trails) == sorted(b.trails)
    for tid in a.trails:
        np.testing.assert_allclose(a.trails[tid], b.trails[tid])
    assert a.servers == b.servers and a.links == b.links == [(1, "edge_0")]
    assert a.migrations == b.migrations == [("group_3", "edge_0", "edge_1")]


def test_an_older_recording_with_the_json_layout_draws_the_same_layout(tmp_path):
    _write(tmp_path / "old.mcap", legacy=True)
    got = SceneBuilder()
    assert feed_from_recording(got, tmp_path / "old.mcap") == 0
    assert got.scene().layout == LAYOUT


def test_a_recording_without_a_layout_is_refused_naming_the_topic(tmp_path):
    with RecordingWriter(tmp_path / "none.mcap") as w:
        w.add_topic("/twin/global/objects", "mobility_twin_msgs/msg/TrackedObjectArray")
        w.write("/twin/global/objects", _encoded_tracks(0), T0)
    with pytest.raises(RecordingError, match="has no /infrastructure/layout message"):
        feed_from_recording(SceneBuilder(), tmp_path / "none.mcap")


def test_at_picks_the_moment_and_the_trails_cover_the_window_before_it(tmp_path):
    _write(tmp_path / "run.mcap")
    got = SceneBuilder(BuilderConfig(trail_s=2.0))
    feed_from_recording(got, tmp_path / "run.mcap", at_s=4.0, window_s=2.0)  # step 8, trails from step 4
    scene = got.scene()
    assert scene.tracks.stamp == pytest.approx(1004.0)
    np.testing.assert_allclose(scene.tracks.xy, tracks_at(8)["xy"])
    assert all(len(trail) == 5 for trail in scene.trails.values())  # steps 4..8, 4 m apart
    assert scene.servers == [] and scene.links == [] and scene.migrations == []  # those came later


def test_mtwin_snapshot_renders_a_recording_to_png(tmp_path):
    _write(tmp_path / "run.mcap")
    result = run_mtwin("snapshot", "--recording", str(tmp_path / "run.mcap"), "--out", str(tmp_path / "twin.png"),
                       "--duration", "10", "--size", "900x600")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "twin.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    missing = run_mtwin("snapshot", "--recording", str(tmp_path / "nothing.mcap"), "--out", str(tmp_path / "x.png"))
    assert missing.returncode == 2 and "cannot read the recording" in missing.stderr


def test_a_recording_of_the_city_draws_the_guided_routes_and_the_warnings(tmp_path):
    pytest.importorskip("sumolib")
    from rclpy.serialization import serialize_message

    from mobility_twin.ros.layout_msg import layout_to_msg
    from mobility_twin.ros.road_network import load_map_roads
    from mobility_twin.viz.live import LiveTopics
    from mobility_twin_msgs.msg import CollisionWarning, CollisionWarningArray, RouteGuidanceStatus

    roads = load_map_roads("beijing_cbd", "test")
    a = roads.ids[0]
    b = roads.ids[int(roads.successors(0)[0])]
    with RecordingWriter(tmp_path / "city.mcap") as w:
        for topic, type_name in (("/infrastructure/layout", "Layout"), ("/guidance/status", "RouteGuidanceStatus"),
                                 ("/safety/collision_warnings", "CollisionWarningArray")):
            w.add_topic(topic, f"mobility_twin_msgs/msg/{type_name}")
        w.write("/infrastructure/layout", serialize_message(layout_to_msg(LAYOUT, LAYOUT_STAMP)), T0)
        routed = RouteGuidanceStatus(vehicle_id="cav_0", status=RouteGuidanceStatus.STATUS_ROUTED, edges=[a, b])
        w.write("/guidance/status", serialize_message(routed), T0 + 1)  # long before the window: still drawn
        w.write("/guidance/status", serialize_message(RouteGuidanceStatus(
            vehicle_id="cav_1", status=RouteGuidanceStatus.STATUS_ROUTED, edges=[b])), T0 + 2)
        w.write("/guidance/status", serialize_message(RouteGuidanceStatus(
            vehicle_id="cav_1", status=RouteGuidanceStatus.STATUS_ARRIVED)), T0 + 3)  # cav_1's is over
        warning = CollisionWarning(warning_id="w1", vehicle_id="cav_0", time_to_conflict=1.2, probability=0.8)
        warning.conflict_point.x, warning.conflict_point.y = 10.0, 20.0
        w.write("/safety/collision_warnings", serialize_message(CollisionWarningArray(warnings=[warning])),
                T0 + 60_000_000_000)
    got = SceneBuilder()
    assert feed_from_recording(got, tmp_path / "city.mcap", LiveTopics(network="beijing_cbd"), window_s=5.0) == 0
    scene = got.scene()
    assert [r.vehicle_id for r in scene.routes] == ["cav_0"] and len(scene.routes[0].xy) >= 4
    assert [(w.warning_id, w.point) for w in scene.warnings] == [("w1", (10.0, 20.0))]
    plain = SceneBuilder()
    feed_from_recording(plain, tmp_path / "city.mcap", window_s=5.0)  # no network: the warnings only
    assert plain.scene().routes == [] and len(plain.scene().warnings) == 1

"""rviz markers of a hand-made scene: counts, namespaces, frame, colours, deletion of what vanished."""

import pytest

from tests.viz.scenes import hand_builder, tracks_at

pytestmark = pytest.mark.ros  # needs the message classes (not a running graph)


def _by_ns(array):
    from visualization_msgs.msg import Marker

    out = {}
    for m in array.markers:
        if m.action == Marker.ADD:
            out.setdefault(m.ns, []).append(m)
    return out


def test_every_track_gets_a_box_a_label_and_a_velocity_arrow_in_map():
    from visualization_msgs.msg import Marker

    from mobility_twin.viz.markers import MarkerBuilder

    array = MarkerBuilder().build(hand_builder().scene())
    ns = _by_ns(array)
    assert all(m.header.frame_id == "map" for m in array.markers)
    boxes = ns["tracks"]
    assert sorted(m.id for m in boxes) == [1, 2, 3, 4, 5, 6]
    assert all(m.type == Marker.CUBE for m in boxes)
    assert {(round(m.scale.x, 2), round(m.scale.y, 2), round(m.scale.z, 2)) for m in boxes} == {(4.5, 1.8, 1.5)}
    assert all(m.lifetime.sec + m.lifetime.nanosec > 0 for m in boxes)
    assert sorted(m.text for m in ns["track_labels"]) == ["1", "2", "3", "4", "5", "6"]
    assert all(m.type == Marker.TEXT_VIEW_FACING for m in ns["track_labels"])
    arrows = ns["track_velocity"]
    assert len(arrows) == 6 and all(m.type == Marker.ARROW and len(m.points) == 2 for m in arrows)
    assert arrows[0].points[1].x - arrows[0].points[0].x == pytest.approx(8.0)  # 8 m/s for the 1 s horizon


def test_layout_servers_links_and_migrations_have_their_markers():
    from visualization_msgs.msg import Marker

    from mobility_twin.viz.markers import MarkerBuilder

    ns = _by_ns(MarkerBuilder().build(hand_builder().scene()))
    assert len(ns["rsus"]) == 3 and len(ns["rsu_coverage"]) == 3 and len(ns["rsu_labels"]) == 3
    assert "rsu_02 (stale)" in {m.text for m in ns["rsu_labels"]}
    assert len(ns["sites"]) == 2 and len(ns["area"]) == 1
    servers = sorted(ns["servers"], key=lambda m: m.id)
    assert len(servers) == 2 and servers[1].scale.z > servers[0].scale.z  # 90 % load is taller than 35 %
    assert servers[1].color.r > servers[1].color.g  # and red
    assert {m.text for m in ns["server_labels"]} == {"edge_0  35%  4 veh", "edge_1  90%  2 veh"}
    (links,) = ns["links"]
    assert links.type == Marker.LINE_LIST and len(links.points) == 12 and len(links.colors) == 12
    (migration,) = ns["migrations"]
    assert migration.type == Marker.ARROW and migration.color.a == pytest.approx(1.0)
    (trails,) = ns["trails"]
    assert trails.type == Marker.LINE_LIST and len(trails.points) == len(trails.colors) > 0
    assert len(ns["ground_truth"][0].points) == 2 * 8  # two boxes, four edges each


def test_vanished_tracks_are_deleted_and_faded_migrations_removed():
    from visualization_msgs.msg import Marker

    from mobility_twin.viz.markers import MarkerBuilder

    builder = hand_builder()
    markers = MarkerBuilder()
    markers.build(builder.scene())
    builder.on_tracks(**tracks_at(10, ids=(1, 2, 3)))
    array = markers.build(builder.scene(now=builder.now + 6.0))  # the migration (5 s fade) is gone too
    deleted = {(m.ns, m.id) for m in array.markers if m.action == Marker.DELETE}
    for tid in (4, 5, 6):
        assert ("tracks", tid) in deleted and ("track_labels", tid) in deleted and ("track_velocity", tid) in deleted
    assert ("migrations", 0) in deleted
    assert not any(ns == "tracks" and i in (1, 2, 3) for ns, i in deleted)
    assert sorted(m.id for m in _by_ns(array)["tracks"]) == [1, 2, 3]
    # nothing left to delete the next time
    again = markers.build(builder.scene(now=builder.now + 6.0))
    assert not [m for m in again.markers if m.action == Marker.DELETE]


def test_colour_by_source_and_by_age_of_information():
    from mobility_twin.viz import style
    from mobility_twin.viz.markers import MarkerBuilder, MarkerStyle

    scene = hand_builder().scene()
    by_source = {m.id: (m.color.r, m.color.g, m.color.b) for m in _by_ns(MarkerBuilder().build(scene))["tracks"]}
    expected = {1: "rsu", 2: "rsu", 3: "cav", 4: "fused", 5: "v2x", 6: "rsu"}
    for tid, kind in expected.items():
        assert by_source[tid] == pytest.approx(style.SOURCE_COLOURS[kind], abs=1e-6)
    by_age = _by_ns(MarkerBuilder(MarkerStyle(color_by="age", age_max_s=1.0)).build(scene))["tracks"]
    colours = {m.id: m.color for m in by_age}
    assert colours[1].g > colours[1].r  # age 0: green
    assert colours[6].r > colours[6].g  # age 1.5 s: red


def test_an_unknown_colour_mode_is_refused():
    from mobility_twin.viz.markers import MarkerStyle

    with pytest.raises(ValueError, match="color_by"):
        MarkerStyle(color_by="speed")


def test_clear_is_one_deleteall():
    from visualization_msgs.msg import Marker

    from mobility_twin.viz.markers import MarkerBuilder

    (m,) = MarkerBuilder().clear().markers
    assert m.action == Marker.DELETEALL and m.header.frame_id == "map"


def _routes_and_warnings():
    import numpy as np

    from mobility_twin.viz.scene import WarningView

    b = hand_builder()
    b.on_route(1004.5, "veh_1", np.array([[60.0, 100.0], [200.0, 100.0], [200.0, 250.0]]))
    b.on_route(1004.5, "veh_2", np.array([[80.0, 120.0], [80.0, 300.0]]))
    b.on_warnings(1004.5, [WarningView("1-2-1004.0", (110.0, 105.0), 1.8, 0.7, ("veh_1", "veh_2")),
                           WarningView("5-6-1003.0", (300.0, 150.0), 2.5, 0.4, ("", ""))])
    return b


def test_guided_routes_and_collision_warnings_have_their_markers():
    from visualization_msgs.msg import Marker

    from mobility_twin.viz.markers import MarkerBuilder

    builder = _routes_and_warnings()
    markers = MarkerBuilder()
    ns = _by_ns(markers.build(builder.scene()))
    routes = sorted(ns["routes"], key=lambda m: m.id)
    assert [len(m.points) for m in routes] == [3, 2] and all(m.type == Marker.LINE_STRIP for m in routes)
    assert {m.text for m in ns["route_labels"]} == {"veh_1 destination", "veh_2 destination"}
    discs = [m for m in ns["warnings"] if m.type == Marker.CYLINDER]
    assert sorted((m.pose.position.x, m.pose.position.y) for m in discs) == [(110.0, 105.0), (300.0, 150.0)]
    (lines,) = [m for m in ns["warnings"] if m.type == Marker.LINE_LIST]  # only the connected pair's parties
    assert len(lines.points) == 4 and lines.points[1].x == 110.0
    assert {m.text for m in ns["warning_labels"]} == {"TTC 1.8 s  p 0.70", "TTC 2.5 s  p 0.40"}
    # a cleared warning and an arrived CAV vanish (DELETE), the rest stays
    builder.on_warnings(1005.0, [], cleared=["1-2-1004.0"])
    builder.on_route(1005.0, "veh_2", [])
    array = markers.build(builder.scene())
    deleted = {(m.ns, m.id) for m in array.markers if m.action == Marker.DELETE}
    assert ("routes", 1) in deleted and ("warning_labels", 1) in deleted
    assert len(_by_ns(array)["routes"]) == 1


def test_a_warning_nobody_renews_expires():
    from mobility_twin.viz.builder import BuilderConfig, SceneBuilder
    from mobility_twin.viz.scene import WarningView

    b = SceneBuilder(BuilderConfig(warning_timeout_s=3.0))
    b.on_warnings(10.0, [WarningView("w", (0.0, 0.0), 1.0, 0.9)])
    assert [w.warning_id for w in b.scene(now=12.0).warnings] == ["w"]
    assert b.scene(now=13.5).warnings == []


def test_warning_messages_become_one_view_per_pair():
    from mobility_twin.viz.live import warning_args
    from mobility_twin_msgs.msg import CollisionWarning, CollisionWarningArray

    def party(wid, state, me, other):
        return CollisionWarning(warning_id=wid, state=state, vehicle_id=me, other_vehicle_id=other,
                                time_to_conflict=1.5, probability=0.8)

    msg = CollisionWarningArray(warnings=[party("a", 0, "cav_0", ""), party("a", 0, "", "cav_0"),
                                          party("b", CollisionWarning.STATE_CLEARED, "", ""),
                                          party("b", CollisionWarning.STATE_CLEARED, "", "")])
    views, cleared = warning_args(msg)
    assert [v.warning_id for v in views] == ["a"] and views[0].vehicles == ("cav_0", "")
    assert cleared == ["b", "b"]

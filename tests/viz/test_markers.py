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

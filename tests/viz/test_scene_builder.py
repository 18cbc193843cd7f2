"""SceneBuilder: what a stream of twin messages becomes in a picture (ROS-free)."""

import numpy as np
import pytest

from mobility_twin.viz.builder import BuilderConfig, SceneBuilder, source_kind
from tests.viz.scenes import LAYOUT, LAYOUT_STAMP, hand_builder, tracks_at


def test_source_kind_tells_rsu_cav_v2x_and_fused_apart():
    assert source_kind(["rsu_00", "rsu_01"]) == "rsu"
    assert source_kind(["cav_7"]) == "cav"
    assert source_kind(["edge_0"]) == "v2x"
    assert source_kind(["rsu_00", "cav_7"]) == "fused"
    assert source_kind([]) == "none"
    assert source_kind(["north_lidar"], rsus={"north_lidar"}) == "rsu"


def test_trails_follow_the_tracks_and_drop_with_them():
    b = hand_builder(steps=10)
    scene = b.scene()
    assert set(scene.trails) == {1, 2, 3, 4, 5, 6}
    trail = scene.trails[1]
    assert trail.shape == (10, 2)  # one point per update (each moved 4 m)
    np.testing.assert_allclose(trail[-1], scene.tracks.xy[0])
    assert np.all(np.diff(trail[:, 0]) > 0)  # oldest first
    b.on_tracks(**tracks_at(10, ids=(1, 2)))
    assert set(b.scene().trails) == {1, 2}


def test_trails_reach_back_only_trail_s():
    b = SceneBuilder(BuilderConfig(trail_s=2.0))
    for k in range(20):
        b.on_tracks(**tracks_at(k))
    trail = b.scene().trails[1]
    assert len(trail) == 5  # stamps 0.5 s apart, 2 s back


def test_links_need_a_live_track_and_a_recent_decision():
    b = hand_builder()
    assert sorted(b.scene().links) == [(1, "edge_0"), (2, "edge_0"), (3, "edge_0"), (4, "edge_0"), (5, "edge_1"),
                                       (6, "edge_1")]
    b.on_tracks(**tracks_at(10, ids=(1, 6)))
    assert sorted(b.scene().links) == [(1, "edge_0"), (6, "edge_1")]
    assert b.scene(now=b.now + 60.0).links == []


def test_decisions_without_track_ids_are_linked_through_the_vehicle_id():
    b = SceneBuilder()
    b.on_tracks(**tracks_at(0))
    b.on_decisions(1000.0, [("veh_3", 0, "edge_1")])
    assert b.scene().links == [(3, "edge_1")]


def test_migrations_age_and_are_forgotten_and_first_placements_are_not_moves():
    b = hand_builder()
    b.on_migration(b.now, "group_9", "", "edge_0")
    scene = b.scene()
    assert scene.migrations == [("group_3", "edge_0", "edge_1")]
    assert scene.migration_age_s == [0.0]
    assert b.scene(now=b.now + 4.0).migration_age_s == [4.0]
    assert b.scene(now=b.now + 60.0).migrations == []


def test_stale_entities_come_and_go():
    b = hand_builder()
    assert b.scene().stale == {"rsu_02"}
    b.on_state(b.now, {"rsu_02": False})
    assert b.scene().stale == set()


def test_the_layout_is_the_twin_models_layout_and_nothing_else():
    b = SceneBuilder()
    b.on_layout(LAYOUT, stamp=LAYOUT_STAMP)
    scene = b.scene()
    assert scene.layout is LAYOUT and scene.layout_stamp == LAYOUT_STAMP
    with pytest.raises(TypeError, match=r"mobility_twin_core\.Layout, not dict"):
        b.on_layout({"rsus": []})  # the JSON of the old /sim/world is not a layout any more


def test_mismatched_track_arrays_are_refused():
    args = tracks_at(0)
    args["sources"] = args["sources"][:2]
    with pytest.raises(ValueError, match="6 ids but 2 source lists"):
        SceneBuilder().on_tracks(**args)


def test_links_and_migrations_age_on_the_arrival_clock_when_the_nodes_clocks_disagree():
    b = SceneBuilder()
    b.on_tracks(**tracks_at(0), received=500.0)  # twin on sim time (stamps ~1000 s)
    b.on_decisions(1.7e9, [("veh_1", 1, "edge_0")], received=500.2)  # offloading on wall time
    b.on_migration(1.7e9, "group_1", "edge_0", "edge_1", received=500.2)
    scene = b.scene()
    assert scene.links == [(1, "edge_0")]
    assert scene.migration_age_s == [0.0]
    b.on_tracks(**tracks_at(1), received=503.2)
    scene = b.scene()
    assert scene.migration_age_s == [pytest.approx(3.0)]
    assert scene.links == [(1, "edge_0")]


def test_a_sites_decisions_are_drawn_on_the_vehicle_or_the_nearest_drawn_track():
    b = SceneBuilder()
    args = tracks_at(0)
    args["vehicle_ids"] = ["", "", "", "", "", "veh_6"]
    b.on_tracks(**args)  # the global twin's ids 1..6
    local_xy = args["xy"][:4] + 0.8  # the site's twin sees the same vehicles under its own ids
    local_xy[3] += 30.0  # ... and one the global twin does not have
    b.on_local_tracks("site_0", 1000.0, [71, 72, 73, 74], local_xy)
    b.on_decisions(1000.0, [("track_71", 71, "edge_0"), ("track_73", 73, "edge_1"), ("track_74", 74, "edge_1"),
                            ("track_99", 99, "edge_1"), ("veh_6", 75, "edge_1")], site="site_0")
    assert sorted(b.scene().links) == [(1, "edge_0"), (3, "edge_1"), (6, "edge_1")]
    b.on_decisions(1001.0, [("track_72", 72, "edge_0")], site="site_0")  # the site's next slot replaces it
    assert b.scene().links == [(2, "edge_0")]

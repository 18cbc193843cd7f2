"""Scenario files, the world they resolve to, and the replay engine."""

import numpy as np
import pytest

from mobility_twin_sim.fleet import Fleet
from mobility_twin_sim.geo import LocalENU
from mobility_twin_sim.replay import Replay, ReplayOptions
from mobility_twin_sim.scenario import ScenarioError, load_scenario, scenario_from_dict
from mobility_twin_sim.spool import TrajectorySpool
from mobility_twin_sim.tdrive import BUNDLED, iter_tracks
from mobility_twin_sim.world import build_world

SMALL = {
    "name": "small", "seed": 3,
    "area": {"box_m": [-300, -300, 300, 300]},
    "time": {"start": "2008-02-02 16:10:00", "duration_s": 20.0, "slot_s": 0.5},
    "rsus": {"layout": {"kind": "positions"}, "positions": [[0, 0], [150, 0]],
             "lidar": {"channels": 8, "azimuth_steps": 256, "rate_hz": 2.0}},
    "cavs": {"count": 1, "lidar": {"channels": 8, "azimuth_steps": 256, "rate_hz": 2.0}},
}


def test_shipped_default_scenario_loads_and_builds():
    world = build_world(load_scenario("default"))
    assert len(world.rsus) == 8 and len(world.cavs) == 4 and len(world.edge_servers) == 4
    assert {s.site_id for s in world.sites} == {"site_0", "site_1"}
    assert {r.site_id for r in world.rsus} <= {"site_0", "site_1"}
    world.load_report.check()
    assert len(world.state_at(world.start_s + 60)) > 20


def test_unknown_key_and_bad_type_name_the_key(tmp_path):
    with pytest.raises(ScenarioError, match=r"rsus\.lidar\.chanels: unknown key"):
        scenario_from_dict({"rsus": {"lidar": {"chanels": 32}}})
    with pytest.raises(ScenarioError, match=r"time\.duration_s: expected a number"):
        scenario_from_dict({"time": {"duration_s": "long"}})
    with pytest.raises(ScenarioError, match=r"world\.ssm_trajectories: expected true or false, got 'yes'"):
        scenario_from_dict({"world": {"kind": "sumo", "ssm_trajectories": "yes"}})
    assert scenario_from_dict({"world": {"kind": "sumo", "ssm_trajectories": True}}).world.ssm_trajectories is True
    with pytest.raises(ScenarioError, match=r"rsus\.layout\.kind: 'circle' is not"):
        scenario_from_dict({"rsus": {"layout": {"kind": "circle"}}})
    with pytest.raises(ScenarioError, match="does not exist"):
        load_scenario(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("time: [1, 2\n")
    with pytest.raises(ScenarioError, match="not valid YAML"):
        load_scenario(bad)


def test_same_seed_same_world_and_same_clouds():
    runs = []
    for _ in range(2):
        world = build_world(scenario_from_dict(SMALL))
        replay = Replay(world)
        frames = [f for tick in (replay.step() for _ in range(12)) for f in tick.frames]
        runs.append((world, frames))
    (w1, f1), (w2, f2) = runs
    assert [w1.taxi_of(c) for c in w1.cavs] == [w2.taxi_of(c) for c in w2.cavs]
    assert [w1.dimensions(int(i)) for i in w1.fleet.taxi_ids[:20]] == [w2.dimensions(int(i)) for i in w2.fleet.taxi_ids[:20]]
    assert len(f1) == len(f2) > 0
    assert all(np.array_equal(a.scan.points, b.scan.points) for a, b in zip(f1, f2, strict=True))


def test_replay_staggers_sensors_and_emits_every_stream():
    world = build_world(scenario_from_dict(SMALL))
    ticks = list(Replay(world))
    stamps = {}
    for tick in ticks:
        for f in tick.frames:
            stamps.setdefault(f.sensor_id, []).append(tick.t - world.start_s)
    assert set(stamps) >= {"rsu_00", "rsu_01"}
    assert stamps["rsu_00"][:2] == pytest.approx([0.0, 0.5])
    assert stamps["rsu_01"][0] != stamps["rsu_00"][0]  # staggered within the period
    gt = [t for t in ticks if t.ground_truth is not None]
    assert len(gt) == 41  # 20 s at 0.5 s, both ends included
    assert sum(t.servers is not None for t in ticks) == 21
    assert any(t.odometry for t in ticks)


def test_a_frame_names_the_road_users_its_returns_hit():
    world = build_world(scenario_from_dict(SMALL))
    seen = 0
    for tick in Replay(world):
        state = world.advance(tick.t).vehicles
        for f in tick.frames:
            ids = f.seen_ids()
            hit = f.scan.hit_vehicle
            assert len(ids) == len(np.unique(hit[hit >= 0]))  # one id per road user hit
            assert set(ids.tolist()) <= set(state.ids.tolist())
            for v in ids.tolist():  # each within the sensor's range of it
                r = state.index_of(v)
                assert np.hypot(state.x[r] - f.pose.x, state.y[r] - f.pose.y) <= 80.0 + state.length[r]
            seen += len(ids)
    assert seen > 0


def test_seek_lands_on_the_same_frames_as_a_straight_run():
    world = build_world(scenario_from_dict(SMALL))
    straight = Replay(world)
    by_time = {}
    for tick in straight:
        for f in tick.frames:
            by_time[(f.sensor_id, f.index)] = f
    jumped = Replay(world)
    jumped.seek(10.0)
    tick = jumped.step()
    assert tick.t - world.start_s == pytest.approx(10.0)
    for f in tick.frames:
        assert np.array_equal(f.scan.points, by_time[(f.sensor_id, f.index)].scan.points)


def test_odometry_is_noisy_around_the_truth():
    world = build_world(scenario_from_dict(SMALL))
    odo = [o for tick in Replay(world, ReplayOptions(lidar=False)) for o in tick.odometry]
    err = np.array([np.hypot(o.x - o.true_x, o.y - o.true_y) for o in odo])
    assert len(odo) > 50
    assert 0.0 < np.median(err) < 0.2


def test_spool_replays_the_same_states_as_the_in_memory_fleet(tmp_path):
    proj = LocalENU(116.4468, 39.9135)
    fleet = Fleet.from_tracks(iter_tracks(BUNDLED / "sample"), proj, max_gap_s=120.0)
    spool = TrajectorySpool.build(iter_tracks(BUNDLED / "sample"), proj, tmp_path, bucket_s=600.0, flush_fixes=500)
    assert spool.fixes == len(fleet.t) and spool.taxis == len(fleet)
    t0, _ = fleet.time_range
    got = list(spool.slots(7.0, t0 + 100, t0 + 2500, max_gap_s=120.0))
    want = list(fleet.slots(7.0, t0 + 100, t0 + 2500))
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        order_a, order_b = np.argsort(a.ids), np.argsort(b.ids)
        assert np.array_equal(a.ids[order_a], b.ids[order_b])
        assert np.allclose(a.x[order_a], b.x[order_b]) and np.allclose(a.y[order_a], b.y[order_b])


def test_v2x_reports_reach_the_serving_server_only_from_connected_vehicles():
    world = build_world(scenario_from_dict({**SMALL, "v2x": {"penetration": 0.5, "position_noise_m": 1.0},
                                            "edge_servers": {"positions": [[-150, 0], [150, 0]],
                                                             "coverage_radius_m": 200.0}}))
    replay = Replay(world, ReplayOptions(lidar=False))
    reports = [r for tick in replay for r in tick.v2x]
    assert reports and {r.server_id for r in reports} <= {"edge_0", "edge_1"}
    cav_taxis = {world.taxi_of(c) for c in world.cavs}
    reported = {int(i) for r in reports for i in r.ids}
    assert reported and not reported & cav_taxis  # CAVs report through their own perception
    assert all(world.is_connected(i) for i in reported)
    n = len(world.fleet.taxi_ids)
    share = np.mean([world.is_connected(int(i)) for i in world.fleet.taxi_ids])
    assert abs(share - 0.5) < 4 * np.sqrt(0.25 / n)  # about half the vehicles are connected (4 sigma)
    r = reports[len(reports) // 2]
    truth = world.state_at(r.stamp)
    idx = [int(np.flatnonzero(truth.ids == i)[0]) for i in r.ids]
    err = np.hypot(r.x - truth.x[idx], r.y - truth.y[idx])
    assert 0.1 < np.median(err) < 3.0  # GNSS noise of 1 m
    served = world.serving_server(truth.x[idx], truth.y[idx])
    assert all(world.edge_servers[k].server_id == r.server_id for k in served)


@pytest.mark.parametrize(("patch", "message"), [
    ({"edge_servers": {"coverage_radius_m": -50.0}}, r"edge_servers.coverage_radius_m: must be > 0.0, got -50.0"),
    ({"cavs": {"count": -2}}, r"cavs.count: must be >= 0, got -2"),
    ({"v2x": {"position_noise_m": -1.0}}, r"v2x.position_noise_m: must be >= 0.0"),
    ({"edge_servers": {"grid_spacing_m": 0.0}}, r"edge_servers.grid_spacing_m: must be > 0.0, got 0.0"),
    ({"data": {"max_speed_mps": float("nan")}}, r"data.max_speed_mps: expected a finite number"),
    ({"v2x": {"rate_hz": float("inf")}}, r"v2x.rate_hz: expected a finite number"),
    ({"vehicles": {"classes": {"car": {"length_m": [-4.0, 0.1]}}}}, r"vehicles.classes.car.length_m: needs a mean > 0"),
])
def test_out_of_range_scenario_values_are_refused_naming_the_key(patch, message):
    from mobility_twin_sim.scenario import ScenarioError, scenario_from_dict

    with pytest.raises(ScenarioError, match=message):
        scenario_from_dict(patch)


def test_world_section_defaults_to_the_tdrive_replay_and_names_a_bad_key(tmp_path):
    assert load_scenario("default").world.kind == "tdrive_replay"  # existing scenarios are unchanged
    with pytest.raises(ScenarioError, match=r"world\.kind: 'carla' is not one of tdrive_replay, sumo"):
        scenario_from_dict({"world": {"kind": "carla"}})
    with pytest.raises(ScenarioError, match=r"world\.demand\.kind: 'taxis' is not one of"):
        scenario_from_dict({"world": {"kind": "sumo", "demand": {"kind": "taxis"}}})
    with pytest.raises(ScenarioError, match=r"world\.demand\.scal: unknown key"):
        scenario_from_dict({"world": {"kind": "sumo", "demand": {"scal": 2}}})
    # a network path is taken next to the scenario file
    (tmp_path / "mine.net.xml").write_text("<net/>")
    path = tmp_path / "mine.yaml"
    path.write_text("world: {kind: sumo, network: mine.net.xml}\n")
    assert load_scenario(path).world.network == str((tmp_path / "mine.net.xml").resolve())


def test_the_tdrive_replay_is_a_world_backend_that_refuses_commands():
    from mobility_twin_sim.backend import RouteCommand, WorldBackend

    world = build_world(scenario_from_dict(SMALL))
    assert isinstance(world, WorldBackend) and world.kind == "tdrive_replay" and world.seekable
    assert world.statics.structures is None and world.slot_s == 0.5
    t = world.start_s + 7.3
    state = world.advance(t)
    fleet = world.state_at(t)
    v = state.vehicles
    assert np.array_equal(v.ids, fleet.ids) and np.array_equal(v.x, fleet.x) and len(state.signals) == 0
    assert [tuple(row) for row in np.column_stack([v.length, v.width, v.height])] == \
        [world.dimensions(int(i)) for i in v.ids]
    assert np.array_equal(state.in_area, world.in_area(v.x, v.y))
    cav = world.cavs[0].cav_id
    row = world.cav_vehicle(cav, state)
    later = world.state_at(t + 0.5)
    k = int(np.flatnonzero(later.ids == v.ids[row])[0])
    turn = (later.heading[k] - v.heading[row] + np.pi) % (2 * np.pi) - np.pi
    assert v.yaw_rate[row] == pytest.approx(turn / 0.5)  # what the odometry reports
    result = world.command(RouteCommand(cav, ("E1",)))
    assert not result.accepted and "does not take commands" in result.reason
    assert world.close() == {}

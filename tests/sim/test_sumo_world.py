"""The SUMO world: deterministic, reacts to route commands, rejects bad ones, closes roads, and is labelled."""

import math
from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("libsumo")

from mobility_twin_core.model import Layout, ObjectClass, Rsu
from mobility_twin_sim.backend import (
    HeadwayCommand,
    IncidentCommand,
    RouteCommand,
    SpeedCommand,
    TargetCommand,
    WorldBackend,
)
from mobility_twin_sim.sumo import (
    DemandSection,
    IncidentSection,
    NetworkError,
    SumoError,
    SumoSetup,
    SumoWorld,
    SumoWorldConfig,
)

# T-Drive demand at a fixed scale (no calibration), SUMO starting 2 minutes before the scenario
CONFIG = SumoWorldConfig(demand=DemandSection(scale=2.0, pedestrians_period_s=10.0, bicycles_period_s=60.0),
                         ssm_probability=0.05)
SETUP = SumoSetup(start="2008-02-02 16:02:00", duration_s=120.0, seed=3, cav_count=2)


pytestmark = pytest.mark.usefixtures("sumo_cache")  # a SUMO cache of this module's own (conftest)


def quiet(*_args) -> None:
    pass


def run_for(world: SumoWorld, seconds: float):
    state = world.state
    t = world.start_s if state is None else state.t
    end = t + seconds
    while t < end - 1e-9:
        t = round(t + world.slot_s, 6)
        state = world.advance(t)
    return state


def test_same_seed_same_run(tmp_path):
    finals = []
    for k in range(2):
        with SumoWorld(CONFIG, SETUP, run_dir=tmp_path / f"run{k}", log=quiet) as world:
            state = run_for(world, 10.0)
            finals.append(state)
    a, b = finals
    assert len(a.vehicles) > 50
    assert np.array_equal(a.vehicles.ids, b.vehicles.ids)
    assert np.array_equal(a.vehicles.x, b.vehicles.x) and np.array_equal(a.vehicles.heading, b.vehicles.heading)
    assert a.signals.state == b.signals.state


def test_world_state_has_classes_sizes_signals_and_outputs(tmp_path):
    world = SumoWorld(CONFIG, SETUP, run_dir=tmp_path, log=quiet)
    with world:
        assert isinstance(world, WorldBackend)
        state = run_for(world, 5.0)
        v = state.vehicles
        assert state.t == pytest.approx(world.start_s + 5.0)
        assert len(np.unique(v.ids)) == len(v)
        assert ObjectClass.CAR in v.object_class and ObjectClass.PEDESTRIAN in v.object_class
        taxi = v.object_class == ObjectClass.CAR
        assert np.all((v.length[taxi] > 4.0) & (v.length[taxi] < 5.0))
        assert len(state.signals) > 40 and all(set(s) <= set("GgyrRuoOs") for s in state.signals.state)
        assert 0 < state.in_area.sum() < len(v)
        assert len(world.layout.cavs) == 2 and world.cav_lidar_pose("cav_0", state) is not None
        assert world.statics.synthetic and "SYNTHETIC" in world.describe()["label"]
        assert len(world.statics.structures) > 500
        # RSUs go to the busiest signalised junctions of the area; the layout keeps the world's CAVs
        junctions = world.busiest_junctions(3, 60.0)
        assert len(junctions) == 3 and all(abs(x) <= 600 and abs(y) <= 600 for _, x, y in junctions)
        world.set_layout(Layout(rsus=tuple(Rsu(f"rsu_{i}", x, y) for i, (_, x, y) in enumerate(junctions))))
        assert len(world.layout.rsus) == 3 and len(world.layout.cavs) == 2
        assert len(world.describe()["rsus"]) == 3 and len(world.describe()["signals"]) == len(state.signals)
        with pytest.raises(SumoError, match="back in time"):
            world.advance(world.start_s)
        with pytest.raises(SumoError, match="already open"):
            SumoWorld(CONFIG, SETUP, log=quiet).open()
    written = world.close() or {"outputs": {}}
    assert (tmp_path / "tripinfo.xml").exists() and (tmp_path / "ssm.xml").exists()
    del written


def test_a_route_command_makes_the_cav_take_the_new_road(tmp_path):
    with SumoWorld(CONFIG, SETUP, run_dir=tmp_path, log=quiet) as world:
        run_for(world, 1.0)
        # wait until the CAV is on a normal edge, then pick a road it did not plan to take
        for _ in range(300):
            road = world.road_of("cav_0")
            if not road.startswith(":"):
                break
            run_for(world, 0.1)
        old = world.route_of("cav_0")
        new = ()
        for target in sorted(world._cav_edges):
            route = world.find_route(road, target)
            if len(route) >= 3 and route[1] not in old:
                new = route
                break
        assert new, "no alternative route found"
        result = world.command(RouteCommand("cav_0", new))
        assert result.accepted, result.reason
        assert world.route_of("cav_0")[:2] == new[:2]
        taken = set()
        for _ in range(1200):
            run_for(world, 0.1)
            taken.add(world.road_of("cav_0"))
            if new[1] in taken:
                break
        assert new[1] in taken and new[1] not in old


def test_unknown_vehicle_or_edge_is_rejected_and_counted(tmp_path):
    with SumoWorld(CONFIG, SETUP, run_dir=tmp_path, log=quiet) as world:
        state = run_for(world, 1.0)
        edge = world.road_of("cav_0")
        r = world.command(TargetCommand("no_such_vehicle", edge))
        assert not r.accepted and "unknown vehicle" in r.reason
        r = world.command(TargetCommand("cav_0", "no_such_edge"))
        assert not r.accepted and "unknown edge" in r.reason
        r = world.command(RouteCommand("cav_0", ("no_such_edge",)))
        assert not r.accepted and "unknown edge" in r.reason
        r = world.command(SpeedCommand(99_999_999, 3.0))
        assert not r.accepted and "unknown vehicle" in r.reason
        r = world.command(IncidentCommand("flood", edge))
        assert not r.accepted and "unknown incident kind" in r.reason
        # a ground-truth id works as well as the SUMO name
        cav_id = int(state.vehicles.ids[world.cav_vehicle("cav_0", state)])
        assert world.command(SpeedCommand(cav_id, 2.0)).accepted
        assert world.counters["rejected:unknown vehicle"] == 2 and world.counters["rejected:unknown edge"] == 2


def test_a_headway_command_lengthens_the_drivers_time_gap_and_gives_it_back(tmp_path):
    with SumoWorld(CONFIG, SETUP, run_dir=tmp_path, log=quiet) as world:
        run_for(world, 1.0)
        own = world._sumo.vehicle.getTau("cav_0")
        assert world.command(HeadwayCommand("cav_0", own + 1.0)).accepted
        assert world._sumo.vehicle.getTau("cav_0") == pytest.approx(own + 1.0)
        assert world.command(HeadwayCommand("cav_0", own + 2.0)).accepted  # again: the driver's own stays known
        assert world.command(HeadwayCommand("cav_0", 0.1)).accepted  # never shorter than the driver's own
        assert world._sumo.vehicle.getTau("cav_0") == pytest.approx(max(own, 0.1))
        assert world.command(HeadwayCommand("cav_0", -1.0)).accepted
        assert world._sumo.vehicle.getTau("cav_0") == pytest.approx(own)
        assert world.command(HeadwayCommand("cav_0", -1.0)).accepted  # nothing held: nothing to give back
        r = world.command(HeadwayCommand("cav_0", math.nan))
        assert not r.accepted and "bad headway" in r.reason
        assert not world.command(HeadwayCommand("no_such_vehicle", 2.0)).accepted
        # vehicles that leave the road while held: the world forgets their drivers' gaps
        held = set(world._present_veh)
        assert all(world.command(HeadwayCommand(v, 3.0)).accepted for v in held)
        run_for(world, 30.0)
        gone = held - world._present_veh
        assert gone and not gone & set(world._own_tau)
        assert held - gone <= set(world._own_tau)  # the others are still held


def test_closing_a_road_reroutes_the_vehicles_that_planned_to_use_it(tmp_path):
    with SumoWorld(CONFIG, SETUP, run_dir=tmp_path, log=quiet) as world:
        run_for(world, 1.0)
        remaining = world.route_of("cav_0")
        closed = next(e for e in remaining[2:-1] if not e.startswith(":")) if len(remaining) > 3 else remaining[-1]
        assert world.command(IncidentCommand("close_road", closed, duration_s=5.0)).accepted
        assert closed not in world.route_of("cav_0")[1:]
        assert world.counters["rerouted_around_incident"] >= 1
        run_for(world, 6.0)
        assert world.counters["incident:reopen"] == 1


def test_bad_scenario_input_is_a_clear_error(tmp_path):
    with pytest.raises(NetworkError, match="unknown network"):
        SumoWorld(replace(CONFIG, network="atlantis"), SETUP, log=quiet).open()
    bad = replace(CONFIG, incidents=(IncidentSection(kind="close_road", edge="no_such_edge", at_s=10.0),))
    with pytest.raises(NetworkError, match="no edge 'no_such_edge'"):
        SumoWorld(bad, SETUP, run_dir=tmp_path, log=quiet).open()
    # the failed open left no simulation behind: a new world opens
    with SumoWorld(CONFIG, SETUP, run_dir=tmp_path, log=quiet) as world:
        assert world.is_open


@pytest.mark.slow
def test_real_streets_runs_with_random_trips_and_pedestrians(tmp_path):
    cfg = SumoWorldConfig(network="real_streets", demand=DemandSection(kind="random_trips", period_s=2.0),
                          warmup_s=120.0, buildings=replace(CONFIG.buildings, kind="blocks"))
    setup = SumoSetup(start="2008-02-02 16:10:00", duration_s=60.0, seed=1, cav_count=1,
                      area_box_m=(-400.0, -400.0, 400.0, 400.0))
    with SumoWorld(cfg, setup, run_dir=tmp_path, log=quiet) as world:
        state = run_for(world, 5.0)
        assert not world.statics.synthetic and "OpenStreetMap" in world.statics.label
        assert world.frame.residual_m < 0.05
        assert len(state.vehicles) > 20 and ObjectClass.PEDESTRIAN in state.vehicles.object_class


# ------------------------------------------------------------------------------------------------ the scenario's world
# the world above as a scenario (same demand: read from this module's cache), with a small LiDAR
SCENARIO = {
    "name": "small_city", "seed": 3,
    "world": {"kind": "sumo", "demand": {"scale": 2.0, "pedestrians_period_s": 10.0, "bicycles_period_s": 60.0},
              "ssm_probability": 0.05},
    "area": {"box_m": [-450, -450, 450, 450]},
    "time": {"start": "2008-02-02 16:02:00", "duration_s": 30.0, "slot_s": 0.1},
    "rsus": {"layout": {"kind": "hotspots", "count": 2, "min_separation_m": 100.0},
             "lidar": {"channels": 16, "azimuth_steps": 512, "rate_hz": 5.0, "vertical_fov_deg": [-30.0, 10.0]}},
    "cavs": {"count": 2, "lidar": {"channels": 8, "azimuth_steps": 256, "rate_hz": 5.0}},
}


def test_a_sumo_scenario_replays_with_junction_rsus_buildings_and_signals(tmp_path, monkeypatch):
    from mobility_twin_sim.lidar import STRUCTURE
    from mobility_twin_sim.replay import Replay
    from mobility_twin_sim.scenario import scenario_from_dict
    from mobility_twin_sim.world import SumoScenarioWorld, build_world

    monkeypatch.chdir(tmp_path)  # nothing may be written into the working directory
    world = build_world(scenario_from_dict(SCENARIO), run_dir=tmp_path / "run" / "sumo", log=quiet)
    try:
        assert isinstance(world, SumoScenarioWorld) and isinstance(world, WorldBackend) and not world.seekable
        assert [r.rsu_id for r in world.rsus] == ["rsu_00", "rsu_01"] and len(world.junctions) == 2
        assert [c.cav_id for c in world.layout.cavs] == ["cav_0", "cav_1"] and len(world.layout.servers) >= 1
        replay = Replay(world)
        frames, signals, structure_points = 0, None, 0
        while replay.position < 3.0:
            tick = replay.step()
            for f in tick.frames:
                frames += 1
                structure_points += int(np.sum(f.scan.hit_vehicle == STRUCTURE))
                assert f.stamp == tick.t
            if tick.ground_truth is not None:
                gt = tick.ground_truth
                signals = gt.signals
                assert gt.state.t == pytest.approx(tick.t) and len(gt.boxes) == len(gt.state)
        assert frames >= 2 * 3 * 5 and structure_points > 0  # the RSUs see buildings
        assert len(signals) > 10
        with pytest.raises(ValueError, match="only goes forward"):
            replay.seek(1.0)
        replay.seek(5.0)  # forward is fine
        assert replay.step().t == pytest.approx(world.start_s + 5.0)
        # a command through the replay reaches the world; a bad one is a reason, not an exception
        result = replay.command(SpeedCommand("cav_0", 3.0))
        assert result.accepted, result.reason
        assert not replay.command(TargetCommand("cav_0", "no_such_edge")).accepted
        written = replay.close()
    finally:
        world.close()
    assert set(written["outputs"]) >= {"tripinfo.xml", "ssm.xml"}
    assert all(str(tmp_path / "run" / "sumo") in p for p in written["outputs"].values())
    assert list(tmp_path.glob("*.xml")) == []  # no stray ssm_*.xml or routes.rou.xml in the working directory


def test_the_layout_of_a_sumo_scenario_is_known_without_starting_sumo():
    from mobility_twin_sim.scenario import scenario_from_dict
    from mobility_twin_sim.world import build_world

    prepared = build_world(scenario_from_dict(SCENARIO), start=False, log=quiet)
    assert not prepared.is_open
    running = build_world(scenario_from_dict(SCENARIO), log=quiet)  # as the replay process builds it
    try:
        assert running.is_open and running.layout == prepared.layout  # eval process and replay agree on the RSUs
    finally:
        running.close()

"""SUMO trajectories as a fleet for the relation learner: recorded from a real SUMO run, cached, and thinned
into a telematics feed."""

import numpy as np
import pytest

from mobility_twin_sim.fleet import Fleet
from mobility_twin_sim.sumo.trajectories import load_fleet, telematics


def _dense(n: int = 40, span_s: float = 300.0, seed: int = 1) -> Fleet:
    """n vehicles sampled every second over staggered windows, each driving a straight line."""
    rng = np.random.default_rng(seed)
    ids, offsets, t, x, y = [], [0], [], [], []
    for k in range(n):
        start = float(rng.uniform(0.0, span_s / 2))
        tt = np.arange(start, start + rng.uniform(20.0, span_s / 2), 1.0)
        ids.append(100 + k)
        offsets.append(offsets[-1] + len(tt))
        t.append(tt)
        x.append(5.0 * (tt - start))
        y.append(np.full(len(tt), float(k)))
    return Fleet(np.asarray(ids), np.asarray(offsets), np.concatenate(t), np.concatenate(x), np.concatenate(y),
                 max_gap_s=1.5)


def test_telematics_keeps_each_vehicles_first_sample_then_one_a_period():
    dense = _dense()
    reports = telematics(dense, 30.0, seed=4)
    assert np.array_equal(reports.taxi_ids, dense.taxi_ids)
    first_dense = dense.t[dense.offsets[:-1]]
    assert np.array_equal(reports.t[reports.offsets[:-1]], first_dense)  # a vehicle reports as it appears
    for v in range(len(dense.taxi_ids)):
        gaps = np.diff(reports.t[reports.offsets[v]:reports.offsets[v + 1]])
        assert np.all(gaps <= 30.0 + 1e-9) and np.all(gaps[1:] >= 30.0 - 1.0 - 1e-9)  # one a period (1 s samples)
    assert len(reports.t) < len(dense.t) / 15
    assert np.array_equal(telematics(dense, 30.0, seed=4).t, reports.t)  # seeded
    # every vehicle present in the dense fleet has a report by then (what the telemetry view relies on)
    for t in (60.0, 130.5, 200.0):
        state = dense.state_at(t)
        assert np.all(reports.last_fix_index(reports.rows(state.ids), t) >= 0)
    with pytest.raises(ValueError, match="period_s"):
        telematics(dense, 0.0)


def test_the_telemetry_view_of_a_dense_fleet_sees_the_reports_not_the_truth():
    from mobility_twin_models.relations import Area, LayoutConfig, hex_layout, observe_fleet

    dense = _dense()
    reports = telematics(dense, 30.0, seed=0)
    layout = hex_layout(Area(-100.0, 900.0, -100.0, 100.0), LayoutConfig(rsus_per_server=0.0))
    truth = observe_fleet(dense, layout, 5.0, start=100.0, end=200.0, observation="truth")
    seen = observe_fleet(dense, layout, 5.0, start=100.0, end=200.0, observation="telemetry", reports=reports)
    ages = np.concatenate([o.snapshot.vehicle_age_s for o in seen])
    assert ages.max() <= 30.0 and ages.mean() > 5.0  # stale between reports, never older than a period
    assert np.all(np.concatenate([o.snapshot.vehicle_age_s for o in truth]) == 0.0)
    a, b = truth[10].snapshot, seen[10].snapshot
    assert np.array_equal(a.vehicle_ids, b.vehicle_ids)
    stale = b.vehicle_age_s > 1.5
    assert np.any(stale) and np.all(np.abs(a.vehicle_xy[stale, 0] - b.vehicle_xy[stale, 0]) > 5.0)


@pytest.mark.usefixtures("sumo_cache")
def test_a_recorded_sumo_fleet_is_where_sumo_drove_its_vehicles_and_is_cached(tmp_path):
    pytest.importorskip("libsumo")
    from mobility_twin_core import VEHICLE_CLASSES
    from mobility_twin_sim.scenario import scenario_from_dict
    from mobility_twin_sim.sumo import tools
    from mobility_twin_sim.sumo.trajectories import record_fleet
    from mobility_twin_sim.world import build_world

    raw = {"world": {"kind": "sumo", "demand": {"scale": 2.0, "pedestrians_period_s": 10.0, "bicycles_period_s": 60.0},
                     "incidents": []},
           "area": {"origin": [116.4468, 39.9135], "box_m": [-600.0, -600.0, 600.0, 600.0]},
           "time": {"start": "2008-02-02 16:02:00", "duration_s": 10.0, "slot_s": 0.5},
           "rsus": {"layout": {"kind": "hotspots", "count": 2}}, "cavs": {"count": 0}}
    scenario = scenario_from_dict(raw)
    recorded = record_fleet(scenario, sample_s=1.0, step_s=0.5, log=lambda *a: None)
    fleet = recorded.fleet
    assert len(fleet) > 50 and fleet.time_range[1] - fleet.time_range[0] == pytest.approx(10.0)
    # the same run, stepped by hand: the fleet at a sample is SUMO's vehicles (no pedestrians, no cyclists)
    world = build_world(scenario, log=lambda *a: None)
    try:
        for k in range(7):
            v = world.advance(world.start_s + k).vehicles
    finally:
        world.close()
    vehicles = np.isin(v.object_class, np.asarray(VEHICLE_CLASSES, dtype=v.object_class.dtype))
    assert np.any(~vehicles)  # the scenario has pedestrians and cyclists ...
    state = fleet.state_at(world.start_s + 6.0)  # ... and the fleet has only the vehicles, where SUMO put them
    order = np.argsort(v.ids[vehicles])
    assert np.array_equal(state.ids, v.ids[vehicles][order])
    assert np.allclose(state.x, v.x[vehicles][order]) and np.allclose(state.y, v.y[vehicles][order])
    # cached: the second call reads the file
    cached = list((tools.cache_dir() / "fleets").glob("*.npz"))
    assert len(cached) == 1
    again = record_fleet(scenario, sample_s=1.0, step_s=0.5, log=lambda *a: pytest.fail("SUMO ran again"))
    assert np.array_equal(again.fleet.t, fleet.t) and np.array_equal(load_fleet(cached[0]).fleet.x, fleet.x)
    assert again.frame == recorded.frame and again.net_file == recorded.net_file
    # the network it drove on, in the map frame: the moving vehicles match a road in their direction
    from mobility_twin_core.roads import EdgeMatcher

    roads = again.roads()
    moving = v.speed[vehicles] > 2.0
    edge = EdgeMatcher(roads).match(v.x[vehicles][moving], v.y[vehicles][moving], v.heading[vehicles][moving])
    assert np.mean(edge >= 0) > 0.9
    # and the network says where each lane leads: turn lanes lead to fewer roads than their edge
    assert len(roads.lane_successors) == len(roads)
    assert any(len(lane) < len(roads.successors(e)) for e, lanes in enumerate(roads.lane_successors) for lane in lanes)
    # the traffic lights were recorded with the fleet, and the network names the links they control
    lights = again.signals_at(world.start_s + 6.0)
    assert len(lights.ids) > 5 and all(len(state) > 0 for state in lights.state)
    assert len(again.signals_at(world.start_s - 5.0).ids) == 0  # nothing before the recording
    controlled = {tls for lanes in roads.lane_signals for lane in lanes for tls, _ in lane if tls}
    assert controlled & set(lights.ids)
    # each vehicle's destination (the last edge of its route) came with it: an edge of the network
    assert len(again.destination) == len(fleet.taxi_ids) and np.array_equal(again.destination, recorded.destination)
    known = again.destination[again.destination != ""]
    assert len(known) >= 0.9 * len(fleet.taxi_ids) and set(known) <= set(roads.ids)

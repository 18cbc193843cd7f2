"""Offline data: labels from what happened k slots later, districts, and the telemetry view of the fleet."""

import numpy as np
import pytest

from mobility_twin_core import EdgeServer, Layout, Rsu
from mobility_twin_models.relations import Area, GraphConfig, MarkovHandover, TwinHistory, make_samples
from mobility_twin_models.relations.dataset import future_server, split_indices
from mobility_twin_models.relations.observation import TelemetryView
from mobility_twin_sim.fleet import Fleet
from tests.relations.conftest import make_snapshot

SERVERS = {"s0": (0.0, 0.0), "s1": (300.0, 0.0), "s2": (600.0, 0.0)}


def observed(config, steps):
    history = TwinHistory(config)
    return [history.observe(make_snapshot(t, vehicles, SERVERS)) for t, vehicles in steps]


def test_labels_are_the_serving_server_k_slots_later_and_unknown_for_vehicles_that_left(config):
    obs = observed(config, [
        (0.0, {"a": (0.0, 0.0, 10.0, 0.0), "b": (300.0, 0.0, 0.0, 0.0), "c": (600.0, 0.0, 0.0, 0.0)}),
        (30.0, {"a": (300.0, 0.0, 10.0, 0.0), "b": (310.0, 0.0, 0.0, 0.0)}),  # c has left
    ])
    assert future_server(obs[0], obs[1]).tolist() == [1, 1, -1]
    (sample,) = make_samples(obs, 1, config=config)
    data = sample.graph(config)
    assert data["vehicle"].y_server.tolist() == [1, 1, -1]
    assert data["vehicle"].mask.tolist() == [True, True, False]
    assert data["server"].y_load.tolist() == [0.0, 2.0, 0.0]


def test_second_order_markov_tells_the_direction_of_travel_that_first_order_cannot(config):
    # through s1, two cars drive east (s0 -> s1 -> s2) and one west (s2 -> s1 -> s0); 10 m/s, 10 s slots
    def car(x0, v, t):
        return (x0 + v * t, 0.0, v, 0.0)

    steps = [(t, {"e1": car(100.0, 10.0, t), "e2": car(80.0, 10.0, t), "w": car(500.0, -10.0, t)})
             for t in np.arange(0.0, 50.0, 10.0)]
    obs = observed(config, steps)
    samples = make_samples(obs, 3, config=config)  # 30 s ahead
    first, second = MarkovHandover(order=1).fit(samples), MarkovHandover(order=2).fit(samples)
    at = samples[1]  # t = 10: e1, e2 just entered s1 from s0; w is on s1 (from s2 at t = 10)
    ids = list(at.obs.snapshot.vehicle_ids)
    assert at.obs.prev_server[ids.index("w")] == 2 and at.obs.prev_server[ids.index("e1")] == 0
    truth = at.y_server.tolist()
    assert second.predict(at).tolist() == truth
    assert first.predict(at).tolist() != truth  # one answer per server: east for everyone on s1


def test_markov_order_must_be_one_or_two():
    with pytest.raises(ValueError, match="order must be 1 or 2, got 3"):
        MarkovHandover(order=3)


def test_district_samples_keep_context_but_count_only_their_own_vehicles_and_servers(config):
    obs = observed(config, [
        (0.0, {"a": (0.0, 0.0, 10.0, 0.0), "b": (290.0, 0.0, 0.0, 0.0), "c": (600.0, 0.0, 0.0, 0.0)}),
        (30.0, {"a": (300.0, 0.0, 10.0, 0.0), "b": (290.0, 0.0, 0.0, 0.0), "c": (600.0, 0.0, 0.0, 0.0)}),
    ])
    west = Area(-100.0, 150.0, -100.0, 100.0)
    (sample,) = make_samples(obs, 1, config=config, region=west, margin_m=200.0)
    s = sample.obs.snapshot
    assert list(s.server_ids) == ["s0", "s1"]  # s2 is beyond the margin
    assert list(s.vehicle_ids) == ["a", "b"]
    assert sample.vehicle_mask.tolist() == [True, False]  # b is context, not counted
    assert sample.server_mask.tolist() == [True, False]
    assert sample.y_server.tolist() == [1, 1]  # indices into the district's servers


def test_split_leaves_a_gap_of_one_horizon_between_train_and_test():
    train, test = split_indices(100, 6, test_fraction=0.25)
    assert train[-1] + 6 < test[0]
    assert test[-1] == 100 - 6 - 1


def two_servers_and_an_rsu_at(x: float, y: float) -> Layout:
    return Layout(servers=(EdgeServer("s0", 0.0, 0.0, 500.0, 2e9), EdgeServer("s1", 800.0, 0.0, 500.0, 2e9)),
                  rsus=(Rsu("r0", x, y),))


def test_telemetry_view_keeps_an_rsu_sighting_until_a_newer_report():
    # taxi 1 reports every 100 s driving east 5 m/s; it passes the RSU at (600, 0) at t = 120
    fleet = Fleet(np.array([1]), np.array([0, 4]), t=np.array([0.0, 100.0, 200.0, 300.0]),
                  x=np.array([0.0, 500.0, 1000.0, 1500.0]), y=np.zeros(4), max_gap_s=300.0)
    layout = two_servers_and_an_rsu_at(600.0, 0.0)
    view = TelemetryView(fleet, layout, rsu_range_m=50.0)
    seen = view(fleet.state_at(120.0))
    assert seen.vehicle_xy[0].tolist() == [600.0, 0.0] and seen.vehicle_age_s[0] == 0.0
    left = view(fleet.state_at(140.0))  # out of range: the twin keeps the sighting, not the older report
    assert left.vehicle_xy[0].tolist() == [600.0, 0.0] and left.vehicle_age_s[0] == 20.0
    assert left.vehicle_vel[0].tolist() == pytest.approx([5.0, 0.0])
    reported = view(fleet.state_at(210.0))  # the report at t = 200 is newer than the sighting
    assert reported.vehicle_xy[0].tolist() == [1000.0, 0.0] and reported.vehicle_age_s[0] == 10.0
    rewound = view(fleet.state_at(105.0))  # back in time: the sightings are forgotten
    assert rewound.vehicle_xy[0].tolist() == [500.0, 0.0] and rewound.vehicle_age_s[0] == 5.0


def test_telemetry_view_knows_the_last_report_unless_an_rsu_sees_the_vehicle():
    # taxi 1 reports at t = 0, 100, 200 driving east 5 m/s; taxi 2 stands near the RSU at (300, 50)
    fleet = Fleet(np.array([1, 2]), np.array([0, 3, 5]), t=np.array([0.0, 100.0, 200.0, 0.0, 200.0]),
                  x=np.array([0.0, 500.0, 1000.0, 300.0, 300.0]), y=np.array([0.0, 0.0, 0.0, 40.0, 40.0]),
                  max_gap_s=300.0)
    layout = two_servers_and_an_rsu_at(300.0, 50.0)
    snap = TelemetryView(fleet, layout, rsu_range_m=50.0)(fleet.state_at(150.0))
    i1, i2 = list(snap.vehicle_ids).index(1), list(snap.vehicle_ids).index(2)
    assert snap.vehicle_xy[i1].tolist() == [500.0, 0.0]  # its last report, not where it is (750, 0)
    assert snap.vehicle_vel[i1].tolist() == pytest.approx([5.0, 0.0])
    assert snap.vehicle_age_s[i1] == 50.0
    assert snap.vehicle_server[i1] == 1  # the network knows it is served by s1 now
    assert snap.vehicle_xy[i2].tolist() == [300.0, 40.0] and snap.vehicle_age_s[i2] == 0.0
    graph_config = GraphConfig(candidate_radius_m=300.0)
    obs = TwinHistory(graph_config).observe(snap)
    assert obs.serving[i1] == 1  # the reported association, not the rule on the stale position

"""The typed graph built from a hand-made snapshot: nodes, the right edges, no self-loops."""

import numpy as np
import pytest
import torch

from models.relations import TwinHistory, build_graph, serving_server
from models.relations.graph import CAND, RS, SR, SS, SV, VS, VV, node_dims
from tests.relations.conftest import make_snapshot

# a (0, 0) and b (30, 0) are 30 m apart; c (280, 0) is near server s1 and alone; d (1000, 0) is outside coverage
VEHICLES = {"a": (0.0, 0.0, 10.0, 0.0), "b": (30.0, 0.0, 0.0, 0.0), "c": (280.0, 0.0, 0.0, 5.0),
            "d": (1000.0, 0.0, 0.0, 0.0)}


def pairs(data, edge_type) -> set[tuple[int, int]]:
    return {tuple(e) for e in data[edge_type].edge_index.t().tolist()}


def test_graph_has_the_right_nodes_and_drops_unserved_vehicles(config):
    obs = TwinHistory(config).observe(make_snapshot(0.0, VEHICLES))
    data = build_graph(obs, config)
    assert list(obs.snapshot.vehicle_ids) == ["a", "b", "c"]
    assert data["vehicle"].x.shape == (3, node_dims(config)["vehicle"])
    assert data["server"].x.shape == (2, node_dims(config)["server"])
    assert data["rsu"].x.shape == (1, 3)


def test_vehicle_proximity_links_close_vehicles_both_ways_without_self_loops(config):
    data = build_graph(TwinHistory(config).observe(make_snapshot(0.0, VEHICLES)), config)
    assert pairs(data, VV) == {(0, 1), (1, 0)}  # c is 250 m from b: beyond the 50 m radius
    assert data[VV].edge_attr.shape == (2, 5)
    assert torch.allclose(data[VV].edge_attr[:, 2], torch.tensor([30.0 / 50.0, 30.0 / 50.0]))


def test_association_edges_follow_the_nearest_covering_server(config):
    data = build_graph(TwinHistory(config).observe(make_snapshot(0.0, VEHICLES)), config)
    assert pairs(data, VS) == {(0, 0), (1, 0), (2, 1)}
    assert pairs(data, SV) == {(0, 0), (0, 1), (1, 2)}
    assert data["vehicle"].serving.tolist() == [0, 0, 1]
    assert data["server"].load.tolist() == [2.0, 1.0]


def test_server_adjacency_and_rsu_attachment(config):
    snap = make_snapshot(0.0, VEHICLES, {"s0": (0.0, 0.0), "s1": (300.0, 0.0), "s2": (5000.0, 0.0)},
                         coverage=200.0)
    data = build_graph(TwinHistory(config).observe(snap), config)
    # median nearest-server distance is 300 m (s0, s1) or 4700 m (s2): adjacency radius 1.5 * 300 m
    assert pairs(data, SS) == {(0, 1), (1, 0)}
    assert all(a != b for a, b in pairs(data, SS))
    assert pairs(data, RS) == {(0, 1)}  # the RSU at (290, 10) hosts its twin on s1
    assert pairs(data, SR) == {(1, 0)}


def test_candidates_are_the_servers_within_reach_and_flag_the_constant_velocity_server(config):
    data = build_graph(TwinHistory(config).observe(make_snapshot(0.0, VEHICLES)), config)
    assert pairs(data, CAND) == {(0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 1)}
    # a drives east at 10 m/s: in 30 s it is at (300, 0), the cell of s1
    assert data["vehicle"].cv_server.tolist() == [1, 0, 1]
    attr = data[CAND].edge_attr
    index = data[CAND].edge_index.t().tolist()
    is_current, is_cv = attr[:, 9], attr[:, 10]
    assert [index[i] for i in torch.nonzero(is_current).flatten().tolist()] == [[0, 0], [1, 0], [2, 1]]
    assert [index[i] for i in torch.nonzero(is_cv).flatten().tolist()] == [[0, 1], [1, 0], [2, 1]]


def test_history_tracks_load_lags_and_legs_of_motion(config):
    history = TwinHistory(config)
    history.observe(make_snapshot(0.0, {"a": (0.0, 0.0, 10.0, 0.0)}))
    history.observe(make_snapshot(5.0, {"a": (50.0, 0.0, 10.0, 0.0), "b": (10.0, 0.0, 0.0, 0.0)}))
    obs = history.observe(make_snapshot(10.0, {"a": (100.0, 0.0, 0.0, 10.0), "b": (10.0, 0.0, 0.0, 0.0)}))
    assert obs.load_lags[0].tolist() == [2.0, 2.0, 1.0]  # s0 served a+b, a+b, a
    a = list(obs.snapshot.vehicle_ids).index("a")
    b = list(obs.snapshot.vehicle_ids).index("b")
    assert obs.since_change_s[a] == 0.0 and obs.last_leg_s[a] == 10.0  # a turned north at t = 10
    assert obs.last_leg_vel[a].tolist() == [10.0, 0.0]
    assert obs.since_change_s[b] == 5.0 and np.isnan(obs.last_leg_s[b])


def test_history_rejects_snapshots_out_of_time_order(config):
    history = TwinHistory(config)
    history.observe(make_snapshot(10.0, VEHICLES))
    with pytest.raises(ValueError, match=r"t=5\.0 is older"):
        history.observe(make_snapshot(5.0, VEHICLES))


def test_serving_server_is_the_nearest_server_whose_disc_contains_the_vehicle():
    servers = np.array([[0.0, 0.0], [100.0, 0.0], [400.0, 0.0]])
    coverage = np.array([30.0, 200.0, 200.0])
    got = serving_server(np.array([[10.0, 0.0], [40.0, 0.0], [50.0, 0.0], [1000.0, 0.0]]), servers, coverage)
    # (40, 0) is nearest to s0 but outside its 30 m disc: s1 serves it; (50, 0) is a tie between s0 and s1
    # for distance 50 vs 50, s0 does not cover it; (1000, 0) is outside every disc
    assert got.tolist() == [0, 1, 1, -1]
    tie = serving_server(np.array([[50.0, 0.0]]), np.array([[0.0, 0.0], [100.0, 0.0]]), 200.0)
    assert tie.tolist() == [0]

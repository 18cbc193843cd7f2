"""The typed graph built from a hand-made snapshot: nodes, the right edges, no self-loops."""

import numpy as np
import pytest
import torch

from mobility_twin_core import ServerSet
from mobility_twin_models.relations import TwinHistory, build_graph
from mobility_twin_models.relations.graph import (
    CAND,
    FOLLOWS,
    RS,
    SR,
    SS,
    SV,
    VS,
    VV,
    _serving_of,
    handover_dead_reckoning,
    node_dims,
    rank_in_groups,
    rank_within,
)
from mobility_twin_models.relations.roads import PairIndex
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


THREE_CELLS = {"s0": (0.0, 0.0), "s1": (300.0, 0.0), "s2": (600.0, 0.0)}


def drive(history, moves: dict[float, dict[str, float]]):
    """Feed snapshots of vehicles on the x axis driving east at 10 m/s: {t: {id: x}}."""
    obs = None
    for t, xs in sorted(moves.items()):
        obs = history.observe(make_snapshot(t, {v: (x, 0.0, 10.0, 0.0) for v, x in xs.items()}, THREE_CELLS,
                                            coverage=200.0))
    return obs


def index_of(obs, vehicle: str) -> int:
    return list(obs.snapshot.vehicle_ids).index(vehicle)


def test_handover_log_keeps_the_previous_servers_the_time_since_and_the_dwell(config):
    # a crosses x = 150 (s0 -> s1) at t = 10 and x = 450 (s1 -> s2) at t = 30; b stays on s0
    obs = drive(TwinHistory(config), {0.0: {"a": 100.0, "b": 0.0}, 10.0: {"a": 200.0, "b": 0.0},
                                      20.0: {"a": 300.0, "b": 0.0}, 30.0: {"a": 500.0, "b": 0.0},
                                      35.0: {"a": 550.0, "b": 0.0}})
    a, b = index_of(obs, "a"), index_of(obs, "b")
    assert obs.serving[a] == 2 and obs.prev_server[a] == 1 and obs.prev2_server[a] == 0
    assert obs.since_handover_s[a] == 5.0 and obs.prev_dwell_s[a] == 20.0
    assert obs.prev_server[b] == -1 and np.isnan(obs.since_handover_s[b]) and np.isnan(obs.prev_dwell_s[b])


def test_dead_reckoning_drives_on_from_the_border_away_from_the_previous_server(config):
    obs = drive(TwinHistory(config), {0.0: {"a": 100.0}, 10.0: {"a": 200.0}})  # s0 -> s1 at t = 10
    heading, point = handover_dead_reckoning(obs, horizon_s=30.0)
    assert heading.tolist() == [[1.0, 0.0]]
    assert point.tolist() == [[150.0 + 10.0 * 30.0, 0.0]]  # from the border at 10 m/s for 0 + 30 s
    from dataclasses import replace

    data = build_graph(obs, replace(config, horizon_s=40.0))  # at (550, 0): the cell of s2
    assert data["vehicle"].dr_server.tolist() == [2]


def test_vehicles_that_made_the_same_handover_are_linked_to_each_other(config):
    # lead crossed s0 -> s1 at t = 10 and s1 -> s2 at t = 30; mate crossed s0 -> s1 at t = 20;
    # late crossed s0 -> s1 at t = 35; other stays on s0 (no handover); back drives west s1 -> s0
    history = TwinHistory(config)
    moves = {0.0: {"lead": 100.0, "mate": 0.0, "late": 0.0, "other": 0.0, "back": 200.0},
             10.0: {"lead": 200.0, "mate": 100.0, "late": 50.0, "other": 0.0, "back": 200.0},
             20.0: {"lead": 300.0, "mate": 200.0, "late": 100.0, "other": 0.0, "back": 200.0},
             30.0: {"lead": 500.0, "mate": 300.0, "late": 140.0, "other": 0.0, "back": 100.0},
             35.0: {"lead": 550.0, "mate": 350.0, "late": 160.0, "other": 0.0, "back": 100.0}}
    obs = drive(history, moves)
    data = build_graph(obs, config)
    name = {index_of(obs, v): v for v in ("lead", "mate", "late", "other", "back")}
    edges = {(name[u], name[v]) for u, v in data[FOLLOWS].edge_index.t().tolist()}
    # lead made s0 -> s1 before moving on: the others who made s0 -> s1 follow it, and each other
    assert edges == {("lead", "mate"), ("lead", "late"), ("mate", "late"), ("late", "mate")}
    attr = {(name[u], name[v]): a for (u, v), a in zip(data[FOLLOWS].edge_index.t().tolist(),
                                                       data[FOLLOWS].edge_attr.tolist(), strict=True)}
    moved_on, off_x, off_y, lag, left = attr[("lead", "mate")]
    assert moved_on == 1.0 and off_x == pytest.approx(300.0 / 200.0) and off_y == 0.0
    assert lag == pytest.approx((20.0 - 10.0) / config.leg_scale_s)  # mate crossed 10 s after lead
    assert left == pytest.approx(5.0 / config.leg_scale_s)  # lead left s1 5 s ago
    assert attr[("late", "mate")][0] == 0.0  # late is still on s1


def test_a_vehicle_follows_at_most_max_leaders_the_closest_in_time(config):
    from dataclasses import replace

    few = replace(config, max_leaders=1)
    moves = {0.0: {"a": 100.0, "b": 60.0, "c": 0.0}, 10.0: {"a": 200.0, "b": 160.0, "c": 100.0},
             20.0: {"a": 220.0, "b": 180.0, "c": 200.0}}  # a, b cross at t = 10, c at t = 20
    obs = drive(TwinHistory(few), moves)
    data = build_graph(obs, few)
    targets = data[FOLLOWS].edge_index[1].tolist()
    assert sorted(targets) == [0, 1, 2]  # one leader each
    c = index_of(obs, "c")
    (u,) = [u for u, v in data[FOLLOWS].edge_index.t().tolist() if v == c]
    assert obs.snapshot.vehicle_ids[u] in ("a", "b")


def test_history_rejects_snapshots_out_of_time_order(config):
    history = TwinHistory(config)
    history.observe(make_snapshot(10.0, VEHICLES))
    with pytest.raises(ValueError, match=r"t=5\.0 is older"):
        history.observe(make_snapshot(5.0, VEHICLES))


def test_serving_server_is_the_nearest_server_whose_disc_contains_the_vehicle():
    servers = np.array([[0.0, 0.0], [100.0, 0.0], [400.0, 0.0]])
    coverage = np.array([30.0, 200.0, 200.0])
    got = ServerSet.from_arrays(["s0", "s1", "s2"], servers, coverage).serving(
        np.array([[10.0, 0.0], [40.0, 0.0], [50.0, 0.0], [1000.0, 0.0]]))
    # (40, 0) is nearest to s0 but outside its 30 m disc: s1 serves it; (50, 0) is a tie between s0 and s1
    # for distance 50 vs 50, s0 does not cover it; (1000, 0) is outside every disc
    assert got.tolist() == [0, 1, 1, -1]
    tie = ServerSet.from_arrays(["s0", "s1"], np.array([[0.0, 0.0], [100.0, 0.0]]), 200.0).serving(np.array([[50.0, 0.0]]))
    assert tie.tolist() == [0]


def test_rank_within_groups_equals_a_lexsort():
    rng = np.random.default_rng(0)
    for _ in range(100):
        group = np.sort(rng.integers(0, 20, rng.integers(0, 120)))
        value = rng.integers(0, 4, len(group)).astype(float)  # many ties: they go by position
        order = np.lexsort((value, group))
        expected = np.empty(len(group), dtype=np.int64)
        expected[order] = rank_in_groups(group[order])
        assert np.array_equal(rank_within(group, value), expected)


def test_the_servers_of_a_vehicles_points_are_those_of_the_association_rule_asked_once_where_it_stands():
    rng = np.random.default_rng(1)
    servers = ServerSet.from_arrays([f"s{i}" for i in range(12)], rng.uniform(0, 1000, (12, 2)), 250.0)
    own = rng.uniform(-100, 1100, (300, 2))
    moved = [own + rng.normal(0, 300, own.shape) for _ in range(3)]
    # a third stand (every point where they are), a third moved one point, the rest all
    points = [np.where((np.arange(300) % 3 == 0)[:, None] | ((np.arange(300) % 3 == 1) & (j > 0))[:, None], own, m)
              for j, m in enumerate(moved)]
    got = _serving_of(servers, own, tuple(points))
    for p, g in zip(points, got, strict=True):
        assert np.array_equal(g, servers.serving(p))
    assert [len(g) for g in _serving_of(servers, np.zeros((0, 2)), (np.zeros((0, 2)),) * 3)] == [0, 0, 0]


@pytest.mark.parametrize("mode", ["dense", "sparse", "kept"])
def test_a_pair_index_finds_each_pairs_first_column_and_nothing_else(monkeypatch, mode):
    # dense: a small key range, a table; sparse: the pairs fill too little of it, a sorted search, unless kept
    monkeypatch.setattr(PairIndex, "DENSE_PER_PAIR", 16 if mode == "dense" else 0)
    rng = np.random.default_rng(2)
    a, b = rng.integers(0, 30, 400), rng.integers(0, 7, 400)  # many pairs listed twice
    if mode != "dense":
        a = a * 10_000  # 2.1 million keys for 400 pairs
        monkeypatch.setattr(PairIndex, "DENSE_MAX", 1 << 22)
    index = PairIndex(a, b, 7, kept=mode == "kept")
    assert (index.table is not None) == (mode != "sparse")
    qa, qb = rng.integers(-2, 35, 2000), rng.integers(-2, 9, 2000)
    if mode != "dense":
        qa = qa * 10_000
    first = {}
    for k, pair in enumerate(zip(a.tolist(), b.tolist(), strict=True)):
        first.setdefault(pair, k)
    expected = [first.get((x, y), -1) if x >= 0 and 0 <= y < 7 else -1 for x, y in zip(qa.tolist(), qb.tolist(), strict=True)]
    assert index(qa, qb).tolist() == expected
    assert PairIndex(np.zeros(0), np.zeros(0), 7)(qa, qb).tolist() == [-1] * len(qa)

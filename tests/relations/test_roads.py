"""The road network in the relation graph: map-matching, road state, road-following baselines, road nodes."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from mobility_twin_core.roads import RoadGraph
from mobility_twin_models.relations import RelationModel, TwinHistory, build_graph
from mobility_twin_models.relations.baselines import RoadTurns, along_road
from mobility_twin_models.relations.config import ModelConfig
from mobility_twin_models.relations.graph import ROAD, RR_NEXT, RR_PREV, RV, VR, edge_dims, node_dims
from mobility_twin_models.relations.roads import RoadNetwork, follow_roads, road_state, turn_table
from tests.relations.conftest import make_snapshot

# a junction at (200, 0): east in from the west (A, 0 -> 200), its reverse (A_back), and three ways out:
# straight on east (B), left to the north (N), right to the south (S); 200 m each, one lane, 14 m/s
LINES = {"A": ((0.0, 0.0), (200.0, 0.0)), "A_back": ((200.0, 0.0), (0.0, 0.0)), "B": ((200.0, 0.0), (400.0, 0.0)),
         "N": ((200.0, 0.0), (200.0, 200.0)), "S": ((200.0, 0.0), (200.0, -200.0))}
SUCCESSORS = {"A": ("B", "N", "S"), "A_back": (), "B": (), "N": (), "S": ()}


def junction() -> RoadNetwork:
    ids = tuple(LINES)
    index = {e: i for i, e in enumerate(ids)}
    succ = [sorted(index[s] for s in SUCCESSORS[e]) for e in ids]
    ptr = np.concatenate([[0], np.cumsum([len(s) for s in succ])]).astype(np.int64)
    graph = RoadGraph(ids, np.full(len(ids), 200.0), np.full(len(ids), 14.0), np.ones(len(ids), np.int64), ptr,
                      np.asarray([i for s in succ for i in s], np.int64),
                      tuple((np.asarray(LINES[e], float),) for e in ids))
    return RoadNetwork.of(graph)


def test_the_network_knows_each_roads_straight_on_successor_and_its_turns():
    net = junction()
    a, b, n, s = (net.graph.index[e] for e in ("A", "B", "N", "S"))
    assert net.straight[a] == b and net.straight[b] == -1  # B is a dead end
    turns = {int(j): tuple(np.round(t, 6)) for i, j, t in zip(*net.succ, net.turn, strict=True) if i == a}
    assert turns[b] == (1.0, 0.0) and turns[n] == (0.0, 1.0) and turns[s] == (0.0, -1.0)  # left is +sin


def test_vehicles_are_matched_in_their_direction_and_the_roads_aggregate_them():
    net = junction()
    xy = np.array([[50.0, 1.0], [150.0, -1.0], [120.0, 0.0], [200.0, 120.0]])
    vel = np.array([[10.0, 0.0], [0.0, 0.0], [-8.0, 0.0], [0.0, 5.0]])
    heading = np.array([0.0, 0.0, np.pi, np.pi / 2])
    state = road_state(net, xy, vel, heading)
    assert [net.graph.ids[i] for i in state.road] == ["A", "A", "A_back", "N"]  # same line, other direction
    assert state.along[0] == pytest.approx(50.0, abs=2.0) and state.along[2] == pytest.approx(80.0, abs=2.0)
    a = net.graph.index["A"]
    assert state.count[a] == 2 and state.stopped[a] == 1 and state.mean_speed[a] == pytest.approx(5.0)
    assert np.isnan(state.mean_speed[net.graph.index["B"]])  # nobody on it
    unknown = road_state(net, np.array([[100.0, 3.0]]), np.zeros((1, 2)), np.array([np.nan]))
    assert unknown.road[0] >= 0  # no heading: the nearest road in any direction


def test_following_the_road_goes_straight_on_or_takes_the_given_turn_and_stops_at_a_dead_end():
    net = junction()
    a, n = net.graph.index["A"], net.graph.index["N"]
    road, along = np.array([a, a, a, -1]), np.array([150.0, 150.0, 150.0, 0.0])
    straight = follow_roads(net, road, along, np.array([30.0, 100.0, 1000.0, 10.0]))
    assert np.allclose(straight[0], [180.0, 0.0]) and np.allclose(straight[1], [250.0, 0.0])
    assert np.allclose(straight[2], [400.0, 0.0])  # the end of B: a dead end
    assert np.all(np.isnan(straight[3]))  # on no road
    table = net.straight.copy()
    table[a] = n
    left = follow_roads(net, road[:2], along[:2], np.array([30.0, 100.0]), table)
    assert np.allclose(left[1], [200.0, 50.0])


def test_the_turn_table_takes_the_most_frequent_turn_among_the_junctions_connections():
    net = junction()
    a, b, n, s, back = (net.graph.index[e] for e in ("A", "B", "N", "S", "A_back"))
    seen = np.array([[a, a, a, a, a, a], [n, n, s, b, back, back]])  # A -> A_back twice: not a connection
    table = turn_table(seen, net)
    assert table[a] == n and table[b] == net.straight[b]


def _layout_snapshot(t, vehicles):
    return make_snapshot(t, vehicles, servers={"w": (100.0, 0.0), "e": (350.0, 0.0), "n": (200.0, 250.0)},
                         coverage=180.0, rsus={})


def test_a_standing_vehicle_keeps_the_road_it_drove_on_and_the_graph_holds_the_roads(config):
    net = junction()
    history = TwinHistory(config, roads=net)
    history.observe(_layout_snapshot(0.0, {"v": (150.0, 1.0, 10.0, 0.0), "u": (120.0, 0.0, -8.0, 0.0)}))
    obs = history.observe(_layout_snapshot(5.0, {"v": (190.0, 1.0, 0.0, 0.0), "u": (80.0, 0.0, -8.0, 0.0)}))
    assert [net.graph.ids[i] for i in obs.road.road] == ["A", "A_back"]  # v stands: the heading it came with
    roads_cfg = replace(config, roads=True)
    data = build_graph(obs, roads_cfg)
    assert data[ROAD].x.shape == (len(net), node_dims(roads_cfg)[ROAD])
    assert data[VR].edge_index.tolist() == [[0, 1], [net.graph.index["A"], net.graph.index["A_back"]]]
    assert data[RV].edge_index.flip(0).tolist() == data[VR].edge_index.tolist()
    a, b = net.graph.index["A"], net.graph.index["B"]
    assert [b, a] in data[RR_NEXT].edge_index.t().tolist() and [a, b] in data[RR_PREV].edge_index.t().tolist()
    occupancy = data[ROAD].x[:, 7]
    assert occupancy[a] > 0 and occupancy[b] == 0
    for et, d in edge_dims(roads_cfg).items():
        assert data[et].edge_attr.shape[1] == d and torch.isfinite(data[et].edge_attr).all(), et
    assert torch.isfinite(data[ROAD].x).all()
    # a model reads it, with and without its road relations; a graph without roads is refused
    for model in (ModelConfig(hidden=8), ModelConfig(hidden=8, without_relations=("road",))):
        logits, load = RelationModel(roads_cfg, model)(data)
        assert torch.isfinite(logits).all() and load.shape == (3,)
    with pytest.raises(ValueError, match="road network"):
        build_graph(TwinHistory(config).observe(_layout_snapshot(0.0, {"v": (150.0, 1.0, 10.0, 0.0)})), roads_cfg)


def test_the_road_baselines_send_a_vehicle_where_its_road_leads(config):
    net = junction()
    history = TwinHistory(config, roads=net)
    # on A heading east at 10 m/s, 40 m before the junction: in 30 s it is 260 m on, past the junction
    frames = [history.observe(_layout_snapshot(t, {"v": (120.0 + 10.0 * t, 0.0, 10.0, 0.0),
                                                   "w": (40.0 + 10.0 * t, 0.0, 10.0, 0.0)})) for t in (0.0, 4.0)]
    obs = frames[-1]
    sid = list(obs.snapshot.server_ids)
    assert sid[int(along_road(obs, 30.0)[0])] == "e"  # straight on: into the east server's cell
    # the training period saw this road's vehicles turn left
    later = history.observe(_layout_snapshot(20.0, {"v": (200.0, 120.0, 0.0, 10.0), "w": (360.0, 0.0, 10.0, 0.0)}))
    turned = RoadTurns().fit([frames[-1], later])
    assert turned.transitions == 2  # v: A -> N, w: A -> B
    left_only = RoadTurns().fit([frames[-1], history.observe(_layout_snapshot(
        21.0, {"v": (200.0, 130.0, 0.0, 10.0), "w": (200.0, 30.0, 0.0, 10.0)}))])
    assert sid[int(left_only.predict(obs, 30.0)[0])] == "n"

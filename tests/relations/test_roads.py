"""The road network in the relation graph: map-matching, road state, road-following baselines, road nodes."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from mobility_twin_core.roads import RoadGraph
from mobility_twin_models.relations import RelationModel, TwinHistory, build_graph
from mobility_twin_models.relations.baselines import RoadTurns, along_road
from mobility_twin_models.relations.config import ModelConfig
from mobility_twin_models.relations.graph import (
    ROAD,
    RR_NEXT,
    RR_PREV,
    RSV,
    RV,
    SRD,
    VR,
    edge_dims,
    node_dims,
)
from mobility_twin_models.relations.roads import RoadNetwork, follow_roads, next_hops, road_state, turn_table
from tests.relations.conftest import make_snapshot

# a junction at (200, 0): east in from the west (A, 0 -> 200), its reverse (A_back), and three ways out:
# straight on east (B), left to the north (N), right to the south (S); 200 m each, one lane, 14 m/s
LINES = {"A": ((0.0, 0.0), (200.0, 0.0)), "A_back": ((200.0, 0.0), (0.0, 0.0)), "B": ((200.0, 0.0), (400.0, 0.0)),
         "N": ((200.0, 0.0), (200.0, 200.0)), "S": ((200.0, 0.0), (200.0, -200.0))}
SUCCESSORS = {"A": ("B", "N", "S"), "A_back": (), "B": (), "N": (), "S": ()}


def junction() -> RoadNetwork:
    return _network(LINES, SUCCESSORS)


def _network(lines: dict, successors: dict) -> RoadNetwork:
    """Roads of 200 m, one lane, 14 m/s, on the given lines, with the given successors."""
    ids = tuple(lines)
    index = {e: i for i, e in enumerate(ids)}
    succ = [sorted(index[s] for s in successors[e]) for e in ids]
    ptr = np.concatenate([[0], np.cumsum([len(s) for s in succ])]).astype(np.int64)
    graph = RoadGraph(ids, np.full(len(ids), 200.0), np.full(len(ids), 14.0), np.ones(len(ids), np.int64), ptr,
                      np.asarray([i for s in succ for i in s], np.int64),
                      tuple((np.asarray(lines[e], float),) for e in ids))
    return RoadNetwork.of(graph)


def test_the_network_knows_each_roads_straight_on_successor_and_its_turns():
    net = junction()
    a, b, n, s = (net.graph.index[e] for e in ("A", "B", "N", "S"))
    assert net.straight[a] == b and net.straight[b] == -1  # B is a dead end
    turns = {int(j): tuple(np.round(t, 6)) for i, j, t in zip(*net.succ, net.turn, strict=True) if i == a}
    assert turns[b] == (1.0, 0.0) and turns[n] == (0.0, 1.0) and turns[s] == (0.0, -1.0)  # left is +sin


def test_a_closure_takes_consecutive_blocks_straight_on_and_the_roads_the_other_way():
    net = junction()
    a = net.graph.index["A"]
    assert net.closure_edges(a, 2) == ["A", "B", "A_back"]  # B is straight on; nothing runs back along B
    assert net.closure_edges(a, 1) == ["A", "A_back"]
    assert net.closure_edges(net.graph.index["B"], 3) == ["B"]  # a dead end: the street ends there


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


def test_a_vehicle_that_shares_its_destination_follows_the_fastest_path_there():
    net = junction()
    a, b, n, s, back = (net.graph.index[e] for e in ("A", "B", "N", "S", "A_back"))
    hops = next_hops(net)
    assert hops.shape == (len(net), len(net)) and hops[n, a] == n and hops[s, a] == s and hops[b, a] == b
    assert hops[n, n] == -1 and hops[back, a] == -2  # at the destination; no way back from A to A_back
    road, along = np.array([a, a, a, a, a]), np.full(5, 150.0)
    row = np.array([n, s, n, back, -1])  # the last shares nothing
    point = follow_roads(net, road, along, np.array([100.0, 100.0, 1000.0, 100.0, 100.0]), route=(hops, row))
    assert np.allclose(point[0], [200.0, 50.0]) and np.allclose(point[1], [200.0, -50.0])
    assert np.allclose(point[2], [200.0, 200.0])  # stops at the end of its destination
    assert np.allclose(point[3], [250.0, 0.0]) and np.allclose(point[4], [250.0, 0.0])  # unreachable: straight on


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
    # v is alone on A: nobody ahead, the road's end about 10 m on
    assert data[VR].edge_attr[0, 5:].tolist() == pytest.approx([0.0, 0.0, 10.0 / 200.0], abs=0.01)
    for et, d in edge_dims(roads_cfg).items():
        assert data[et].edge_attr.shape[1] == d and torch.isfinite(data[et].edge_attr).all(), et
    assert torch.isfinite(data[ROAD].x).all()
    # a model reads it, with and without its road relations
    for model in (ModelConfig(hidden=8), ModelConfig(hidden=8, without_relations=("road",))):
        logits, load = RelationModel(roads_cfg, model)(data)
        assert torch.isfinite(logits).all() and load.shape == (3,)
    # a twin without a road network gets no road nodes, and the same model reads its graph
    bare = build_graph(TwinHistory(config).observe(_layout_snapshot(0.0, {"v": (150.0, 1.0, 10.0, 0.0)})), roads_cfg)
    assert ROAD not in bare.node_types and VR not in bare.edge_types
    logits, load = RelationModel(roads_cfg, ModelConfig(hidden=8))(bare)
    assert torch.isfinite(logits).all() and load.shape == (3,)


def test_the_road_parts_that_stand_still_are_built_once_per_server_set_and_follow_a_new_one(config):
    net = junction()
    roads_cfg = replace(config, roads=True)
    history = TwinHistory(config, roads=net)
    first = build_graph(history.observe(_layout_snapshot(0.0, {"v": (150.0, 1.0, 10.0, 0.0)})), roads_cfg)
    second = build_graph(history.observe(_layout_snapshot(5.0, {"v": (160.0, 1.0, 2.0, 0.0)})), roads_cfg)
    # the same server set: the road-to-road relations are the same tensors, the road state is not
    assert second[RR_NEXT].edge_attr is first[RR_NEXT].edge_attr
    assert not torch.equal(second[ROAD].x, first[ROAD].x)
    # servers moved: the roads' cells follow (a twin's server set changes when a server is added)
    moved = _layout_snapshot(10.0, {"v": (190.0, 1.0, 10.0, 0.0)})
    moved = replace(moved, server_xy=moved.server_xy + np.array([60.0, 0.0]))
    third = build_graph(TwinHistory(config, roads=net).observe(moved), roads_cfg)
    fresh = build_graph(TwinHistory(config, roads=net).observe(moved), roads_cfg)
    assert not torch.equal(third[RSV].edge_index, first[RSV].edge_index) or \
        not torch.equal(third[RSV].edge_attr, first[RSV].edge_attr)
    for et in (RR_NEXT, RR_PREV, RSV, SRD):
        assert torch.equal(third[et].edge_attr, fresh[et].edge_attr)


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


def test_a_vehicle_on_a_turn_lane_is_offered_only_the_roads_that_lane_leads_to(config):
    base = junction()
    g = base.graph
    a, b, n, s = (g.index[e] for e in ("A", "B", "N", "S"))
    # A gets two lanes: the right one (y = -1.6) goes straight on or right, the left one (y = +1.6) turns left
    shapes = list(g.shapes)
    shapes[a] = (np.array([[0.0, -1.6], [200.0, -1.6]]), np.array([[0.0, 1.6], [200.0, 1.6]]))
    lane_succ = [tuple(tuple(g.successors(e).tolist()) for _ in lanes) for e, lanes in enumerate(shapes)]
    lane_succ[a] = ((b, s), (n,))
    # a traffic light J controls A's turns: link 0 straight on, 1 right, 2 left
    lane_sig = [tuple(tuple(("", -1) for _ in lane) for lane in lanes) for lanes in lane_succ]
    lane_sig[a] = ((("J", 0), ("J", 1)), (("J", 2),))
    net = RoadNetwork.of(replace(g, shapes=tuple(shapes), lanes=np.array([len(x) for x in shapes]),
                                 lane_successors=tuple(lane_succ), lane_signals=tuple(lane_sig)))
    state = road_state(net, np.array([[150.0, 1.5], [150.0, -1.5], [300.0, 0.0], [50.0, 90.0]]),
                       np.tile([10.0, 0.0], (4, 1)), np.zeros(4))
    assert state.road.tolist()[:3] == [a, a, b] and state.lane.tolist()[:3] == [1, 0, 0] and state.road[3] == -1
    pairs = {(int(v), int(r)) for v, r, _ in net.reachable(state.road, state.lane).T}
    assert pairs == {(0, n), (1, b), (1, s)}  # B is a dead end: nothing ahead; vehicle 3 is on no road
    unknown = {(int(v), int(r)) for v, r, o in net.reachable(np.array([a]), np.array([-1])).T if o == -1}
    assert unknown == {(0, b), (0, n), (0, s)}  # the lane not known: every road of the junction
    from mobility_twin_models.relations.graph import REACH
    from mobility_twin_sim.backend import SignalStates

    # green straight on and right, red left, 12 s to the next switch
    lights = SignalStates(0.0, ("J",), np.zeros(1), np.zeros(1), ("Ggr",), np.zeros(1, np.int64), np.array([12.0]))
    history = TwinHistory(config, roads=net)
    snapshot = _layout_snapshot(0.0, {"v": (150.0, 1.5, 10.0, 0.0), "u": (150.0, -1.5, 10.0, 0.0)})
    for signals, lit in ((lights, True), (None, False)):
        obs = history.observe(snapshot, signals)
        data = build_graph(obs, replace(config, roads=True))
        assert sorted(data[REACH].edge_index.t().tolist()) == sorted([[n, 0], [b, 1], [s, 1]])
        attr = {tuple(e): a_ for e, a_ in zip(data[REACH].edge_index.t().tolist(), data[REACH].edge_attr.tolist(),
                                              strict=True)}
        assert attr[(n, 0)][:3] == pytest.approx([0.0, 1.0, 1.0]) and attr[(s, 1)][:3] == pytest.approx([0.0, -1.0, 0.5])
        if lit:  # known: red for the left turn, green straight on, 12 s of the 30 s horizon to the switch
            assert attr[(n, 0)][5:8] == pytest.approx([1.0, 0.0, 0.4]) and attr[(b, 1)][5:8] == pytest.approx([1.0, 1.0, 0.4])
        else:  # no phases known: nothing claimed
            assert attr[(n, 0)][5:8] == [0.0, 0.0, 0.0] and attr[(b, 1)][5:8] == [0.0, 0.0, 0.0]
        # no turn seen yet: each of A's three ways out a third, resting on nothing
        assert attr[(n, 0)][8:] == pytest.approx([1 / 3, 0.0]) and attr[(s, 1)][8:] == pytest.approx([1 / 3, 0.0])


def test_the_history_counts_each_junctions_turns_and_forgets_them_with_its_half_life(config):
    from mobility_twin_models.relations.graph import REACH
    from mobility_twin_models.relations.roads import TurnCounts

    net = junction()
    a, b, n, s = (net.graph.index[e] for e in ("A", "B", "N", "S"))
    assert net.connection(np.array([a, a, b, -1]), np.array([n, b, a, n])).tolist()[2:] == [-1, -1]
    row, succ = net.successors(np.array([b, a, a]))
    assert row.tolist() == [1, 1, 1, 2, 2, 2] and sorted(succ[:3].tolist()) == sorted([b, n, s])  # B: a dead end
    history = TwinHistory(replace(config, turn_half_life_s=60.0), roads=net)
    # three vehicles come along A; at t = 10 s two have turned left onto N, one went on to B
    history.observe(_layout_snapshot(0.0, {"v": (150.0, 1.0, 10.0, 0.0), "u": (160.0, 1.0, 10.0, 0.0),
                                           "w": (170.0, 1.0, 10.0, 0.0)}))
    obs = history.observe(_layout_snapshot(10.0, {"v": (201.0, 50.0, 0.0, 10.0), "u": (201.0, 60.0, 0.0, 10.0),
                                                  "w": (260.0, 1.0, 10.0, 0.0), "x": (100.0, 1.0, 10.0, 0.0)}))
    share = dict(zip(net.succ[1][net.succ[0] == a].tolist(), obs.road.turn_share[net.succ[0] == a], strict=True))
    # two of three turns to N, plus a prior of one turn spread over the three ways
    assert share[n] == pytest.approx((2 + 1 / 3) / 4) and share[b] == pytest.approx((1 + 1 / 3) / 4)
    assert share[s] == pytest.approx((1 / 3) / 4) and obs.road.turns_seen[a] == pytest.approx(3.0)
    # the newcomer x on A receives them with its lane's ways out
    data = build_graph(obs, replace(config, roads=True))
    x = int(np.flatnonzero(obs.snapshot.vehicle_ids == "x")[0])
    attr = {r: a_[8:] for (r, v), a_ in zip(data[REACH].edge_index.t().tolist(), data[REACH].edge_attr.tolist(),
                                           strict=True) if v == x}
    assert attr[n] == pytest.approx([(2 + 1 / 3) / 4, 3 / 13]) and attr[s] == pytest.approx([(1 / 3) / 4, 3 / 13])
    # a half-life later, half as many turns seen, the same shares
    later = history.observe(_layout_snapshot(70.0, {"x": (150.0, 1.0, 10.0, 0.0)}))
    assert later.road.turns_seen[a] == pytest.approx(1.5)
    assert later.road.turn_share[net.connection(np.array([a]), np.array([n]))[0]] == pytest.approx((1 + 1 / 3) / 2.5)
    with pytest.raises(ValueError, match="half_life_s"):
        TurnCounts(net, 0.0)


def test_each_vehicle_on_a_road_knows_the_queue_ahead_of_it():
    from mobility_twin_models.relations.graph import _queue_ahead

    # road 0: four vehicles at 10, 50, 60 and 90 m of 100 m, the two front ones standing; road 1: one at 30 m
    road = np.array([0, 1, 0, 0, 0])
    along = np.array([50.0, 30.0, 90.0, 10.0, 60.0])
    standing = np.array([False, False, True, False, True])
    left = np.array([50.0, 170.0, 10.0, 90.0, 40.0])
    ahead, standing_ahead, gap = _queue_ahead(road, along, standing, left)
    assert ahead.tolist() == [2, 0, 0, 3, 1] and standing_ahead.tolist() == [2, 0, 0, 2, 1]
    assert gap.tolist() == pytest.approx([10.0, 170.0, 10.0, 40.0, 30.0])
    assert [len(x) for x in _queue_ahead(*(np.zeros(0),) * 4)] == [0, 0, 0]


def test_a_candidate_pair_hears_the_roads_by_which_the_vehicle_may_enter_that_cell(config):
    from mobility_twin_models.relations.graph import CAND

    # A then B east; after B, on east (C) or left (D); each road's end in its own server's cell
    net = _network({"A": ((0.0, 0.0), (200.0, 0.0)), "B": ((200.0, 0.0), (400.0, 0.0)),
                    "C": ((400.0, 0.0), (600.0, 0.0)), "D": ((400.0, 0.0), (400.0, 200.0))},
                   {"A": ("B",), "B": ("C", "D"), "C": (), "D": ()})
    servers = {"s0": (110.0, 0.0), "s1": (300.0, 0.0), "s2": (540.0, 0.0), "s3": (400.0, 250.0)}
    snapshot = make_snapshot(0.0, {"v": (150.0, 1.0, 10.0, 0.0)}, servers, coverage=180.0, rsus={})
    roads_cfg = replace(config, roads=True)
    data = build_graph(TwinHistory(config, roads=net).observe(snapshot), roads_cfg)
    cand = data[CAND]
    server_of_pair = cand.edge_index[1]
    heard = {(net.graph.ids[r], str(snapshot.server_ids[int(server_of_pair[p_])])): a_
             for r, p_, a_ in zip(cand.via_road.tolist(), cand.via_pair.tolist(), cand.via_attr.tolist(), strict=True)}
    # its own road into s0's cell; B, where its lane leads, into s1's; the two ways after B, each taken by
    # half of B's vehicles (none seen yet), into s2's and s3's
    assert set(heard) == {("A", "s0"), ("B", "s1"), ("C", "s2"), ("D", "s3")}
    assert heard[("A", "s0")] == pytest.approx([1, 0, 0, 1.0, 0]) and heard[("B", "s1")] == pytest.approx([0, 1, 0, 1.0, 0])
    assert heard[("C", "s2")] == pytest.approx([0, 0, 1, 0.5, 0]) and heard[("D", "s3")] == pytest.approx([0, 0, 1, 0.5, 0])
    # the GNN's scorer reads them; the MLP, which has no graph, does not (nor a GNN without the roads)
    other = data.clone()
    other[CAND].via_attr = torch.rand_like(cand.via_attr)
    for model, reads in ((ModelConfig(hidden=8), True), (ModelConfig(hidden=8, message_passing=False), False),
                         (ModelConfig(hidden=8, without_relations=("road",)), False)):
        torch.manual_seed(0)
        net_ = RelationModel(roads_cfg, model)
        assert torch.equal(net_(data)[0], net_(other)[0]) != reads, model


def test_the_online_learner_puts_the_live_twin_on_its_roads_when_its_model_has_them(config):
    from mobility_twin_models.relations import RelationLearner, TrainConfig
    from mobility_twin_models.relations.online import OnlineRelationLearner

    net = junction()
    snapshot = _layout_snapshot(0.0, {"v": (150.0, 1.0, 10.0, 0.0), "u": (120.0, 0.0, -8.0, 0.0)})
    online = OnlineRelationLearner(RelationLearner(replace(config, roads=True), ModelConfig(hidden=8), TrainConfig()),
                                   roads=net)
    result = online.observe(snapshot, signals=None)
    assert ROAD in result.graph.node_types and result.graph[ROAD].num_nodes == len(net)
    assert [net.graph.ids[i] for i in result.obs.road.road] == ["A", "A_back"]
    assert len(result.predictions.server) == 2
    # a model without road relations is not given the roads: no map-matching, no road nodes
    plain = OnlineRelationLearner(RelationLearner(config, ModelConfig(hidden=8), TrainConfig()), roads=net)
    result = plain.observe(snapshot)
    assert result.obs.road is None and ROAD not in result.graph.node_types

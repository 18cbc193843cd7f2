"""Learning: a relation only the graph shows is learned by the GNN and not by the MLP without the graph."""

import pytest
import torch
from torch_geometric.data import HeteroData

from mobility_twin_models.relations import GraphConfig, ModelConfig, RelationLearner, TrainConfig
from mobility_twin_models.relations.baselines import LoadScore
from mobility_twin_models.relations.graph import (
    CAND,
    CANDIDATE_DIM,
    EDGE_DIMS,
    FOLLOWS,
    MESSAGE_EDGE_TYPES,
    SERVER,
    SV,
    VS,
    node_dims,
)

CONFIG = GraphConfig(load_lags=2)


def synthetic_graph(seed: int, n_vehicles: int = 40, n_servers: int = 8) -> HeteroData:
    """Servers whose future load is their load plus twice the number of *flagged* vehicles they serve.

    A vehicle's flag is its first feature; a server's own features (position, load lags) carry no trace of
    its vehicles' flags, so only messages along the vehicle -> server association can tell the server.
    """
    g = torch.Generator().manual_seed(seed)
    dims = node_dims(CONFIG)
    data = HeteroData()
    x_v = torch.randn(n_vehicles, dims["vehicle"], generator=g)
    flag = (torch.rand(n_vehicles, generator=g) < 0.3).float()
    x_v[:, 0] = flag
    serving = torch.randint(0, n_servers, (n_vehicles,), generator=g)
    load = torch.bincount(serving, minlength=n_servers).float()
    data["vehicle"].x = x_v
    data["vehicle"].serving = serving
    data["vehicle"].y_server = serving.clone()
    data["vehicle"].mask = torch.ones(n_vehicles, dtype=torch.bool)
    x_s = torch.randn(n_servers, dims["server"], generator=g)
    x_s[:, 4:6] = load.unsqueeze(1) / CONFIG.load_scale  # the load lags: the current count, no flags
    data["server"].x = x_s
    data["server"].load = load
    data["server"].y_load = load + 2.0 * torch.bincount(serving, weights=flag, minlength=n_servers)
    data["server"].mask = torch.ones(n_servers, dtype=torch.bool)
    data["rsu"].x = torch.zeros(0, dims["rsu"])
    vs = torch.stack([torch.arange(n_vehicles), serving])
    # every message relation but `follows`; only the association (served_by and its reverse) has edges
    association = {VS: vs, SV: vs.flip(0)}
    for et in MESSAGE_EDGE_TYPES:
        if et == FOLLOWS:
            continue
        index = association.get(et, torch.zeros(2, 0, dtype=torch.long))
        data[et].edge_index = index
        data[et].edge_attr = torch.zeros(index.shape[1], EDGE_DIMS[et])
    data[CAND].edge_index = vs
    data[CAND].edge_attr = torch.zeros(n_vehicles, CANDIDATE_DIM)
    return data


def load_mae(learner: RelationLearner, graphs) -> float:
    score = LoadScore()
    for g in graphs:
        score.add(g, learner.predict(g).load)
    return score.mae


def test_gnn_learns_a_relation_that_an_mlp_without_the_graph_cannot_see():
    train = [synthetic_graph(i) for i in range(24)]
    test = [synthetic_graph(1000 + i) for i in range(8)]
    maes = {}
    for name, model in (("gnn", ModelConfig(hidden=32)), ("mlp", ModelConfig(hidden=32, message_passing=False)),
                        ("gnn_without_served_by", ModelConfig(hidden=32, without_relations=("served_by",)))):
        learner = RelationLearner(CONFIG, model, TrainConfig(lr=1e-2, seed=0))
        learner.fit(train, 300)
        maes[name] = load_mae(learner, test)
    # the flagged vehicles add 2 * 0.3 * 5 = 3 vehicles per server on average: not knowing them costs ~2
    assert maes["gnn"] < 0.5, maes
    assert maes["mlp"] > 1.2, maes
    assert maes["gnn"] < maes["mlp"] / 3
    # the ablation of the one relation that carries the flags to the servers is as blind as the MLP
    assert maes["gnn_without_served_by"] > 1.2, maes


def test_an_ablation_of_an_unknown_relation_is_refused_with_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown relation\(s\) \['nearby'\].*'follows'"):
        RelationLearner(CONFIG, ModelConfig(without_relations=("nearby",)), TrainConfig())


def test_leaving_out_a_node_type_leaves_out_every_relation_that_touches_it():
    full = RelationLearner(CONFIG, ModelConfig(hidden=8), TrainConfig()).model.encoder.edge_dims
    kept = RelationLearner(CONFIG, ModelConfig(hidden=8, without_relations=("server",)),
                           TrainConfig()).model.encoder.edge_dims
    assert any(SERVER in (et[0], et[2]) for et in full)
    assert set(kept) == {et for et in full if SERVER not in (et[0], et[2])} and kept
    pred = RelationLearner(CONFIG, ModelConfig(hidden=8, without_relations=("server",)),
                           TrainConfig()).predict(synthetic_graph(0))
    assert pred.server.shape == (40,)  # the servers keep their own features: the heads still score them


def test_model_output_shapes_match_the_graph():
    data = synthetic_graph(0)
    learner = RelationLearner(CONFIG, ModelConfig(hidden=16), TrainConfig())
    pred = learner.predict(data)
    assert pred.server.shape == (40,) and pred.probability.shape == (40,)
    assert pred.load.shape == (8,) and pred.candidate_prob.shape == (40,)
    # one candidate per vehicle: it is certain
    assert torch.allclose(pred.probability, torch.ones(40))
    assert torch.equal(pred.server, data["vehicle"].serving)


def test_the_grouped_relation_sum_is_heteroconv_with_its_gradients():
    """relation_sum computes HeteroConv(aggr="sum") over RelationConvs (sum and mean aggregation, a relation
    without edges, two relations into one node type), forward and backward."""
    from torch_geometric.nn import HeteroConv

    from mobility_twin_models.relations.nn.relation_conv import RelationConv, relation_sum

    g = torch.Generator().manual_seed(3)
    sizes = {"a": 7, "b": 5}
    relations = {("a", "near", "a"): ("mean", 30), ("a", "to", "b"): ("sum", 12), ("b", "back", "a"): ("sum", 12),
                 ("b", "none", "a"): ("sum", 0)}
    torch.manual_seed(3)
    convs = {et: RelationConv(6, 6, edge_dim=3, aggr=aggr) for et, (aggr, _) in relations.items()}
    hetero = HeteroConv(convs, aggr="sum")
    x = {t: torch.randn(n, 6, generator=g, requires_grad=True) for t, n in sizes.items()}
    edges = {et: torch.stack([torch.randint(0, sizes[et[0]], (e,), generator=g),
                              torch.randint(0, sizes[et[2]], (e,), generator=g)]) for et, (_, e) in relations.items()}
    attrs = {et: torch.randn(e, 3, generator=g) for et, (_, e) in relations.items()}
    reference = hetero(x, edges, edge_attr_dict=attrs)
    grouped = relation_sum(hetero.convs, x, edges, attrs)
    assert set(grouped) == set(reference) == {"a", "b"}
    with torch.no_grad():  # as in a prediction, which passes over the relation without edges
        predicted = relation_sum(hetero.convs, x, edges, attrs)
    for t in reference:
        assert torch.allclose(grouped[t], reference[t], atol=1e-5), t
        assert torch.allclose(predicted[t], reference[t], atol=1e-5), t
    params = [p for p in hetero.parameters()] + list(x.values())
    g_ref = torch.autograd.grad(sum((o ** 2).sum() for o in reference.values()), params)
    g_new = torch.autograd.grad(sum((o ** 2).sum() for o in grouped.values()), params)
    for a, b in zip(g_ref, g_new, strict=True):
        assert torch.allclose(a, b, atol=1e-4)


def test_a_process_that_makes_relation_convs_leaves_no_rendered_source_in_the_temporary_directory(tmp_path):
    """PyG renders RelationConv's propagate into a .py in the temporary directory when the first one is made
    in a process and never removes it; the class removes it (the module stays imported and computes)."""
    import os
    import subprocess
    import sys

    code = ("import torch\n"
            "from mobility_twin_models.relations.nn.relation_conv import RelationConv\n"
            "convs = [RelationConv(4, 4, edge_dim=2) for _ in range(3)]\n"
            "out = convs[0](torch.ones(3, 4), torch.tensor([[0, 1], [1, 2]]), torch.ones(2, 2))\n"
            "assert out.shape == (3, 4) and bool(torch.isfinite(out).all())\n"
            "print(type(convs[0]).propagate.__module__)\n")
    env = dict(os.environ, TMPDIR=str(tmp_path))
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("RelationConv_propagate")  # PyG's rendered propagate ran
    assert not list(tmp_path.glob("*RelationConv_propagate_*.py"))

"""The compiled forward pass (RelationModel.compile_predict): the eager pass's predictions, on graphs of every
size, after new weights, compiled once."""

from __future__ import annotations

import copy

import pytest
import torch
from torch._dynamo.utils import counters

from mobility_twin_models.relations import GraphConfig, ModelConfig, RelationLearner, TrainConfig
from mobility_twin_models.relations.graph import CAND, FOLLOWS, RSU, RSV, SRD, random_graph
from mobility_twin_models.relations.online import OnlineRelationLearner

from .conftest import make_snapshot

CONFIG = GraphConfig(horizon_s=30.0, candidate_radius_m=400.0, roads=True, load_lags=3)


def _model(seed: int):
    torch.manual_seed(seed)
    return RelationLearner(CONFIG, ModelConfig(hidden=8), TrainConfig()).model


def _assert_same(compiled, eager, graph) -> None:
    calls = compiled.compiled.calls
    got, want = compiled.predict(graph), eager.predict(graph)
    assert compiled.compiled.calls == calls + 1  # the compiled pass made it, not the eager fallback
    torch.testing.assert_close(got.candidate_prob, want.candidate_prob, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(got.load, want.load, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(got.probability, want.probability, atol=1e-5, rtol=1e-4)
    # the same server wherever the best candidate is not within rounding of the second
    probs = want.candidate_prob
    v = graph[CAND].edge_index[0]
    second = torch.stack([probs[v == i].topk(2).values[1] if int((v == i).sum()) > 1 else torch.tensor(0.0)
                          for i in range(len(want.server))])
    clear = want.probability - second > 1e-4
    assert torch.equal(got.server[clear], want.server[clear])
    assert bool(clear.float().mean() > 0.9)


def _without(graph, edge_type):
    graph = copy.copy(graph)
    graph[edge_type].edge_index = torch.zeros((2, 0), dtype=torch.long)
    graph[edge_type].edge_attr = graph[edge_type].edge_attr[:0]
    return graph


@pytest.fixture(scope="module")
def compiled_model():
    model = _model(0)
    before = counters["stats"]["unique_graphs"]
    assert model.compile_predict(random_graph(CONFIG)) is None
    assert counters["stats"]["unique_graphs"] == before + 1
    return model, before


def test_compiled_pass_predicts_as_the_eager_one_on_graphs_of_every_size_without_compiling_again(compiled_model):
    model, before = compiled_model
    eager = copy.deepcopy(model)
    assert eager.compiled is None  # a copy predicts eagerly
    for n, seed in ((5, 1), (40, 2), (300, 3)):
        _assert_same(model, eager, random_graph(CONFIG, vehicles=n, seed=seed))
    # a slot without any vehicles that followed one another, a site with one RSU: padded, not recompiled
    one_rsu = random_graph(CONFIG, vehicles=30, seed=4)
    one_rsu[RSU].x = one_rsu[RSU].x[:1]
    for et in one_rsu.edge_types:
        if RSU in (et[0], et[-1]):
            keep = one_rsu[et].edge_index[0 if et[0] == RSU else 1] == 0
            one_rsu[et].edge_index = one_rsu[et].edge_index[:, keep]
            one_rsu[et].edge_attr = one_rsu[et].edge_attr[keep]
    # one tensor for two relations' features, as a twin's static road-server relations have (both ways)
    shared = random_graph(CONFIG, vehicles=30, seed=10)
    shared[RSV].edge_attr = shared[SRD].edge_attr
    for graph in (_without(random_graph(CONFIG, vehicles=30, seed=5), FOLLOWS), one_rsu, shared):
        _assert_same(model, eager, graph)
    # new weights (as the online learner publishes them) reach the compiled pass
    fresh = _model(7).state_dict()
    model.load_state_dict(fresh)
    eager.load_state_dict(fresh)
    _assert_same(model, eager, random_graph(CONFIG, vehicles=50, seed=6))
    assert counters["stats"]["unique_graphs"] == before + 1
    assert model.compiled.eager_fallbacks == 0 and model.compiled.error is None


def test_a_graph_with_other_relations_is_predicted_eagerly(compiled_model):
    model, _ = compiled_model
    calls = model.compiled.calls
    no_roads = random_graph(GraphConfig(horizon_s=30.0, candidate_radius_m=400.0, load_lags=3), vehicles=10)
    others = model.compiled.other_graphs
    predictions = model.predict(no_roads)  # without road nodes: the eager pass, which reads what there is
    assert model.compiled.calls == calls and model.compiled.other_graphs == others + 1
    assert predictions.server.shape == (10,) and bool((predictions.server >= 0).all())


@pytest.mark.parametrize("roads", [False, True], ids=["plain", "road_model_without_a_map"])
def test_online_learner_compiles_its_prediction_copy_and_keeps_predicting(roads):
    # a model with road relations on a twin without a road network: graphs without road nodes, compiled for
    config = GraphConfig(vehicle_radius_m=50.0, candidate_radius_m=400.0, horizon_s=2.0, load_lags=3, roads=roads)
    online = OnlineRelationLearner(RelationLearner(config, ModelConfig(hidden=8), TrainConfig()))
    vehicles = {f"v{i}": (20.0 * i, 5.0 * (i % 3), 10.0, 1.0) for i in range(12)}
    first = online.observe(make_snapshot(0.0, vehicles))
    assert online.compiled is None
    assert online.compile() is None
    moved = {k: (x + 10.0, y, vx, vy) for k, (x, y, vx, vy) in vehicles.items()}
    second = online.observe(make_snapshot(1.0, moved))
    assert online.compiled.calls == 2  # the warm-up and this slot
    want = online.learner.model.predict(second.graph)
    torch.testing.assert_close(second.predictions.candidate_prob, want.candidate_prob, atol=1e-5, rtol=1e-4)
    assert len(first.predictions.server) == len(second.predictions.server) == 12


def test_a_graph_the_compiled_program_does_not_fit_is_predicted_eagerly_not_compiled_again():
    model = _model(1)
    assert model.compile_predict(random_graph(CONFIG)) is None
    eager = copy.deepcopy(model)
    before = counters["stats"]["unique_graphs"]
    # a broken graph (an edge to a vehicle that is not there): the eager pass says so, the program goes on
    broken = random_graph(CONFIG, vehicles=20, seed=8)
    broken[FOLLOWS].edge_index[1, 0] = 99
    with pytest.raises((IndexError, RuntimeError)):
        model.predict(broken)
    assert model.compiled.error is None and model.compiled.eager_fallbacks == 0
    _assert_same(model, eager, random_graph(CONFIG, vehicles=20, seed=9))
    # features laid out column by column: the program would have to be compiled anew; predicted eagerly instead
    odd = random_graph(CONFIG, vehicles=20, seed=10)
    odd["vehicle"].x = odd["vehicle"].x.t().contiguous().t()
    got, want = model.predict(odd), eager.predict(odd)
    torch.testing.assert_close(got.candidate_prob, want.candidate_prob)
    assert counters["stats"]["unique_graphs"] == before
    assert model.compiled.eager_fallbacks == 1 and "recompile" in model.compiled.error.lower()
    assert not model.compiled.takes(model._inputs(random_graph(CONFIG, vehicles=20, seed=11)))  # eager from now on


REPAIR = """
import json, sys
from mobility_twin_models.relations import GraphConfig, ModelConfig, RelationLearner, TrainConfig
from mobility_twin_models.relations.graph import random_graph
config = GraphConfig(roads=True, load_lags=2)
model = RelationLearner(config, ModelConfig(hidden=6), TrainConfig()).model
error = model.compile_predict(random_graph(config))
print(json.dumps({"error": error, "repaired": model.compiled.repaired if model.compiled else None}))
"""


def test_a_compiler_cache_left_damaged_by_a_killed_compile_is_repaired(tmp_path):
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "cache")}

    def run() -> dict:
        done = subprocess.run([sys.executable, "-c", REPAIR], env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads(done.stdout.strip().splitlines()[-1])

    assert run() == {"error": None, "repaired": []}
    libraries = sorted((tmp_path / "cache").rglob("*.main.so"), key=lambda p: p.stat().st_mtime)
    assert libraries
    last = libraries[-1]  # what a compile killed while writing it leaves: the library's size, in zeros
    last.write_bytes(bytes(last.stat().st_size))
    again = run()
    assert again == {"error": None, "repaired": [str(last)]}, again


def test_setup_compiles_the_shipped_model_for_twins_with_and_without_a_road_network(capsys):
    from mobility_twin_models.relations.precompile import main

    assert main([]) == 0  # (make setup has filled the compiler's cache: seconds, not a minute)
    out = capsys.readouterr().out
    assert "with road nodes" in out and "without road nodes" in out and out.count("compiled in") == 2

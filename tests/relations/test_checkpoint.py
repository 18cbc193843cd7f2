"""Checkpoints: save and resume gives identical predictions, and training continues identically."""

import pytest
import torch

from mobility_twin_models.relations import CheckpointError, ModelConfig, RelationLearner, TrainConfig
from tests.relations.test_learning import CONFIG, synthetic_graph


@pytest.mark.parametrize("strategy", ["naive", "replay", "ewc"])
def test_resumed_learner_predicts_and_trains_exactly_like_the_original(tmp_path, strategy):
    graphs = [synthetic_graph(i, n_vehicles=10, n_servers=4) for i in range(6)]
    learner = RelationLearner(CONFIG, ModelConfig(hidden=16), TrainConfig(strategy=strategy, buffer_graphs=4, seed=3))
    learner.fit(graphs, 5)
    learner.end_task(graphs)
    path = learner.save(tmp_path / "relations.pt")
    resumed = RelationLearner.load(path)
    assert resumed.updates == learner.updates == 5
    for g in graphs:
        a, b = learner.predict(g), resumed.predict(g)
        assert torch.equal(a.server, b.server)
        assert torch.equal(a.candidate_prob, b.candidate_prob)
        assert torch.equal(a.load, b.load)
    # the optimiser, the reservoir and the random streams come back too: the next steps are identical
    learner.fit(graphs, 3)
    resumed.fit(graphs, 3)
    for p, q in zip(learner.model.parameters(), resumed.model.parameters(), strict=True):
        assert torch.equal(p, q)


def test_loading_a_file_that_is_not_a_checkpoint_names_it(tmp_path):
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"broken\.pt"):
        RelationLearner.load(bad)


def test_shipped_checkpoint_loads_and_is_small(repo):
    path = repo / "models" / "mobility_twin_models" / "checkpoints" / "relations_gnn.pt"
    if not path.exists():
        pytest.skip("no shipped checkpoint yet")
    assert path.stat().st_size < 5_000_000
    learner = RelationLearner.load(path)
    assert learner.updates > 0
    assert learner.graph_config.horizon_s == 30.0
    assert learner.graph_config.roads  # trained on both worlds: road relations where the twin has a network

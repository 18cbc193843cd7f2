"""Continual learning parts: the replay reservoir stays bounded and fair, EWC anchors, the CL metrics."""

import numpy as np
import pytest
import torch

from mobility_twin_models.relations import (
    EWC,
    ModelConfig,
    RelationLearner,
    ReservoirBuffer,
    TrainConfig,
    continual_metrics,
)
from tests.relations.test_learning import CONFIG, synthetic_graph


def test_reservoir_never_holds_more_than_its_capacity():
    buffer = ReservoirBuffer(10, seed=1)
    for i in range(1000):
        buffer.add(i)
        assert len(buffer) == min(i + 1, 10)
    assert buffer.seen == 1000
    assert len(set(buffer.items)) == 10
    assert len(buffer.sample(50)) == 10


def test_reservoir_keeps_every_item_with_equal_probability():
    n, capacity, trials = 200, 20, 400
    counts = np.zeros(n)
    for seed in range(trials):
        buffer = ReservoirBuffer(capacity, seed=seed)
        for i in range(n):
            buffer.add(i)
        counts[buffer.items] += 1
    inclusion = counts / trials  # each should be capacity / n = 0.1
    assert abs(inclusion[:50].mean() - 0.1) < 0.02  # the oldest quarter keeps its share
    assert abs(inclusion[-50:].mean() - 0.1) < 0.02


def test_reservoir_rejects_a_non_positive_capacity():
    with pytest.raises(ValueError, match="capacity must be an int >= 1, got 0"):
        ReservoirBuffer(0)


def test_replay_learner_buffer_stays_within_its_graph_budget():
    learner = RelationLearner(CONFIG, ModelConfig(hidden=8),
                              TrainConfig(strategy="replay", buffer_graphs=3, replay_graphs=2, graphs_per_step=1))
    graphs = [synthetic_graph(i, n_vehicles=6, n_servers=3) for i in range(8)]
    for g in graphs:
        report = learner.step([g])
        assert len(learner.buffer) <= 3
        assert report.replayed <= 2
    assert learner.buffer.seen == 8
    assert learner.state_nbytes["replay_buffer"] > 0


def test_ewc_penalty_is_zero_at_the_anchor_and_grows_away_from_it():
    learner = RelationLearner(CONFIG, ModelConfig(hidden=8), TrainConfig(strategy="ewc", ewc_lambda=10.0))
    graphs = [synthetic_graph(i, n_vehicles=6, n_servers=3) for i in range(4)]
    learner.end_task(graphs)
    assert float(learner.ewc.penalty(learner.model).detach()) == pytest.approx(0.0)
    with torch.no_grad():
        for p in learner.model.parameters():
            p.add_(0.1)
    assert float(learner.ewc.penalty(learner.model).detach()) > 0.0
    assert all(bool((f >= 0).all()) for f in learner.ewc.fisher.values())


def test_ewc_without_consolidation_adds_nothing():
    model = torch.nn.Linear(2, 1)
    assert float(EWC(100.0).penalty(model)) == 0.0


def test_continual_metrics_of_a_hand_made_accuracy_matrix():
    R = np.array([[0.9, 0.2, 0.1],
                  [0.6, 0.8, 0.3],
                  [0.5, 0.7, 0.9]])
    b = np.array([0.1, 0.1, 0.1])
    m = continual_metrics(R, b)
    assert m["acc"] == pytest.approx((0.5 + 0.7 + 0.9) / 3)
    assert m["bwt"] == pytest.approx(((0.5 - 0.9) + (0.7 - 0.8)) / 2)
    assert m["forgetting"] == pytest.approx(((0.9 - 0.5) + (0.8 - 0.7)) / 2)
    assert m["fwt"] == pytest.approx(((0.2 - 0.1) + (0.3 - 0.1)) / 2)


def test_continual_metrics_reject_a_non_square_matrix():
    with pytest.raises(ValueError, match=r"shape \(2, 3\)"):
        continual_metrics(np.zeros((2, 3)))


def _task_graph(seed: int, sign: float):
    """A synthetic district: the flagged vehicles add (sign = +1) or remove (sign = -1) two vehicles each
    from their server's future load; the district is visible in every server's first feature."""
    g = synthetic_graph(seed, n_vehicles=20, n_servers=5)
    load = g["server"].load
    flagged = g["server"].y_load - load
    g["server"].y_load = load + sign * flagged
    g["server"].x[:, 0] = sign
    return g


def _load_mae(learner, graphs) -> float:
    from mobility_twin_models.relations.baselines import LoadScore

    score = LoadScore()
    for g in graphs:
        score.add(g, learner.predict(g).load)
    return score.mae


def test_replay_forgets_less_than_naive_fine_tuning_when_the_relation_changes_between_tasks():
    task_a = [_task_graph(i, +1.0) for i in range(12)]
    task_b = [_task_graph(100 + i, -1.0) for i in range(12)]
    test_a = [_task_graph(1000 + i, +1.0) for i in range(6)]
    forgetting = {}
    for strategy in ("naive", "replay"):
        learner = RelationLearner(CONFIG, ModelConfig(hidden=32),
                                  TrainConfig(strategy=strategy, lr=1e-2, buffer_graphs=12, replay_graphs=1,
                                              graphs_per_step=1, seed=0))
        learner.fit(task_a, 150)
        learned = _load_mae(learner, test_a)
        learner.fit(task_b, 150)
        forgetting[strategy] = _load_mae(learner, test_a) - learned
    assert forgetting["naive"] > 0.5, forgetting  # the naive learner has overwritten district A
    assert forgetting["replay"] < forgetting["naive"] / 2, forgetting

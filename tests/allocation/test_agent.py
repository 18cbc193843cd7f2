"""The continual DDPG: training improves the reward, replay keeps old regimes, EWC anchors the actor,
learning keeps to its time budget, and a checkpoint resumes exactly."""

import time

import numpy as np
import pytest
import torch

from mobility_twin_models.allocation import (
    AgentConfig,
    AllocationError,
    CheckpointError,
    ContinualConfig,
    ContinualDDPG,
    FairnessWindow,
    VRConfig,
    VRFeatures,
    VRTrace,
)
from mobility_twin_models.allocation.agent import CHECKPOINT_FORMAT, TaskLayout, TaskScorer
from mobility_twin_models.allocation.vr import two_k_average, vr_outcome

# two users on light content: the top level fits, so a good policy sends it to attentive users
SMALL = VRConfig(users=2, complexity=(0.5, 0.7), complexity_schedule=((0, 1.0),), attention_schedule=((0, 0.0),))
FAST = AgentConfig(hidden=(64, 64), batch_size=64, emulated_actions=8, gradient_steps=4, offline_epochs=1, seed=3)


def _logged(config, features, trace, updates):
    window = FairnessWindow(config.users, config.fairness_horizon)
    out = []
    for t in updates:
        p = trace.problem(t)
        out.append((features.encode(p, window), features.emulator(p, window), None, 0.0))
    return out


def _greedy_reward(agent, config, features, trace, updates):
    window = FairnessWindow(config.users, config.fairness_horizon)
    rewards = []
    for t in updates:
        p = trace.problem(t)
        o = vr_outcome(config, p, features.decode(agent.act(features.encode(p, window)), p), window)
        window.push(o.qoe)
        rewards.append(o.reward)
    return float(np.mean(rewards))


def test_training_on_the_twin_improves_the_reward():
    torch.set_num_threads(1)
    trace = VRTrace(SMALL, 700, seed=5)
    features = VRFeatures(SMALL, FAST.share_temperature)
    agent = ContinualDDPG(features.obs_dim, features.act_dim, FAST, ContinualConfig(strategy="naive"))
    held_out = range(500, 700)
    before = _greedy_reward(agent, SMALL, features, trace, held_out)
    agent.fit_offline(_logged(SMALL, features, trace, range(400)), epochs=1, steps_per_state=4)
    after = _greedy_reward(agent, SMALL, features, trace, held_out)
    window = FairnessWindow(SMALL.users, SMALL.fairness_horizon)
    baseline = np.mean([vr_outcome(SMALL, trace.problem(t), two_k_average(SMALL, trace.problem(t)), window).reward
                        for t in held_out])
    assert after > before + 0.02, (before, after)
    assert after > baseline, (after, baseline)


def _filled(strategy, n=600, **kw):
    agent = ContinualDDPG(4, 2, AgentConfig(hidden=(16,), batch_size=16, seed=1),
                          ContinualConfig(strategy=strategy, recent_capacity=100, reservoir_capacity=200, **kw))
    obs = np.arange(n, dtype=np.float32)[:, None].repeat(4, axis=1)
    agent.observe(obs, np.zeros((n, 2)), np.ones(n), obs)
    return agent


def test_replay_keeps_old_regimes_after_the_fifo_forgot_them():
    replay, naive = _filled("replay"), _filled("naive")
    assert replay.buffer.res_obs[:replay.buffer.res_size, 0].min() < 100  # the first 100 are long out of the FIFO
    batch = replay.buffer.sample(64)
    assert (batch.observations[:, 0] < 100).any()
    assert naive.buffer.res_size == 0
    assert (naive.buffer.sample(64).observations[:, 0] >= 500).all()


def test_ewc_adds_the_anchor_gradient_to_the_actor_step():
    agent = _filled("ewc", n=50)
    agent.consolidate()
    lam = agent.continual.ewc_lambda
    for name, p in agent.actor.named_parameters():
        agent.fisher[name] = torch.ones_like(p)
        agent.anchor[name] = p.detach() - 1.0
    agent.actor.zero_grad()
    (agent.actor(torch.zeros(1, 4)).sum() * 0.0).backward()
    for p in agent.actor.parameters():
        assert torch.allclose(p.grad, torch.full_like(p, lam))


def test_learn_keeps_to_its_time_budget():
    agent = _filled("naive", n=200)
    agent.train(3)
    assert agent.learn(0.0) == 0
    t0 = time.perf_counter()
    steps = agent.learn(0.05, max_steps=10_000)
    elapsed = time.perf_counter() - t0
    assert steps > 0
    assert elapsed < 0.05 + 5 * agent.step_s + 0.02
    with pytest.raises(AllocationError, match="budget_s"):
        agent.learn(float("nan"))


def test_checkpoint_round_trip_resumes_exactly(tmp_path):
    agent = _filled("replay_ewc", n=300)
    agent.train(20)
    agent.consolidate()
    path = agent.save(tmp_path / "alloc.pt")
    payload = torch.load(path, weights_only=True)  # a dict of tensors and plain values
    assert payload["format"] == CHECKPOINT_FORMAT == 2 and "actor" in payload and payload["task_layout"] == {}
    resumed = ContinualDDPG.load(path)
    obs = np.random.default_rng(0).normal(size=(32, 4)).astype(np.float32)
    assert np.array_equal(agent.act(obs), resumed.act(obs))
    assert resumed.updates == agent.updates and resumed.buffer.res_size == agent.buffer.res_size
    agent.train(10)
    resumed.train(10)
    assert np.array_equal(agent.act(obs), resumed.act(obs))


def test_a_per_task_actor_resumes_exactly_and_is_permutation_equivariant(tmp_path):
    layout = TaskLayout(slots=4, task_features=3, context=1, task_actions=2)
    agent = ContinualDDPG(layout.obs_dim, layout.act_dim, FAST, ContinualConfig(strategy="replay"),
                          task_layout=layout)
    assert isinstance(agent.actor.mu, TaskScorer)
    rng = np.random.default_rng(1)

    def obs_batch(n):
        x = rng.uniform(0, 1, (n, layout.obs_dim)).astype(np.float32)
        x[:, :layout.slots] = (rng.uniform(0, 1, (n, layout.slots)) < 0.8)  # presence
        return x

    for o in obs_batch(300):
        agent.observe(o[None], rng.uniform(-1, 1, (1, layout.act_dim)), [float(o[4:8].sum())], o[None])
    agent.train(15)
    o = obs_batch(16)
    # permuting the task slots (in every feature block) permutes each task's outputs the same way
    perm = np.array([2, 0, 3, 1])
    cols = np.concatenate([f * 4 + perm for f in range(3)] + [np.array([12])])
    a, b = agent.act(o), agent.act(o[:, cols])
    assert np.allclose(b, a[:, np.concatenate([perm, 4 + perm])], atol=1e-5)
    path = agent.save(tmp_path / "tasks.pt")
    payload = torch.load(path, weights_only=True)
    assert payload["task_layout"] == {"slots": 4, "task_features": 3, "context": 1, "task_actions": 2}
    resumed = ContinualDDPG.load(path)
    assert resumed.task_layout == layout and isinstance(resumed.actor.mu, TaskScorer)
    assert np.array_equal(agent.act(o), resumed.act(o))
    agent.train(5)
    resumed.train(5)
    assert np.array_equal(agent.act(o), resumed.act(o))
    with pytest.raises(AllocationError, match="task layout"):
        ContinualDDPG(layout.obs_dim + 1, layout.act_dim, FAST, task_layout=layout)


def test_loading_something_else_names_the_file(tmp_path):
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"broken\.pt"):
        ContinualDDPG.load(bad)
    with pytest.raises(CheckpointError, match="does not exist"):
        ContinualDDPG.load(tmp_path / "missing.pt")


def test_observations_of_the_wrong_size_are_refused():
    agent = _filled("naive", n=10)
    with pytest.raises(AllocationError, match="features"):
        agent.act(np.zeros(5))


def test_building_and_training_an_agent_leaves_nothing_in_the_temp_dir(tmp_path, monkeypatch):
    """SB3's default logger set-up made an empty SB3-<time> folder in the temp dir for every agent built (610 of
    them in /tmp on the development machine); the agent's logger writes nowhere."""
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.delenv("SB3_LOGDIR", raising=False)
    agent = _filled("naive", n=64)
    assert agent.train(4) == 4
    assert [f.name for f in tmp_path.iterdir() if f.name.startswith("SB3")] == []  # (torch keeps its own cache)

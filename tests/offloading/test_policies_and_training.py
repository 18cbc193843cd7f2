"""Policies through the deficit queue, the actor-critic's training (Algorithm 1), the pool (Algorithm 2)."""

import numpy as np
import pytest
import torch

from mobility_twin_models.offloading import equations as eq
from mobility_twin_models.offloading.agent import (
    ActorCritic,
    ActorCriticPolicy,
    AgentSpec,
    Critic,
    load_checkpoint,
    save_checkpoint,
)
from mobility_twin_models.offloading.config import EnvConfig
from mobility_twin_models.offloading.env import Environment
from mobility_twin_models.offloading.errors import CheckpointError, OffloadingError
from mobility_twin_models.offloading.features import FeatureSpec, state_features
from mobility_twin_models.offloading.oracle import oracle_plan
from mobility_twin_models.offloading.rollout import DriftPlusPenalty, Greedy, NearestFirst, rollout
from mobility_twin_models.offloading.training import OnlineAgent, TrainConfig, train

torch.set_num_threads(1)
SMALL = EnvConfig(users=30, candidates=3).with_(trajectory__slots=30)
TINY_NETS = {"actor_hidden": (32, 32, 16), "critic_hidden": (32, 32, 16)}


@pytest.fixture(scope="module")
def env():
    return Environment(SMALL, seed=3)


@pytest.fixture(scope="module")
def episode(env):
    return env.episode(0, "test")


def test_nearest_first_always_serves_from_the_access_station(episode):
    r = rollout(episode, NearestFirst())
    np.testing.assert_array_equal(r.served, episode.servers[..., 0])
    assert r.metrics()["migration_rate"] == pytest.approx(
        np.mean(np.sum(episode.servers[1:, :, 0] != episode.servers[:-1, :, 0], axis=0)) / episode.n_slots)


def test_rollout_queue_follows_eq12_for_every_user(episode):
    r = rollout(episode, Greedy())
    for u in range(episode.n_users):
        np.testing.assert_allclose(r.queue[:, u], eq.deficit_queue_trace(r.migrated[:, u], 1.0, 0.2))
    assert not r.migrated[0].any()  # the first attachment is free


def test_rollout_rewards_are_eq16_on_the_capped_latency(episode):
    r = rollout(episode, Greedy(), view="twin")
    capped = np.minimum(r.latency_s, episode.deadline_s)
    np.testing.assert_allclose(r.reward, -10.0 * capped - r.queue[:-1] * r.migrated)


def test_greedy_has_the_least_estimated_latency_each_slot(episode):
    r = rollout(episode, Greedy(), view="twin")
    np.testing.assert_allclose(r.latency_s, episode.latency_twin_s.min(axis=-1))


def test_drift_plus_penalty_migrates_less_than_greedy(episode):
    greedy = rollout(episode, Greedy()).metrics()
    dpp = rollout(episode, DriftPlusPenalty(10.0, 1.0)).metrics()
    assert dpp["migration_rate"] < greedy["migration_rate"]


def test_oracle_is_no_worse_than_any_policy_within_the_budget(episode):
    plan, result = oracle_plan(episode)
    oracle = rollout(episode, plan).metrics()
    assert oracle["budget_met"] == 1.0
    for policy in (NearestFirst(), DriftPlusPenalty(10.0, 1.0)):
        m = rollout(episode, policy)
        within = m.migrated.sum(axis=0) <= result.budget
        capped = np.minimum(m.latency_s, episode.deadline_s).sum(axis=0)
        assert np.all(result.objective[within] <= capped[within] + 1e-9)
    assert oracle["avg_latency_s"] <= rollout(episode, NearestFirst()).metrics()["avg_latency_s"]


def test_features_have_the_documented_layout():
    spec = FeatureSpec(2, "extended")
    x = state_features(spec, distance_m=[[100.0, 200.0]], f_est_hz=[[10e9, 5e9]], deviation_hz=[[0.5e9, 0.0]],
                       is_current=[[False, True]], queue=[2.0], cost=1.0, latency_est_s=[[0.1, 0.4]],
                       deadline_s=[0.2])
    assert x.shape == (1, spec.size) == (1, 12)
    assert x[0].tolist() == pytest.approx([0.1, 1.0, 0.5, 0.0, 0.5, 0.2, 0.5, 0.0, 1.0, 2.0, 0.5, 1.0])
    with pytest.raises(OffloadingError, match="not finite"):
        state_features(FeatureSpec(1, "paper"), distance_m=[[np.nan]], f_est_hz=[[1.0]], deviation_hz=[[0.0]],
                       is_current=[[False]], queue=[0.0], cost=1.0)


def test_critic_scores_state_and_action_and_actor_outputs_probabilities():
    agent = ActorCritic(AgentSpec(4, **TINY_NETS), seed=0)
    s = torch.randn(6, agent.spec.features.size)
    p = agent.actor.probabilities(s)
    assert p.shape == (6, 4)
    torch.testing.assert_close(p.sum(dim=1), torch.ones(6))
    q_all = agent.critic.all_actions(s)
    assert q_all.shape == (6, 4)
    torch.testing.assert_close(q_all[:, 2], agent.critic(s, torch.full((6,), 2)))
    assert isinstance(agent.critic, Critic)


def test_training_on_the_twin_improves_reward(env):
    held_out = [env.episode(100 + i, "train") for i in range(2)]

    def score(agent):
        return np.mean([rollout(ep, ActorCriticPolicy(agent, 1.0), view="twin").metrics()["mean_reward"]
                        for ep in held_out])

    agent = ActorCritic(AgentSpec(3, actor_kind="shared", **TINY_NETS), seed=0)
    before = score(agent)
    log = train(agent, lambda i: env.episode(i, "train"),
                TrainConfig(pretrain_episodes=2, joint_episodes=15, actor_lr=1e-3, pretrain_stay=0.8))
    after = score(agent)
    nearest = np.mean([rollout(ep, NearestFirst(), view="twin").metrics()["mean_reward"] for ep in held_out])
    assert log.phase == ["pretrain"] * 2 + ["joint"] * 15
    assert after > before
    assert after > nearest


def test_online_agent_keeps_a_training_pool_and_retrains(episode):
    agent = ActorCritic(AgentSpec(3, actor_kind="shared", **TINY_NETS), seed=0)
    online = OnlineAgent(agent, 1.0, TrainConfig())
    r = rollout(episode, online)
    assert online.record(r) == episode.n_slots * episode.n_users
    before = [p.detach().clone() for p in agent.actor.parameters()]
    loss = online.retrain(updates=5, batch=64)
    assert np.isfinite(loss)
    assert any(not torch.equal(a, b) for a, b in zip(before, agent.actor.parameters(), strict=True))


def test_checkpoint_round_trip_gives_the_same_decisions(tmp_path, episode):
    agent = ActorCritic(AgentSpec(3, actor_kind="shared", **TINY_NETS), seed=4)
    path = save_checkpoint(tmp_path / "ac.pt", {3: agent}, {"command": "test"})
    agents, meta = load_checkpoint(path)
    assert meta["command"] == "test"
    a = rollout(episode, ActorCriticPolicy(agent, 1.0)).actions
    b = rollout(episode, ActorCriticPolicy(agents[3], 1.0)).actions
    np.testing.assert_array_equal(a, b)


def test_bad_checkpoints_are_reported_with_their_path(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"junk\.pt"):
        load_checkpoint(junk)


def test_agent_refuses_an_episode_with_another_candidate_count(episode):
    agent = ActorCritic(AgentSpec(5, **TINY_NETS))
    with pytest.raises(OffloadingError, match="N=5"):
        rollout(episode, ActorCriticPolicy(agent, 1.0))


def test_training_with_the_same_seed_gives_the_same_weights(env):
    def trained():
        agent = ActorCritic(AgentSpec(3, actor_kind="shared", **TINY_NETS), seed=5)
        cfg = TrainConfig(pretrain_episodes=1, joint_episodes=1, pretrain_stay=0.8, seed=5)
        train(agent, lambda i: env.episode(i, "train").users(np.arange(10)), cfg)
        return agent

    a, b = trained(), trained()
    for pa, pb in zip(a.actor.parameters(), b.actor.parameters(), strict=True):
        assert torch.equal(pa, pb)
    for pa, pb in zip(a.critic.parameters(), b.critic.parameters(), strict=True):
        assert torch.equal(pa, pb)

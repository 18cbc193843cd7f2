r"""Training the actor-critic on the twin of the system (Algorithm 1) and running it online (Algorithm 2).

Algorithm 1, as in the paper: ``K_1`` episodes in which actions are drawn uniformly from the candidates
and only the critic learns (pre-training), then ``K_2`` episodes in which actions are sampled from the
actor and both learn, one update per slot. The episodes come from the *twin of the system*: journeys
of the ``train`` time window whose latencies are eq. 10 with the deviations the server twins report
(``Episode.latency_twin_s``); the real environment is never touched.

Where we depart from the letter of the paper, and why:

* Every slot updates on all ``U`` users of the journey at once (a batch of ``U`` parallel episodes)
  instead of one user: the same per-slot update, with less variance and ``U`` times fewer Python steps.
* Eq. 18 as printed (``W_c + l_c theta^2 grad V``) would ascend the squared error; we descend it, the
  usual semi-gradient TD step: minimise ``(R + eps V(S') - Q(S, A))^2`` with the target held fixed.
* The critic is ``Q(S, A)`` (Sec. IV-D) while eq. 17 uses ``V(S)``; we use ``V(S) = sum_a pi(a|S) Q(S, a)``
  with ``pi`` the behaviour policy (uniform while pre-training, the actor afterwards), i.e. Expected SARSA.
* Adam instead of plain gradient steps, gradient-norm clipping, an optional entropy bonus and an optional
  slowly-tracking target critic (``target_rate``, 0 = none, as in the paper).
* ``actor_update``: ``"td"`` is eq. 19 (``theta_t grad log pi(A_t|S_t)``, ``theta_t = R + eps V(S') - V(S)``);
  ``"advantage"`` uses ``Q(S, A) - V(S)``; ``"expected"`` sums ``pi(a|S) (Q(S, a) - V(S))`` over all
  candidates (the critic scores every action, so no sampling noise in the actor's step).
* The terminal slot of a journey does not bootstrap.

Algorithm 2: :class:`OnlineAgent` decides greedily (``argmax pi``) in the real environment and keeps the
training pool ``Array`` of ``(S_t, A_t, R_t, S_{t+1})``; :meth:`OnlineAgent.retrain` replays the pool
for further critic and actor updates (the paper collects the pool "for the agent's retraining").
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from mobility_twin_core.checks import check_fraction
from mobility_twin_models.offloading import equations as eq
from mobility_twin_models.offloading.agent import ActorCritic
from mobility_twin_models.offloading.env import Episode
from mobility_twin_models.offloading.errors import OffloadingError
from mobility_twin_models.offloading.features import FeatureSpec, observation_features
from mobility_twin_models.offloading.rollout import observe, slot_cost

ACTOR_UPDATES = ("td", "advantage", "expected")


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of Algorithm 1 (paper silent on all but the structure).

    Args:
        pretrain_episodes: K_1, critic-only episodes with random actions.
        joint_episodes: K_2, actor and critic episodes.
        actor_lr: l_a. critic_lr: l_c.
        discount: epsilon, the reward decay of Algorithm 1.
        actor_update: see the module docstring.
        entropy: weight of the policy-entropy bonus (0: none, as in the paper).
        target_rate: Polyak rate of a target critic for the TD target (0: the critic itself, as in the paper).
        grad_clip: largest gradient norm per update.
        failure_penalty_s: extra latency charged to a task that misses its deadline, in the reward.
        pretrain_stay: probability that a pre-training action keeps the current server (when it is a
            candidate) instead of a uniform draw. 0 is the paper's ``Random(E_t)``; uniform draws migrate
            in (N-1)/N of the slots, so the deficit queue grows far beyond anything a trained policy
            visits and the critic learns values of states it will never see again.
        normalise_advantage: divide the actor's advantages by their batch standard deviation, so the
            actor's step does not scale with the reward (the deficit queue makes rewards vary by 10x).
        seed: torch and action-sampling seed.
    """

    pretrain_episodes: int = 30
    joint_episodes: int = 300
    actor_lr: float = 3e-4
    critic_lr: float = 1e-3
    discount: float = 0.9
    actor_update: str = "expected"
    entropy: float = 0.01
    target_rate: float = 0.01
    grad_clip: float = 10.0
    failure_penalty_s: float = 0.0
    pretrain_stay: float = 0.0
    normalise_advantage: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if self.pretrain_episodes < 0 or self.joint_episodes < 0:
            raise OffloadingError(f"episode counts must be >= 0, got K1={self.pretrain_episodes}, "
                                  f"K2={self.joint_episodes}")
        if self.actor_update not in ACTOR_UPDATES:
            raise OffloadingError(f"actor_update must be one of {ACTOR_UPDATES}, got {self.actor_update!r}")
        check_fraction("discount", self.discount, OffloadingError)
        check_fraction("target_rate", self.target_rate, OffloadingError)


@dataclass
class TrainingLog:
    """Per episode: phase, mean reward per user-slot, mean critic loss, migration rate, latency; wall time."""

    phase: list[str] = field(default_factory=list)
    mean_reward: list[float] = field(default_factory=list)
    critic_loss: list[float] = field(default_factory=list)
    migration_rate: list[float] = field(default_factory=list)
    avg_latency_s: list[float] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {"phase": self.phase, "mean_reward": self.mean_reward, "critic_loss": self.critic_loss,
                "migration_rate": self.migration_rate, "avg_latency_s": self.avg_latency_s, "seconds": self.seconds}


class Learner:
    """The update rules of Algorithm 1 on batches of transitions (shared by offline training and the pool)."""

    def __init__(self, agent: ActorCritic, config: TrainConfig) -> None:
        self.agent, self.config = agent, config
        self.actor_opt = torch.optim.Adam(agent.actor.parameters(), lr=config.actor_lr)
        self.critic_opt = torch.optim.Adam(agent.critic.parameters(), lr=config.critic_lr)
        self.target = None
        if config.target_rate > 0:
            import copy

            self.target = copy.deepcopy(agent.critic)
            for p in self.target.parameters():
                p.requires_grad_(False)

    def _next_value(self, next_states: torch.Tensor, uniform: bool) -> torch.Tensor:
        critic = self.target if self.target is not None else self.agent.critic
        with torch.no_grad():
            q = critic.all_actions(next_states)
            if uniform:
                return q.mean(dim=1)
            return (self.agent.actor.probabilities(next_states) * q).sum(dim=1)

    def update(self, states, actions, rewards, next_states, done, *, train_actor: bool) -> float:
        """One critic step (and one actor step if ``train_actor``) on a batch; returns the critic loss."""
        cfg = self.config
        s = torch.as_tensor(states, dtype=torch.float32)
        a = torch.as_tensor(actions, dtype=torch.int64)
        r = torch.as_tensor(rewards, dtype=torch.float32)
        s2 = torch.as_tensor(next_states, dtype=torch.float32)
        not_done = 1.0 - torch.as_tensor(done, dtype=torch.float32)
        target = r + cfg.discount * not_done * self._next_value(s2, uniform=not train_actor)
        q = self.agent.critic(s, a)
        loss = torch.mean((target - q) ** 2)
        self.critic_opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.agent.critic.parameters(), cfg.grad_clip)
        self.critic_opt.step()
        if self.target is not None:
            with torch.no_grad():
                for pt, p in zip(self.target.parameters(), self.agent.critic.parameters(), strict=True):
                    pt.mul_(1.0 - cfg.target_rate).add_(cfg.target_rate * p)
        if train_actor:
            self._actor_step(s, a, target)
        return float(loss.detach())

    def _actor_step(self, s: torch.Tensor, a: torch.Tensor, target: torch.Tensor) -> None:
        cfg = self.config
        logits = self.agent.actor(s)
        logp = torch.log_softmax(logits, dim=-1)
        p = logp.exp()
        with torch.no_grad():
            q_all = self.agent.critic.all_actions(s)
            v = (p * q_all).sum(dim=1)
        if cfg.actor_update == "expected":
            advantage = q_all - v[:, None]
            if cfg.normalise_advantage:
                advantage = advantage / (advantage.std() + 1e-6)
            objective = (p * advantage).sum(dim=1)
        else:
            advantage = (target - v) if cfg.actor_update == "td" else (q_all.gather(1, a[:, None])[:, 0] - v)
            if cfg.normalise_advantage:
                advantage = advantage / (advantage.std() + 1e-6)
            objective = logp.gather(1, a[:, None])[:, 0] * advantage
        entropy = -(p * logp).sum(dim=1)
        loss = -torch.mean(objective + cfg.entropy * entropy)
        self.actor_opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.agent.actor.parameters(), cfg.grad_clip)
        self.actor_opt.step()


def run_training_episode(learner: Learner, ep: Episode, *, pretrain: bool, rng: np.random.Generator,
                         view: str = "twin") -> tuple[float, float, float, float]:
    """One episode of Algorithm 1 over all users of ``ep``; (mean reward, critic loss, migration rate, latency)."""
    agent, cfg = learner.agent, learner.config
    spec: FeatureSpec = agent.spec.features
    if ep.n_candidates != spec.candidates:
        raise OffloadingError(f"agent has N={spec.candidates}, episode has N={ep.n_candidates}")
    mig = ep.config.migration
    latency_all = ep.latency(view)
    tau, n_users, n = ep.servers.shape
    users = np.arange(n_users)
    previous = np.full(n_users, -1, dtype=np.int64)
    queue = np.zeros(n_users)
    states = observation_features(spec, observe(ep, 0, previous, queue), mig.cost)
    rewards, losses, migrations, latencies = [], [], 0, []
    for t in range(tau):
        if pretrain:
            actions = rng.integers(0, n, size=n_users)
            if cfg.pretrain_stay > 0:
                current = ep.servers[t] == previous[:, None]
                keep = current.any(axis=1) & (rng.random(n_users) < cfg.pretrain_stay)
                actions = np.where(keep, current.argmax(axis=1), actions)
        else:
            actions = agent.decide(states, greedy=False, rng=rng)
        served = ep.servers[t, users, actions]
        migrated = (served != previous) & ((previous >= 0) | (not mig.first_slot_free))
        cost = eq.migration_cost(migrated, mig.cost)
        latency = latency_all[t, users, actions]
        counted = slot_cost(latency, ep.deadline_s[t], cfg.failure_penalty_s)
        r = eq.reward(counted, queue, cost, mig.latency_weight)
        queue = eq.deficit_queue_next(queue, cost, mig.cost, mig.budget_rate)
        previous = served
        done = t == tau - 1
        next_states = states if done else observation_features(spec, observe(ep, t + 1, previous, queue), mig.cost)
        losses.append(learner.update(states, actions, r, next_states, np.full(n_users, float(done)),
                                     train_actor=not pretrain))
        rewards.append(float(r.mean()))
        migrations += int(migrated.sum())
        latencies.append(float(np.minimum(latency, ep.deadline_s[t]).mean()))
        states = next_states
    return float(np.mean(rewards)), float(np.mean(losses)), migrations / (tau * n_users), float(np.mean(latencies))


def train(agent: ActorCritic, episodes: Callable[[int], Episode], config: TrainConfig = TrainConfig(), *,
          progress: Callable[[int, str, float], None] | None = None) -> TrainingLog:
    """Algorithm 1: ``K_1`` critic pre-training episodes with random actions, then ``K_2`` joint episodes.

    ``episodes(i)`` returns the i-th twin-of-the-system episode (``i`` counts across both phases).
    """
    torch.manual_seed(config.seed)
    rng = np.random.default_rng([config.seed, 0xA1])
    learner = Learner(agent, config)
    log = TrainingLog()
    start = time.perf_counter()
    agent.actor.train()
    agent.critic.train()
    total = config.pretrain_episodes + config.joint_episodes
    for i in range(total):
        pretrain = i < config.pretrain_episodes
        r, loss, mig, lat = run_training_episode(learner, episodes(i), pretrain=pretrain, rng=rng)
        log.phase.append("pretrain" if pretrain else "joint")
        log.mean_reward.append(r)
        log.critic_loss.append(loss)
        log.migration_rate.append(mig)
        log.avg_latency_s.append(lat)
        if progress is not None:
            progress(i, log.phase[-1], r)
    agent.actor.eval()
    agent.critic.eval()
    log.seconds = time.perf_counter() - start
    return log


class OnlineAgent:
    """Algorithm 2: greedy decisions in the environment, a training pool of transitions, and retraining.

    Use as a policy (:meth:`reset`/:meth:`act`), then :meth:`record` the rollout to fill the pool.
    """

    name = "actor_critic_online"

    def __init__(self, agent: ActorCritic, cost: float, config: TrainConfig = TrainConfig(),
                 *, pool_size: int = 200_000) -> None:
        self.agent, self.cost, self.config = agent, cost, config
        self.learner = Learner(agent, config)
        self.pool_size = pool_size
        self.pool: list[tuple[np.ndarray, ...]] = []
        self.rng = np.random.default_rng([config.seed, 0xA2])

    def reset(self, episode: Episode) -> None:
        if episode.n_candidates != self.agent.spec.candidates:
            raise OffloadingError(f"agent has N={self.agent.spec.candidates}, episode has N={episode.n_candidates}")

    def act(self, obs) -> np.ndarray:
        return self.agent.decide(observation_features(self.agent.spec.features, obs, self.cost), greedy=True)

    def record(self, rollout) -> int:
        """Add the rollout's transitions ``<S_t, A_t, R_t, S_{t+1}>`` to the pool (Algorithm 2, line 7)."""
        ep = rollout.episode
        spec = self.agent.spec.features
        tau = ep.n_slots
        states = []
        previous = np.full(ep.n_users, -1, dtype=np.int64)
        for t in range(tau):
            states.append(observation_features(spec, observe(ep, t, previous, rollout.queue[t]), self.cost))
            previous = rollout.served[t]
        for t in range(tau):
            done = t == tau - 1
            nxt = states[t] if done else states[t + 1]
            self.pool.append((states[t], rollout.actions[t], rollout.reward[t], nxt,
                              np.full(ep.n_users, float(done))))
        self.pool = self.pool[-self.pool_size // max(ep.n_users, 1):]
        return tau * ep.n_users

    def retrain(self, updates: int = 200, batch: int = 512) -> float:
        """``updates`` critic+actor steps on minibatches drawn from the pool; the mean critic loss."""
        if not self.pool:
            return float("nan")
        s, a, r, s2, d = (np.concatenate(x) for x in zip(*self.pool, strict=True))
        self.agent.actor.train()
        self.agent.critic.train()
        losses = []
        for _ in range(updates):
            i = self.rng.integers(0, len(s), size=min(batch, len(s)))
            losses.append(self.learner.update(s[i], a[i], r[i], s2[i], d[i], train_actor=True))
        self.agent.actor.eval()
        self.agent.critic.eval()
        return float(np.mean(losses))

r"""Continual DDPG: stable-baselines3's DDPG as the core, the continual part ours.

The core (actor, critic, their targets and Adam optimisers, the DDPG update) is
:class:`stable_baselines3.DDPG`; we never call its ``learn`` loop, because the local twin, not an
environment loop, decides when there is data and how much time there is to learn. What is ours:

* **when it trains** (the paper's schedule): :meth:`ContinualDDPG.fit_offline` on the data of the first DT
  updates (DDPG), then :meth:`ContinualDDPG.learn` after every update, with a time budget (CDDPG); a
  frozen DDPG is the same object on which :meth:`learn` is never called again;
* **what it learns from**: the applied decision's outcome plus ``emulated_actions`` exploratory actions
  that the twin evaluates on its model of the same update (the paper's DTEC "fabricates emulation of ...
  resource allocation to produce emulated data"), so the physical system only ever gets the greedy action;
* **what is replayed** (:class:`RegimeReplay`, an SB3 replay buffer): a FIFO of recent transitions, and with
  ``replay`` a reservoir (Vitter's algorithm R) holding a uniform sample of *every* transition seen, so an old
  regime keeps its share of each batch after the FIFO has forgotten it;
* **how forgetting is limited** with ``ewc``: online elastic weight consolidation on the actor (Kirkpatrick et
  al. 2017; Schwarz et al. 2018). Every ``consolidate_every`` updates (task-free: the twin does not announce
  regime changes) the diagonal Fisher information of the actor is estimated on recent states and the anchor
  moves to the current weights:

  .. math::
      F_i \leftarrow \gamma F_i + \frac{1}{\sigma^2} \mathbb{E}_s \sum_j \left(\frac{\partial \pi_j(s)}{\partial
      \theta_i}\right)^2, \qquad \theta^* \leftarrow \theta

  (the Fisher information of a Gaussian policy ``N(pi(s), sigma^2)``, ``sigma`` the exploration noise), and
  the gradient of ``(lambda / 2) sum_i F_i (theta_i - theta*_i)^2`` is added to the actor's gradient by a
  hook on each actor parameter, i.e. inside SB3's own actor step.

Checkpoints (:meth:`ContinualDDPG.state_dict`) are dicts of tensors and plain values, loadable with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import copy
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import DDPG
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.type_aliases import ReplayBufferSamples
from stable_baselines3.td3.policies import Actor, TD3Policy
from torch import nn
from torch.func import functional_call, jacrev, vmap

from mobility_twin_models.allocation.config import AgentConfig, ContinualConfig
from mobility_twin_models.allocation.errors import AllocationError, CheckpointError

CHECKPOINT_FORMAT = 2  # 2: the actor may be a per-task scorer (``task_layout``)


class RegimeReplay(ReplayBuffer):
    """SB3's FIFO replay buffer of ``buffer_size`` recent transitions, plus a reservoir that keeps a uniform
    sample of every transition ever added (``reservoir_capacity`` 0: the FIFO alone). A batch draws
    ``reservoir_fraction`` of its transitions from the reservoir once it holds any."""

    def __init__(self, buffer_size: int, observation_space: gym.spaces.Space, action_space: gym.spaces.Space,
                 device: torch.device | str = "cpu", n_envs: int = 1, optimize_memory_usage: bool = False,
                 handle_timeout_termination: bool = False, *, reservoir_capacity: int = 0,
                 reservoir_fraction: float = 0.5, seed: int = 0) -> None:
        super().__init__(buffer_size, observation_space, action_space, device=device, n_envs=n_envs,
                         optimize_memory_usage=optimize_memory_usage,
                         handle_timeout_termination=handle_timeout_termination)
        self.reservoir_capacity = reservoir_capacity
        self.reservoir_fraction = reservoir_fraction
        obs_dim = int(np.prod(observation_space.shape))
        act_dim = int(np.prod(action_space.shape))
        self.res_obs = np.zeros((reservoir_capacity, obs_dim), dtype=np.float32)
        self.res_next_obs = np.zeros((reservoir_capacity, obs_dim), dtype=np.float32)
        self.res_actions = np.zeros((reservoir_capacity, act_dim), dtype=np.float32)
        self.res_rewards = np.zeros(reservoir_capacity, dtype=np.float32)
        self.res_size = 0
        self.seen = 0
        self.rng = np.random.default_rng(seed)

    def add_batch(self, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray, next_obs: np.ndarray) -> None:
        """Add ``[B, ...]`` transitions (no episode ends: the twin runs on)."""
        for o, a, r, n in zip(obs, actions, rewards, next_obs, strict=True):
            self.add(o[None, :], n[None, :], a[None, :], np.array([r]), np.array([False]), [{}])
            self._offer(o, a, r, n)

    def _offer(self, o, a, r, n) -> None:
        if self.reservoir_capacity == 0:
            return
        self.seen += 1
        if self.res_size < self.reservoir_capacity:
            j = self.res_size
            self.res_size += 1
        else:
            j = int(self.rng.integers(self.seen))
            if j >= self.reservoir_capacity:
                return
        self.res_obs[j], self.res_actions[j], self.res_rewards[j], self.res_next_obs[j] = o, a, r, n

    def sample(self, batch_size: int, env=None) -> ReplayBufferSamples:
        old = round(batch_size * self.reservoir_fraction) if self.res_size else 0
        upper = self.buffer_size if self.full else self.pos
        recent = self._get_samples(self.rng.integers(0, upper, size=batch_size - old), env=env)
        if old == 0:
            return recent
        j = self.rng.integers(0, self.res_size, size=old)

        def t(x):
            return torch.as_tensor(x, device=self.device)

        return ReplayBufferSamples(
            observations=torch.cat([recent.observations, t(self.res_obs[j])]),
            actions=torch.cat([recent.actions, t(self.res_actions[j])]),
            next_observations=torch.cat([recent.next_observations, t(self.res_next_obs[j])]),
            dones=torch.cat([recent.dones, torch.zeros(old, 1, device=self.device)]),
            rewards=torch.cat([recent.rewards, t(self.res_rewards[j])[:, None]]),
        )

    def state_dict(self) -> dict:
        upper = self.buffer_size if self.full else self.pos
        return {
            "obs": torch.from_numpy(self.observations[:upper, 0].copy()),
            "next_obs": torch.from_numpy(self.next_observations[:upper, 0].copy()),
            "actions": torch.from_numpy(self.actions[:upper, 0].copy()),
            "rewards": torch.from_numpy(self.rewards[:upper, 0].copy()),
            "pos": int(self.pos), "full": bool(self.full),
            "res_obs": torch.from_numpy(self.res_obs[:self.res_size].copy()),
            "res_next_obs": torch.from_numpy(self.res_next_obs[:self.res_size].copy()),
            "res_actions": torch.from_numpy(self.res_actions[:self.res_size].copy()),
            "res_rewards": torch.from_numpy(self.res_rewards[:self.res_size].copy()),
            "seen": int(self.seen), "rng": json.dumps(self.rng.bit_generator.state),
        }

    def load_state_dict(self, state: dict) -> None:
        n = len(state["obs"])
        if n > self.buffer_size or len(state["res_obs"]) > self.reservoir_capacity:
            raise CheckpointError(f"replay state holds {n} recent / {len(state['res_obs'])} old transitions, more "
                                  f"than this buffer's {self.buffer_size} / {self.reservoir_capacity}")
        self.observations[:n, 0] = state["obs"].numpy()
        self.next_observations[:n, 0] = state["next_obs"].numpy()
        self.actions[:n, 0] = state["actions"].numpy()
        self.rewards[:n, 0] = state["rewards"].numpy()
        self.dones[:n, 0] = 0.0
        self.pos, self.full = int(state["pos"]), bool(state["full"])
        m = len(state["res_obs"])
        self.res_obs[:m], self.res_next_obs[:m] = state["res_obs"].numpy(), state["res_next_obs"].numpy()
        self.res_actions[:m], self.res_rewards[:m] = state["res_actions"].numpy(), state["res_rewards"].numpy()
        self.res_size, self.seen = m, int(state["seen"])
        self.rng.bit_generator.state = json.loads(state["rng"])


@dataclass(frozen=True)
class TaskLayout:
    """How a flat observation holds a set of tasks, and a flat action decides for each, for a per-task actor.

    The observation is feature-major: ``task_features`` blocks of ``slots`` values (feature ``f`` of slot ``j``
    at ``f * slots + j``), the first block the slot's presence (1 holds a task, 0 empty), then ``context``
    values about the whole set. The action is feature-major too: ``task_actions`` blocks of ``slots`` values.
    """

    slots: int
    task_features: int
    context: int
    task_actions: int = 1

    def __post_init__(self) -> None:
        for name in ("slots", "task_features", "task_actions"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value >= 1):
                raise AllocationError(f"task layout: {name} must be an integer >= 1, got {value!r}")
        if not (isinstance(self.context, int) and self.context >= 0):
            raise AllocationError(f"task layout: context must be an integer >= 0, got {self.context!r}")

    @property
    def obs_dim(self) -> int:
        return self.slots * self.task_features + self.context

    @property
    def act_dim(self) -> int:
        return self.slots * self.task_actions


class TaskScorer(nn.Module):
    r"""A permutation-equivariant actor head: ``task_actions`` values in (-1, 1) per task slot, from the task's
    own features, the mean over the set's tasks and the set's context (a two-layer Deep Sets network, Zaheer
    et al. 2017):

    .. math::
        h_j = \phi(x_j, c), \qquad \bar h = \frac{\sum_k p_k h_k}{\max(1, \sum_k p_k)}, \qquad
        z_j = \rho(h_j, \bar h, c), \qquad a_j = \tanh(z_j - \bar z)

    (``p_k`` the presence of slot ``k``). Permuting the slots permutes the outputs: an output says something
    about a task, never about the slot it sits in. The first output of each task is a *priority*, of which
    only the order counts: it is centred over the set's tasks (``\bar z`` its mean over the present slots;
    the other outputs are not centred), so that the common part, which changes no decision, cannot drift
    into the saturation of the tanh and leave every task with the same priority.

    Args:
        layout: where the tasks and the context are in the observation, and how many outputs per task.
        hidden: widths of ``phi`` (the last one is the embedding) and of ``rho``'s hidden layer (the last).

    Shapes:
        input ``[B, layout.obs_dim]``, output ``[B, layout.act_dim]`` (feature-major).
    """

    def __init__(self, layout: TaskLayout, hidden: tuple[int, ...] = (64, 64), *, penalty: float = 0.0) -> None:
        super().__init__()
        self.layout = layout
        self.hidden = tuple(hidden)
        self.penalty = penalty
        inp = layout.task_features + layout.context
        layers: list[nn.Module] = []
        for width in self.hidden:
            layers += [nn.Linear(inp, width), nn.ReLU()]
            inp = width
        self.phi = nn.Sequential(*layers)
        self.rho = nn.Sequential(nn.Linear(2 * inp + layout.context, self.hidden[-1]), nn.ReLU(),
                                 nn.Linear(self.hidden[-1], layout.task_actions))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        k, f, c = self.layout.slots, self.layout.task_features, self.layout.context
        x = obs[:, :k * f].reshape(-1, f, k).transpose(1, 2)  # [B, K, F]
        ctx = obs[:, k * f:k * f + c].unsqueeze(1).expand(-1, k, -1)  # [B, K, C]
        present = x[..., :1]
        h = self.phi(torch.cat([x, ctx], dim=-1))  # [B, K, H]
        pooled = (h * present).sum(dim=1, keepdim=True) / present.sum(dim=1, keepdim=True).clamp(min=1.0)
        z = self.rho(torch.cat([h, pooled.expand(-1, k, -1), ctx], dim=-1))  # [B, K, A]
        mean = (z[..., :1] * present).sum(dim=1, keepdim=True) / present.sum(dim=1, keepdim=True).clamp(min=1.0)
        z = torch.cat([z[..., :1] - mean, z[..., 1:]], dim=-1)
        if self.training and self.penalty > 0 and z.requires_grad:
            # the gradient of (penalty / 2) mean_batch sum z^2, added in the actor's step (SB3 trains in training mode)
            scale = self.penalty / z.shape[0]
            held = z.detach()
            z.register_hook(lambda grad: grad + scale * held)
        return torch.tanh(z).transpose(1, 2).reshape(-1, self.layout.act_dim)

    def extra_repr(self) -> str:
        lay = self.layout
        return f"slots={lay.slots}, task_features={lay.task_features}, context={lay.context}, " \
               f"task_actions={lay.task_actions}"


class TaskScorePolicy(TD3Policy):
    """SB3's TD3/DDPG policy whose actor is a :class:`TaskScorer` (the critic stays SB3's MLP on the
    observation and the action)."""

    def __init__(self, *args, task_layout: TaskLayout, task_hidden: tuple[int, ...] = (64, 64),
                 preactivation_penalty: float = 0.0, **kwargs) -> None:
        # make_actor needs them during TD3Policy.__init__, before nn.Module's own set-up
        object.__setattr__(self, "task_layout", task_layout)
        object.__setattr__(self, "task_hidden", tuple(task_hidden))
        object.__setattr__(self, "preactivation_penalty", preactivation_penalty)
        super().__init__(*args, **kwargs)

    def make_actor(self, features_extractor=None) -> Actor:
        actor = super().make_actor(features_extractor)
        actor.mu = TaskScorer(self.task_layout, self.task_hidden,
                              penalty=self.preactivation_penalty).to(self.device)
        return actor


class _Spaces(gym.Env):
    """The spaces of a setting, for SB3 to build its networks (the twin drives the data, not this env)."""

    def __init__(self, obs_dim: int, act_dim: int) -> None:
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (act_dim,), np.float32)

    def reset(self, *, seed=None, options=None):
        return np.zeros(self.observation_space.shape, np.float32), {}

    def step(self, action):
        raise AllocationError("the allocation agent is trained by the twin, not by stepping this environment")


class ContinualDDPG:
    """DDPG (stable-baselines3) that keeps learning from the twin, with replay and EWC against forgetting.

    Args:
        obs_dim, act_dim: sizes of the setting's observation and action (actions in [-1, 1]).
        agent: the DDPG core's configuration.
        continual: replay and regularisation.
        task_layout: the actor is a per-task :class:`TaskScorer` over this layout (``obs_dim`` and ``act_dim``
            must be its sizes); None: SB3's MLP actor.
    """

    def __init__(self, obs_dim: int, act_dim: int, agent: AgentConfig | None = None,
                 continual: ContinualConfig | None = None, *, task_layout: TaskLayout | None = None) -> None:
        self.agent_config = agent or AgentConfig()
        self.continual = continual or ContinualConfig()
        if not (isinstance(obs_dim, int) and obs_dim >= 1 and isinstance(act_dim, int) and act_dim >= 1):
            raise AllocationError(f"obs_dim and act_dim must be integers >= 1, got {obs_dim!r}, {act_dim!r}")
        if task_layout is not None and (task_layout.obs_dim, task_layout.act_dim) != (obs_dim, act_dim):
            raise AllocationError(f"task layout {task_layout} has {task_layout.obs_dim} observations and "
                                  f"{task_layout.act_dim} actions, not {obs_dim} and {act_dim}")
        self.obs_dim, self.act_dim = obs_dim, act_dim
        self.task_layout = task_layout
        a, c = self.agent_config, self.continual
        policy_kwargs = {"net_arch": list(a.hidden)}
        if task_layout is not None:
            policy_kwargs.update(task_layout=task_layout, task_hidden=tuple(a.task_hidden),
                                 preactivation_penalty=a.preactivation_penalty)
        self.model = DDPG(
            "MlpPolicy" if task_layout is None else TaskScorePolicy, _Spaces(obs_dim, act_dim),
            learning_rate=a.learning_rate, buffer_size=c.recent_capacity,
            learning_starts=0, batch_size=a.batch_size, tau=a.tau, gamma=a.gamma, replay_buffer_class=RegimeReplay,
            replay_buffer_kwargs={"reservoir_capacity": c.reservoir_capacity if c.replays else 0,
                                  "reservoir_fraction": c.reservoir_fraction, "seed": a.seed},
            policy_kwargs=policy_kwargs, seed=a.seed, device="cpu", verbose=0)
        # a logger that writes nowhere (SB3's configure(None, []) makes an empty folder in the temp dir, one
        # per agent built: hundreds of them on a machine that runs the node and the tests)
        self.model.set_logger(Logger(folder=None, output_formats=[]))
        self.rng = np.random.default_rng(a.seed + 1)
        self.updates = 0  # DT updates observed
        self.gradient_steps = 0
        self.step_s = 2e-3  # running estimate of one gradient step's time
        self._recent_step_s: deque[float] = deque(maxlen=32)
        self._blocked, self._patience = 0, 1  # rounds stopped by a step time over the budget (after_round)
        self.fisher: dict[str, torch.Tensor] = {}
        self.anchor: dict[str, torch.Tensor] = {}
        self._hooks = []
        if c.consolidates:
            self._install_ewc_hooks()

    # -------------------------------------------------------------------------------- acting
    @property
    def actor(self) -> torch.nn.Module:
        return self.model.actor

    @property
    def buffer(self) -> RegimeReplay:
        return self.model.replay_buffer

    @torch.no_grad()
    def act(self, obs: np.ndarray, actor: torch.nn.Module | None = None) -> np.ndarray:
        """Greedy actions [B, act_dim] for observations [B, obs_dim] (or one observation -> [act_dim]), from the
        actor or from ``actor``, a copy made by :meth:`acting_copy`."""
        x = np.asarray(obs, dtype=np.float32)
        single = x.ndim == 1
        x = np.atleast_2d(x)
        if x.shape[1] != self.obs_dim:
            raise AllocationError(f"observations have {x.shape[1]} features, the agent expects {self.obs_dim}")
        out = (self.actor if actor is None else actor)(torch.from_numpy(x)).numpy()
        return out[0] if single else out

    def acting_copy(self) -> torch.nn.Module:
        """A copy of the actor (without its optimiser) to act with while the actor trains in another thread;
        ``copy.load_state_dict(agent.actor.state_dict())`` brings it up to date between two training rounds."""
        optimizer = self.actor.optimizer
        self.actor.optimizer = None  # not copied: an acting copy never trains
        try:
            out = copy.deepcopy(self.actor)
        finally:
            self.actor.optimizer = optimizer
        out.set_training_mode(False)
        out.requires_grad_(False)
        return out

    def explore(self, action: np.ndarray, n: int) -> np.ndarray:
        """``n`` exploratory actions around ``action`` (Gaussian, clipped to [-1, 1])."""
        noise = self.rng.normal(0.0, self.agent_config.exploration_std, (n, self.act_dim))
        return np.clip(np.asarray(action)[None, :] + noise, -1.0, 1.0).astype(np.float32)

    # -------------------------------------------------------------------------------- data
    def observe(self, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray, next_obs: np.ndarray) -> None:
        """Add transitions ``[B, ...]`` (one DT update's applied and emulated actions)."""
        obs = np.atleast_2d(np.asarray(obs, dtype=np.float32))
        actions = np.atleast_2d(np.asarray(actions, dtype=np.float32))
        rewards = np.asarray(rewards, dtype=np.float32).reshape(-1)
        next_obs = np.atleast_2d(np.asarray(next_obs, dtype=np.float32))
        if not (len(obs) == len(actions) == len(rewards) == len(next_obs)):
            raise AllocationError(f"observe: {len(obs)} observations, {len(actions)} actions, {len(rewards)} rewards, "
                                  f"{len(next_obs)} next observations")
        if not (np.all(np.isfinite(obs)) and np.all(np.isfinite(actions)) and np.all(np.isfinite(rewards))):
            raise AllocationError("observe: transitions must be finite")
        self.buffer.add_batch(obs, np.clip(actions, -1.0, 1.0), rewards, next_obs)

    def observe_update(self, obs: np.ndarray, applied: np.ndarray, applied_reward: float, next_obs: np.ndarray,
                       emulate: Callable[[np.ndarray], np.ndarray] | None) -> None:
        """One DT update: the applied action's reward, plus the twin's emulated exploratory actions."""
        actions = [np.asarray(applied, dtype=np.float32)[None, :]]
        rewards = [np.array([applied_reward], dtype=np.float32)]
        n = self.agent_config.emulated_actions
        if emulate is not None and n:
            extra = self.explore(applied, n)
            actions.append(extra)
            rewards.append(np.asarray(emulate(extra), dtype=np.float32))
        actions = np.concatenate(actions)
        self.observe(np.repeat(np.atleast_2d(obs), len(actions), axis=0), actions, np.concatenate(rewards),
                     np.repeat(np.atleast_2d(next_obs), len(actions), axis=0))
        self.updates += 1
        c = self.continual
        if c.consolidates and self.updates % c.consolidate_every == 0:
            self.consolidate()

    # -------------------------------------------------------------------------------- training
    def train(self, steps: int) -> int:
        """``steps`` gradient steps of SB3's DDPG update on the replay buffer (0 while it is empty)."""
        if steps <= 0 or self.buffer.size() == 0:
            return 0
        t0 = time.perf_counter()
        self.model.train(gradient_steps=steps, batch_size=self.agent_config.batch_size)
        self.model.policy.set_training_mode(False)
        per_step = (time.perf_counter() - t0) / steps
        self.step_s = 0.8 * self.step_s + 0.2 * per_step
        self._recent_step_s.append(per_step)
        self.gradient_steps += steps
        return steps

    def learn(self, budget_s: float, max_steps: int | None = None) -> int:
        """Gradient steps for at most ``budget_s`` seconds of wall time (and ``max_steps``, default the
        configured steps per update). Returns the steps done. A step is started only if the slowest of the
        last 32 steps would still fit in what is left of the budget (a shared CPU makes steps uneven)."""
        if not (isinstance(budget_s, int | float) and np.isfinite(budget_s) and budget_s >= 0):
            raise AllocationError(f"budget_s must be a finite number >= 0, got {budget_s!r}")
        limit = self.agent_config.gradient_steps if max_steps is None else max_steps
        start = time.perf_counter()
        done = 0
        while done < limit and time.perf_counter() - start + self.worst_step_s <= budget_s:
            if self.train(1) == 0:
                break
            done += 1
        return done

    @property
    def worst_step_s(self) -> float:
        """The slowest of the recent gradient steps (the running estimate before any)."""
        return max(self._recent_step_s) if self._recent_step_s else self.step_s

    def after_round(self, steps: int, budget_s: float) -> None:
        """Book-keeping of a round of ``budget_s`` seconds that took ``steps`` gradient steps.

        A recorded step longer than the whole budget (the first, cold step; one the machine preempted) would stop
        every later round before its first step, for good, since only the steps taken renew the times. So after
        ``patience`` rounds it stopped, the times over the budget are forgotten and a step is tried again; the
        patience doubles (up to 64 rounds) while the tried steps are still too slow, and is 1 again once they
        fit: a machine that is really too slow overruns the budget by one step at ever longer intervals."""
        if steps:
            if self.worst_step_s <= budget_s:
                self._patience = 1
            return
        if not self.buffer.size() or self.worst_step_s <= budget_s:
            return
        self._blocked += 1
        if self._blocked >= self._patience:
            kept = [s for s in self._recent_step_s if s <= budget_s]
            self._recent_step_s.clear()
            self._recent_step_s.extend(kept)
            self._blocked = 0
            self._patience = min(2 * self._patience, 64)

    def fit_offline(self, logged, *, epochs: int | None = None, steps_per_state: int | None = None) -> int:
        """DDPG's offline training on the data of the first DT updates, through the twin.

        ``logged`` holds, per logged update, ``(obs, emulate, action, reward)``: the state the twin recorded,
        the twin's model of that update (actions [B, act_dim] -> rewards [B]), and the allocation the system
        applied with its reward. Each epoch visits the logged states in a random order; at each the agent adds
        the logged transition (first epoch), its greedy action and ``emulated_actions`` exploratory ones with
        the rewards the twin predicts, then takes ``steps_per_state`` gradient steps. Returns the steps done.
        """
        epochs = self.agent_config.offline_epochs if epochs is None else epochs
        steps = self.agent_config.gradient_steps if steps_per_state is None else steps_per_state
        done = 0
        for epoch in range(epochs):
            for i in self.rng.permutation(len(logged)):
                obs, emulate, action, reward = logged[i]
                if epoch == 0 and action is not None:
                    self.observe(obs, action, [reward], obs)
                greedy = self.act(obs)
                batch = np.vstack([greedy[None, :], self.explore(greedy, self.agent_config.emulated_actions)])
                self.observe(np.repeat(np.atleast_2d(obs), len(batch), axis=0), batch, emulate(batch),
                             np.repeat(np.atleast_2d(obs), len(batch), axis=0))
                done += self.train(steps)
        if self.continual.consolidates:
            self.consolidate()
        return done

    # -------------------------------------------------------------------------------- EWC
    def _install_ewc_hooks(self) -> None:
        lam = self.continual.ewc_lambda
        for name, p in self.actor.named_parameters():
            def hook(grad, name=name, p=p):
                if name not in self.fisher:
                    return grad
                return grad + lam * self.fisher[name] * (p.detach() - self.anchor[name])
            self._hooks.append(p.register_hook(hook))

    def consolidate(self) -> None:
        """Online EWC: decay the Fisher information, add the current one, move the anchor to the weights."""
        n = min(self.continual.fisher_samples, self.buffer.size())
        if n == 0:
            return
        states = self.buffer.sample(n).observations
        params = {k: v.detach() for k, v in self.actor.named_parameters()}

        def policy(p, s):
            return functional_call(self.actor, p, (s.unsqueeze(0),)).squeeze(0)

        jac = vmap(jacrev(policy), in_dims=(None, 0))(params, states)
        sigma2 = max(self.agent_config.exploration_std, 1e-3) ** 2
        decay = self.continual.ewc_decay
        for k, j in jac.items():
            f = (j ** 2).sum(dim=1).mean(dim=0) / sigma2
            self.fisher[k] = decay * self.fisher[k] + f if k in self.fisher else f
            self.anchor[k] = params[k].clone()

    # -------------------------------------------------------------------------------- checkpoints
    def state_dict(self, *, with_buffer: bool = True) -> dict:
        """Everything to resume: networks, optimisers, EWC state, counters, configs (and the replay)."""
        pol = self.model.policy
        out = {
            "format": CHECKPOINT_FORMAT,
            "obs_dim": self.obs_dim, "act_dim": self.act_dim,
            "task_layout": asdict(self.task_layout) if self.task_layout is not None else {},
            "agent": _plain(asdict(self.agent_config)), "continual": _plain(asdict(self.continual)),
            "actor": pol.actor.state_dict(), "actor_target": pol.actor_target.state_dict(),
            "critic": pol.critic.state_dict(), "critic_target": pol.critic_target.state_dict(),
            "actor_optimizer": pol.actor.optimizer.state_dict(), "critic_optimizer": pol.critic.optimizer.state_dict(),
            "fisher": dict(self.fisher), "anchor": dict(self.anchor),
            "updates": self.updates, "gradient_steps": self.gradient_steps, "n_updates": int(self.model._n_updates),
            "rng": json.dumps(self.rng.bit_generator.state),
        }
        if with_buffer:
            out["buffer"] = self.buffer.state_dict()
        return out

    @classmethod
    def from_state_dict(cls, state: dict) -> ContinualDDPG:
        if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
            raise CheckpointError(f"not a continual DDPG state of format {CHECKPOINT_FORMAT}")
        try:
            agent = AgentConfig(**_tuples(state["agent"]))
            continual = ContinualConfig(**state["continual"])
            layout = TaskLayout(**state["task_layout"]) if state.get("task_layout") else None
            out = cls(int(state["obs_dim"]), int(state["act_dim"]), agent, continual, task_layout=layout)
            pol = out.model.policy
            pol.actor.load_state_dict(state["actor"])
            pol.actor_target.load_state_dict(state["actor_target"])
            pol.critic.load_state_dict(state["critic"])
            pol.critic_target.load_state_dict(state["critic_target"])
            pol.actor.optimizer.load_state_dict(state["actor_optimizer"])
            pol.critic.optimizer.load_state_dict(state["critic_optimizer"])
            out.fisher = {k: v.clone() for k, v in state["fisher"].items()}
            out.anchor = {k: v.clone() for k, v in state["anchor"].items()}
            out.updates, out.gradient_steps = int(state["updates"]), int(state["gradient_steps"])
            out.model._n_updates = int(state["n_updates"])
            out.rng.bit_generator.state = json.loads(state["rng"])
            if "buffer" in state:
                out.buffer.load_state_dict(state["buffer"])
        except (KeyError, TypeError, ValueError, RuntimeError) as err:
            raise CheckpointError(f"malformed continual DDPG state: {err}") from None
        out.model.policy.set_training_mode(False)
        return out

    def save(self, path: Path | str, *, with_buffer: bool = True, meta: dict | None = None) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({**self.state_dict(with_buffer=with_buffer), "meta": meta or {}}, path)
        return path

    @classmethod
    def load(cls, path: Path | str) -> ContinualDDPG:
        return cls.from_state_dict(load_state(path))


def load_state(path: Path | str) -> dict:
    """A checkpoint's dict, read with ``weights_only=True``; a clear error naming the file otherwise."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"allocation checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a bad file
        raise CheckpointError(f"cannot read allocation checkpoint {path}: {err}") from None


def _plain(d: dict) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


def _tuples(d: dict) -> dict:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}

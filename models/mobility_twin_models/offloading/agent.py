r"""The Actor-Critic agent of DITEN (Sec. IV-C-D) and its checkpoint file.

Actor: state -> 3 hidden ReLU layers -> N logits -> softmax, ``pi(S_t, W_a)`` over the candidates.
Critic: "the input of Critic network is state and action, and the output is Q value ... the hidden
layer 1 consists of two parts, one of which receives the state and the other receives the action":
``ReLU(W_s S) || ReLU(W_a onehot(A))`` -> 2 more hidden ReLU layers -> ``Q(S, A)``. The state value the
TD error of eq. 17 needs is ``V(S) = sum_a pi(a | S) Q(S, a)``.

Shapes:
    states (B, spec.size) float32; actions (B,) int64; actor output (B, N); critic output (B,).

A checkpoint holds one agent per candidate count N (the network sizes depend on N, as in the paper),
with its feature layout, hyper-parameters and a free-form ``meta`` (training command, environment).
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mobility_twin_core import checkpoint as core_checkpoint
from mobility_twin_models.offloading.errors import CheckpointError, OffloadingError
from mobility_twin_models.offloading.features import FeatureSpec, observation_features

CHECKPOINT_KIND, CHECKPOINT_VERSION = "offloading_actor_critic", 1
RETRAIN = "python -m mobility_twin_models.offloading.train"
ACTOR_KINDS = ("flat", "shared")
#: The shipped checkpoint (produced by ``python -m mobility_twin_models.offloading.train``, see that module).
DEFAULT_CHECKPOINT = Path(__file__).resolve().parents[1] / "checkpoints" / "offloading_actor_critic.pt"


def _mlp(sizes: tuple[int, ...]) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for a, b in itertools.pairwise(sizes):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return layers


class Actor(nn.Module):
    """``pi(S, W_a)``: 3 hidden ReLU layers, softmax over the N candidates (logits from :meth:`forward`).

    ``kind="flat"`` is the paper's network: the whole state in, N logits out. ``kind="shared"`` scores
    each candidate with one network applied to that candidate's features, its rank (one-hot) and the
    global features (the deficit queue), and takes the softmax of the N scores: the same input and
    output, but the network does not have to learn to find a candidate's columns in the state (an
    argmin over N positions is hard for a flat MLP; see the benchmark's ablation).
    """

    def __init__(self, state_size: int, n_actions: int, *, hidden: tuple[int, int, int] = (128, 128, 64),
                 kind: str = "flat", per_candidate: int = 0) -> None:
        super().__init__()
        if kind not in ACTOR_KINDS:
            raise OffloadingError(f"actor kind must be one of {ACTOR_KINDS}, got {kind!r}")
        if kind == "shared" and per_candidate <= 0:
            raise OffloadingError("a shared actor needs per_candidate > 0")
        self.state_size, self.n_actions, self.hidden, self.kind = state_size, n_actions, tuple(hidden), kind
        self.per_candidate = per_candidate
        if kind == "flat":
            self.body = nn.Sequential(*_mlp((state_size, *hidden)), nn.Linear(hidden[-1], n_actions))
        else:
            self.n_global = state_size - n_actions * per_candidate
            self.body = nn.Sequential(*_mlp((per_candidate + n_actions + self.n_global, *hidden)),
                                      nn.Linear(hidden[-1], 1))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for m in self.body:
            if isinstance(m, nn.Linear):
                nn.init.kaiming_uniform_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)
        last = self.body[-1]
        nn.init.uniform_(last.weight, -1e-3, 1e-3)  # start near the uniform policy

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        if self.kind == "flat":
            return self.body(states)
        b, n, p = states.shape[0], self.n_actions, self.per_candidate
        per = states[:, : n * p].view(b, n, p)
        rank = torch.eye(n, dtype=states.dtype, device=states.device).expand(b, n, n)
        glob = states[:, n * p:].unsqueeze(1).expand(b, n, self.n_global)
        return self.body(torch.cat([per, rank, glob], dim=-1)).squeeze(-1)

    def probabilities(self, states: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.forward(states), dim=-1)

    def __repr__(self) -> str:
        return f"Actor(kind={self.kind}, state={self.state_size}, actions={self.n_actions}, hidden={self.hidden})"


class Critic(nn.Module):
    """``Q(S, A, W_c)``: hidden layer 1 in two parts (state; action), then 2 hidden ReLU layers.

    The action enters as its one-hot index concatenated with the features of the chosen candidate (the
    ``per_candidate`` columns of the state that belong to it): "the other [part] receives the action",
    described by what it selects rather than by its position alone, which spares the critic learning
    to pick one candidate's columns out of the state.
    """

    def __init__(self, state_size: int, n_actions: int, *, per_candidate: int = 0,
                 hidden: tuple[int, int, int] = (128, 128, 64), action_share: float = 0.25) -> None:
        super().__init__()
        self.state_size, self.n_actions, self.hidden = state_size, n_actions, tuple(hidden)
        self.per_candidate = per_candidate
        h_action = max(4, round(hidden[0] * action_share))
        self.state_in = nn.Linear(state_size, hidden[0] - h_action)
        self.action_in = nn.Linear(n_actions + per_candidate, h_action)
        self.body = nn.Sequential(*_mlp(hidden), nn.Linear(hidden[-1], 1))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for m in (self.state_in, self.action_in, *self.body):
            if isinstance(m, nn.Linear):
                nn.init.kaiming_uniform_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def action_input(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        onehot = nn.functional.one_hot(actions, self.n_actions).to(states.dtype)
        if not self.per_candidate:
            return onehot
        p = self.per_candidate
        per = states[:, : self.n_actions * p].view(-1, self.n_actions, p)
        chosen = per.gather(1, actions.view(-1, 1, 1).expand(-1, 1, p))[:, 0]
        return torch.cat([onehot, chosen], dim=-1)

    def forward(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        h = torch.cat([torch.relu(self.state_in(states)), torch.relu(self.action_in(self.action_input(states, actions)))],
                      dim=-1)
        return self.body(h).squeeze(-1)

    def all_actions(self, states: torch.Tensor) -> torch.Tensor:
        """(B, N): ``Q(S, a)`` for every action."""
        b, n = states.shape[0], self.n_actions
        s = states.repeat_interleave(n, dim=0)
        a = torch.arange(n, device=states.device).repeat(b)
        return self.forward(s, a).view(b, n)

    def __repr__(self) -> str:
        return f"Critic(state={self.state_size}, actions={self.n_actions}, hidden={self.hidden})"


@dataclass(frozen=True)
class AgentSpec:
    """What a checkpointed agent needs to be rebuilt: features and network sizes."""

    candidates: int
    layout: str = "extended"
    actor_hidden: tuple[int, int, int] = (128, 128, 64)
    critic_hidden: tuple[int, int, int] = (128, 128, 64)
    actor_kind: str = "flat"

    @property
    def features(self) -> FeatureSpec:
        return FeatureSpec(self.candidates, self.layout)


class ActorCritic:
    """An actor and a critic for N candidates."""

    def __init__(self, spec: AgentSpec, *, seed: int = 0) -> None:
        self.spec = spec
        torch.manual_seed(seed)
        size = spec.features.size
        self.actor = Actor(size, spec.candidates, hidden=spec.actor_hidden, kind=spec.actor_kind,
                           per_candidate=spec.features.per_candidate)
        self.critic = Critic(size, spec.candidates, per_candidate=spec.features.per_candidate,
                             hidden=spec.critic_hidden)

    @torch.no_grad()
    def decide(self, states: np.ndarray, *, greedy: bool = True, rng: np.random.Generator | None = None) -> np.ndarray:
        """Candidate indices for (B, size) states: the most probable (Algorithm 2, line 4) or a sample."""
        x = torch.as_tensor(states, dtype=torch.float32)
        logits = self.actor(x)
        if greedy:
            return logits.argmax(dim=-1).numpy()
        p = torch.softmax(logits, dim=-1).numpy().astype(float)
        p /= p.sum(axis=1, keepdims=True)
        rng = rng or np.random.default_rng()
        u = rng.random((len(p), 1))
        return np.minimum((np.cumsum(p, axis=1) < u).sum(axis=1), p.shape[1] - 1)

    def state_dict(self) -> dict:
        return {"spec": {**asdict(self.spec)}, "actor": self.actor.state_dict(), "critic": self.critic.state_dict()}

    @classmethod
    def from_state_dict(cls, data: dict) -> ActorCritic:
        s = data["spec"]
        spec = AgentSpec(int(s["candidates"]), str(s["layout"]), tuple(s["actor_hidden"]), tuple(s["critic_hidden"]),
                         str(s.get("actor_kind", "flat")))
        agent = cls(spec)
        agent.actor.load_state_dict(data["actor"])
        agent.critic.load_state_dict(data["critic"])
        agent.actor.eval()
        agent.critic.eval()
        return agent


class ActorCriticPolicy:
    """An :class:`ActorCritic` as a :class:`~mobility_twin_models.offloading.rollout.Policy` (greedy, Algorithm 2)."""

    def __init__(self, agent: ActorCritic, cost: float, *, greedy: bool = True, name: str = "actor_critic",
                 seed: int = 0) -> None:
        self.agent, self.cost, self.greedy, self.name = agent, cost, greedy, name
        self.rng = np.random.default_rng(seed)
        self.last_states: np.ndarray | None = None

    def reset(self, episode) -> None:
        if episode.n_candidates != self.agent.spec.candidates:
            raise OffloadingError(f"agent decides among N={self.agent.spec.candidates} candidates, "
                                  f"the episode has N={episode.n_candidates}")

    def act(self, obs) -> np.ndarray:
        self.last_states = observation_features(self.agent.spec.features, obs, self.cost)
        return self.agent.decide(self.last_states, greedy=self.greedy, rng=self.rng)


def save_checkpoint(path: Path | str, agents: dict[int, ActorCritic], meta: dict | None = None) -> Path:
    """Write the agents (keyed by N) and ``meta`` to ``path`` (the stack's checkpoint format)."""
    return core_checkpoint.save_checkpoint(
        path, kind=CHECKPOINT_KIND, version=CHECKPOINT_VERSION, metadata=meta,
        state={"agents": {str(n): agent.state_dict() for n, agent in sorted(agents.items())}})


def load_checkpoint(path: Path | str = DEFAULT_CHECKPOINT) -> tuple[dict[int, ActorCritic], dict]:
    """``({N: agent}, metadata)`` from a checkpoint written by :func:`save_checkpoint`."""
    ckpt = core_checkpoint.load_checkpoint(path, kind=CHECKPOINT_KIND, version=CHECKPOINT_VERSION, retrain=RETRAIN)
    try:
        agents = {int(n): ActorCritic.from_state_dict(d) for n, d in ckpt.state["agents"].items()}
    except (KeyError, RuntimeError, ValueError, TypeError) as err:
        raise CheckpointError(f"offloading checkpoint {path} has a malformed agent: {err}") from None
    return agents, ckpt.metadata


def agent_for(agents: dict[int, ActorCritic], candidates: int, path: Path | str = "") -> ActorCritic:
    if candidates not in agents:
        raise CheckpointError(f"checkpoint {path} has agents for N in {sorted(agents)}, not N={candidates}")
    return agents[candidates]

"""A relation model with its optimiser and continual-learning strategy: one object that trains, predicts,
and saves/restores everything it needs to continue after a restart.

:meth:`RelationLearner.step` is one incremental update: one gradient step on the newest graphs, plus, by
strategy, graphs replayed from a bounded reservoir (``replay``) or the EWC penalty (``ewc``).
:meth:`RelationLearner.end_task` closes a task (EWC estimates its Fisher information there).
``joint`` is not an online strategy: the caller trains it on all tasks' data at once (the upper
reference of the continual-learning benchmark); here it behaves like ``naive``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch_geometric.data import HeteroData

from mobility_twin_core import checkpoint as core_checkpoint
from mobility_twin_models.relations.config import GraphConfig, ModelConfig, TrainConfig, from_dict, to_dict
from mobility_twin_models.relations.continual.buffer import ReservoirBuffer
from mobility_twin_models.relations.continual.ewc import EWC
from mobility_twin_models.relations.errors import CheckpointError
from mobility_twin_models.relations.graph import graph_nbytes
from mobility_twin_models.relations.nn.model import Predictions, RelationModel

DEFAULT_CHECKPOINT = Path(__file__).resolve().parents[1] / "checkpoints" / "relations_gnn.pt"
CHECKPOINT_KIND = "relations_learner"
RETRAIN = "python -m mobility_twin_models.relations.train"
# 2: handover-log features and the follows relation; 3: the log-scale age; 4: the junctions' turn ratios and the
# roads into each candidate's cell
CHECKPOINT_FORMAT = 4
GRAD_CLIP = 5.0


@dataclass(frozen=True)
class StepReport:
    """What one update did: losses, graphs used, wall time (s)."""

    loss: float
    handover: float
    load: float
    penalty: float
    graphs: int
    replayed: int
    seconds: float


class RelationLearner:
    """Model + optimiser + strategy state.

    Args:
        graph: the graph layout the model reads.
        model: the network.
        train: optimiser and strategy.
    """

    def __init__(self, graph: GraphConfig | None = None, model: ModelConfig | None = None,
                 train: TrainConfig | None = None) -> None:
        graph, model, train = graph or GraphConfig(), model or ModelConfig(), train or TrainConfig()
        self.graph_config, self.model_config, self.train_config = graph, model, train
        torch.manual_seed(train.seed)
        self.model = RelationModel(graph, model)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=train.lr, weight_decay=train.weight_decay)
        self.buffer: ReservoirBuffer[HeteroData] | None = (
            ReservoirBuffer(train.buffer_graphs, seed=train.seed, nbytes=graph_nbytes)
            if train.strategy == "replay" else None)
        self.ewc: EWC | None = EWC(train.ewc_lambda, decay=train.ewc_decay) if train.strategy == "ewc" else None
        self.updates = 0
        self.tasks_closed = 0
        self._rng = np.random.default_rng(train.seed)

    # ------------------------------------------------------------------------------------------ training
    def step(self, graphs: Sequence[HeteroData]) -> StepReport:
        """One gradient step on ``graphs`` (labelled), with the strategy's replay or penalty; the graphs
        then join the replay reservoir."""
        if not graphs:
            raise ValueError("step() needs at least one labelled graph")
        start = time.perf_counter()
        replayed = self.buffer.sample(self.train_config.replay_graphs) if self.buffer is not None else []
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        total = torch.zeros(())
        parts = {"handover": 0.0, "load": 0.0}
        batch = list(graphs) + replayed
        for g in batch:
            loss, p = self.model.loss(g)
            total = total + loss / len(batch)
            parts["handover"] += p["handover"] / len(batch)
            parts["load"] += p["load"] / len(batch)
        penalty = self.ewc.penalty(self.model) if self.ewc is not None else torch.zeros(())
        (total + penalty).backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), GRAD_CLIP)
        self.optimizer.step()
        if self.buffer is not None:
            for g in graphs:
                self.buffer.add(g)
        self.updates += 1
        return StepReport(float(total.detach()), parts["handover"], parts["load"], float(penalty.detach()),
                          len(graphs), len(replayed), time.perf_counter() - start)

    def fit(self, graphs: Sequence, steps: int, *, graph_of=None) -> list[StepReport]:
        """``steps`` updates, each on ``graphs_per_step`` graphs drawn at random from ``graphs``.

        ``graph_of`` turns an item of ``graphs`` into a labelled graph (e.g. ``lambda s: s.graph(cfg)``);
        default: the items are graphs already.
        """
        if not len(graphs):
            return []
        reports = []
        k = min(self.train_config.graphs_per_step, len(graphs))
        for _ in range(steps):
            pick = self._rng.choice(len(graphs), size=k, replace=False)
            batch = [graphs[i] if graph_of is None else graph_of(graphs[i]) for i in pick]
            reports.append(self.step(batch))
        return reports

    def end_task(self, graphs: Sequence[HeteroData]) -> None:
        """Close a task: EWC consolidates on up to ``ewc_fisher_graphs`` of its graphs."""
        self.tasks_closed += 1
        if self.ewc is None or not len(graphs):
            return
        n = min(self.train_config.ewc_fisher_graphs, len(graphs))
        pick = self._rng.choice(len(graphs), size=n, replace=False)
        self.ewc.consolidate(self.model, [graphs[i] for i in pick], lambda g: self.model.loss(g)[0])

    def predict(self, data: HeteroData) -> Predictions:
        return self.model.predict(data)

    @property
    def state_nbytes(self) -> dict[str, int]:
        """Memory the strategy holds beyond the model: parameters, optimiser, replay graphs, EWC state."""
        params = sum(p.element_size() * p.numel() for p in self.model.parameters())
        return {
            "parameters": params,
            "optimizer": 2 * params,  # Adam's two moments
            "replay_buffer": self.buffer.nbytes if self.buffer is not None else 0,
            "ewc": self.ewc.nbytes if self.ewc is not None else 0,
        }

    # ------------------------------------------------------------------------------------------ checkpoints
    def state_dict(self, *, with_buffer: bool = True) -> dict:
        return {
            "format": CHECKPOINT_FORMAT,
            "graph_config": to_dict(self.graph_config),
            "model_config": to_dict(self.model_config),
            "train_config": to_dict(self.train_config),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "updates": self.updates,
            "tasks_closed": self.tasks_closed,
            "buffer": self.buffer.state_dict() if (self.buffer is not None and with_buffer) else None,
            "ewc": self.ewc.state_dict() if self.ewc is not None else None,
            "rng": self._rng.bit_generator.state,
            "torch_rng": torch.get_rng_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        _check_format(state, "checkpoint")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.updates = int(state["updates"])
        self.tasks_closed = int(state["tasks_closed"])
        if self.buffer is not None and state.get("buffer") is not None:
            self.buffer.load_state_dict(state["buffer"])
        if self.ewc is not None and state.get("ewc") is not None:
            self.ewc.load_state_dict(state["ewc"])
        self._rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])

    def save(self, path: Path | str, *, with_buffer: bool = True, metadata: dict | None = None) -> Path:
        """Write a checkpoint (the stack's format: tensors and plain values only, atomic)."""
        state = self.state_dict(with_buffer=with_buffer)
        state.pop("format")
        if state["buffer"] is not None:
            state["buffer"] = {**state["buffer"], "items": [g.to_dict() for g in state["buffer"]["items"]]}
        return core_checkpoint.save_checkpoint(path, kind=CHECKPOINT_KIND, version=CHECKPOINT_FORMAT, state=state,
                                               metadata=metadata)

    @classmethod
    def load(cls, path: Path | str, *, train: TrainConfig | None = None) -> RelationLearner:
        """Rebuild a learner from a checkpoint (its configs come from the file; ``train`` overrides the
        training config, e.g. to continue a shipped model with another strategy)."""
        path = Path(path)
        state = dict(core_checkpoint.load_checkpoint(path, kind=CHECKPOINT_KIND, version=CHECKPOINT_FORMAT,
                                                     retrain=RETRAIN).state)
        state["format"] = CHECKPOINT_FORMAT
        if state.get("buffer") is not None:
            try:
                state["buffer"] = {**state["buffer"], "items": [HeteroData.from_dict(g) for g in state["buffer"]["items"]]}
            except (KeyError, TypeError, ValueError) as err:
                raise CheckpointError(f"checkpoint {path} has a malformed replay buffer: {err}") from None
        try:
            graph = from_dict(GraphConfig, state["graph_config"])
            model = from_dict(ModelConfig, state["model_config"])
            saved_train = from_dict(TrainConfig, state["train_config"])
        except (KeyError, TypeError, ValueError) as err:
            raise CheckpointError(f"checkpoint {path} has no valid configs: {err}") from None
        _check_format(state, f"checkpoint {path}")
        learner = cls(graph, model, train or saved_train)
        if train is not None and train != saved_train:
            learner.model.load_state_dict(state["model"])
            learner.updates = int(state["updates"])
            return learner
        learner.load_state_dict(state)
        return learner


def _check_format(state: dict, source: str) -> None:
    """Refuse a learner state of another checkpoint format, with the command that retrains one."""
    if state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{source} has format {state.get('format')!r}, expected {CHECKPOINT_FORMAT} (the graph's "
                              f"features changed; retrain: {RETRAIN})")

"""Online relation learning on a live twin: observe, predict, label what the past predicted, keep learning.

:class:`OnlineRelationLearner` is what the ``relation_learner`` node drives, with no ROS in it:

* :meth:`~OnlineRelationLearner.observe` takes one :class:`TwinSnapshot` per slot, returns the graph and
  the predictions of the current model (a copy of the trained weights, so predicting never waits for a
  training step), and labels the snapshot observed one horizon earlier with what has happened since:
  that labelled graph joins the training queue.
* :meth:`~OnlineRelationLearner.train_for` runs incremental updates (the learner's strategy: naive,
  replay, EWC) on the newest labelled graphs until a wall-time budget is spent, then publishes the new
  weights to the prediction copy. It is meant for a background thread.
* :meth:`~OnlineRelationLearner.save` / :meth:`~OnlineRelationLearner.load` checkpoint the learner, so a
  restarted node resumes where it stopped.
"""

from __future__ import annotations

import copy
import threading
import time
from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from torch_geometric.data import HeteroData

from mobility_twin_models.relations.dataset import future_server, label_graph
from mobility_twin_models.relations.graph import build_graph, random_graph
from mobility_twin_models.relations.learner import RelationLearner
from mobility_twin_models.relations.nn.model import Predictions
from mobility_twin_models.relations.snapshot import ObservedSnapshot, TwinHistory, TwinSnapshot


@dataclass(frozen=True)
class Observation:
    """What :meth:`OnlineRelationLearner.observe` returns for one snapshot."""

    obs: ObservedSnapshot
    graph: HeteroData
    predictions: Predictions
    labelled: bool  # whether this call labelled an older snapshot for training
    seconds: float  # wall time of history, graph and prediction


class OnlineRelationLearner:
    """A :class:`RelationLearner` fed by a stream of twin snapshots.

    Args:
        learner: the model, optimiser and strategy (fresh or loaded from a checkpoint).
        queue_graphs: the newest labelled graphs kept for training (older ones are dropped unseen).
        rsu_range_m: RSU sensing range for the RSU load feature.
        roads: the :class:`~mobility_twin_models.relations.roads.RoadNetwork` the vehicles drive on (``map``
            frame), for a model with road relations (``GraphConfig.roads``); None: no road nodes.
    """

    def __init__(self, learner: RelationLearner, *, queue_graphs: int = 16, rsu_range_m: float = 100.0,
                 roads=None) -> None:
        self.learner = learner
        self.config = learner.graph_config
        self.history = TwinHistory(self.config, rsu_range_m=rsu_range_m, roads=roads if self.config.roads else None)
        self._pending: deque[tuple[ObservedSnapshot, HeteroData]] = deque()
        self._queue: deque[HeteroData] = deque(maxlen=queue_graphs)
        self._lock = threading.Lock()  # guards the prediction copy and the queue
        self._train_lock = threading.Lock()  # one trainer (or checkpoint writer) at a time
        self._inference = copy.deepcopy(learner.model)
        self.labelled_total = 0

    @property
    def horizon_s(self) -> float:
        return self.config.horizon_s

    @property
    def updates(self) -> int:
        return self.learner.updates

    # ------------------------------------------------------------------------------------------ stream
    def observe(self, snapshot: TwinSnapshot, signals=None) -> Observation:
        """One slot: ``signals`` are the traffic lights' states the twin holds (a
        :class:`~mobility_twin_sim.backend.SignalStates`-like object; None: not known)."""
        start = time.perf_counter()
        obs = self.history.observe(snapshot, signals)
        graph = build_graph(obs, self.config)
        with self._lock:
            predictions = self._inference.predict(graph)
        labelled = self._label_past(obs)
        self._pending.append((obs, graph))
        return Observation(obs, graph, predictions, labelled, time.perf_counter() - start)

    def _label_past(self, now: ObservedSnapshot) -> bool:
        """Label the newest pending snapshot at least one horizon old (drop older ones)."""
        target = None
        # tolerate a quarter-second of jitter in the slot timing
        while self._pending and self._pending[0][0].t <= now.t - self.horizon_s + 0.25:
            target = self._pending.popleft()
        if target is None:
            return False
        past, graph = target
        if not np.array_equal(past.snapshot.server_ids, now.snapshot.server_ids):
            return False  # the servers changed in between: the labels would not line up
        y = future_server(past, now)
        label_graph(graph, y, now.load, np.ones(len(y), bool), np.ones(len(now.snapshot.server_ids), bool))
        with self._lock:
            self._queue.append(graph)
        self.labelled_total += 1
        return True

    # ------------------------------------------------------------------------------------------ training
    def train_for(self, budget_s: float) -> int:
        """Incremental updates on the newest labelled graphs until ``budget_s`` of wall time is spent (a step
        is only started when the last one would still fit). Returns the number of updates made."""
        with self._train_lock:
            deadline = time.perf_counter() + budget_s
            steps = 0
            last = 0.0
            while True:
                with self._lock:
                    if not self._queue:
                        break
                    graph = self._queue.pop()  # newest first
                if steps and time.perf_counter() + last > deadline:
                    with self._lock:
                        self._queue.append(graph)
                    break
                report = self.learner.step([graph])
                last = report.seconds
                steps += 1
                if time.perf_counter() >= deadline:
                    break
            if steps:
                weights = {k: v.detach().clone() for k, v in self.learner.model.state_dict().items()}
                with self._lock:
                    self._inference.load_state_dict(weights)
            return steps

    def compile(self) -> str | None:
        """Compile the prediction copy's forward pass
        (:meth:`~mobility_twin_models.relations.nn.model.RelationModel.compile_predict`): tens of seconds,
        during which :meth:`observe` goes on predicting eagerly; the compiled copy then takes over, with the
        weights published meanwhile. Meant for the background thread. Returns None, or why the pass could
        not be compiled (predictions stay eager)."""
        with self._lock:
            model = copy.deepcopy(self._inference)  # a copy does not carry a compiled pass: it stays eager
        # an example with the node types this learner's graphs have: no road nodes without a road network
        # (a model with road relations on a twin without a map), which the program would not take
        config = self.config if self.history.roads is not None else replace(self.config, roads=False)
        error = model.compile_predict(random_graph(config))
        if error is None:
            with self._lock:
                model.load_state_dict(self._inference.state_dict())
                self._inference = model
        return error

    @property
    def compiled(self):
        """The prediction copy's :class:`~mobility_twin_models.relations.nn.model.CompiledPredict` (calls,
        eager fallbacks, error), or None while predictions are eager."""
        with self._lock:
            return self._inference.compiled

    @property
    def queued(self) -> int:
        with self._lock:
            return len(self._queue)

    # ------------------------------------------------------------------------------------------ checkpoints
    def save(self, path: Path | str) -> Path:
        with self._train_lock:
            return self.learner.save(path)

    @classmethod
    def load(cls, path: Path | str, **kwargs) -> OnlineRelationLearner:
        return cls(RelationLearner.load(path), **kwargs)

"""Honest baselines for the two tasks, and the metrics every predictor is scored with.

Handover (serving server of each vehicle ``k`` slots ahead):

* :func:`stay`: the current server.
* :func:`constant_velocity`: the server of the point the vehicle reaches if it keeps its velocity
  (the current server when that point is outside coverage).
* :class:`MarkovHandover`: first-order Markov chain of server transitions over ``k`` slots, counted on
  training data: the most frequent next server of the current one (the current server when unseen).
  With ``order=2`` (our addition, a stronger baseline) the state is (previous server, current server)
  from the handover log, falling back to first order when that pair was never seen.
* :func:`dead_reckoning`: from the handover log, the server of the point reached by driving on from the
  border of the previous and current cells, away from the previous server (our addition; see
  :func:`~mobility_twin_models.relations.graph.handover_dead_reckoning`).

On a road network (snapshots observed with a :class:`~mobility_twin_models.relations.roads.RoadNetwork`):

* :func:`along_road`: constant velocity along the road: the server of the point the vehicle reaches driving
  on along its road at its speed, straight on at junctions (or, with a turn table, the turn that road's
  vehicles took most often in training: :class:`RoadTurns`, a Markov chain per junction); for a vehicle that
  shares its destination, the fastest path there (shortest-path continuation, ``destination=``).

Load (vehicles served ``h`` slots ahead): :func:`last_value` and :func:`moving_average` (the mean of
the ``load_lags`` last loads). The MLP without the graph is :class:`~mobility_twin_models.relations.nn.model.RelationModel`
with ``message_passing=False``.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
from torch_geometric.data import HeteroData

from mobility_twin_models.relations.graph import SERVER, VEHICLE
from mobility_twin_models.relations.roads import follow_roads, road_transitions, turn_table


def stay(data: HeteroData) -> torch.Tensor:
    return data[VEHICLE].serving.clone()


def constant_velocity(data: HeteroData) -> torch.Tensor:
    cv = data[VEHICLE].cv_server
    return torch.where(cv >= 0, cv, data[VEHICLE].serving)


def dead_reckoning(data: HeteroData) -> torch.Tensor:
    dr = data[VEHICLE].dr_server
    return torch.where(dr >= 0, dr, data[VEHICLE].serving)


class MarkovHandover:
    """Most frequent ``k``-slot transition of each server, by server id (so districts can share it).

    Args:
        order: 1, the state is the current server; 2, it is (previous server, current server) from the
            handover log (first order when the vehicle has no known handover or the pair is unseen).
    """

    def __init__(self, order: int = 1) -> None:
        if order not in (1, 2):
            raise ValueError(f"order must be 1 or 2, got {order!r}")
        self.order = order
        self.counts: dict[object, Counter] = defaultdict(Counter)
        self._best: dict = {}

    def _states(self, sample, rows: np.ndarray) -> list:
        ids = sample.obs.snapshot.server_ids
        now = ids[sample.obs.serving[rows]]
        if self.order == 1:
            return list(now)
        prev = sample.obs.prev_server[rows]
        return [(ids[p] if p >= 0 else None, c) for p, c in zip(prev, now, strict=True)]

    def fit(self, samples: Iterable) -> MarkovHandover:
        for sample in samples:
            ids = sample.obs.snapshot.server_ids
            ok = np.flatnonzero(sample.vehicle_mask & (sample.y_server >= 0))
            nxt = ids[sample.y_server[ok]]
            for state, b in zip(self._states(sample, ok), nxt, strict=True):
                self.counts[state][b] += 1
                if self.order == 2:
                    self.counts[state[1]][b] += 1
        self._best = {a: c.most_common(1)[0][0] for a, c in self.counts.items()}
        return self

    def predict(self, sample) -> torch.Tensor:
        ids = sample.obs.snapshot.server_ids
        index = {sid: i for i, sid in enumerate(ids)}
        now = sample.obs.serving
        states = self._states(sample, np.arange(len(now)))
        out = []
        for s, state in zip(now, states, strict=True):
            best = self._best.get(state)
            if best is None and self.order == 2:
                best = self._best.get(state[1])
            out.append(index.get(best, s) if best is not None else s)
        return torch.from_numpy(np.array(out, dtype=np.int64))


def along_road(obs, horizon_s: float, next_edge: np.ndarray | None = None, *,
               destination: np.ndarray | None = None, hops: np.ndarray | None = None) -> torch.Tensor:
    """The server of the point each vehicle reaches in ``horizon_s`` (plus its state's age) driving on
    along its road at its speed, taking ``next_edge`` at junctions (default straight on); the current
    server for a vehicle on no road or whose point no server covers.

    ``destination`` [V] (road index, -1: not shared) with ``hops`` (:func:`next_hops` of every road): a
    vehicle that shares its destination drives the fastest path there instead (shortest-path
    continuation), stopping at its end."""
    road = obs.road
    if road is None:
        raise ValueError("along_road needs snapshots observed with a road network")
    s = obs.snapshot
    distance = np.linalg.norm(s.vehicle_vel, axis=1) * (s.vehicle_age_s + horizon_s)
    route = None
    if destination is not None:
        if hops is None:
            raise ValueError("a destination needs the network's next hops (roads.next_hops)")
        route = (hops, np.asarray(destination, np.int64))
    point = follow_roads(road.network, road.road, road.along, distance, next_edge, route=route)
    on = np.all(np.isfinite(point), axis=1)
    server = obs.serving.copy()
    if on.any():
        there = obs.static.index.serving(point[on])
        server[on] = np.where(there >= 0, there, server[on])
    return torch.from_numpy(server.astype(np.int64))


class RoadTurns:
    """The turn each road's vehicles took most often (a first-order Markov chain per junction), counted on
    consecutive snapshots of the training period; straight on where a road's turns were never seen."""

    def __init__(self) -> None:
        self.table: np.ndarray | None = None
        self.transitions = 0

    def fit(self, observed) -> RoadTurns:
        pairs = [road_transitions(a.road, b.road, a.snapshot.vehicle_ids, b.snapshot.vehicle_ids)
                 for a, b in itertools.pairwise(observed)]
        both = np.concatenate(pairs, axis=1) if pairs else np.zeros((2, 0), np.int64)
        self.transitions = both.shape[1]
        self.table = turn_table(both, observed[0].road.network)
        return self

    def predict(self, obs, horizon_s: float) -> torch.Tensor:
        return along_road(obs, horizon_s, self.table)


def last_value(data: HeteroData) -> torch.Tensor:
    return data[SERVER].load.clone()


def moving_average(data: HeteroData) -> torch.Tensor:
    return data[SERVER].load_lags.mean(dim=1)


@dataclass
class HandoverScore:
    """Accumulates handover accuracy over graphs: overall, and on the vehicles that do change server."""

    correct: int = 0  # vehicles whose next server was predicted right
    total: int = 0  # labelled vehicles scored
    moved_correct: int = 0  # ... of those that changed server
    moved_total: int = 0

    def add(self, data: HeteroData, predicted: torch.Tensor) -> None:
        mask = data[VEHICLE].mask
        y = data[VEHICLE].y_server[mask]
        p = predicted[mask]
        moved = y != data[VEHICLE].serving[mask]
        self.correct += int((p == y).sum())
        self.total += int(mask.sum())
        self.moved_correct += int((p == y)[moved].sum())
        self.moved_total += int(moved.sum())

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else float("nan")

    @property
    def moved_accuracy(self) -> float:
        return self.moved_correct / self.moved_total if self.moved_total else float("nan")


@dataclass
class LoadScore:
    """Accumulates load-forecast errors (vehicles) over graphs."""

    abs_err: float = 0.0
    sq_err: float = 0.0
    total: int = 0

    def add(self, data: HeteroData, predicted: torch.Tensor) -> None:
        mask = data[SERVER].mask
        err = (predicted[mask] - data[SERVER].y_load[mask]).double()
        self.abs_err += float(err.abs().sum())
        self.sq_err += float((err**2).sum())
        self.total += int(mask.sum())

    @property
    def mae(self) -> float:
        return self.abs_err / self.total if self.total else float("nan")

    @property
    def rmse(self) -> float:
        return (self.sq_err / self.total) ** 0.5 if self.total else float("nan")

"""The road network in the relation graph: which road each vehicle twin is on, each road's state, and the
road-following baselines.

A twin on a road network knows more than positions: the road a vehicle is on (map-matched from its
position and heading), where that road leads (its successors at the junction ahead) and how traffic on it
moves (vehicles on it, their mean speed, how many stand: a queue). :class:`RoadNetwork` holds the static
part (a :class:`~mobility_twin_core.roads.RoadGraph` in the ``map`` frame, its map-matcher, each edge's
straight-on successor); :func:`road_state` the part of one snapshot, from the twin's vehicles only.

Baselines that are fair on a road network (:func:`follow_roads`): constant velocity along the road (the
vehicle drives on along its road at its speed and goes straight on at junctions), and the same with the
turn each road's vehicles took most often in the training period (:func:`turn_table`, a first-order
Markov chain per junction).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np

from mobility_twin_core.roads import EdgeMatcher, RoadGraph

#: a vehicle slower than this stands (m/s)
STOPPED_MPS = 1.0
#: metres of lane per vehicle of a full road (for occupancy)
VEHICLE_SPACING_M = 7.5


class PairIndex:
    """Where each pair (a, b) of non-negative ints, b < ``n``, stands in the columns of [2, K] ``pairs``: a
    look-up built once. A look-up is one read from a table with a cell per key where the key range
    (``(max a + 1) * n``) is at most :attr:`DENSE_MAX`, and, unless the index is ``kept`` for many look-ups
    (a network's connections), where the pairs fill it well enough that the table costs about what sorting
    them would (a twin's vehicles times its servers, rebuilt every slot); otherwise a sorted search. A pair
    listed twice is found at its first column either way."""

    #: largest key range looked up in a table ...
    DENSE_MAX = 1 << 20
    #: ... and, for an index not kept, at most this many keys per pair (or a small range anyway)
    DENSE_PER_PAIR = 16

    def __init__(self, a: np.ndarray, b: np.ndarray, n: int, *, kept: bool = False) -> None:
        self.n = max(int(n), 1)
        key = np.asarray(a, np.int64) * self.n + np.asarray(b, np.int64)
        self.size = int(key.max()) + 1 if len(key) else 0
        self.table = self.keys = self.order = None
        if self.size <= self.DENSE_MAX and (kept or self.size <= max(self.DENSE_PER_PAIR * len(key), 1 << 16)):
            self.table = np.full(self.size, -1, np.int64)
            self.table[key[::-1]] = np.arange(len(key) - 1, -1, -1)  # the last write, the first column, wins
        else:
            self.order = np.argsort(key, kind="stable")
            self.keys = key[self.order]

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """[N] the column of each (``a``, ``b``); -1 where there is none (or either is negative)."""
        a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
        if not self.size:
            return np.full(a.shape, -1, np.int64)
        key = a * self.n + b
        valid = (a >= 0) & (b >= 0) & (b < self.n) & (key < self.size)
        if self.table is not None:
            return np.where(valid, self.table[np.where(valid, key, 0)], -1)
        at = np.minimum(np.searchsorted(self.keys, key), len(self.keys) - 1)
        return np.where(valid & (self.keys[at] == key), self.order[at], -1).astype(np.int64)


@dataclass(frozen=True)
class RoadNetwork:
    """A road graph in the ``map`` frame with what the relation graph reads from it.

    ``start``, ``end``, ``direction``: [E, 2]; ``succ``: [2, K] (edge, successor) pairs with ``turn`` [K, 2]
    (cos, sin of the angle from the edge's direction to the successor's); ``straight`` [E]: the successor
    with the smallest turn (-1 at a dead end). Lanes: ``lane_first`` [E + 1], the first lane number of each
    edge (lanes numbered edge by edge, in ``graph.shapes`` order); ``option_ptr`` [L + 1] and ``options``,
    in CSR form, the successors each lane leads to (every successor of its edge where the graph does not
    say); ``option_signal`` and ``option_link``: the traffic light (index into ``signal_ids``, -1 for
    none) and its link index controlling each such connection."""

    graph: RoadGraph
    matcher: EdgeMatcher
    start: np.ndarray
    end: np.ndarray
    direction: np.ndarray
    succ: np.ndarray
    turn: np.ndarray
    straight: np.ndarray
    lane_first: np.ndarray
    option_ptr: np.ndarray
    options: np.ndarray
    signal_ids: tuple[str, ...] = ()
    option_signal: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    option_link: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    @classmethod
    def of(cls, graph: RoadGraph, *, max_m: float = 15.0) -> RoadNetwork:
        start, end, direction = graph.geometry
        rows = np.repeat(np.arange(len(graph)), np.diff(graph.succ_ptr))
        succ = np.stack([rows, graph.succ]).astype(np.int64).reshape(2, -1)
        a, b = direction[succ[0]], direction[succ[1]]
        turn = np.column_stack([(a * b).sum(axis=1), a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]]).reshape(-1, 2)
        straight = np.full(len(graph), -1, dtype=np.int64)
        _best_in_groups(succ[0], turn[:, 0], succ[1], straight)  # per edge, the straightest successor
        lanes = [len(shapes) for shapes in graph.shapes]
        lane_first = np.concatenate([[0], np.cumsum(lanes)]).astype(np.int64)
        per_lane = [graph.lane_successors[e][k] if graph.lane_successors else tuple(graph.successors(e).tolist())
                    for e, n in enumerate(lanes) for k in range(n)]
        option_ptr = np.concatenate([[0], np.cumsum([len(o) for o in per_lane])]).astype(np.int64)
        options = np.asarray([j for o in per_lane for j in o], np.int64)
        links = [link for lanes_ in graph.lane_signals for lane in lanes_ for link in lane] \
            if graph.lane_signals else [("", -1)] * len(options)
        signal_ids = tuple(sorted({tls for tls, _ in links if tls}))
        where = {tls: i for i, tls in enumerate(signal_ids)}
        option_signal = np.asarray([where.get(tls, -1) for tls, _ in links], np.int64)
        option_link = np.asarray([link for _, link in links], np.int64)
        return cls(graph, EdgeMatcher(graph, max_m=max_m), start, end, direction, succ, turn, straight, lane_first,
                   option_ptr, options, signal_ids, option_signal, option_link)

    def reachable(self, road: np.ndarray, lane: np.ndarray) -> np.ndarray:
        """[3, K] (vehicle, road, option) triples: the roads each vehicle's lane leads to at the junction
        ahead, with the index of that connection in ``options`` (its edge's successors, option -1, when the
        lane is not known; none off the network)."""
        road, lane = np.asarray(road, np.int64), np.asarray(lane, np.int64)
        on = road >= 0
        n_lanes = np.diff(self.lane_first)[np.maximum(road, 0)]
        known = on & (lane >= 0) & (lane < n_lanes)
        lanes = np.minimum(self.lane_first[np.maximum(road, 0)] + np.maximum(lane, 0), max(len(self.option_ptr) - 2, 0))
        # the lanes' options, then the edges' successors, in one array to gather from
        pool = np.concatenate([self.options, self.graph.succ]).astype(np.int64)
        edge = np.maximum(road, 0)
        first = np.where(known, self.option_ptr[lanes], len(self.options) + self.graph.succ_ptr[edge])
        count = np.where(known, self.option_ptr[lanes + 1] - self.option_ptr[lanes],
                         np.where(on, np.diff(self.graph.succ_ptr)[edge], 0))
        vehicles = np.repeat(np.arange(len(road)), count)
        within = np.arange(len(vehicles)) - np.repeat(np.cumsum(count) - count, count)
        pick = np.repeat(first, count) + within
        option = np.where(pick < len(self.options), pick, -1)
        return np.stack([vehicles, pool[pick], option]).astype(np.int64).reshape(3, -1)

    def option_signals(self, signals) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per connection of ``options``: ([O] controlled by a light whose state is known, [O] green now,
        [O] seconds until that light switches), from a :class:`~mobility_twin_sim.backend.SignalStates`-like
        ``signals`` (``ids``, ``state`` strings, ``next_switch_s``); None: nothing known."""
        n = len(self.options)
        if signals is None or not len(signals.ids) or not self.signal_ids:
            return np.zeros(n, bool), np.zeros(n, bool), np.zeros(n)
        row_of = {tls: i for i, tls in enumerate(signals.ids)}
        rows = np.asarray([row_of.get(tls, -1) for tls in self.signal_ids], np.int64)  # network light -> row
        row = np.where(self.option_signal >= 0, rows[np.maximum(self.option_signal, 0)], -1)
        width = max(1, *(len(state) for state in signals.state))
        chars = np.array([list(state.ljust(width)) for state in signals.state]).reshape(len(signals.ids), width)
        known = (row >= 0) & (self.option_link >= 0) & \
            (self.option_link < np.array([len(st) for st in signals.state])[np.maximum(row, 0)])
        char = chars[np.maximum(row, 0), np.clip(self.option_link, 0, width - 1)]
        green = known & np.isin(char, ("G", "g"))
        switch = np.where(known, np.asarray(signals.next_switch_s, float)[np.maximum(row, 0)], 0.0)
        return known, green, switch

    def successors(self, road: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """([N] position in ``road``, [N] successor): every successor of each of ``road``'s edges."""
        road = np.asarray(road, np.int64)
        ptr = self.graph.succ_ptr
        count = np.diff(ptr)[road]
        row = np.repeat(np.arange(len(road)), count)
        within = np.arange(len(row)) - np.repeat(np.cumsum(count) - count, count)
        return row, np.asarray(self.graph.succ, np.int64)[np.repeat(ptr[road], count) + within]

    @cached_property
    def _connections(self) -> PairIndex:
        return PairIndex(self.succ[0], self.succ[1], len(self.graph), kept=True)

    def connection(self, edge: np.ndarray, successor: np.ndarray) -> np.ndarray:
        """[N] the index in ``succ`` of each (``edge``, ``successor``) pair; -1 where the junction does not
        connect them."""
        return self._connections(edge, successor)

    def __len__(self) -> int:
        return len(self.graph)

    @property
    def length(self) -> np.ndarray:
        return self.graph.length

    def closure_edges(self, edge: int, blocks: int = 2, *, min_cos: float = 0.9, within_m: float = 20.0) -> list[str]:
        """The ids of the roads a closure of ``blocks`` consecutive blocks of a street closes: ``edge``, the
        roads straight on after it (while the street runs on within ``acos(min_cos)``), and the roads the
        other way between the same junctions (their ends within ``within_m`` of the others' starts: the
        lanes of the two directions lie side by side)."""
        chain = [int(edge)]
        while len(chain) < blocks:
            nxt = int(self.straight[chain[-1]])
            if nxt < 0 or nxt in chain or float(self.direction[chain[-1]] @ self.direction[nxt]) < min_cos:
                break
            chain.append(nxt)
        back = [int(j) for e in chain
                for j in np.flatnonzero((np.hypot(*(self.start - self.end[e]).T) < within_m)
                                        & (np.hypot(*(self.end - self.start[e]).T) < within_m)
                                        & (self.direction @ self.direction[e] < -min_cos))]
        return [self.graph.ids[e] for e in chain + back]

    def capacity(self) -> np.ndarray:
        """[E] vehicles a full road holds."""
        return np.maximum(self.graph.length * np.maximum(self.graph.lanes, 1) / VEHICLE_SPACING_M, 1.0)


@dataclass(frozen=True)
class RoadState:
    """One snapshot on the roads: ``road`` [V] each vehicle's edge (-1: not matched), ``along`` [V] how far
    along it (m from its start), ``lane`` [V] which of the edge's lanes (-1 with the edge); per edge [E]:
    ``count`` vehicles on it, ``mean_speed`` (m/s, NaN when empty), ``stopped`` vehicles standing; per
    connection of the network's ``options``: ``signal_known``, ``green`` and ``switch_s`` (seconds to the
    light's next switch), from the signal phases the twin receives (none known without them); per
    connection of the network's ``succ``: ``turn_share``, the share of the road's vehicles seen taking it
    (:class:`TurnCounts`; uniform over the road's successors where none was seen), and per edge
    ``turns_seen``, how many turns that share rests on (decayed counts; zeros without a history)."""

    network: RoadNetwork
    road: np.ndarray
    along: np.ndarray
    lane: np.ndarray
    count: np.ndarray
    mean_speed: np.ndarray
    stopped: np.ndarray
    signal_known: np.ndarray
    green: np.ndarray
    switch_s: np.ndarray
    turn_share: np.ndarray
    turns_seen: np.ndarray

    def select(self, vehicles: np.ndarray) -> RoadState:
        """The state of the kept vehicles (a boolean mask); the roads' aggregates stay those of everyone."""
        return replace(self, road=self.road[vehicles], along=self.along[vehicles], lane=self.lane[vehicles])


def road_state(network: RoadNetwork, xy: np.ndarray, vel: np.ndarray, heading: np.ndarray,
               signals=None) -> RoadState:
    """Map-match the vehicles (position [V, 2], velocity [V, 2], heading [V] rad, NaN when unknown),
    aggregate them per road, and read the traffic lights' ``signals`` (None: not known). The turn ratios
    are uniform: :class:`TurnCounts` learns them over a history."""
    n_e = len(network)
    xy = np.asarray(xy, float).reshape(-1, 2)
    road, share, lane = network.matcher.locate_lane(xy[:, 0], xy[:, 1], heading)
    along = share * network.length[np.maximum(road, 0)] if len(road) else np.zeros(0)
    on = road >= 0
    speed = np.linalg.norm(np.asarray(vel, float).reshape(-1, 2), axis=1)
    count = np.bincount(road[on], minlength=n_e).astype(float)
    total = np.bincount(road[on], weights=speed[on], minlength=n_e)
    stopped = np.bincount(road[on], weights=(speed[on] < STOPPED_MPS).astype(float), minlength=n_e)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_speed = np.where(count > 0, total / np.maximum(count, 1.0), np.nan)
    return RoadState(network, road, np.where(on, along, 0.0), lane, count, mean_speed, stopped,
                     *network.option_signals(signals), TurnCounts.uniform(network), np.zeros(n_e))


class TurnCounts:
    """How often the twin has seen each road's vehicles take each of its successors: the turn ratios of
    every junction, learned online from consecutive map-matched snapshots (what a traffic engineer counts
    at a junction; here from the twin alone). Counts decay with ``half_life_s``, so that the ratios follow
    the traffic as it changes (a closure, the end of the rush hour).

    Only turns the junction connects count: a vehicle seen on a road and next on one of its successors.
    A twin fed by sparse reports sees fewer of them (a report can skip a road)."""

    def __init__(self, network: RoadNetwork, half_life_s: float = 1800.0) -> None:
        if not half_life_s > 0:
            raise ValueError(f"half_life_s must be > 0, got {half_life_s!r}")
        self.network = network
        self.half_life_s = float(half_life_s)
        self.counts = np.zeros(network.succ.shape[1])
        self._t: float | None = None

    @staticmethod
    def uniform(network: RoadNetwork) -> np.ndarray:
        """[K] one over the number of successors of each connection's road."""
        a = network.succ[0]
        return 1.0 / np.maximum(np.bincount(a, minlength=len(network))[a], 1).astype(float)

    def observe(self, t: float, before: np.ndarray, after: np.ndarray) -> int:
        """Decay the counts to time ``t`` and count the vehicles seen on road ``before`` [N] then on road
        ``after`` [N] (-1: on none); returns how many turns counted."""
        if self._t is not None and t > self._t:
            self.counts *= 0.5 ** ((t - self._t) / self.half_life_s)
        self._t = t if self._t is None else max(self._t, t)
        a, b = np.asarray(before, np.int64), np.asarray(after, np.int64)
        moved = (a >= 0) & (b >= 0) & (a != b)
        k = self.network.connection(a[moved], b[moved])
        k = k[k >= 0]
        np.add.at(self.counts, k, 1.0)
        return len(k)

    def seen(self) -> np.ndarray:
        """[E] the (decayed) turns counted out of each road."""
        return np.bincount(self.network.succ[0], weights=self.counts, minlength=len(self.network))

    def shares(self) -> np.ndarray:
        """[K] each connection's share of its road's turns, with one turn spread evenly over the road's
        successors as the prior (uniform where nothing was seen)."""
        return (self.counts + self.uniform(self.network)) / (self.seen()[self.network.succ[0]] + 1.0)


def turn_table(transitions: np.ndarray, network: RoadNetwork) -> np.ndarray:
    """[E] the successor each edge's vehicles took most often (``transitions``: [2, T] (edge, next edge)
    pairs seen in the training period; only pairs the junction connects count); the straight-on successor
    where none was seen."""
    table = network.straight.copy()
    if transitions.size == 0:
        return table
    a, b = np.asarray(transitions, np.int64)
    keep = network.connection(a, b) >= 0  # the junction connects them
    pairs, counts = np.unique(np.stack([a[keep], b[keep]]), axis=1, return_counts=True)
    _best_in_groups(pairs[0], counts, pairs[1], table)
    return table


def _best_in_groups(group: np.ndarray, score: np.ndarray, value: np.ndarray, out: np.ndarray) -> None:
    """``out[g]`` = the ``value`` of the highest ``score`` among the items of each ``group`` g (ties: the
    first in ``group`` order after a stable sort); groups with no item are left alone."""
    if len(group) == 0:
        return
    order = np.lexsort((-np.asarray(score), group))
    first = np.r_[True, np.diff(group[order]) != 0]
    out[group[order][first]] = value[order][first]


def road_transitions(before: RoadState, after: RoadState, ids_before: np.ndarray,
                     ids_after: np.ndarray) -> np.ndarray:
    """[2, T] (edge, next edge) of the vehicles matched in both snapshots whose edge changed."""
    _, i, j = np.intersect1d(ids_before, ids_after, return_indices=True)
    a, b = before.road[i], after.road[j]
    moved = (a >= 0) & (b >= 0) & (a != b)
    return np.stack([a[moved], b[moved]]).astype(np.int64).reshape(2, -1)


def next_hops(network: RoadNetwork, destinations: np.ndarray | None = None) -> np.ndarray:
    """[D, E] the road after each road on the fastest path (free-flow times) to each of ``destinations``
    (default every road): -1 at the destination itself, -2 where it cannot be reached. Int32."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import dijkstra

    n = len(network)
    targets = np.arange(n) if destinations is None else np.asarray(destinations, np.int64)
    if n == 0 or len(targets) == 0:
        return np.full((len(targets), n), -1, np.int32)
    a, b = network.succ
    # the reversed network: a shortest-path tree grown from the destination; a road's predecessor in it
    # is the road after it on the way there
    reverse = csr_matrix((network.graph.free_flow_s[b], (b, a)), shape=(n, n))
    dist, pred = dijkstra(reverse, directed=True, indices=targets, return_predecessors=True)
    return np.where(pred >= 0, pred, np.where(np.isfinite(dist), -1, -2)).astype(np.int32)


def follow_roads(network: RoadNetwork, road: np.ndarray, along: np.ndarray, distance: np.ndarray,
                 next_edge: np.ndarray | None = None, max_edges: int = 32, *,
                 route: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """[V, 2] where each vehicle is after driving ``distance`` (m) on along its road from ``along`` (m from
    the road's start), taking ``next_edge[e]`` after edge ``e`` (default: straight on) and stopping at a
    dead end. ``route``: (``hops`` [D, E] of :func:`next_hops`, ``row`` [V]): a vehicle with a row >= 0
    follows that row's path instead and stops at the end of its destination (straight on where its
    destination cannot be reached). Positions run on the straight line from each edge's start to its end.
    A vehicle on no road (-1) gets NaN."""
    nxt = network.straight if next_edge is None else next_edge
    road = np.asarray(road, np.int64).copy()
    pos = np.asarray(along, float).copy()
    left = np.maximum(np.asarray(distance, float), 0.0).copy()
    active = road >= 0
    length = network.length
    for _ in range(max_edges):
        rest = np.where(active, length[np.maximum(road, 0)] - pos, 0.0)
        beyond = active & (left > rest)
        if not beyond.any():
            break
        step = nxt[np.maximum(road[beyond], 0)]
        if route is not None:
            hops, row = route
            routed = row[beyond] >= 0
            hop = hops[np.maximum(row[beyond], 0), np.maximum(road[beyond], 0)]
            step = np.where(routed & (hop != -2), hop, step)
        ends = step < 0
        idx = np.flatnonzero(beyond)
        # a dead end: stop at its end
        pos[idx[ends]] = length[road[idx[ends]]]
        left[idx[ends]] = 0.0
        go = idx[~ends]
        left[go] -= rest[go]
        road[go] = step[~ends]
        pos[go] = 0.0
    pos = np.minimum(pos + np.where(active, left, 0.0), length[np.maximum(road, 0)])
    share = np.where(active, pos / np.maximum(length[np.maximum(road, 0)], 1e-9), 0.0)
    safe = np.maximum(road, 0)
    point = network.start[safe] + share[:, None] * (network.end[safe] - network.start[safe])
    return np.where(active[:, None], point, np.nan)

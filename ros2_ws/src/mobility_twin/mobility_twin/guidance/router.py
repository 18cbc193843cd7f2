"""Fastest routes on the estimated travel times, and the guidance that decides when a CAV gets a new one.

:class:`Router`: shortest paths on the edge graph (a node per road edge, an arc per junction connection,
the arc into edge f costs f's travel time), single-source Dijkstra in C (``scipy.sparse.csgraph``).

:class:`RouteGuidance`: the CAVs under guidance (destination, current route, where they are) and its
decisions. A CAV gets a route when it asks (a route request) and is checked again every ``period_s``
(staggered: each CAV has its own phase, so the node's load and the CAVs' reactions are spread over the
period) and at once when an edge on its remaining route changed (an incident: a closure, or an estimate
that moved by more than the estimator's change thresholds). A new route replaces the current one only
for a real gain (at least ``min_gain_rel`` of the current route's time and ``min_gain_s`` seconds; a route
through a closed road is always replaced). Load-aware: the roads the node itself sent guided CAVs along
(their remaining routes within ``load_horizon_s``) cost more, as in a BPR link function with the edge's
capacity (``lanes x capacity_vps_per_lane``), so that many CAVs are not sent down the same alternative
into a jam of their own making. Every decision has a status; bad input never raises.

The periodic check earns its keep: with closures and changed estimates as the only triggers (``period_s``
1e6), the guided CAVs of ``mtwin bench guidance``'s incident headline took 180.3 s on average over seeds 7,
8 and 11-14 instead of 174.6 s (under half the reroutes; 193.7 s against 176.8 s on seed 11).

Until 2026-12-07 a CAV's next check came ``phase x period_s`` after its last one (a bug: every 3 s for some
CAVs, every 59 s for others, every 30 s on average), and the numbers above and in the estimator's docstring
were measured so. Each CAV is now checked once per period on its own phase. How often matters less than
seed-to-seed noise: on seeds 1-6 of the incident headline (not the seeds the guidance's settings were
chosen on), the guided CAVs took 175.1 s on average with the old schedule, 176.4 s checked every 60 s,
176.1 s every 30 s, 178.4 s every 15 s and 175.1 s every 5 s (SUMO's device 177.0 s, no guidance
209.3 s); on the headline seeds 7, 8 and 11-14, 178.0 s every 60 s against the old schedule's 174.6 s
(SUMO's device 175.0 s). The period stays at 60 s, SUMO's device's, with under a quarter of the old
schedule's checks (4,652 against 20,026 per run on seeds 1-6).

What the load term does at the bench's 10% CAVs: it breaks ties. Only the guided CAVs' flows are counted, and they
are small against an edge's capacity: on seed 7 of the incident headline (the CAVs' driven routes, 600 s ahead of
700, 900 and 1,100 s) at most 11 CAVs on one edge, load over capacity at most 0.027, so the term adds under 0.1% to
any edge. Routes whose estimated times are equal (many on the grid, all at free flow where the twin sees nothing)
then go to the least loaded instead of the one Dijkstra finds first, and the CAVs of one origin and destination
spread over them. That is worth having: on seeds 1-6 of the headline (twin arm alone, scratch harness calling the
bench's ``run_arm``), 176.4 s on average with it against 178.8 s without (``load_aware`` False; 7.1 and 6.7 s worse
on seeds 1 and 4, within 1.5 s on the others; measured on the schedule of now). A stronger term does not help:
``load_alpha`` 2 gave the same CAV times as 1 on five of the six seeds and 4 on four, both 173.2 s against 168.3 on
seed 5 (one decision that goes otherwise changes a run), 177.2 / 177.3 s on average. A load term that weighs the
CAVs' share of an edge near capacity would need the edge's whole flow (the observed one, then the assigned on top);
not built.
"""

from __future__ import annotations

import math
import zlib
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from mobility_twin.guidance.estimator import TrafficStateEstimator
from mobility_twin_core.roads import RoadGraph

BIG = 1e9  # arc weight of a closed edge (scipy needs finite weights)

# decision statuses
ROUTED = "routed"  # a first route for a request
REROUTED = "rerouted"  # a better route replaced the current one
KEPT = "kept"  # checked: the current route is still good enough (no command)
UNREACHABLE = "unreachable"  # no open route from where the CAV is to its destination
UNKNOWN_EDGE = "unknown_edge"  # the destination or the current road is not a road of the network
UNKNOWN_VEHICLE = "unknown_vehicle"  # a CAV the guidance does not have (it left, or never asked)
STALE_TWIN = "stale_twin"  # the twin's newest data is older than its validity: not acted on
ARRIVED = "arrived"  # the CAV is on its destination road


@dataclass(frozen=True)
class GuidanceConfig:
    period_s: float = 60.0  # each CAV's route is checked this often (staggered)
    min_gain_rel: float = 0.10  # a new route must save this share of the current one's time ...
    min_gain_s: float = 20.0  # ... and this many seconds
    stale_s: float = 10.0  # twin data older than this is stale: no decision on it
    load_horizon_s: float = 600.0  # the node's own assigned flows counted this far ahead on each route
    capacity_vps_per_lane: float = 0.25  # vehicles per second a lane passes (1800/h saturation x g/C 0.5)
    load_alpha: float = 1.0  # BPR factor of the node's own load: t * (1 + alpha (x / c)^beta)
    load_beta: float = 2.0
    load_aware: bool = True

    def validate(self) -> None:
        if not (self.period_s > 0 and self.min_gain_rel >= 0 and self.min_gain_s >= 0 and self.stale_s > 0):
            raise ValueError("period_s > 0, min_gain_rel >= 0, min_gain_s >= 0, stale_s > 0")
        if not (self.load_horizon_s > 0 and self.capacity_vps_per_lane > 0 and self.load_alpha >= 0):
            raise ValueError("load_horizon_s > 0, capacity_vps_per_lane > 0, load_alpha >= 0")


class Router:
    """Fastest paths on a :class:`RoadGraph` for given per-edge costs (seconds)."""

    def __init__(self, graph: RoadGraph) -> None:
        self.graph = graph
        self._rows = np.repeat(np.arange(len(graph)), np.diff(graph.succ_ptr))
        self.set_costs(graph.free_flow_s)

    def set_costs(self, cost: np.ndarray) -> None:
        cost = np.asarray(cost, float)
        self.cost = np.where(np.isfinite(cost), np.maximum(cost, 1e-3), BIG)
        E = len(self.graph)
        self._csr = csr_matrix((self.cost[self.graph.succ], (self._rows, self.graph.succ)), shape=(E, E))

    def route(self, origin: int, destination: int) -> tuple[list[int], float]:
        """(edges from ``origin`` to ``destination`` inclusive, cost of the edges after the origin); ([], inf)
        when there is none (or only through a closed edge)."""
        if origin == destination:
            return [origin], 0.0
        dist, pred = dijkstra(self._csr, directed=True, indices=origin, return_predecessors=True)
        d = float(dist[destination])
        if not math.isfinite(d) or d >= BIG:
            return [], math.inf
        path = [destination]
        while path[-1] != origin:
            path.append(int(pred[path[-1]]))
        return path[::-1], d

    def path_cost(self, path: list[int]) -> float:
        """Cost of the edges after the first (inf when a step is not a connection or an edge is closed)."""
        if not self.graph.connected(path):
            return math.inf
        c = float(self.cost[path[1:]].sum())
        return math.inf if c >= BIG else c


@dataclass
class GuidedVehicle:
    vehicle: str
    destination: int
    route: list[int] = field(default_factory=list)
    position: int = 0  # index in route of the edge the vehicle is on
    next_check_s: float = 0.0
    commanded: int = 0


@dataclass(frozen=True)
class Decision:
    vehicle: str
    status: str
    edges: tuple[str, ...] = ()
    expected_s: float = math.nan  # expected travel time of the route (from the current road)
    gain_s: float = 0.0  # saved against the current route (rerouted)
    reason: str = ""

    @property
    def command(self) -> bool:
        """Whether the CAV is sent the route."""
        return self.status in (ROUTED, REROUTED)


class RouteGuidance:
    """Route requests in, decisions out; see the module docstring. ``graph`` edges are addressed by id."""

    def __init__(self, estimator: TrafficStateEstimator, config: GuidanceConfig = GuidanceConfig()) -> None:
        config.validate()
        self.graph: RoadGraph = estimator.graph
        self.estimator = estimator
        self.config = config
        self.router = Router(self.graph)
        self.vehicles: dict[str, GuidedVehicle] = {}
        self.counts: Counter = Counter()
        self.decide_s: list[float] = []  # wall time of each step (cycle)
        self._costs_at = -math.inf

    # ------------------------------------------------------------------------------------------ costs
    def _next_check(self, vehicle: str, now: float) -> float:
        """The CAV's next periodic check: the first instant after ``now`` on its own grid (its phase, from its
        id, plus whole periods), so that each CAV is checked once per ``period_s`` and the CAVs' checks are
        spread over the period. (A check that a changed edge brought forward does not move the grid.)"""
        period = self.config.period_s
        phase = (zlib.crc32(vehicle.encode()) % 10_000) / 10_000.0 * period
        return phase + period * (math.floor((now - phase) / period) + 1)

    def assigned_load(self, now: float, tt: np.ndarray, exclude: str | None = None) -> np.ndarray:
        """[E] guided CAVs the node has routed over each edge within ``load_horizon_s`` ahead."""
        load = np.zeros(len(self.graph))
        for v in self.vehicles.values():
            if v.vehicle == exclude or not v.route:
                continue
            ahead = np.asarray(v.route[v.position + 1:], np.int64)
            if len(ahead) == 0:
                continue
            t_ahead = np.cumsum(np.where(np.isfinite(tt[ahead]), tt[ahead], 0.0))
            load[ahead[t_ahead <= self.config.load_horizon_s]] += 1.0
        return load

    def costs(self, now: float, exclude: str | None = None) -> np.ndarray:
        """[E] the routing cost of each edge now: estimated travel time, plus the node's own load."""
        tt = self.estimator.travel_time(now)
        if not self.config.load_aware:
            return tt
        cfg = self.config
        load = self.assigned_load(now, tt, exclude)
        cap = self.graph.lanes * cfg.capacity_vps_per_lane * cfg.load_horizon_s
        return tt * (1.0 + cfg.load_alpha * (load / np.maximum(cap, 1e-9)) ** cfg.load_beta)

    def stale(self, now: float) -> bool:
        return now - self.estimator.newest_s > self.config.stale_s

    # ------------------------------------------------------------------------------------------ requests
    def request(self, vehicle: str, origin: str, destination: str, now: float) -> Decision:
        """A CAV on road ``origin`` asks for a route to road ``destination``."""
        idx = self.graph.index
        if destination not in idx:
            return self._count(Decision(vehicle, UNKNOWN_EDGE, reason=f"unknown edge: destination {destination!r} "
                                                                       f"is not a road of the network"))
        if origin not in idx:
            return self._count(Decision(vehicle, UNKNOWN_EDGE, reason=f"unknown edge: the CAV's road {origin!r} "
                                                                       f"is not a road of the network"))
        if self.stale(now):
            return self._count(Decision(vehicle, STALE_TWIN, reason=self._stale_reason(now)))
        o, d = idx[origin], idx[destination]
        self.router.set_costs(self.costs(now, exclude=vehicle))
        path, cost = self.router.route(o, d)
        if not path:
            self.vehicles.pop(vehicle, None)
            return self._count(Decision(vehicle, UNREACHABLE, reason=f"no open route from {origin} to {destination}"))
        self.vehicles[vehicle] = GuidedVehicle(vehicle, d, path, 0, self._next_check(vehicle, now), 1)
        return self._count(Decision(vehicle, ROUTED, self._ids(path), cost))

    def update_position(self, vehicle: str, road: str) -> str:
        """The CAV is on ``road`` now; returns a status (``kept`` when on its route, ``arrived``, or why not)."""
        v = self.vehicles.get(vehicle)
        if v is None:
            return UNKNOWN_VEHICLE
        i = self.graph.index.get(road)
        if i is None:
            return UNKNOWN_EDGE  # inside a junction, or off the network: keep the last position
        if i == v.destination:
            self.vehicles.pop(vehicle)
            return ARRIVED
        if i in v.route[v.position:]:
            v.position = v.route.index(i, v.position)
        else:  # off its route (a command refused, the driver's own way): route from here next time
            v.route, v.position, v.next_check_s = [i], 0, -math.inf
        return KEPT

    def leave(self, vehicle: str) -> bool:
        """The CAV left (arrived elsewhere, off the network, the twin lost it)."""
        return self.vehicles.pop(vehicle, None) is not None

    def refused(self, vehicle: str, road: str = "") -> None:
        """The CAV refused its last route (its status said so): route it again from ``road`` next check."""
        v = self.vehicles.get(vehicle)
        if v is not None:
            i = self.graph.index.get(road)
            v.route, v.position = ([i], 0) if i is not None else (v.route, v.position)
            v.next_check_s = -math.inf

    # ------------------------------------------------------------------------------------------ the cycle
    def step(self, now: float) -> list[Decision]:
        """One guidance cycle: re-check the CAVs that are due (their period, or a changed edge on their
        remaining route); returns a decision for each checked CAV (commands only for ``command`` ones)."""
        import time

        started = time.perf_counter()
        if self.stale(now):
            due = [v for v in self.vehicles.values() if v.next_check_s <= now]
            for v in due:
                v.next_check_s = self._next_check(v.vehicle, now)
            out = [self._count(Decision(v.vehicle, STALE_TWIN, reason=self._stale_reason(now))) for v in due]
            self.decide_s.append(time.perf_counter() - started)
            return out
        changed = set(self.estimator.changed(now).tolist())
        out = []
        due = []
        for v in self.vehicles.values():
            ahead = v.route[v.position + 1:]
            if v.next_check_s <= now or (changed and not changed.isdisjoint(ahead)):
                due.append(v)
        if due:
            tt = self.estimator.travel_time(now)
            base = self.costs(now) if self.config.load_aware else tt
            for v in due:
                v.next_check_s = self._next_check(v.vehicle, now)
                out.append(self._check(v, now, base, tt))
        self.decide_s.append(time.perf_counter() - started)
        return out

    def _check(self, v: GuidedVehicle, now: float, base: np.ndarray, tt: np.ndarray) -> Decision:
        cfg = self.config
        if cfg.load_aware:  # take this CAV's own share out of the load it is routed on
            costs = self.costs(now, exclude=v.vehicle) if len(self.vehicles) < 64 else base
        else:
            costs = base
        self.router.set_costs(costs)
        here = v.route[v.position]
        current = v.route[v.position:]
        cur_cost = self.router.path_cost(current) if current[-1] == v.destination else math.inf
        path, cost = self.router.route(here, v.destination)
        if not path:
            return self._count(Decision(v.vehicle, UNREACHABLE, reason=f"no open route from {self.graph.ids[here]} "
                                                                       f"to {self.graph.ids[v.destination]}"))
        gain = cur_cost - cost
        if math.isfinite(cur_cost) and not (gain >= cfg.min_gain_s and gain >= cfg.min_gain_rel * cur_cost):
            return self._count(Decision(v.vehicle, KEPT, self._ids(current), cur_cost, 0.0))
        v.route, v.position = path, 0
        v.commanded += 1
        return self._count(Decision(v.vehicle, REROUTED, self._ids(path), cost, gain if math.isfinite(gain) else math.inf))

    # ------------------------------------------------------------------------------------------ helpers
    def _ids(self, path: list[int]) -> tuple[str, ...]:
        return tuple(self.graph.ids[i] for i in path)

    def _stale_reason(self, now: float) -> str:
        newest = self.estimator.newest_s
        age = "no twin data yet" if not math.isfinite(newest) else f"newest twin data {now - newest:.1f} s old"
        return f"stale twin: {age} (valid {self.config.stale_s:g} s)"

    def _count(self, d: Decision) -> Decision:
        self.counts[d.status] += 1
        return d

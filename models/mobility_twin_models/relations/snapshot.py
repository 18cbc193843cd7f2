"""Twin snapshots: what the relation graph is built from, and the short history it needs.

A :class:`TwinSnapshot` is the state of the twins at one instant: vehicles (id, position, velocity),
edge servers (id, position, coverage, capacity) and RSUs (id, position). It comes from the global
twin's messages (the node) or from the simulator's fleet (:func:`snapshot_from_fleet`, offline).

:class:`TwinHistory` turns a sequence of snapshots (one per slot) into :class:`ObservedSnapshot` s: it
applies the association rule, counts each server's load (vehicles served) and keeps the last
``load_lags`` loads per server, and tracks each vehicle's *legs* (stretches of unchanged velocity):
time since its velocity last changed, and how long its previous leg lasted; and each vehicle's
*handovers* (changes of serving server, which the network logs even when the twin's position is stale):
the server before the current one, the time since the vehicle was handed to the current one, and how
long it stayed on the previous one. All of it is observable by a live twin; none of it looks ahead.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy.spatial import cKDTree

from mobility_twin_core import Layout, ServerSet, TwinSnapshot, snapshot_of
from mobility_twin_models.relations.config import GraphConfig
from mobility_twin_models.relations.roads import RoadNetwork, RoadState, TurnCounts, road_state


def snapshot_from_fleet(state, layout: Layout) -> TwinSnapshot:
    """The snapshot of a :class:`mobility_twin_sim.fleet.FleetState` with the servers and RSUs of ``layout``."""
    vx, vy = state.velocity()
    return snapshot_of(float(state.t), layout, np.asarray(state.ids), np.column_stack([state.x, state.y]),
                       np.column_stack([vx, vy]))


def kept_index(keep: np.ndarray) -> np.ndarray:
    """[N] position of each item among the kept ones (``keep``: [N] boolean mask), -1 for a dropped item:
    the ``new_index`` that :func:`renumber` carries indices through."""
    new_index = np.full(len(keep), -1, dtype=np.int64)
    new_index[keep] = np.arange(int(np.count_nonzero(keep)))
    return new_index


def renumber(index: np.ndarray, new_index: np.ndarray) -> np.ndarray:
    """``new_index[index]`` where ``index >= 0``, -1 elsewhere (indices into a list, carried to another
    list through ``new_index``, which holds -1 for the items the other list lacks)."""
    return np.where(index >= 0, new_index[np.maximum(index, 0)], -1)


@dataclass(frozen=True)
class StaticRelations:
    """The relations that depend only on where servers and RSUs stand (cached while they do not move)."""

    index: ServerSet
    server_server: np.ndarray  # [2, E] both directions
    adjacency_m: float
    rsu_server: np.ndarray  # [R] nearest server of each RSU

    @classmethod
    def build(cls, server_xy: np.ndarray, coverage_m: np.ndarray, rsu_xy: np.ndarray,
              config: GraphConfig) -> StaticRelations:
        server_xy = np.asarray(server_xy, dtype=float).reshape(-1, 2)
        index = ServerSet.from_arrays([str(i) for i in range(len(server_xy))], server_xy, coverage_m)
        pairs, radius = index.adjacency(config.server_adjacency_factor)
        rsu_xy = np.asarray(rsu_xy, dtype=float).reshape(-1, 2)
        return cls(index, pairs, radius, index.nearest_index(rsu_xy))


@dataclass(frozen=True)
class ObservedSnapshot:
    """A snapshot with what the history adds: association, loads, legs of motion.

    ``serving[i]``: server index serving vehicle ``i`` (>= 0; unserved vehicles are dropped).
    ``load_lags[s, l]``: vehicles served by server ``s`` ``l`` slots ago (column 0: now).
    ``since_change_s[i]``: seconds since vehicle ``i``'s velocity last changed (since it was first seen
    when it has not changed). ``last_leg_s[i]``: length of its previous leg, nan when unknown;
    ``last_leg_vel[i]``: velocity on that leg (m/s, zero when unknown).
    ``rsu_load[r]``: vehicles within the RSU's range.
    ``prev_server[i]``: index of the server that served vehicle ``i`` before its current one (-1 when no
    handover has been seen, or that server is not in the snapshot). ``since_handover_s[i]``: seconds since
    it was handed to its current server, nan when no handover has been seen. ``prev_dwell_s[i]``: how long
    it was served by the previous server, nan when unknown. ``prev2_server[i]``: the server before the
    previous one (-1 when unknown). ``road``: the vehicles on the road network and the roads' state (None
    without a road network).
    """

    snapshot: TwinSnapshot
    static: StaticRelations
    serving: np.ndarray
    load_lags: np.ndarray
    since_change_s: np.ndarray
    last_leg_s: np.ndarray
    last_leg_vel: np.ndarray
    rsu_load: np.ndarray
    prev_server: np.ndarray
    since_handover_s: np.ndarray
    prev_dwell_s: np.ndarray
    prev2_server: np.ndarray
    road: RoadState | None = None

    @property
    def t(self) -> float:
        return self.snapshot.t

    @property
    def load(self) -> np.ndarray:
        return self.load_lags[:, 0]

    def select(self, vehicles: np.ndarray, servers: np.ndarray, rsus: np.ndarray,
               static: StaticRelations) -> ObservedSnapshot:
        """The part of the snapshot on the kept vehicles, servers and RSUs (boolean masks).

        ``static`` must be the relations of the kept servers and RSUs. A kept vehicle whose serving
        server is not kept is dropped. Loads stay those of the whole system.
        """
        new_index = kept_index(servers)
        serving = new_index[self.serving]
        prev, prev2 = renumber(self.prev_server, new_index), renumber(self.prev2_server, new_index)
        vehicles = vehicles & (serving >= 0)
        s = self.snapshot
        snap = s.select(vehicles, servers, rsus, vehicle_server=serving[vehicles])
        return ObservedSnapshot(snap, static, serving[vehicles], self.load_lags[servers],
                                self.since_change_s[vehicles], self.last_leg_s[vehicles],
                                self.last_leg_vel[vehicles], self.rsu_load[rsus], prev[vehicles],
                                self.since_handover_s[vehicles], self.prev_dwell_s[vehicles], prev2[vehicles],
                                None if self.road is None else self.road.select(vehicles))


class TwinHistory:
    """Feed one snapshot per slot to :meth:`observe`; get it back with association, loads and legs.

    Args:
        config: the graph config (load lags, motion-change threshold, adjacency factor).
        rsu_range_m: radius within which an RSU counts vehicles as its load (default 100 m).
        roads: the road network to map-match the vehicles on (None: none). A standing vehicle is matched
            with the heading it last moved in.
    """

    def __init__(self, config: GraphConfig | None = None, *, rsu_range_m: float = 100.0,
                 roads: RoadNetwork | None = None) -> None:
        self.config = config or GraphConfig()
        self.rsu_range_m = float(rsu_range_m)
        self.roads = roads
        self._heading = np.zeros(0)
        self._road = np.zeros(0, dtype=np.int64)
        self._turns = TurnCounts(roads, self.config.turn_half_life_s) if roads is not None else None
        self._static: StaticRelations | None = None
        self._static_key: tuple | None = None
        self._server_ids: np.ndarray | None = None
        self._lags: np.ndarray | None = None
        self._ids = np.zeros(0)
        self._vel = np.zeros((0, 2))
        self._t_change = np.zeros(0)
        self._last_leg = np.zeros(0)
        self._last_vel = np.zeros((0, 2))
        self._codes: dict = {}  # server id -> a code that stays when the snapshot's server list changes
        self._h_cur = np.zeros(0, dtype=np.int64)  # server codes
        self._h_prev = np.zeros(0, dtype=np.int64)
        self._h_t = np.zeros(0)  # time of the last handover (nan: none seen)
        self._h_dwell = np.zeros(0)
        self._h_prev2 = np.zeros(0, dtype=np.int64)
        self._t: float | None = None

    def reset(self) -> None:
        self.__init__(self.config, rsu_range_m=self.rsu_range_m, roads=self.roads)

    def static_for(self, snapshot: TwinSnapshot) -> StaticRelations:
        key = (snapshot.server_xy.tobytes(), snapshot.server_coverage_m.tobytes(), snapshot.rsu_xy.tobytes())
        if key != self._static_key:
            self._static = StaticRelations.build(snapshot.server_xy, snapshot.server_coverage_m, snapshot.rsu_xy,
                                                 self.config)
            self._static_key = key
        return self._static

    def observe(self, snapshot: TwinSnapshot, signals=None) -> ObservedSnapshot:
        """Advance the history by one slot. Snapshots must come in time order. ``signals``: the traffic
        lights' states the twin holds at that time (a :class:`~mobility_twin_sim.backend.SignalStates`),
        read with a road network."""
        if self._t is not None and snapshot.t < self._t:
            raise ValueError(f"snapshot at t={snapshot.t} is older than the previous one (t={self._t})")
        static = self.static_for(snapshot)
        # the serving server the network reports, else the association rule on the twin's position
        known = snapshot.vehicle_server
        serving = np.where(known >= 0, known, static.index.serving(snapshot.vehicle_xy) if np.any(known < 0) else -1)
        served = serving >= 0
        serving = serving[served]
        snap = replace(snapshot.with_vehicles(served), vehicle_server=serving)
        load = np.bincount(serving, minlength=len(snap.server_ids)).astype(float)
        lags = self._advance_loads(snap.server_ids, load)
        # the vehicles seen in the previous slot too: (index now, index then)
        i_new = i_old = np.zeros(0, dtype=np.int64)
        if len(snap.vehicle_ids) and len(self._ids):
            _, i_new, i_old = np.intersect1d(snap.vehicle_ids, self._ids, return_indices=True)
        since, last_leg, last_vel = self._advance_motion(snap, i_new, i_old)
        prev, since_ho, dwell, prev2 = self._advance_handovers(snap, serving, i_new, i_old)
        road = self._advance_roads(snap, i_new, i_old, signals) if self.roads is not None else None
        self._ids = snap.vehicle_ids.copy()
        rsu_load = np.zeros(len(snap.rsu_ids))
        if len(snap.rsu_ids) and len(snap.vehicle_ids):
            rsu_load = cKDTree(snap.vehicle_xy).query_ball_point(snap.rsu_xy, self.rsu_range_m,
                                                                 return_length=True).astype(float)
        self._t = snapshot.t
        return ObservedSnapshot(snap, static, serving, lags, since, last_leg, last_vel, rsu_load, prev, since_ho, dwell,
                                prev2, road)

    def _advance_roads(self, snap: TwinSnapshot, i_new: np.ndarray, i_old: np.ndarray, signals) -> RoadState:
        vel = snap.vehicle_vel
        moving = np.linalg.norm(vel, axis=1) > self.config.motion_change_mps
        heading = np.where(moving, np.arctan2(vel[:, 1], vel[:, 0]), np.nan)
        if len(i_new):
            still = ~moving[i_new]
            heading[i_new[still]] = self._heading[i_old[still]]
        self._heading = heading
        state = road_state(self.roads, snap.vehicle_xy, vel, heading, signals)
        if len(i_new):
            self._turns.observe(snap.t, self._road[i_old], state.road[i_new])
        self._road = state.road.copy()
        return replace(state, turn_share=self._turns.shares(), turns_seen=self._turns.seen())

    def _advance_loads(self, server_ids: np.ndarray, load: np.ndarray) -> np.ndarray:
        n_lags = self.config.load_lags
        if self._lags is None or self._server_ids is None or not np.array_equal(self._server_ids, server_ids):
            old = self._lags
            lags = np.repeat(load[:, None], n_lags, axis=1)  # no history: assume the load held still
            if old is not None and self._server_ids is not None:
                _, i_new, i_old = np.intersect1d(server_ids, self._server_ids, return_indices=True)
                lags[i_new, 1:] = old[i_old, :-1]
            self._server_ids = np.asarray(server_ids).copy()
        else:
            lags = np.concatenate([load[:, None], self._lags[:, :-1]], axis=1)
        self._lags = lags
        return lags.copy()

    def _advance_motion(self, snap: TwinSnapshot, i_new: np.ndarray,
                        i_old: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        t = snap.t
        vel = snap.vehicle_vel
        n = len(vel)
        t_change = np.full(n, t)
        last_leg = np.full(n, np.nan)
        last_vel = np.zeros((n, 2))
        if len(i_new):
            changed = np.linalg.norm(vel[i_new] - self._vel[i_old], axis=1) > self.config.motion_change_mps
            t_change[i_new] = np.where(changed, t, self._t_change[i_old])
            last_leg[i_new] = np.where(changed, t - self._t_change[i_old], self._last_leg[i_old])
            last_vel[i_new] = np.where(changed[:, None], self._vel[i_old], self._last_vel[i_old])
        self._vel, self._t_change = vel.copy(), t_change
        self._last_leg, self._last_vel = last_leg, last_vel
        return t - t_change, last_leg.copy(), last_vel.copy()

    def _advance_handovers(self, snap: TwinSnapshot, serving: np.ndarray, i_new: np.ndarray,
                           i_old: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        t = snap.t
        for sid in snap.server_ids.tolist():
            self._codes.setdefault(sid, len(self._codes))
        codes = np.array([self._codes[sid] for sid in snap.server_ids.tolist()], dtype=np.int64)
        n = len(serving)
        cur = codes[serving] if n else np.zeros(0, dtype=np.int64)
        prev = np.full(n, -1, dtype=np.int64)
        prev2 = np.full(n, -1, dtype=np.int64)
        t_ho = np.full(n, np.nan)
        dwell = np.full(n, np.nan)
        if len(i_new):
            moved = cur[i_new] != self._h_cur[i_old]
            prev[i_new] = np.where(moved, self._h_cur[i_old], self._h_prev[i_old])
            prev2[i_new] = np.where(moved, self._h_prev[i_old], self._h_prev2[i_old])
            t_ho[i_new] = np.where(moved, t, self._h_t[i_old])
            dwell[i_new] = np.where(moved, t - self._h_t[i_old], self._h_dwell[i_old])
        self._h_cur, self._h_prev, self._h_prev2, self._h_t, self._h_dwell = cur, prev, prev2, t_ho, dwell
        # codes back to indices of this snapshot's servers (-1: not among them)
        lookup = np.full(len(self._codes), -1, dtype=np.int64)
        lookup[codes] = np.arange(len(codes))
        return renumber(prev, lookup), t - t_ho, dwell.copy(), renumber(prev2, lookup)

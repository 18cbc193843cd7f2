r"""The typed graph of relations between twins, built from one :class:`ObservedSnapshot`.

Node types and features (all scaled by :class:`~mobility_twin_models.relations.config.GraphConfig`):

* ``vehicle`` [V, 23]: position (x, y) (zero unless ``absolute_position``), velocity (vx, vy), speed,
  heading (cos, sin; zero when standing), time since the velocity last changed, length of the previous
  leg, whether it is known and the velocity on it (vx, vy), age of the twin's state, distance to the
  serving server over its coverage radius, offset of the serving server (x, y) over the coverage radius;
  from the handover log: whether a handover is known, offset of the previous server from the current one
  (x, y) over the coverage, time since the handover, whether the dwell on the previous server is known,
  and that dwell; last, the age again on a log scale, :math:`\log(1 + a) / \log(1 + \mathrm{leg\_scale\_s})`
  (capped at 1), which tells an RSU sighting (seconds old) from a GPS report (minutes), both of which the
  linear age above squeezes near zero, so that messages can weigh fresh neighbours over stale ones.
* ``server`` [S, 5 + load_lags]: position, CPU capacity (GHz / 3), coverage (km), the last ``load_lags`` loads
  (vehicles served, column 0 now) and their mean.
* ``rsu`` [R, 3]: position, load (vehicles within range).

Relations (edge types) used for message passing, each with geometric edge features:

* ``(vehicle, near, vehicle)``: every vehicle receives from its ``max_vehicle_neighbours`` nearest
  vehicles within ``vehicle_radius_m`` (never itself); features: offset over the radius, distance, velocity
  difference. [E, 5]
* ``(vehicle, follows, vehicle)``: a vehicle handed from server A to B receives from the (at most
  ``max_leaders``) others that made the same handover within ``follow_window_s``, still on B or handed
  on since (:func:`handover_leaders`); features: whether the leader has moved on, offset of its server
  from the follower's over the coverage (x, y), lag between their A -> B handovers, time since the leader
  left B. [E, 5]
* ``(vehicle, served_by, server)`` and reverse ``(server, serves, vehicle)``: the association rule; offset
  of the server over its coverage, distance. [E, 3]
* ``(server, adjacent, server)``: servers closer than ``server_adjacency_factor`` times the median spacing
  (never a server to itself); offset and distance over the adjacency radius. [E, 3]
* ``(rsu, attached_to, server)`` and reverse ``(server, hosts, rsu)``: each RSU to its nearest server. [E, 3]

With ``GraphConfig.roads`` the graph also holds the road network (:mod:`~mobility_twin_models.relations.roads`):

* ``road`` [E, 14]: position of its middle, direction (cos, sin), length (over 200 m), speed limit, lanes
  (over 3); its state from the twin: occupancy (vehicles over what the road holds, capped at 1), mean speed
  over the limit (1 when empty), share of its vehicles standing (a queue), whether any is on it; the offset
  of the server serving its end from the one serving its start (over the start's coverage) and whether
  they differ (the road leaves the cell).
* ``(vehicle, on, road)`` and reverse ``(road, carries, vehicle)``: the road a vehicle is map-matched to;
  features: share of the road behind it, metres left (over 200), seconds left at its speed over the
  horizon (capped at 1), offset of the server serving the road's end from the vehicle's server (over the
  coverage); the queue it is in: the twin's vehicles ahead of it on that road and how many of them stand
  (in tens, capped at 3), and the gap to the next one ahead (to the road's end when none is; over 200 m,
  capped at 1). [E, 8]
* ``(road, reachable, vehicle)``: a vehicle receives from each road its lane leads to at the junction ahead
  (a turn lane to fewer than its road; every successor of its road where the lane is not known); features:
  the turn from its road (cos, sin), one over the number of such roads, the offset of the server serving
  that road's end from the vehicle's server (over the coverage); whether a traffic light whose phase the
  twin knows controls that turn, whether it is green, and the seconds to its next switch over the horizon
  (capped at 1); the share of the vehicles seen leaving its road that took that road (the junction's turn
  ratio, counted by the history: :class:`~mobility_twin_models.relations.roads.TurnCounts`) and how much
  it rests on, :math:`n / (n + 10)` for :math:`n` turns seen. [E, 10]
* ``(road, next, road)``: a road receives from each road the junction ahead leads to (where traffic
  goes), ``(road, prev, road)`` from each road leading into it (where queues spill back from); features:
  the turn (cos, sin), the source's length (over 200 m), the offset of the source's end server from the
  target's (over the coverage). [E, 5]
* ``(road, in_cell, server)`` and reverse ``(server, covers, road)``: a road to the server serving its end;
  offset over the coverage, distance. [E, 3]

The handover head scores ``(vehicle, candidate, server)`` pairs: every server within
``candidate_radius_m`` of a vehicle, the ``max_candidates`` nearest (of its serving server, plus that
server's coverage, when the twin's state is older than ``fresh_age_s``), with features [E, 19]: offset
and distance to the vehicle (to its serving server when stale), to the constant-velocity point
:math:`p + v (a + H)` (:math:`a`: age of the state) and along/across the heading (over the radius),
distance to the constant-velocity point over the server's coverage, whether it is the current server,
the server of the constant-velocity point and of the half-way point :math:`p + v (a + H / 2)`, its
distance rank from the constant-velocity point; from the handover log: whether it is the previous
server, the cosine between its direction from the current server and the previous -> current direction,
its distance from the dead-reckoning point of :func:`handover_dead_reckoning` and whether it serves that
point; its offset from the current server over the coverage (x, y). These pairs are *not* a
message-passing relation, so the MLP ablation sees them too.

With road nodes, each candidate pair also gets the roads by which the vehicle may enter that server's cell
(``candidate.via_road`` [P], the road; ``candidate.via_pair`` [P], the pair; ``candidate.via_attr`` [P, 5]): its
own road, the roads its lane leads to, and the roads after those at the next junction, each to the
candidate serving the road's end; features: which of the three (one-hot), the share of the vehicles seen
taking that way (the product of the two turns' shares for the second junction; 1 for its own road), and
whether the light ahead is known green. The GNN's candidate scorer reads them with the roads' embeddings
(:class:`~mobility_twin_models.relations.nn.CandidateScorer`); they are graph information, so the MLP
ablation does not.

Radius searches use k-d trees (scipy), so a build is O(N log N), never all pairs.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial import cKDTree
from torch_geometric.data import HeteroData

from mobility_twin_models.relations.config import GraphConfig
from mobility_twin_models.relations.roads import STOPPED_MPS, PairIndex
from mobility_twin_models.relations.snapshot import ObservedSnapshot

VEHICLE, SERVER, RSU, ROAD = "vehicle", "server", "rsu", "road"
NODE_TYPES = (VEHICLE, SERVER, RSU)


def _both_ways(src: str, forward: str, backward: str, dst: str) -> tuple[tuple[str, str, str], tuple[str, str, str]]:
    """A relation and its reverse (messages flow both ways along the same edges)."""
    return (src, forward, dst), (dst, backward, src)


# edge types, (source node type, relation, destination node type)
VV, FOLLOWS, SS = (VEHICLE, "near", VEHICLE), (VEHICLE, "follows", VEHICLE), (SERVER, "adjacent", SERVER)
VS, SV = _both_ways(VEHICLE, "served_by", "serves", SERVER)
RS, SR = _both_ways(RSU, "attached_to", "hosts", SERVER)
CAND = (VEHICLE, "candidate", SERVER)
MESSAGE_EDGE_TYPES = (VV, FOLLOWS, VS, SV, SS, RS, SR)
VR, RV = _both_ways(VEHICLE, "on", "carries", ROAD)
REACH = (ROAD, "reachable", VEHICLE)
RR_NEXT, RR_PREV = _both_ways(ROAD, "next", "prev", ROAD)
RSV, SRD = _both_ways(ROAD, "in_cell", "covers", SERVER)
ROAD_EDGE_TYPES = (VR, RV, REACH, RR_NEXT, RR_PREV, RSV, SRD)

EDGE_DIMS = {VV: 5, FOLLOWS: 5, VS: 3, SV: 3, SS: 3, RS: 3, SR: 3}
ROAD_EDGE_DIMS = {VR: 8, RV: 8, REACH: 10, RR_NEXT: 5, RR_PREV: 5, RSV: 3, SRD: 3}
ROAD_DIM = 14
ROAD_LENGTH_SCALE_M = 200.0
#: turns seen out of a road at which its turn ratios count as half known
TURNS_CONFIDENT = 10.0
#: features of a road by which a vehicle may enter a candidate's cell (``candidate.via_attr``)
VIA_DIM = 5
#: vehicles ahead on a road (a queue) are counted in tens
QUEUE_SCALE = 10.0
CANDIDATE_DIM = 19
VEHICLE_DIM = 23
#: speed assumed for dead reckoning from the last handover when the twin knows no speed (m/s)
DEFAULT_SPEED_MPS = 7.0
GHZ_SCALE = 3.0


def node_dims(config: GraphConfig) -> dict[str, int]:
    """Feature width of each node type (the server's grows with ``load_lags``; roads with ``roads``)."""
    dims = {VEHICLE: VEHICLE_DIM, SERVER: 5 + config.load_lags, RSU: 3}
    return {**dims, ROAD: ROAD_DIM} if config.roads else dims


def edge_dims(config: GraphConfig) -> dict[tuple[str, str, str], int]:
    """Feature width of each message-passing relation of the graphs of ``config``."""
    return {**EDGE_DIMS, **ROAD_EDGE_DIMS} if config.roads else dict(EDGE_DIMS)


def _f32(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


def _i64(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.int64))


def _scaled_position(xy: np.ndarray, config: GraphConfig) -> np.ndarray:
    if not config.absolute_position:
        return np.zeros_like(xy)
    return (xy - np.asarray(config.origin_m)) / config.position_scale_m


def vehicle_proximity(xy: np.ndarray, radius_m: float, max_neighbours: int) -> np.ndarray:
    """[2, E] (source, target) pairs: each vehicle receives from its ``max_neighbours`` nearest other
    vehicles within ``radius_m``. No self-loops."""
    n = len(xy)
    if n < 2:
        return np.zeros((2, 0), dtype=np.int64)
    k = min(max_neighbours + 1, n)
    dist, idx = cKDTree(xy).query(xy, k=k, distance_upper_bound=radius_m)
    dist, idx = dist.reshape(n, k), idx.reshape(n, k)
    target = np.repeat(np.arange(n), k).reshape(n, k)
    keep = np.isfinite(dist) & (idx != target) & (idx < n)
    return np.stack([idx[keep], target[keep]]).astype(np.int64)


def random_graph(config: GraphConfig | None = None, *, vehicles: int = 16, seed: int = 0) -> HeteroData:
    """A graph of random features with every node type and relation of ``config``'s graphs (a few edges of
    each, candidates and the roads into their cells): what compiling a model needs to see once
    (:meth:`~mobility_twin_models.relations.nn.model.RelationModel.compile_predict`), not a twin."""
    config = config or GraphConfig()
    gen = torch.Generator().manual_seed(seed)
    n = {VEHICLE: vehicles, SERVER: max(2, vehicles // 4), RSU: 2, ROAD: vehicles}
    data = HeteroData()
    for t, dim in node_dims(config).items():
        data[t].x = torch.randn(n[t], dim, generator=gen)
    for (src, rel, dst), dim in edge_dims(config).items():
        e = 2 * max(n[src], n[dst])
        data[src, rel, dst].edge_index = torch.stack([torch.randint(n[src], (e,), generator=gen),
                                                      torch.randint(n[dst], (e,), generator=gen)])
        data[src, rel, dst].edge_attr = torch.randn(e, dim, generator=gen)
    per = min(3, n[SERVER])  # candidates per vehicle, in vehicle order as build_graph lays them out
    cand = torch.stack([torch.arange(vehicles).repeat_interleave(per),
                        torch.randperm(n[SERVER], generator=gen)[:per].repeat(vehicles)])
    data[CAND].edge_index = cand
    data[CAND].edge_attr = torch.randn(cand.size(1), CANDIDATE_DIM, generator=gen)
    if config.roads:
        rows = 2 * cand.size(1)
        data[CAND].via_road = torch.randint(n[ROAD], (rows,), generator=gen)
        data[CAND].via_pair = torch.randint(cand.size(1), (rows,), generator=gen).sort().values
        data[CAND].via_attr = torch.rand(rows, VIA_DIM, generator=gen)
    data[SERVER].load = torch.randint(0, vehicles, (n[SERVER],), generator=gen).float()
    return data


def build_graph(obs: ObservedSnapshot, config: GraphConfig | None = None) -> HeteroData:
    """The :class:`HeteroData` graph of one observed snapshot (see the module docstring for its layout).

    Besides features and edges it stores, for the heads and the baselines: ``vehicle.pos`` [V, 2],
    ``vehicle.vel`` [V, 2], ``vehicle.serving`` [V] (current server), ``vehicle.cv_server`` [V] (server of
    the constant-velocity point, -1 if none), ``server.pos``, ``server.load`` [S] (vehicles served now) and
    ``server.load_lags`` [S, L]; ``t`` (s) and ``horizon_s``.
    """
    config = config or GraphConfig()
    s = obs.snapshot
    static = obs.static
    index = static.index
    h = config.horizon_s
    pxy, vel = s.vehicle_xy.astype(float), s.vehicle_vel.astype(float)
    sxy, cov = s.server_xy.astype(float), s.server_coverage_m.astype(float)
    n_v, n_s = len(pxy), len(sxy)
    speed = np.linalg.norm(vel, axis=1)
    moving = speed > 0.1
    heading = np.where(moving[:, None], vel / np.maximum(speed, 1e-9)[:, None], 0.0)
    serving = obs.serving
    to_server = sxy[serving] - pxy if n_v else np.zeros((0, 2))
    cov_v = cov[serving] if n_v else np.zeros(0)
    leg_known = np.isfinite(obs.last_leg_s)
    prev = obs.prev_server
    ho_known = (prev >= 0) & np.isfinite(obs.since_handover_s)
    dwell_known = ho_known & np.isfinite(obs.prev_dwell_s)
    prev_xy = sxy[np.maximum(prev, 0)] if n_v else np.zeros((0, 2))
    vehicle_x = np.column_stack([
        _scaled_position(pxy, config),
        vel / config.speed_scale_mps,
        speed / config.speed_scale_mps,
        heading,
        np.minimum(obs.since_change_s / config.leg_scale_s, 1.0),
        np.where(leg_known, np.minimum(np.nan_to_num(obs.last_leg_s) / config.leg_scale_s, 1.0), 0.0),
        leg_known.astype(float),
        obs.last_leg_vel / config.speed_scale_mps,
        np.minimum(s.vehicle_age_s / config.leg_scale_s, 1.0),
        np.linalg.norm(to_server, axis=1) / np.maximum(cov_v, 1e-9),
        to_server / np.maximum(cov_v, 1e-9)[:, None],
        ho_known.astype(float),
        np.where(ho_known[:, None], (prev_xy - sxy[serving] if n_v else prev_xy) / np.maximum(cov_v, 1e-9)[:, None],
                 0.0),
        np.where(ho_known, np.minimum(np.nan_to_num(obs.since_handover_s) / config.leg_scale_s, 1.0), 0.0),
        dwell_known.astype(float),
        np.where(dwell_known, np.minimum(np.nan_to_num(obs.prev_dwell_s) / config.leg_scale_s, 1.0), 0.0),
        np.minimum(np.log1p(s.vehicle_age_s) / np.log1p(config.leg_scale_s), 1.0),
    ]).reshape(n_v, VEHICLE_DIM)
    lags = obs.load_lags / config.load_scale
    server_x = np.column_stack([
        _scaled_position(sxy, config),
        s.server_capacity_ghz / GHZ_SCALE,
        cov / 1000.0,
        lags,
        lags.mean(axis=1),
    ]).reshape(n_s, 5 + config.load_lags)
    rsu_x = np.column_stack([_scaled_position(s.rsu_xy, config), obs.rsu_load / config.load_scale]).reshape(-1, 3)

    data = HeteroData()
    data.t = float(s.t)
    data.horizon_s = float(h)
    data[VEHICLE].x = _f32(vehicle_x)
    data[VEHICLE].pos = _f32(pxy)
    data[VEHICLE].vel = _f32(vel)
    data[VEHICLE].serving = _i64(serving)
    data[SERVER].x = _f32(server_x)
    data[SERVER].pos = _f32(sxy)
    data[SERVER].load = _f32(obs.load)
    data[SERVER].load_lags = _f32(obs.load_lags)
    data[RSU].x = _f32(rsu_x)
    data[RSU].pos = _f32(s.rsu_xy.reshape(-1, 2))

    # vehicle - vehicle proximity
    vv = vehicle_proximity(pxy, config.vehicle_radius_m, config.max_vehicle_neighbours)
    motion = np.column_stack([pxy, vel]).reshape(n_v, 4)
    # offset and velocity difference, source minus target (take: the rows, about twice as fast as indexing)
    diff = motion.take(vv[0], axis=0) - motion.take(vv[1], axis=0)
    dx, dy = diff[:, 0], diff[:, 1]
    vv_attr = np.empty((vv.shape[1], EDGE_DIMS[VV]))  # in doubles, then one cast
    vv_attr[:, 0:2] = diff[:, :2] / config.vehicle_radius_m
    vv_attr[:, 2] = np.sqrt(dx * dx + dy * dy) / config.vehicle_radius_m
    vv_attr[:, 3:5] = diff[:, 2:] / config.speed_scale_mps
    data[VV].edge_index = _i64(vv)
    data[VV].edge_attr = _f32(vv_attr)

    # the vehicles that made the same handover (previous -> current server) shortly before or after
    data[FOLLOWS].edge_index, data[FOLLOWS].edge_attr = _follows(obs, config)

    # association
    vs = np.stack([np.arange(n_v), serving]).astype(np.int64)
    vs_attr = np.column_stack([to_server / np.maximum(cov_v, 1e-9)[:, None],
                               np.linalg.norm(to_server, axis=1) / np.maximum(cov_v, 1e-9)]).reshape(-1, 3)
    data[VS].edge_index = _i64(vs)
    data[VS].edge_attr = _f32(vs_attr)
    data[SV].edge_index = _i64(vs[::-1])
    data[SV].edge_attr = _f32(vs_attr)

    # server adjacency (static)
    ss = static.server_server
    adj = static.adjacency_m if np.isfinite(static.adjacency_m) else 1.0
    off = sxy[ss[0]] - sxy[ss[1]] if ss.shape[1] else np.zeros((0, 2))
    data[SS].edge_index = _i64(ss)
    data[SS].edge_attr = _f32(np.column_stack([off / adj, np.linalg.norm(off, axis=1) / adj]).reshape(-1, 3))

    # RSU attachment (static)
    rs = np.stack([np.arange(len(s.rsu_xy)), static.rsu_server]).astype(np.int64)
    off = sxy[rs[1]] - s.rsu_xy if rs.shape[1] else np.zeros((0, 2))
    rs_attr = np.column_stack([off / adj, np.linalg.norm(off, axis=1) / adj]).reshape(-1, 3)
    data[RS].edge_index = _i64(rs)
    data[RS].edge_attr = _f32(rs_attr)
    data[SR].edge_index = _i64(rs[::-1])
    data[SR].edge_attr = _f32(rs_attr)

    # handover candidates: the servers within reach of where the vehicle is. A fresh twin's position is
    # that place; a stale one's is not, but the serving server is known: it is within coverage of it.
    age = s.vehicle_age_s
    cv_point = pxy + vel * (age + h)[:, None]
    half_point = pxy + vel * (age + h / 2.0)[:, None]
    # the handover log: the vehicle crossed from the previous server's cell into the current one on their
    # common border, heading away from the previous server. Dead reckoning from that border point.
    ho_dir, dr_point = handover_dead_reckoning(obs, h, speed)
    cv_server, half_server, dr_server = _serving_of(index, pxy, (cv_point, half_point, dr_point))
    r = config.candidate_radius_m
    stale = age > config.fresh_age_s
    anchor = np.where(stale[:, None], sxy[serving] if n_v else pxy, pxy)
    vi, si, dist = _candidates(index, anchor, stale, cov_v, r, config.max_candidates)
    # per candidate (one row per quantity, a column per candidate: every step below is a run over contiguous
    # memory): the vehicle's points and directions, its servers, the candidate server's position
    served_xy = sxy[serving] if n_v else np.zeros((0, 2))
    pts = np.concatenate([anchor, cv_point, served_xy, dr_point, heading, ho_dir], axis=1).T.reshape(12, n_v)[:, vi]
    servers = np.stack([serving, cv_server, half_server, prev, dr_server])[:, vi]
    cand_x, cand_y = sxy.T.reshape(2, -1)[:, si]
    # offsets of the candidate server from the anchor, the CV point, the serving server, the dead-reckoning point
    dx, dy = cand_x - pts[0:8:2], cand_y - pts[1:8:2]
    dists = np.sqrt(dx * dx + dy * dy)
    d_cv, d_s, d_dr = dists[1], dists[2], dists[3]
    hx, hy = pts[8], pts[9]
    same = si == servers  # is the serving, CV-point, half-way, previous, dead-reckoning server
    ho_vi = ho_known[vi]
    cov_served = np.maximum(cov[servers[0]], 1e-9) if len(vi) else np.ones(0)
    attr = np.empty((CANDIDATE_DIM, len(vi)), dtype=np.float32)  # each row rounded once, as _f32 would
    attr[0], attr[1] = dx[0] / r, dy[0] / r
    attr[2] = dist / r
    attr[3], attr[4] = dx[1] / r, dy[1] / r
    attr[5] = d_cv / r
    attr[6] = d_cv / np.maximum(cov[si], 1e-9)
    attr[7] = (dx[0] * hx + dy[0] * hy) / r  # along the heading
    attr[8] = (dx[0] * hy - dy[0] * hx) / r  # across
    attr[9:12] = same[:3]
    attr[12] = np.minimum(rank_within(vi, d_cv), 20) / 10.0  # within the vehicle, by distance from the CV point
    attr[13] = same[3] & ho_vi
    attr[14] = np.where(d_s > 0, (dx[2] * pts[10] + dy[2] * pts[11]) / np.maximum(d_s, 1e-9), 0.0)
    attr[15] = np.where(ho_vi, d_dr / r, 0.0)
    attr[16] = ho_vi & same[4]
    attr[17], attr[18] = dx[2] / cov_served, dy[2] / cov_served
    data[CAND].edge_index = _i64(np.stack([vi, si]))
    data[CAND].edge_attr = _f32(attr.T)
    data[VEHICLE].cv_server = _i64(cv_server)
    data[VEHICLE].dr_server = _i64(np.where(ho_known, dr_server, -1))
    if config.roads and obs.road is not None:  # a twin without a road network: no road nodes
        _add_roads(data, obs, config, speed, serving, sxy, cov, index)
    return data


def _add_roads(data: HeteroData, obs: ObservedSnapshot, config: GraphConfig, speed: np.ndarray,
               serving: np.ndarray, sxy: np.ndarray, cov: np.ndarray, index) -> None:
    """Road nodes and their relations (see the module docstring)."""
    road = obs.road
    net = road.network
    g = net.graph
    n_e = len(net)
    L = ROAD_LENGTH_SCALE_M
    fixed = _road_static(net, index, config)
    has_exit, exit_xy = fixed.has_exit, fixed.exit_xy

    def toward_exit(r: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Offset of the server at the end of road ``r`` from vehicle ``v``'s server, over the latter's
        coverage (zero where no server serves the road's end)."""
        off = np.where(has_exit[r][:, None], exit_xy[r] - sxy[serving[v]], 0.0)
        return off / np.maximum(cov[serving[v]], 1e-9)[:, None]

    occupied = road.count > 0
    road_x = fixed.road_x.copy()
    road_x[:, _ROAD_STATE] = np.column_stack([
        np.minimum(road.count / net.capacity(), 1.0),
        np.where(occupied, np.nan_to_num(road.mean_speed) / np.maximum(g.speed, 0.1), 1.0),
        np.where(occupied, road.stopped / np.maximum(road.count, 1.0), 0.0), occupied,
    ]).reshape(n_e, -1)
    data[ROAD].x = _f32(road_x)
    data[ROAD].pos = fixed.pos

    # vehicles on roads
    vi = np.flatnonzero(road.road >= 0)
    ri = road.road[vi]
    left = np.maximum(g.length[ri] - road.along[vi], 0.0)
    ahead, standing_ahead, gap = _queue_ahead(ri, road.along[vi], speed[vi] < STOPPED_MPS, left)
    vr_attr = np.column_stack([
        road.along[vi] / np.maximum(g.length[ri], 1e-9), left / L,
        np.minimum(left / np.maximum(speed[vi], 0.5) / config.horizon_s, 1.0), toward_exit(ri, vi),
        np.minimum(ahead / QUEUE_SCALE, 3.0), np.minimum(standing_ahead / QUEUE_SCALE, 3.0), np.minimum(gap / L, 1.0),
    ]).reshape(-1, ROAD_EDGE_DIMS[VR])
    data[VR].edge_index = _i64(np.stack([vi, ri]).reshape(2, -1))
    data[VR].edge_attr = _f32(vr_attr)
    data[RV].edge_index = _i64(np.stack([ri, vi]).reshape(2, -1))
    data[RV].edge_attr = _f32(vr_attr)

    # the roads each vehicle's lane leads to
    vo, ro, oi = net.reachable(road.road, road.lane)
    lit = (oi >= 0) & road.signal_known[np.maximum(oi, 0)] if len(oi) else np.zeros(0, bool)
    n_opt = np.bincount(vo, minlength=len(road.road)).astype(float)
    from_road = road.road[vo]
    here, there = net.direction[from_road], net.direction[ro]
    turn = net.connection(from_road, ro)
    share = np.where(turn >= 0, road.turn_share[np.maximum(turn, 0)], 1.0 / np.maximum(n_opt[vo], 1.0))
    seen = road.turns_seen[from_road]
    data[REACH].edge_index = _i64(np.stack([ro, vo]).reshape(2, -1))
    data[REACH].edge_attr = _f32(np.column_stack([
        (here * there).sum(axis=1), here[:, 0] * there[:, 1] - here[:, 1] * there[:, 0], 1.0 / np.maximum(n_opt[vo], 1.0),
        toward_exit(ro, vo), lit, lit & road.green[np.maximum(oi, 0)],
        np.where(lit, np.minimum(road.switch_s[np.maximum(oi, 0)] / config.horizon_s, 1.0), 0.0),
        share, seen / (seen + TURNS_CONFIDENT),
    ]).reshape(-1, ROAD_EDGE_DIMS[REACH]))

    # the relations that stand still while the twin runs: road to road and road to the server of its end
    for et in (RR_NEXT, RR_PREV, RSV, SRD):
        data[et].edge_index, data[et].edge_attr = fixed.edges[et]

    # the roads by which each vehicle may enter each candidate server's cell: its own road, the roads its
    # lane leads to, and theirs at the junction after, each to the candidate serving the road's end
    hop, ro2 = net.successors(ro)
    share2 = share[hop] * road.turn_share[np.maximum(net.connection(ro[hop], ro2), 0)]
    via_v = np.concatenate([vi, vo, vo[hop]])
    via_r = np.concatenate([ri, ro, ro2]).astype(np.int64)
    hops = np.concatenate([np.zeros(len(vi)), np.ones(len(vo)), np.full(len(hop), 2.0)])
    via_share = np.concatenate([np.ones(len(vi)), share, share2])
    green = np.concatenate([np.zeros(len(vi)), lit & road.green[np.maximum(oi, 0)], np.zeros(len(hop), bool)])
    cand = data[CAND].edge_index.numpy()
    pair = PairIndex(cand[0], cand[1], len(sxy))(via_v, fixed.exit_server[via_r])
    keep = pair >= 0
    data[CAND].via_road = _i64(via_r[keep])
    data[CAND].via_pair = _i64(pair[keep])
    data[CAND].via_attr = _f32(np.column_stack([hops == 0, hops == 1, hops == 2, via_share, green])[keep].reshape(-1, VIA_DIM))


def _queue_ahead(road: np.ndarray, along: np.ndarray, standing: np.ndarray,
                 left: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per vehicle on a road (``road``, metres ``along`` it, ``standing``, metres ``left`` to its end): how many
    of the others on its road are ahead of it, how many of those stand, and the gap (m) to the next one ahead
    (to the road's end when none is)."""
    order = np.lexsort((-along, road))  # by road, the front first
    a, st = along[order], standing[order].astype(np.int64)
    ahead = rank_in_groups(road[order])
    start = np.arange(len(order)) - ahead
    before = np.cumsum(st) - st  # standing vehicles earlier in the order (all roads)
    gap = np.where(ahead == 0, left[order], np.r_[0.0, a[:-1]] - a)
    out = np.empty((3, len(order)))
    out[:, order] = ahead, before - before[start], gap
    return out[0], out[1], out[2]


#: columns of the road features that come from the twin's state (the rest stand still with the network)
_ROAD_STATE = slice(7, 11)


class _RoadStatic:
    """The parts of the road graph fixed by the network and the server set, computed once per pair (the
    live prediction rebuilds the graph every slot): the roads' static features, the road-to-road relations
    and each road's server."""

    def __init__(self, net, index, config: GraphConfig) -> None:
        g = net.graph
        n_e = len(net)
        L = ROAD_LENGTH_SCALE_M
        sxy, cov = index.xy, index.coverage_m
        ends = index.serving(np.concatenate([net.start, net.end]))
        entry, exit_ = ends[:n_e], ends[n_e:]
        has_exit = exit_ >= 0
        # the servers at each road's two ends (zeros where none serves it)
        entry_xy, exit_xy, cov_entry = (np.zeros((n_e, 2)), np.zeros((n_e, 2)), np.ones(n_e)) if not len(sxy) else \
            (sxy[np.maximum(entry, 0)], sxy[np.maximum(exit_, 0)], np.where(entry >= 0, cov[np.maximum(entry, 0)], 1.0))
        leaves = np.where((has_exit & (entry >= 0))[:, None], exit_xy - entry_xy, 0.0)
        middle = 0.5 * (net.start + net.end)
        self.has_exit, self.exit_xy, self.exit_server = has_exit, exit_xy, exit_.astype(np.int64)
        self.road_x = np.column_stack([
            _scaled_position(middle, config), net.direction, g.length / L, g.speed / config.speed_scale_mps,
            g.lanes / 3.0, np.zeros((n_e, _ROAD_STATE.stop - _ROAD_STATE.start)),
            leaves / cov_entry[:, None], (exit_ != entry) & has_exit,
        ]).reshape(n_e, ROAD_DIM)
        self.pos = _f32(middle)

        # road to road, both ways: (source, target) = (successor, road) for "next", (road, successor) for "prev"
        a, b = net.succ

        def road_road(src: np.ndarray, dst: np.ndarray) -> torch.Tensor:
            off = np.where((has_exit[src] & has_exit[dst])[:, None], exit_xy[src] - exit_xy[dst], 0.0)
            return _f32(np.column_stack([net.turn, g.length[src] / L, off / cov_entry[dst][:, None]]).reshape(-1, 5))

        # roads to the server of their end
        ri = np.flatnonzero(has_exit)
        si = exit_[ri]
        off = sxy[si] - net.end[ri] if len(ri) else np.zeros((0, 2))
        rs_attr = _f32(np.column_stack([off / cov[si][:, None], np.linalg.norm(off, axis=1) / cov[si]]).reshape(-1, 3)
                       if len(ri) else np.zeros((0, 3)))
        self.edges = {
            RR_NEXT: (_i64(np.stack([b, a]).reshape(2, -1)), road_road(b, a)),
            RR_PREV: (_i64(np.stack([a, b]).reshape(2, -1)), road_road(a, b)),
            RSV: (_i64(np.stack([ri, si]).reshape(2, -1)), rs_attr),
            SRD: (_i64(np.stack([si, ri]).reshape(2, -1)), rs_attr),
        }


#: (id of the road network, id of the server set, graph config) -> (both, their fixed road graph)
_ROAD_STATIC: dict[tuple, tuple] = {}


def _road_static(net, index, config: GraphConfig) -> _RoadStatic:
    """The :class:`_RoadStatic` of (network, server set, config), kept for the last few: both stand still
    while the twin runs. Its tensors are shared by the graphs built from it (nothing writes into a graph)."""
    key = (id(net), id(index), config)
    hit = _ROAD_STATIC.get(key)
    if hit is not None and hit[0] is net and hit[1] is index:
        return hit[2]
    fixed = _RoadStatic(net, index, config)
    if len(_ROAD_STATIC) >= 8:
        _ROAD_STATIC.pop(next(iter(_ROAD_STATIC)))
    _ROAD_STATIC[key] = (net, index, fixed)
    return fixed


def rank_in_groups(group: np.ndarray) -> np.ndarray:
    """[N] position of each element within its run of equal values of ``group`` (sorted by group)."""
    if len(group) == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.r_[0, np.flatnonzero(np.diff(group)) + 1]
    return np.arange(len(group)) - np.repeat(starts, np.diff(np.r_[starts, len(group)]))


def rank_within(group: np.ndarray, value: np.ndarray) -> np.ndarray:
    """[N] rank of each ``value`` within its group (0: the smallest; ties by position), for ``group`` sorted.

    Equal to ranking by ``np.lexsort((value, group))``, several times faster on the few candidates per
    vehicle: the groups are laid out as the rows of a small matrix and sorted row by row."""
    n = len(group)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    rows = np.r_[0, np.flatnonzero(np.diff(group)) + 1]
    sizes = np.diff(np.r_[rows, n])
    row = np.repeat(np.arange(len(rows)), sizes)
    width = int(sizes.max())
    at = np.arange(n) + row * width - rows[row]  # each value's place in the flat table (row, position in it)
    table = np.full(len(rows) * width, np.inf)
    table[at] = value
    order = np.argsort(table.reshape(-1, width), axis=1, kind="stable")
    # rank[i, order[i, j]] = j, written through flat positions (several times faster than put_along_axis)
    rank = np.empty(table.size, dtype=np.int64)
    rank[(order + (np.arange(len(rows)) * width)[:, None]).ravel()] = np.tile(np.arange(width), len(rows))
    return rank[at]


def handover_dead_reckoning(obs: ObservedSnapshot, horizon_s: float,
                            speed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Where each vehicle is ``horizon_s`` from now by dead reckoning from its last handover.

    The association rule hands a vehicle over where it crosses into the new server's cell: on the border
    of the two cells, heading away from the previous server. The border point is taken as the midpoint
    of the two servers, the heading as previous -> current server, the speed as the twin's (``speed``,
    from its last report) or :data:`DEFAULT_SPEED_MPS` when that is below 1 m/s. Returns the heading [V, 2]
    (zero without a known handover) and the point [V, 2] (the vehicle's position without one).
    """
    s = obs.snapshot
    n = len(s.vehicle_ids)
    if n == 0:
        return np.zeros((0, 2)), np.zeros((0, 2))
    sxy = s.server_xy.astype(float)
    prev, since = obs.prev_server, obs.since_handover_s
    known = (prev >= 0) & np.isfinite(since)
    cur_xy, prev_xy = sxy[obs.serving], sxy[np.maximum(prev, 0)]
    axis = cur_xy - prev_xy
    length = np.linalg.norm(axis, axis=1)
    known &= length > 0
    heading = np.where(known[:, None], axis / np.maximum(length, 1e-9)[:, None], 0.0)
    if speed is None:
        speed = np.linalg.norm(s.vehicle_vel, axis=1)
    speed = np.where(speed >= 1.0, speed, DEFAULT_SPEED_MPS)
    travelled = speed * (np.nan_to_num(since) + horizon_s)
    point = np.where(known[:, None], 0.5 * (cur_xy + prev_xy) + heading * travelled[:, None], s.vehicle_xy)
    return heading, point


def handover_leaders(obs: ObservedSnapshot, window_s: float, max_leaders: int) -> tuple[np.ndarray, np.ndarray]:
    """[2, E] (leader, follower) pairs and [E] lag of the ``(vehicle, follows, vehicle)`` relation.

    A follower is a vehicle with a known handover from server A to its current server B. Its leaders are
    the other vehicles that made the same handover A -> B within ``window_s`` of it, whether they are
    still on B or have since been handed on (their server before the current one was B, and A before
    that). Both come from the network's handover log, so the relation holds even when every GPS fix is
    stale: where the vehicles that crossed the same border went next is where the road goes. Each
    follower keeps the ``max_leaders`` closest in time. The lag is the follower's A -> B time minus the
    leader's (s; > 0: the leader crossed first).
    """
    since, dwell = obs.since_handover_s, obs.prev_dwell_s
    n_s = max(len(obs.snapshot.server_ids), 1)
    t_ab_here = -since  # A -> B time (relative to now) of the vehicle's latest handover
    t_ab_before = -(since + dwell)  # ... of the handover before it
    follower = np.flatnonzero((obs.prev_server >= 0) & np.isfinite(since))
    key_f = obs.prev_server[follower] * n_s + obs.serving[follower]
    on_b = follower  # leaders still on B: their latest handover is A -> B
    moved = np.flatnonzero((obs.prev2_server >= 0) & np.isfinite(since) & np.isfinite(dwell))
    lead = np.concatenate([on_b, moved])
    key_l = np.concatenate([key_f, obs.prev2_server[moved] * n_s + obs.prev_server[moved]])
    t_l = np.concatenate([t_ab_here[on_b], t_ab_before[moved]])
    if len(follower) == 0 or len(lead) == 0:
        return np.zeros((2, 0), dtype=np.int64), np.zeros(0)
    order = np.argsort(key_l, kind="stable")
    lead, key_l, t_l = lead[order], key_l[order], t_l[order]
    lo = np.searchsorted(key_l, key_f, side="left")
    hi = np.searchsorted(key_l, key_f, side="right")
    count = hi - lo
    f_rep = np.repeat(follower, count)
    pos = np.repeat(lo - np.cumsum(np.r_[0, count[:-1]]), count) + np.arange(int(count.sum()))
    u = lead[pos]
    lag = np.repeat(t_ab_here[follower], count) - t_l[pos]
    keep = (u != f_rep) & (np.abs(lag) <= window_s)
    u, f_rep, lag = u[keep], f_rep[keep], lag[keep]
    order = np.lexsort((np.abs(lag), f_rep))  # per follower, closest in time first
    u, f_rep, lag = u[order], f_rep[order], lag[order]
    keep = rank_in_groups(f_rep) < max_leaders
    u, f_rep, lag = u[keep], f_rep[keep], lag[keep]
    return np.stack([u, f_rep]).astype(np.int64), lag


def _follows(obs: ObservedSnapshot, config: GraphConfig) -> tuple[torch.Tensor, torch.Tensor]:
    pairs, lag = handover_leaders(obs, config.follow_window_s, config.max_leaders)
    u, v = pairs
    sxy = obs.snapshot.server_xy.astype(float)
    cov = obs.snapshot.server_coverage_m.astype(float)
    moved_on = obs.serving[u] != obs.serving[v]
    off = (sxy[obs.serving[u]] - sxy[obs.serving[v]]) / np.maximum(cov[obs.serving[v]], 1e-9)[:, None] \
        if len(u) else np.zeros((0, 2))
    left = np.where(moved_on, np.nan_to_num(obs.since_handover_s[u]), 0.0)
    attr = np.column_stack([moved_on, off, np.clip(lag / config.leg_scale_s, -1.0, 1.0),
                            np.minimum(left / config.leg_scale_s, 1.0)]).reshape(-1, EDGE_DIMS[FOLLOWS])
    return _i64(pairs), _f32(attr)


def _serving_of(index, own: np.ndarray, points: tuple[np.ndarray, ...]) -> list[np.ndarray]:
    """The server serving each of ``points`` (arrays [V, 2] of points of the V vehicles), as
    ``index.serving`` gives it, asking once for a vehicle's own position ``own`` [V, 2] where several of its
    points are that position (a standing vehicle's extrapolations are where it stands): each look-up in the
    tree costs about as much as the rest of a point's features."""
    n = len(own)
    same = [np.all(p == own, axis=1) for p in points]
    shared = np.sum(same, axis=0) >= 2
    at_own = np.flatnonzero(shared)
    ask = [np.flatnonzero(~(s & shared)) for s in same]
    found = index.serving(np.concatenate([own[at_own]] + [p[a] for p, a in zip(points, ask, strict=True)]))
    k = start = len(at_own)
    out = []
    for a in ask:
        o = np.empty(n, np.int64)
        o[at_own] = found[:k]  # then the points of those vehicles that are elsewhere, as asked
        o[a] = found[start:start + len(a)]
        start += len(a)
        out.append(o)
    return out


def _candidates(index, anchor: np.ndarray, stale: np.ndarray, cov: np.ndarray, radius: float,
                max_candidates: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(vehicle, server, distance from the anchor) of the servers within ``radius`` of each fresh vehicle's
    position, and within ``radius`` plus its serving server's coverage of each stale vehicle's server;
    at most the ``max_candidates`` nearest."""
    if not stale.any():
        return index.within(anchor, radius, max_per_point=max_candidates)
    parts = []
    for group, extra in ((~stale, 0.0), (stale, float(cov[stale].max()) if stale.any() else 0.0)):
        ids = np.flatnonzero(group)
        if len(ids) == 0:
            continue
        v, s, d = index.within(anchor[ids], radius + extra, max_per_point=max_candidates)
        parts.append((ids[v], s, d))
    vi, si, di = (np.concatenate(x) for x in zip(*parts, strict=True))
    order = np.argsort(vi, kind="stable")
    return vi[order], si[order], di[order]


def graph_nbytes(data: HeteroData) -> int:
    """Bytes held by the tensors of a graph (what it costs to keep it in a replay buffer)."""
    total = 0
    for store in data.stores:
        for value in store.values():
            if isinstance(value, torch.Tensor):
                total += value.element_size() * value.numel()
    return total

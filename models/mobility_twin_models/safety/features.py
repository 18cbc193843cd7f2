"""Follower-leader pairs of road users and what a rear-end conflict between them depends on.

A rear-end conflict is a follower closing on the road user ahead of it in its lane. SUMO's surrogate-safety
device (and the collision benchmark's truth) calls it one when the follower's time to collision, the gap
between the bumpers over the closing speed at that moment, falls below 1.5 s. Whether it will do so in the
next seconds depends on how the follower drives: most approaches to a queue end with the follower braking in
time, and a constant-velocity prediction cannot tell those from the ones that do not. The features below
describe the pair as the twin sees it, for a model that learns it from the road (:mod:`.model`).

Pairs: each road user's nearest road user ahead of it along its heading (its lane's, where known), within
``max_gap_m``, at most ``max_lateral_m`` to the side and heading the same way within ``max_heading_deg`` (a
leader standing off any known lane: any way, its heading being unknown).
Inputs are plain arrays (the collision warning's ``Motion`` fields), so this module needs no ROS and no
other layer.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.spatial import cKDTree

#: the columns of :func:`follower_pairs`' feature rows, in order
FEATURES = (
    "gap_m",  # bumper to bumper along the follower's heading (negative: the bodies overlap)
    "closing_mps",  # follower's speed less the leader's, along the follower's heading (> 0: closing)
    "follower_mps",
    "leader_mps",
    "ttc_s",  # gap / closing while closing (capped at TTC_CAP_S)
    "drac_mps2",  # closing^2 / (2 gap): the deceleration that would avoid the touch
    "lateral_m",  # the leader's offset across the follower's heading
    "position_sd_m",  # the pair's position uncertainty (sqrt of the summed variances; 0 without covariances)
    "speed_sd_mps",  # ... and of their velocities
    "follower_stop_m",  # how far the follower can still go before a red light holds it (capped at STOP_CAP_M)
    "leader_stop_m",
    "age_s",  # the older of the two estimates' age (0 when not known)
)
TTC_CAP_S = 20.0
STOP_CAP_M = 100.0


def follower_pairs(x: np.ndarray, length: np.ndarray, heading: np.ndarray | None, *, P: np.ndarray | None = None,
                   lane_heading: np.ndarray | None = None, stop_m: np.ndarray | None = None,
                   age_s: np.ndarray | None = None, max_gap_m: float = 40.0, max_lateral_m: float = 2.5,
                   max_heading_deg: float = 30.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(follower rows, leader rows, features (K, len(FEATURES)) float32) of the road users ``x`` (N, 4: x, y, vx,
    vy in a metric frame), ``length`` (N,) m and ``heading`` (N,) rad (the body's, used while a road user is
    slower than 1 m/s; None: the velocity's); ``lane_heading`` (N,) the direction of
    each one's lane (NaN: none known, the heading is used), ``stop_m`` (N,) how far each can go before a red
    light holds it (inf: not held), ``age_s`` (N,) how old each estimate is. Rows that are not finite take no
    part."""
    x = np.asarray(x, float).reshape(-1, 4)
    length = np.asarray(length, float).reshape(-1)
    n = len(x)
    empty = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, len(FEATURES)), np.float32))
    # the direction each drives in: its lane's where known, else its velocity's when moving, else its heading
    moving = np.hypot(x[:, 2], x[:, 3]) > 1.0
    hd = np.arctan2(x[:, 3], x[:, 2]) if heading is None else np.where(moving, np.arctan2(x[:, 3], x[:, 2]), heading)
    ok = np.isfinite(x).all(axis=1) & np.isfinite(length) & np.isfinite(hd)
    if n < 2 or np.count_nonzero(ok) < 2:
        return empty
    lane_at = np.full(n, np.nan) if lane_heading is None else np.asarray(lane_heading, float)
    hd = np.where(np.isfinite(lane_at), lane_at, hd)
    rows = np.flatnonzero(ok)
    pairs = cKDTree(x[rows, :2]).query_pairs(max_gap_m + float(np.max(length[rows])), output_type="ndarray")
    if not len(pairs):
        return empty
    a, b = rows[pairs[:, 0]], rows[pairs[:, 1]]
    i, j = np.concatenate([a, b]), np.concatenate([b, a])  # both ways: follower i, leader j
    c, s = np.cos(hd[i]), np.sin(hd[i])
    dx, dy = x[j, 0] - x[i, 0], x[j, 1] - x[i, 1]
    ahead = dx * c + dy * s
    lateral = -dx * s + dy * c
    turn = np.abs((hd[j] - hd[i] + math.pi) % (2 * math.pi) - math.pi)
    gap = ahead - 0.5 * (length[i] + length[j])
    # a leader slower than 1 m/s off any known lane has no heading to go by (a stopped car's box may be turned a
    # quarter or a half turn: LiDAR boxes of a standing vehicle, an estimate from no motion): any heading
    same_way = (turn <= math.radians(max_heading_deg)) | (~moving[j] & ~np.isfinite(lane_at[j]))
    keep = (ahead > 0) & (gap <= max_gap_m) & (np.abs(lateral) <= max_lateral_m) & same_way
    if not np.count_nonzero(keep):
        return empty
    i, j, c, s, ahead, lateral, gap = i[keep], j[keep], c[keep], s[keep], ahead[keep], lateral[keep], gap[keep]
    # the nearest leader of each follower
    order = np.lexsort((ahead, i))
    first = np.r_[True, i[order][1:] != i[order][:-1]]
    pick = order[first]
    i, j, c, s, lateral, gap = i[pick], j[pick], c[pick], s[pick], lateral[pick], gap[pick]
    v_f = x[i, 2] * c + x[i, 3] * s
    v_l = x[j, 2] * c + x[j, 3] * s
    closing = v_f - v_l
    closing_pos = np.maximum(closing, 1e-3)
    ttc = np.where(closing > 0.1, np.clip(gap, 0.0, None) / closing_pos, TTC_CAP_S)
    drac = np.where(closing > 0, closing_pos ** 2 / (2.0 * np.maximum(gap, 0.3)), 0.0)
    if P is not None:
        P = np.asarray(P, float).reshape(-1, 4, 4)
        pos_var = P[i, 0, 0] + P[i, 1, 1] + P[j, 0, 0] + P[j, 1, 1]
        vel_var = P[i, 2, 2] + P[i, 3, 3] + P[j, 2, 2] + P[j, 3, 3]
    else:
        pos_var = vel_var = np.zeros(len(i))
    stop = np.full(n, np.inf) if stop_m is None else np.asarray(stop_m, float)
    age = np.zeros(n) if age_s is None else np.nan_to_num(np.asarray(age_s, float), nan=0.0, posinf=0.0)
    feats = np.stack([gap, closing, v_f, v_l, np.minimum(ttc, TTC_CAP_S), drac, np.abs(lateral),
                      np.sqrt(np.maximum(pos_var, 0.0)), np.sqrt(np.maximum(vel_var, 0.0)),
                      np.minimum(np.nan_to_num(stop[i], nan=STOP_CAP_M), STOP_CAP_M),
                      np.minimum(np.nan_to_num(stop[j], nan=STOP_CAP_M), STOP_CAP_M),
                      np.maximum(age[i], age[j])], axis=1)
    return i.astype(np.int64), j.astype(np.int64), np.nan_to_num(feats, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)

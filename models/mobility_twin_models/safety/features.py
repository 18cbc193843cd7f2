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
    # each one's acceleration along the follower's heading over the last ACCEL_WINDOW_S (from its velocity then and
    # now, :class:`Accelerations`; 0 when not known): a leader braking, a follower not yet
    "follower_accel_mps2",
    "leader_accel_mps2",
)
TTC_CAP_S = 20.0
STOP_CAP_M = 100.0
ACCEL_WINDOW_S = 0.8
ACCEL_CAP_MPS2 = 10.0


class Accelerations:
    """Each road user's acceleration (m/s^2) from its velocity now and about ``window_s`` ago, by id: feed the
    cycles in time order. A road user first seen less than half the window ago has none (NaN)."""

    def __init__(self, window_s: float = ACCEL_WINDOW_S) -> None:
        self.window_s = window_s
        self._past: dict[int, list[tuple[float, float, float]]] = {}

    def update(self, t: float, ids, x: np.ndarray) -> np.ndarray:
        """(N, 2) accelerations of the road users ``ids`` with states ``x`` (N, 4) at ``t``."""
        x = np.asarray(x, float).reshape(-1, 4)
        out = np.full((len(x), 2), np.nan)
        keep: dict[int, list[tuple[float, float, float]]] = {}
        for r, i in enumerate(np.asarray(ids).tolist()):
            past = [p for p in self._past.get(int(i), ()) if t - p[0] <= self.window_s + 1e-6 and p[0] < t]
            vx, vy = x[r, 2], x[r, 3]
            if past and t - past[0][0] >= 0.5 * self.window_s and np.isfinite(vx) and np.isfinite(vy):
                dt = t - past[0][0]
                out[r] = ((vx - past[0][1]) / dt, (vy - past[0][2]) / dt)
            if np.isfinite(vx) and np.isfinite(vy):
                past.append((float(t), float(vx), float(vy)))
            keep[int(i)] = past
        self._past = keep
        return np.clip(out, -ACCEL_CAP_MPS2, ACCEL_CAP_MPS2)


def follower_pairs(x: np.ndarray, length: np.ndarray, heading: np.ndarray | None, *, P: np.ndarray | None = None,
                   lane_heading: np.ndarray | None = None, stop_m: np.ndarray | None = None,
                   age_s: np.ndarray | None = None, accel: np.ndarray | None = None, max_gap_m: float = 40.0,
                   max_lateral_m: float = 2.5, max_heading_deg: float = 30.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(follower rows, leader rows, features (K, len(FEATURES)) float32) of the road users ``x`` (N, 4: x, y, vx,
    vy in a metric frame), ``length`` (N,) m and ``heading`` (N,) rad (the body's, used while a road user is
    slower than 1 m/s; None: the velocity's); ``lane_heading`` (N,) the direction of
    each one's lane (NaN: none known, the heading is used), ``stop_m`` (N,) how far each can go before a red
    light holds it (inf: not held), ``age_s`` (N,) how old each estimate is, ``accel`` (N, 2) each one's
    acceleration (:class:`Accelerations`; NaN or None: not known). Rows that are not finite take no part."""
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
    acc = np.zeros((n, 2)) if accel is None else np.nan_to_num(np.asarray(accel, float).reshape(n, 2), nan=0.0)
    age = np.zeros(n) if age_s is None else np.nan_to_num(np.asarray(age_s, float), nan=0.0, posinf=0.0)
    feats = np.stack([gap, closing, v_f, v_l, np.minimum(ttc, TTC_CAP_S), drac, np.abs(lateral),
                      np.sqrt(np.maximum(pos_var, 0.0)), np.sqrt(np.maximum(vel_var, 0.0)),
                      np.minimum(np.nan_to_num(stop[i], nan=STOP_CAP_M), STOP_CAP_M),
                      np.minimum(np.nan_to_num(stop[j], nan=STOP_CAP_M), STOP_CAP_M),
                      np.maximum(age[i], age[j]),
                      acc[i, 0] * c + acc[i, 1] * s, acc[j, 0] * c + acc[j, 1] * s], axis=1)
    return i.astype(np.int64), j.astype(np.int64), np.nan_to_num(feats, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)

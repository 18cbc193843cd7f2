"""Pairwise conflict prediction from tracks with their covariance (ROS-free).

Every road user is a state ``(x, y, vx, vy)`` in ``map`` with its 4x4 covariance, a body (length, width) and a
heading. Over a horizon of a few seconds each is moved on at constant velocity (a yaw rate, when given, turns
the velocity: constant turn), and its body is a row of discs along its heading (a box seen as discs: a rear-end
touch and a crossing both show, two cars in neighbouring lanes do not).

**Lanes.** Where the road network is known (:attr:`Motion.lane_heading`, from :class:`mobility_twin.safety.
lanes.LaneHeadings`), a road user on a lane moves along the lane's direction: its velocity (and every draw's)
is the component along the lane, its heading the lane's, and its random lateral acceleration
``lane_lateral_sigma`` (drivers keep their lane) instead of ``lateral_sigma``. Without it a heading error
of a few degrees drifts metres sideways within the horizon, and cars in neighbouring lanes or passing in
opposite lanes seem to touch. **Red lights**: a road user held by one (:attr:`Motion.stop_m`, from
:meth:`mobility_twin.safety.lanes.LaneHeadings.locate` with the signals' states) goes no farther than its
stop line in any draw.

* **Candidate pairs** come from a KD-tree of the positions (pairs closer than what two road users can close in
  the horizon), then a closed-form gate on the mean motion (closest approach of the two centres, widened by
  the uncertainty): only the pairs that pass are sampled.
* **Probability**: Monte Carlo. ``samples`` draws from each track's Gaussian, each with a random constant
  acceleration (``accel_sigma``: the driver may brake or speed up); the probability of a conflict is the share
  of draws whose bodies touch within the horizon (draws that touch at once count as no conflict: two tracks
  of one vehicle, or stopped cars bumper to bumper under position noise).
* **Time to collision**: the median first-touch time of the colliding draws (the mean motion's when no
  draw collides: ``inf``). **Post-encroachment time** (crossing paths): on the mean motion, the time between
  the first road user leaving the crossing point and the second arriving (NaN when the paths do not cross in
  the horizon).
* **Who yields**: the party the other is further ahead of along its own heading (the follower of a rear-end
  conflict, the one farther from the crossing point); both when it is close (head-on).

Bad input never raises: rows that are not finite, stale (``max_age_s``), with an unusable covariance or an
unknown class are skipped and counted by reason (:attr:`ConflictPredictor.counts`).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

REAR_END, CROSSING, HEAD_ON = 0, 1, 2
KIND_NAMES = {REAR_END: "rear_end", CROSSING: "crossing", HEAD_ON: "head_on"}


@dataclass(frozen=True)
class PredictorConfig:
    horizon_s: float = 4.0  # how far ahead conflicts are predicted (s)
    step_s: float = 0.1  # time step of the prediction (s)
    samples: int = 32  # Monte Carlo draws per road user (0: the mean motion only, probability 0 or 1)
    accel_sigma: float = 1.0  # random constant acceleration of each draw along its heading (m/s^2)
    lateral_sigma: float = 0.3  # ... and across it (m/s^2: drivers keep their lane)
    lane_lateral_sigma: float = 0.05  # ... across it for a road user on a known lane (m/s^2)
    margin_m: float = 0.2  # added to each body disc's radius (m)
    max_speed_mps: float = 25.0  # speeds above are treated as bad tracks (m/s)
    max_age_s: float = 1.0  # a track whose last measurement is older than this is skipped (s)
    gate_sigmas: float = 3.0  # closed-form pre-gate: closest approach within this many standard deviations
    min_speed_mps: float = 0.5  # a pair where both are slower than this is not a conflict
    seed: int = 0

    def check(self) -> None:
        if not (0 < self.step_s <= self.horizon_s <= 30 and self.samples >= 0
                and min(self.accel_sigma, self.lateral_sigma, self.lane_lateral_sigma) >= 0
                and self.margin_m >= 0 and self.max_age_s > 0 and self.gate_sigmas > 0):
            raise ValueError("predictor: 0 < step_s <= horizon_s <= 30, samples >= 0, accel_sigma, lateral_sigma and "
                             "lane_lateral_sigma >= 0, "
                             "margin_m >= 0, max_age_s > 0, gate_sigmas > 0")


@dataclass(frozen=True)
class Motion:
    """Road users at ``t``, aligned arrays. ``P`` None: no covariance (the raw-detection baseline)."""

    t: float
    ids: np.ndarray  # [N] int64
    x: np.ndarray  # [N, 4] x, y, vx, vy
    P: np.ndarray | None  # [N, 4, 4]
    length: np.ndarray  # [N] m
    width: np.ndarray  # [N] m
    heading: np.ndarray | None = None  # [N] rad (None: from the velocity)
    last_update: np.ndarray | None = None  # [N] s (None: fresh)
    yaw_rate: np.ndarray | None = None  # [N] rad/s (None: straight)
    lane_heading: np.ndarray | None = None  # [N] rad, the direction of the lane each drives in (NaN: not known)
    stop_m: np.ndarray | None = None  # [N] m each can still go before a red light holds it (inf: not held)
    views: object | None = None  # what the LiDARs saw of the road at t (safety.views.SensorViews; None: not known)
    unseen_ahead_m: np.ndarray | None = None  # [N] m of road to the one ahead no view saw (NaN: none ahead; None:
    # not measured: the learned predictor asks ``views``)

    @staticmethod
    def from_tracks(tracks, t: float, yaw_rate: np.ndarray | None = None, lanes=None, signals=None) -> Motion:
        """From a :class:`mobility_twin.tracking.TrackSet` (or anything with its fields); ``lanes``: a
        :class:`mobility_twin.safety.lanes.LaneHeadings` of the road network (None: not known), ``signals``
        the lights' states (None: not known)."""
        dims = np.asarray(tracks.dims, float).reshape(-1, 3)
        x = np.asarray(tracks.x, float).reshape(-1, 4)
        heading = np.asarray(tracks.heading(), float)
        lane = stop = None
        if lanes is not None:
            lane, stop = lanes.locate(x[:, 0], x[:, 1], heading, np.hypot(x[:, 2], x[:, 3]), dims[:, 0], signals)
        return Motion(float(t), np.asarray(tracks.ids, np.int64), x, np.asarray(tracks.P, float).reshape(-1, 4, 4),
                      dims[:, 0], dims[:, 1], heading, np.asarray(tracks.last_update, float), yaw_rate, lane, stop)


@dataclass(frozen=True)
class Conflict:
    """A predicted conflict between road users ``a`` and ``b`` (ids of the input), ``a < b``."""

    a: int
    b: int
    probability: float
    ttc_s: float  # median time to the first touch of the colliding draws
    pet_s: float  # post-encroachment time of the mean motion (NaN: paths do not cross)
    min_distance_m: float  # closest approach of the mean motion's bodies (m, <= 0: they touch)
    kind: int  # REAR_END, CROSSING, HEAD_ON
    yield_a: bool  # a should brake
    yield_b: bool
    point: tuple[float, float]  # where (mean motion, at ttc), map m


BODY_DISCS = 4
MAX_BODY_DISCS = 12  # (the pairwise disc distances grow with its square)


def _body_discs(length: np.ndarray, width: np.ndarray, margin: float) -> tuple[np.ndarray, np.ndarray]:
    """Offsets [N, D] of discs along the heading and their radius [N]: the discs' centres from ``width/2``
    behind the front to as far in front of the back, each just wide enough to cover its share of the box.
    A body has ``BODY_DISCS`` discs, a long one as many as keep them two thirds of its width or less apart,
    at most ``MAX_BODY_DISCS`` (a car's discs reach 0.1 m beyond its sides, a 12 m bus's 0.23 m, where four
    reached a metre into the next lane); the rows are padded to the longest with copies of their last disc."""
    length = np.maximum(length, 0.3)
    width = np.maximum(width, 0.3)
    reach = np.maximum(length - width, 0.0) / 2
    count = np.clip(np.ceil(reach / (width / 3) - 1e-9).astype(int) + 1, BODY_DISCS, MAX_BODY_DISCS)
    d = int(count.max()) if len(count) else BODY_DISCS
    k = np.minimum(np.arange(d)[None, :], count[:, None] - 1)  # the padding repeats the last disc
    offsets = reach[:, None] * (2.0 * k / (count[:, None] - 1) - 1.0)
    radius = np.hypot(width / 2, reach / (count - 1)) + margin
    return offsets, radius


class ConflictPredictor:
    """``predict(motion)`` -> conflicts of the pairs that may touch within the horizon."""

    def __init__(self, config: PredictorConfig = PredictorConfig()) -> None:
        config.check()
        self.config = config
        self.counts: Counter = Counter()  # skipped rows and pairs by reason, pairs considered / sampled
        self.rng = np.random.default_rng(config.seed)

    # ------------------------------------------------------------------------------------------ input checks
    def usable(self, m: Motion) -> np.ndarray:
        """[N] bool: rows to predict; the others are counted by reason."""
        cfg = self.config
        n = len(m.ids)
        ok = np.ones(n, dtype=bool)
        finite = np.isfinite(m.x).all(axis=1) & np.isfinite(m.length) & np.isfinite(m.width)
        if m.heading is not None:
            finite &= np.isfinite(m.heading)
        self.counts["not_finite"] += int((~finite).sum())
        ok &= finite
        speed = np.hypot(m.x[:, 2], m.x[:, 3])
        fast = ok & (speed > cfg.max_speed_mps)
        self.counts["implausible_speed"] += int(fast.sum())
        ok &= ~fast
        if m.last_update is not None:
            age = m.t - np.asarray(m.last_update, float)
            stale = ok & ~(age <= cfg.max_age_s)  # (NaN ages are stale)
            self.counts["stale"] += int(stale.sum())
            ok &= ~stale
        if m.P is not None:
            P = m.P
            good = np.isfinite(P).all(axis=(1, 2))
            diag = np.diagonal(P, axis1=1, axis2=2)
            good &= (diag >= 0).all(axis=1) & (diag < 1e4).all(axis=1)
            bad = ok & ~good
            self.counts["bad_covariance"] += int(bad.sum())
            ok &= good
        _, first = np.unique(m.ids, return_index=True)
        dup = np.ones(n, dtype=bool)
        dup[first] = False
        dup &= ok
        self.counts["duplicate_id"] += int(dup.sum())
        ok &= ~dup
        return ok

    # ------------------------------------------------------------------------------------------ prediction
    def predict(self, m: Motion) -> list[Conflict]:
        cfg = self.config
        n = len(m.ids)
        if n < 2:
            return []
        keep = np.flatnonzero(self.usable(m))
        if len(keep) < 2:
            return []
        x = m.x[keep]
        speed = np.hypot(x[:, 2], x[:, 3])
        heading = np.arctan2(x[:, 3], x[:, 2]) if m.heading is None else np.asarray(m.heading, float)[keep]
        heading = np.where(speed > 1.0, np.arctan2(x[:, 3], x[:, 2]), heading)
        lane = np.zeros(len(keep), bool)
        if m.lane_heading is not None:
            lane = np.isfinite(np.asarray(m.lane_heading, float)[keep])
            heading = np.where(lane, np.nan_to_num(np.asarray(m.lane_heading, float)[keep]), heading)
            x = x.copy()
            x[lane, 2:] = _along(x[lane, 2:], heading[lane])
            speed = np.hypot(x[:, 2], x[:, 3])
        length, width = np.asarray(m.length, float)[keep], np.asarray(m.width, float)[keep]
        offsets, radius = _body_discs(length, width, cfg.margin_m)
        reach = speed * cfg.horizon_s + 0.5 * 3 * cfg.accel_sigma * cfg.horizon_s ** 2 + length / 2 + radius
        tree = cKDTree(x[:, :2])
        pairs = tree.query_pairs(float(2 * reach.max()), output_type="ndarray")
        if not len(pairs):
            return []
        i, j = pairs[:, 0], pairs[:, 1]
        d = np.hypot(*(x[i, :2] - x[j, :2]).T)
        near = d <= reach[i] + reach[j]
        moving = (speed[i] >= cfg.min_speed_mps) | (speed[j] >= cfg.min_speed_mps)
        self.counts["pairs_considered"] += int(near.sum())
        i, j = i[near & moving], j[near & moving]
        if not len(i):
            return []
        # closed-form gate on the mean motion: closest approach of the centres within the horizon
        dp = x[j, :2] - x[i, :2]
        dv = x[j, 2:] - x[i, 2:]
        vv = (dv ** 2).sum(axis=1)
        tstar = np.clip(np.where(vv > 1e-9, -(dp * dv).sum(axis=1) / np.maximum(vv, 1e-9), 0.0), 0.0, cfg.horizon_s)
        closest = np.hypot(*(dp + dv * tstar[:, None]).T)
        if m.P is not None:
            Pi, Pj = m.P[keep][i], m.P[keep][j]
            var_p = np.trace(Pi[:, :2, :2] + Pj[:, :2, :2], axis1=1, axis2=2) / 2
            var_v = np.trace(Pi[:, 2:, 2:] + Pj[:, 2:, 2:], axis1=1, axis2=2) / 2
            spread = np.sqrt(np.maximum(var_p + var_v * tstar ** 2, 0.0))
        else:
            spread = np.zeros(len(i))
        drift = np.where(lane[i] & lane[j], max(cfg.accel_sigma, cfg.lane_lateral_sigma),
                         max(cfg.accel_sigma, cfg.lateral_sigma))
        spread = spread + 0.5 * math.sqrt(2) * drift * tstar ** 2
        body = length[i] / 2 + length[j] / 2 + radius[i] + radius[j]
        gate = closest <= body + cfg.gate_sigmas * spread
        i, j = i[gate], j[gate]
        self.counts["pairs_sampled"] += len(i)
        if not len(i):
            return []
        return self._sample(m, keep, x, heading, lane, offsets, radius, i, j)

    def _sample(self, m: Motion, keep, x, heading, lane, offsets, radius, i, j) -> list[Conflict]:
        cfg = self.config
        users = np.unique(np.concatenate([i, j]))
        idx = {int(u): k for k, u in enumerate(users)}
        S = max(cfg.samples, 0)
        steps = np.arange(0, round(cfg.horizon_s / cfg.step_s) + 1) * cfg.step_s  # [K]
        mean = x[users]  # [U, 4]
        yaw_rate = np.zeros(len(users)) if m.yaw_rate is None else np.nan_to_num(np.asarray(m.yaw_rate, float)[keep][users])
        on_lane = lane[users]
        yaw_rate = np.where(on_lane, 0.0, yaw_rate)
        if S > 0:
            if m.P is not None:
                P = m.P[keep][users]
                P = 0.5 * (P + np.swapaxes(P, 1, 2))
                w, V = np.linalg.eigh(P)
                L = V * np.sqrt(np.clip(w, 0.0, None))[:, None, :]
                z = self.rng.standard_normal((len(users), S, 4))
                draws = mean[:, None, :] + np.einsum("uij,usj->usi", L, z)
            else:
                draws = np.repeat(mean[:, None, :], S, axis=1)
            if on_lane.any():  # a draw on a lane moves along it
                draws[on_lane, :, 2:] = _along(draws[on_lane, :, 2:], heading[users][on_lane][:, None])
            accel = self.rng.standard_normal((len(users), S, 2))
            accel[..., 0] *= cfg.accel_sigma
            accel[..., 1] *= np.where(on_lane, cfg.lane_lateral_sigma, cfg.lateral_sigma)[:, None]
            draws = np.concatenate([mean[:, None, :], draws], axis=1)  # draw 0: the mean motion
            accel = np.concatenate([np.zeros((len(users), 1, 2)), accel], axis=1)
        else:
            draws = mean[:, None, :]
            accel = np.zeros((len(users), 1, 2))
        stop = np.full(len(users), np.inf) if m.stop_m is None else np.asarray(m.stop_m, float)[keep][users]
        pos, hd = _propagate(draws, accel, yaw_rate, heading[users], steps, stop)  # [U, S+1, K, 2], [U, S+1, K]
        # body discs: [U, S+1, K, D, 2]
        off = offsets[users][:, None, None, :, None]
        discs = pos[:, :, :, None, :] + off * np.stack([np.cos(hd), np.sin(hd)], axis=-1)[:, :, :, None, :]
        ui = np.array([idx[int(a)] for a in i])
        uj = np.array([idx[int(b)] for b in j])
        out: list[Conflict] = []
        rad_u = radius[users]
        reach_u = np.abs(offsets[users]).max(axis=1) + rad_u  # a body lies within this of its centre
        chunk = 256
        for c0 in range(0, len(ui), chunk):
            a, b = ui[c0:c0 + chunk], uj[c0:c0 + chunk]
            # the clearance of the bodies [M, S+1, K]: exact (disc to disc) where the centres are close enough
            # for the bodies to touch, elsewhere the centres' distance less both reaches (a lower bound, > 0)
            centre = np.sqrt(((pos[a] - pos[b]) ** 2).sum(-1))
            clear = centre - (reach_u[a] + reach_u[b])[:, None, None]
            close = np.nonzero(clear <= 0)
            if len(close[0]):
                da = discs[a[close[0]], close[1], close[2]]  # [n, D, 2]
                db = discs[b[close[0]], close[1], close[2]]
                dist = np.sqrt(((da[:, :, None, :] - db[:, None, :, :]) ** 2).sum(-1)).min(axis=(1, 2))
                clear[close] = dist - (rad_u[a] + rad_u[b])[close[0]]
            touch = clear <= 0
            at_once = touch[:, :, 0]
            hit = touch.any(axis=2) & ~at_once
            first = np.where(hit, touch.argmax(axis=2), -1)  # first touching step
            for k in range(len(a)):
                gi, gj = users[a[k]], users[b[k]]
                draws_hit = hit[k, 1:] if S > 0 else hit[k]
                n_draws = draws_hit.size
                if S > 0 and at_once[k, 1:].mean() > 0.5:
                    self.counts["overlapping_pair"] += 1  # most draws touch already: one vehicle twice?
                    continue
                p = float(draws_hit.mean()) if n_draws else 0.0
                if p <= 0:
                    continue
                fk = first[k, 1:][draws_hit] if S > 0 else first[k][draws_hit]
                ttc = float(np.median(steps[fk]))
                mk = round(ttc / cfg.step_s)
                out.append(self._conflict(m, keep, x, gi, gj, p, ttc, float(clear[k, 0].min()),
                                          pos[a[k], 0], pos[b[k], 0], mk, steps, radius[gi] + radius[gj]))
        return out

    def _conflict(self, m, keep, x, gi, gj, p, ttc, min_clear, traj_a, traj_b, mk, steps, radii) -> Conflict:
        ida, idb = int(m.ids[keep][gi]), int(m.ids[keep][gj])
        va, vb = x[gi, 2:], x[gj, 2:]
        sa, sb = np.hypot(*va), np.hypot(*vb)
        cos = float(va @ vb / (sa * sb)) if sa > 0.5 and sb > 0.5 else 1.0
        kind = REAR_END if cos > math.cos(math.radians(35)) else HEAD_ON if cos < -math.cos(math.radians(35)) \
            else CROSSING
        dp = x[gj, :2] - x[gi, :2]
        ahead_a = float(dp @ va / sa) if sa > 0.5 else -math.inf  # how far b is ahead of a along a's heading
        ahead_b = float(-dp @ vb / sb) if sb > 0.5 else -math.inf
        if abs(ahead_a - ahead_b) < 2.0 and kind == HEAD_ON:
            ya = yb = True
        else:
            ya, yb = ahead_a >= ahead_b, ahead_b > ahead_a
        mk = min(mk, len(steps) - 1)
        point = 0.5 * (traj_a[mk] + traj_b[mk])
        pet = _pet(traj_a, traj_b, steps, float(m.length[keep][gi]), float(m.length[keep][gj]))
        if ida > idb:
            ida, idb, ya, yb = idb, ida, yb, ya
        return Conflict(ida, idb, p, ttc, pet, min_clear, kind, bool(ya), bool(yb), (float(point[0]), float(point[1])))


def _along(v: np.ndarray, heading: np.ndarray) -> np.ndarray:
    """Velocities [..., 2] reduced to their component along ``heading`` (broadcast to v[..., 0]); never
    backwards (a road user does not reverse down its lane)."""
    u = np.stack([np.cos(heading), np.sin(heading)], axis=-1)
    s = np.maximum((v * u).sum(axis=-1), 0.0)
    return s[..., None] * u


def _propagate(draws: np.ndarray, accel: np.ndarray, yaw_rate: np.ndarray, heading0: np.ndarray, steps: np.ndarray,
               stop: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Positions [U, S, K, 2] and headings [U, S, K] of draws [U, S, 4] with constant acceleration [U, S, 2]
    (along, across the heading) and yaw rate [U] (constant turn of the velocity). A draw never reverses: a
    braking draw stops; nor does it go farther than ``stop`` [U] m (a red light's stop line; inf: free)."""
    t = steps[None, None, :]
    v = draws[..., 2:]
    speed0 = np.hypot(v[..., 0], v[..., 1])  # [U, S]
    hd0 = np.where(speed0 > 1.0, np.arctan2(v[..., 1], v[..., 0]), heading0[:, None])
    # longitudinal acceleration along the heading, lateral ignored beyond the turn: a speed profile that stops
    along, lateral = accel[..., 0], accel[..., 1]  # [U, S]
    spd = speed0[..., None] + along[..., None] * t  # [U, S, K]
    t_stop = np.where(along < 0, speed0 / np.maximum(-along, 1e-9), np.inf)[..., None]
    te = np.minimum(t, t_stop)
    dist = speed0[..., None] * te + 0.5 * along[..., None] * te ** 2  # travelled along the path
    if stop is not None:
        dist = np.minimum(dist, np.asarray(stop, float)[:, None, None])
    omega = yaw_rate[:, None, None] + np.where(speed0 > 1.0, lateral / np.maximum(speed0, 1.0), 0.0)[..., None]
    hd = hd0[..., None] + omega * te
    small = np.abs(omega) < 1e-3
    # integrate the path: straight where the turn is negligible, else the arc of a turn (mean heading approximation)
    mid = hd0[..., None] + 0.5 * omega * te
    dx = np.where(small, dist * np.cos(hd0[..., None]), dist * np.cos(mid) * np.sinc(omega * te / (2 * np.pi)))
    dy = np.where(small, dist * np.sin(hd0[..., None]), dist * np.sin(mid) * np.sinc(omega * te / (2 * np.pi)))
    pos = np.stack([draws[..., 0, None] + dx, draws[..., 1, None] + dy], axis=-1)
    del spd
    return pos, hd


def _pet(traj_a: np.ndarray, traj_b: np.ndarray, steps: np.ndarray, len_a: float, len_b: float) -> float:
    """Post-encroachment time of two mean paths [K, 2]: the second's arrival at the crossing point minus the
    first's leaving it (NaN when the paths do not cross within the horizon)."""
    pa, pb = traj_a, traj_b
    da = pa[-1] - pa[0]
    db = pb[-1] - pb[0]
    den = da[0] * db[1] - da[1] * db[0]
    if abs(den) < 1e-6 or np.hypot(*da) < 0.5 or np.hypot(*db) < 0.5:
        return math.nan
    w = pb[0] - pa[0]
    ua = (w[0] * db[1] - w[1] * db[0]) / den
    ub = (w[0] * da[1] - w[1] * da[0]) / den
    if not (0 <= ua <= 1 and 0 <= ub <= 1):
        return math.nan
    horizon = steps[-1]
    ta, tb = ua * horizon, ub * horizon  # (mean motion: constant speed along the chord)
    va = np.hypot(*da) / horizon
    vb = np.hypot(*db) / horizon
    if ta <= tb:
        return max(0.0, tb - (ta + len_a / max(va, 0.1)))
    return max(0.0, ta - (tb + len_b / max(vb, 0.1)))

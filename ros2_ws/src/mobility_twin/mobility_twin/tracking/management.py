"""Track management: measurements applied, misses counted, births, confirmation, deletion, duplicates, and
re-identification of recently lost tracks.

A track's existence is the evidence accumulated over frames, as log-odds: a new track starts at
``birth_existence`` (plus more for a confident detection; a vehicle's self-report is confirmed at once), each
detection assigned to it adds ``existence_hit`` (plus more for confidence), each frame of a source that covers
its place without detecting it removes ``existence_miss`` (a confirmed track's: what its own detection rate
says a miss is worth, less for each further miss in a row; existence never exceeds ``max_existence``). A
tentative track is confirmed once its existence reaches ``confirm_existence``, so a vehicle detected
consistently is tracked whatever one frame's confidence; any track is dropped below ``delete_existence``
(a tentative one also at ``tentative_max_age_s``), so clutter dies out and a vehicle gone from plain view
is dropped within a few frames; a confirmed track is deleted at the latest ``max_coast_s`` after its last
update (hidden, or out of every source's view), unless every source that saw it has been silent
since (the sensor or its link down, the sensor restarting: the vehicle went unseen, it did not leave): such
a track coasts up to ``outage_coast_s``. The existence probability is published with the track. A deleted
confirmed track is kept for ``reid_window_s`` (the graveyard): a detection that fits where it would be now
brings it back under its old id; one lost while a source that saw it was silent is kept for
``outage_keep_s``, so the vehicles keep their ids when the sensor is back. When a silent source speaks
again, the tracks that coasted through its silence past ``max_coast_s`` go to the graveyard before its
frame is associated, so they are found again by re-identification, whose gate allows for the time unseen.
Two tracks this close with consistent states are one vehicle: the younger goes, its newer measurements
fused into the older one (a vehicle found again beyond the association's reach keeps its track).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial import cKDTree

from mobility_twin.perception.detections import Detections
from mobility_twin.perception.visibility import CLEAR, HIDDEN
from mobility_twin.tracking.association import assign_gated, every_row_as_slice
from mobility_twin.tracking.gating import mahalanobis2
from mobility_twin.tracking.motion import position_variance, predict_positions, update
from mobility_twin.tracking.trackset import CONFIRMED, TENTATIVE, TrackSet, object_array, source_bit


def _add_log_odds(p: np.ndarray, gain: np.ndarray) -> np.ndarray:
    """The existence probability ``p`` with ``gain`` added to its log-odds: ``sigmoid(logit(p) + gain)``, as the
    odds of ``p`` (kept inside (1e-6, 1 - 1e-6)) multiplied by ``exp(gain)``."""
    p = np.minimum(np.maximum(p, 1e-6), 1.0 - 1e-6)
    w = p * np.exp(gain)
    return w / (1.0 - p + w)


@dataclass
class TrackerState:
    """Everything a frame changes (what the reorder buffer snapshots)."""

    tracks: TrackSet
    # the tracker replaces its track sets (select, joined) rather than change them, except for writing into
    # the rows of a live set's arrays: a snapshot shares an empty set, and the graveyard (whose arrays are never
    # written)
    graveyard: TrackSet  # lost confirmed tracks last seen within reid_window_s
    next_id: int
    time: float  # sensor time all tracks are predicted to
    # graveyard tracks kept past reid_window_s, until the time given: restored after a restart, or lost while
    # one of their sources was silent (a sensor or its link down: the vehicle did not leave, it went unseen)
    keep_until: dict = field(default_factory=dict)
    source_last: dict = field(default_factory=dict)  # source id -> stamp of its newest frame

    def copy(self) -> TrackerState:
        tracks = self.tracks.copy() if len(self.tracks) else self.tracks  # (an empty set: no rows to write into)
        return TrackerState(tracks, self.graveyard, self.next_id, self.time, dict(self.keep_until),
                            dict(self.source_last))


def apply_measurements(tr: TrackSet, frame: Detections, ti: np.ndarray, di: np.ndarray, cfg) -> None:
    """Kalman update of the assigned tracks (position, and velocity where the source measures it; a
    manoeuvring track's covariance first widened, see ``maneuver_nis``), then their box, hits, sources,
    existence and confirmation."""
    if not len(ti):
        return
    t, d = every_row_as_slice(ti, len(tr)), every_row_as_slice(di, len(frame))  # as slices where they can be
    if not frame.velocities:  # positions only (a LiDAR frame)
        groups = ((False, t, d),)
    else:
        has_vel = frame.velocity_measured[d]
        with_vel = np.count_nonzero(has_vel)
        if with_vel in (0, len(di)):  # one kind of measurement
            groups = ((with_vel > 0, t, d),)
        else:
            groups = ((False, ti[~has_vel], di[~has_vel]), (True, ti[has_vel], di[has_vel]))
    for with_velocity, t_idx, d_idx in groups:
        if with_velocity:
            z = np.concatenate([frame.xy[d_idx], frame.velocity[d_idx]], axis=1)
            R = np.zeros((len(z), 4, 4))
            R[:, :2, :2] = frame.cov[d_idx]
            R[:, 2, 2] = R[:, 3, 3] = 0.25
        else:
            z = frame.xy[d_idx]
            R = frame.cov[d_idx]
        x_t, P_t = tr.x[t_idx], tr.P[t_idx]  # read only (views where t_idx is a slice)
        if frame.systematic_share > 0 or np.count_nonzero(tr.systematic):
            _carry_systematic(tr, t_idx, P_t, R[:, :2, :2], frame.systematic_share)
        if cfg.maneuver_nis <= 0:
            tr.x[t_idx], tr.P[t_idx] = update(x_t, P_t, z, R)
            continue
        x_new, P_new, nis = update(x_t, P_t, z, R, nis=True)  # the NIS is that of the prior
        surprised = nis > cfg.maneuver_nis
        if not np.count_nonzero(surprised):  # (the common case: every track predicted its measurement)
            tr.surprises[t_idx] = 0
        else:
            before = tr.surprises[t_idx]
            fade = surprised & (before > 0)  # surprised twice in a row: a manoeuvre, fading memory
            if np.count_nonzero(fade):  # updated again from its prior widened (rare: the one update per row stands)
                f = fade.nonzero()[0]
                x_new[f], P_new[f] = update(x_t[f], P_t[f] * (nis[f] / cfg.maneuver_nis)[:, None, None], z[f], R[f])
            tr.surprises[t_idx] = (before + 1) * surprised
        tr.x[t_idx], tr.P[t_idx] = x_new, P_new
    dims = tr.dims[t]  # (a view where t is a slice, else a copy, written back)
    dims += cfg.dims_smoothing * (frame.dims[d] - dims)
    if not isinstance(t, slice):
        tr.dims[t] = dims
    tr.box_yaw[t] = frame.yaw[d]
    tr.hits[t] += 1
    tr.misses[t] = 0
    tr.missed_by[t] = 0
    tr.hidden[t] = False
    tr.seen_by[t] |= source_bit(frame.source_id) if frame.sources is None else frame.source_bits[d]
    tr.last_update[t] = frame.stamp
    existence = tr.existence[t]
    if float(existence.min()) >= cfg.max_existence and cfg.existence_hit >= 0 and cfg.existence_hit_confidence >= 0:
        tr.existence[t] = cfg.max_existence  # (tracks detected frame after frame: a hit keeps them at the cap)
        if cfg.max_existence >= cfg.confirm_existence:
            tr.status[t] = CONFIRMED
    else:
        gain = cfg.existence_hit + cfg.existence_hit_confidence * frame.confidence[d]
        existence = np.minimum(_add_log_odds(existence, gain), cfg.max_existence)
        tr.existence[t] = existence
        tr.status[t] = np.where(existence >= cfg.confirm_existence, CONFIRMED, tr.status[t])  # (never unconfirmed)
    sources = [frame.source_id] * len(ti) if frame.sources is None else frame.sources[di].tolist()
    for k, source in zip(ti.tolist(), sources, strict=True):
        if source not in tr.sources[k]:
            tr.sources[k] = tr.sources[k] | {source}
    if frame.report_count and np.count_nonzero(reports := frame.reports[d]):
        k, j = ti[reports], di[reports]
        tr.vehicle_id[k] = frame.self_report[j]
        tr.status[k] = CONFIRMED  # a vehicle reporting itself exists
        tr.existence[k] = np.maximum(tr.existence[k], cfg.confirm_existence)


def systematic_sigma(cov: np.ndarray, share: float) -> np.ndarray:
    """(M,) standard deviation of the repeating part of position covariances ``cov`` (M, 2, 2), m."""
    return np.sqrt(share * 0.5 * (cov[:, 0, 0] + cov[:, 1, 1]))


def _carry_systematic(tr: TrackSet, rows: np.ndarray, P: np.ndarray, R: np.ndarray, share: float) -> None:
    """The repeating error of tracks ``rows`` after a measurement with covariance ``R`` of which ``share``
    repeats: blended with the gain of the update (a scalar one, from the traces of the prior position
    covariance ``P`` and of ``R``), as a fully correlated error, since the same source's next frame brings the
    same error again. A white measurement (share 0) shrinks it by the same gain."""
    tp = P[:, 0, 0] + P[:, 1, 1]
    k = tp / np.maximum(tp + R[:, 0, 0] + R[:, 1, 1], 1e-12)
    tr.systematic[rows] = (1.0 - k) * tr.systematic[rows] + k * systematic_sigma(R, share)


def count_misses(tr: TrackSet, frame: Detections, assigned: np.ndarray, cfg) -> None:
    """Tracks inside the source's coverage (by ``miss_margin_m``, and beyond ``miss_min_range_m`` of the sensor,
    whose blind cone hides a vehicle right under it) that got no detection count a miss, unless
    an object the source did detect, nearer to it, hides them (a sensor cannot see through a vehicle: in a
    queue or a car park, the second row is hidden from one RSU and visible to the next). Where the frame says
    what its LiDAR saw (``frame.visibility``): a track whose place was hidden (something standing nearer, or
    at its place undetected) counts no miss and may coast up to ``hidden_coast_s``; one whose place was seen
    clear (a beam crossed a vehicle's height there and went on) is not there: that miss weighs what
    ``clear_detection_prob`` says, whatever its detection record."""
    if len(assigned) == len(tr) or frame.sensor_range <= cfg.miss_margin_m:  # every track detected, or no
        return  # coverage (relayed reports): no track missed
    d_sensor = np.hypot(tr.x[:, 0] - frame.sensor_xy[0], tr.x[:, 1] - frame.sensor_xy[1])
    missed = (d_sensor < frame.sensor_range - cfg.miss_margin_m) & (d_sensor > cfg.miss_min_range_m)
    missed[assigned] = False
    k = missed.nonzero()[0]
    if len(k) and len(frame):
        k = k[~shadowed(tr.x[k, :2], frame)]
    if not len(k):
        return
    clear = None
    if frame.visibility is not None:  # what the LiDAR saw of their places
        seen = frame.visibility.classify(tr.x[k, :2], frame.sensor_xy)
        behind = seen == HIDDEN
        tr.hidden[k[behind]] = True
        k = k[~behind]
        if not len(k):
            return
        # a place seen clear, where the vehicle would have been hit: only for a track known to within
        # clear_max_sigma_m (one that is not could be the vehicle beside it)
        clear = (seen[~behind] == CLEAR) & (np.maximum(tr.P[k, 0, 0], tr.P[k, 1, 1]) <= cfg.clear_max_sigma_m**2)
    tr.hidden[k] = False
    # a source that has never detected the track may simply not see its place (hidden by what it did not
    # detect, beyond its beams): each of its misses weighs less than the one before, so one sensor's
    # consistent detections confirm a vehicle the others cannot see, while clutter dies out
    bit = source_bit(frame.source_id)
    seen = (tr.seen_by[k] & bit) != 0  # by this source before
    loss = np.full(len(k), cfg.existence_miss)
    if np.count_nonzero(seen) < len(k):
        b = k[~seen]
        loss[~seen] /= 1.0 + tr.blind_misses[b]
        tr.blind_misses[b] += 1
    s = k[seen]
    if len(s):
        tr.misses[s] += 1  # misses in a row by the sources that have detected it
        tr.missed_by[s] |= bit
        # a confirmed track's miss weighs what its detection probability says (learnt from its hits and its
        # misses before this run of them): a vehicle detected in every frame and now missed in plain view has
        # left, one detected one frame in two has not. A source's m-th miss in a row weighs 1/m of that: misses
        # come in runs (a vehicle hidden by what the sensor does not detect stays hidden a while), so a run is
        # weaker evidence than as many independent misses; another sensor, seeing the place from elsewhere,
        # starts a run of its own
        confirmed = seen & (tr.status[k] == CONFIRMED)
        if np.count_nonzero(confirmed):
            c = k[confirmed]
            run = tr.misses[c]  # this miss included
            before = tr.seen_misses[c] - (run - 1)
            hits = tr.hits[c] + 1.0
            p_d = np.minimum(hits / (hits + before + 1.0), cfg.detection_prob_max)
            # the run shared by the sources missing it (frames of each in turn): this source's place in it
            sources = np.maximum(np.bitwise_count(tr.missed_by[c]), 1)
            loss[confirmed] = -np.log1p(-p_d) / np.ceil(run / sources)
        tr.seen_misses[s] += 1
    if clear is not None:  # a place seen clear: the vehicle would have been detected there (whoever saw it)
        loss[clear] = -math.log1p(-cfg.clear_detection_prob)
    tr.existence[k] = _add_log_odds(tr.existence[k], -loss)


def shadowed(xy: np.ndarray, frame: Detections, clearance_m: float = 1.0) -> np.ndarray:
    """Whether each position lies in the shadow of a detection of ``frame``: behind it (by ``clearance_m``)
    as the sensor sees it, within the angle its box spans."""
    sx, sy = frame.sensor_xy
    r_t = np.hypot(xy[:, 0] - sx, xy[:, 1] - sy)
    b_t = np.arctan2(xy[:, 1] - sy, xy[:, 0] - sx)
    r_d = np.hypot(frame.xy[:, 0] - sx, frame.xy[:, 1] - sy)
    b_d = np.arctan2(frame.xy[:, 1] - sy, frame.xy[:, 0] - sx)
    half = np.arctan2(0.5 * np.hypot(frame.dims[:, 0], frame.dims[:, 1]), np.maximum(r_d, 1e-3))
    dbear = np.abs((b_t[:, None] - b_d[None, :] + np.pi) % (2 * np.pi) - np.pi)
    return ((dbear < half[None, :]) & (r_d[None, :] < r_t[:, None] - clearance_m)).any(axis=1)


def reidentify(state: TrackerState, frame: Detections, idx: np.ndarray, cfg, stats) -> np.ndarray:
    """Detections (of ``idx``) that fit a recently lost track get it back; returns the others.

    A detection that also fits a confirmed track alive now (within its gate) may be a piece of that vehicle
    (a far car seen as two clusters): it gives no id back, and starts a tentative track that evidence confirms
    or a merge removes (found on sweep seed 5's s07_airport: a taxi whose trace ended in plain view came back,
    confirmed at once, on the second cluster of a parked car 2.7 m from it, again and again)."""
    if not len(state.graveyard) or not len(idx):
        return idx
    claimed = _fits_a_confirmed_track(state.tracks, frame, idx, cfg.gate_chi2)
    if claimed.all():
        return idx
    left = _give_ids_back(state, frame, idx[~claimed], cfg, stats)
    return np.sort(np.concatenate([idx[claimed], left])) if claimed.any() else left


def _reid_pairs(g: TrackSet, frame: Detections, idx: np.ndarray, cfg) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows of ``g``, positions in ``idx``) of the tracks ``g``, unseen since their last update, that the
    detections ``idx`` find again, and every track's state extrapolated to the frame: the gate allows for the
    time unseen (process noise, and 2 m/s of velocity error per second) up to ``reid_max_m``."""
    dt = frame.stamp - g.last_update
    x, P = g.x.copy(), g.P
    x[:, :2] = predict_positions(g.x, dt)  # where each would be now, position uncertainty grown below
    q = position_variance(dt, cfg.accel_noise)
    S = P[:, None, :2, :2] + frame.cov[None, idx] + (q + (dt * 2.0) ** 2)[:, None, None, None] * np.eye(2)
    innov = frame.xy[idx][None, :, :] - x[:, None, :2]
    maha, _ = mahalanobis2(innov, S)
    ok = (maha < cfg.gate_chi2) & (np.hypot(innov[..., 0], innov[..., 1]) < cfg.reid_max_m)
    pairs = assign_gated(maha, ok)
    rows = np.array([r for r, _ in pairs], dtype=np.int64)
    cols = np.array([c for _, c in pairs], dtype=np.int64)
    return rows, cols, x


def _found_at(tr: TrackSet, rows: np.ndarray, frame: Detections, found: np.ndarray) -> None:
    """The tracks ``rows`` of ``tr`` (their state extrapolated to the frame) found again by the detections
    ``found``: at the detection, with its covariance (the old cross terms do not fit the new position: they
    go, keeping P positive), updated now, nothing missed or surprising since."""
    tr.x[rows, :2] = frame.xy[found]
    P = tr.P[rows].copy()
    P[:, :2, :2] = frame.cov[found]
    P[:, :2, 2:] = P[:, 2:, :2] = 0.0
    tr.P[rows] = P
    tr.last_update[rows] = frame.stamp
    tr.misses[rows] = 0
    tr.missed_by[rows] = 0
    tr.surprises[rows] = 0
    tr.hidden[rows] = False
    tr.hits[rows] += 1
    tr.seen_by[rows] |= frame.source_bits[found]
    tr.sources[rows] = object_array([s | {frame.source_of(d)} for s, d in zip(tr.sources[rows], found.tolist(),
                                                                              strict=True)])


def _give_ids_back(state: TrackerState, frame: Detections, idx: np.ndarray, cfg, stats) -> np.ndarray:
    """:func:`reidentify` for detections that fit no live confirmed track."""
    g = state.graveyard
    rows, cols, x = _reid_pairs(g, frame, idx, cfg)
    if not len(rows):
        return idx
    back = g.select(rows)
    back.x = x[rows]
    back.status = np.full(len(rows), CONFIRMED, dtype=np.int64)
    back.existence = np.maximum(back.existence, cfg.confirm_existence)
    _found_at(back, np.arange(len(rows)), frame, idx[cols])
    state.tracks = state.tracks.joined(back)
    state.graveyard = g.select(np.setdiff1d(np.arange(len(g)), rows))
    stats.reidentified += len(rows)
    return np.delete(idx, cols)


def find_hidden(state: TrackerState, frame: Detections, idx: np.ndarray, cfg, stats) -> np.ndarray:
    """Detections (of ``idx``, which no track's gate took) that find a confirmed track coasting hidden since
    its last update (behind a building: the LiDAR saw its place hidden) update it, with the re-identification
    gate: its velocity may have been wrong since it went behind (the frames that saw it half hidden), and the
    ordinary gate, made for one frame's motion, misses it as it comes out. Returns the others."""
    tr = state.tracks
    if not len(idx) or not np.count_nonzero(tr.hidden):
        return idx
    hid = np.flatnonzero(tr.hidden & (tr.status == CONFIRMED) & (tr.last_update < frame.stamp))
    if not len(hid):
        return idx
    coasting = tr.select(hid)  # taken back to its last update, as a lost track is (bury)
    coasting.x[:, :2] -= coasting.x[:, 2:] * (frame.stamp - coasting.last_update)[:, None]
    rows, cols, _ = _reid_pairs(coasting, frame, idx, cfg)
    if not len(rows):
        return idx
    _found_at(tr, hid[rows], frame, idx[cols])
    tr.last_frame[hid[rows]] = stats.frames
    stats.reidentified += len(rows)
    return np.delete(idx, cols)


def _fits_a_confirmed_track(tr: TrackSet, frame: Detections, idx: np.ndarray, gate_chi2: float) -> np.ndarray:
    """Whether each detection of ``idx`` lies within the gate of a confirmed track (at the frame's time)."""
    live = np.flatnonzero(tr.status == CONFIRMED)
    if not len(live):
        return np.zeros(len(idx), dtype=bool)
    innov = frame.xy[idx][None, :, :] - tr.x[live, None, :2]
    maha, _ = mahalanobis2(innov, tr.P[live, None, :2, :2] + frame.cov[None, idx])
    return (maha < gate_chi2).any(axis=0)


def birth(state: TrackerState, frame: Detections, idx: np.ndarray, cfg, stats, new_ids=None) -> None:
    """New tentative tracks (confirmed for self-reports) from the detections ``idx`` that no hidden track
    (:func:`find_hidden`) or lost track (:func:`reidentify`) claims. Their ids are ``new_ids(frame, idx)``
    (default: the next ones of ``state.next_id``); ``state.next_id`` ends past every id given."""
    idx = reidentify(state, frame, find_hidden(state, frame, idx, cfg, stats), cfg, stats)
    if not len(idx):
        return
    k = len(idx)
    ids = np.arange(state.next_id, state.next_id + k, dtype=np.int64) if new_ids is None else new_ids(frame, idx)
    x = np.zeros((k, 4))
    x[:, :2] = frame.xy[idx]
    P = np.zeros((k, 4, 4))
    P[:, :2, :2] = frame.cov[idx]
    P[:, 2, 2] = P[:, 3, 3] = cfg.initial_speed_sigma**2
    if frame.velocities:
        vel = frame.velocity_measured[idx]
        x[vel, 2:] = frame.velocity[idx][vel]
        P[vel, 2, 2] = P[vel, 3, 3] = 0.25
    self_report, reports = frame.self_report[idx], frame.reports[idx]
    born = TrackSet(  # (idx an index array: the rows taken are copies)
        ids=ids, x=x, P=P, dims=frame.dims[idx], box_yaw=frame.yaw[idx], object_class=frame.object_class[idx],
        status=np.where(reports, CONFIRMED, TENTATIVE).astype(np.int64),
        hits=np.ones(k, dtype=np.int64), misses=np.zeros(k, dtype=np.int64), born=np.full(k, frame.stamp),
        last_update=np.full(k, frame.stamp),
        existence=np.where(reports, max(cfg.confirm_existence, 0.99),
                           np.minimum(np.maximum(cfg.birth_existence
                                                 + cfg.birth_existence_confidence * frame.confidence[idx], 1e-3), 0.999)),
        sources=object_array([frozenset((frame.source_id,))] * k if frame.sources is None
                             else [frozenset((s,)) for s in frame.sources[idx].tolist()]),
        vehicle_id=object_array(self_report.tolist()),
        seen_by=(np.full(k, source_bit(frame.source_id), dtype=np.uint64) if frame.sources is None
                 else frame.source_bits[idx]),
        systematic=systematic_sigma(frame.cov[idx], frame.systematic_share),
    )
    state.next_id = max(state.next_id, int(ids.max()) + 1)
    state.tracks = state.tracks.joined(born)
    stats.births += k


def bury(state: TrackerState, lost: TrackSet) -> None:
    """Put ``lost`` (predicted to the tracker's time) in the graveyard, their positions taken back to their last
    update, from where re-identification extrapolates them (their covariance stays grown: a wider gate)."""
    lost.x[:, :2] -= lost.x[:, 2:] * (state.time - lost.last_update)[:, None]
    state.graveyard = state.graveyard.joined(lost)


def unseen(state: TrackerState, rows: np.ndarray, now: float, silent_after_s: float) -> np.ndarray:
    """For the track ``rows``: whether every source that saw the track is silent at ``now`` (no frame for
    ``silent_after_s``): the track went unseen, its vehicle did not leave."""
    tr, last = state.tracks, state.source_last
    since = now - silent_after_s
    return np.array([all(last.get(s, -np.inf) <= since for s in tr.sources[k]) for k in rows.tolist()], dtype=bool)


def retire_unseen(state: TrackerState, source_id: str, cfg) -> None:
    """Before a frame of ``source_id`` (which may be back from a silence) is associated: the confirmed tracks it
    saw that coasted past ``max_coast_s`` through the silence of all their sources go to the graveyard, kept
    for ``outage_keep_s``, to be re-identified with a gate that allows for the time they went unseen."""
    tr = state.tracks
    if not len(tr) or cfg.reid_window_s <= 0 or state.time - tr.last_update.min() <= cfg.max_coast_s:
        return  # (the common case: every track updated within max_coast_s)
    late = ((tr.status == CONFIRMED) & (state.time - tr.last_update > cfg.max_coast_s)
            & ((tr.seen_by & source_bit(source_id)) != 0)).nonzero()[0]
    if not len(late):
        return
    late = late[unseen(state, late, state.time, cfg.silent_after_s)]
    late = late[[source_id in tr.sources[k] for k in late.tolist()]]
    if not len(late):
        return
    for k in late.tolist():
        state.keep_until[int(tr.ids[k])] = float(tr.last_update[k]) + cfg.outage_keep_s
    bury(state, tr.select(late))
    keep = np.ones(len(tr), dtype=bool)
    keep[late] = False
    state.tracks = tr.select(keep)


def prune(state: TrackerState, cfg, stats) -> None:
    """Delete tentative tracks that missed or aged, confirmed tracks that coasted too long (into the
    graveyard) and duplicates; forget graveyard tracks older than the re-identification window. A track
    whose state is no longer finite (an input that slipped past validation) is dropped and counted."""
    tr = state.tracks
    if not math.isfinite(float(tr.x.sum()) + float(tr.P.sum())):  # a nan or inf somewhere (or sums past 1e308)
        finite = np.isfinite(tr.x).all(axis=1) & np.isfinite(tr.P).all(axis=(1, 2))
        stats.diverged += len(tr) - np.count_nonzero(finite)
        state.tracks = tr = tr.select(finite)
    dead = lost = None
    if len(tr) and (float(tr.existence.min()) < cfg.delete_existence or state.time - float(tr.last_update.min())
                    > min(cfg.max_coast_s, cfg.tentative_max_age_s)):  # (else none dies of evidence or of age)
        age = state.time - tr.last_update
        confirmed = tr.status == CONFIRMED  # (else tentative)
        # below delete_existence the evidence says it is not there (clutter, or a vehicle gone from plain view)
        dead = (tr.existence < cfg.delete_existence) | np.where(confirmed, age > cfg.max_coast_s,
                                                                  age > cfg.tentative_max_age_s)
        overdue = dead & confirmed & (age > cfg.max_coast_s)
        if np.count_nonzero(overdue):  # hidden since (kept up to hidden_coast_s), or coasting through the silence
            keep = overdue & tr.hidden & (age <= cfg.hidden_coast_s)  # of all its sources (up to outage_coast_s)
            late = (overdue & ~keep & (age <= cfg.outage_coast_s)).nonzero()[0]
            keep[late[unseen(state, late, state.time, cfg.silent_after_s)]] = True
            dead &= ~keep | (tr.existence < cfg.delete_existence)
        lost = dead & confirmed  # not duplicates: those are the same vehicle as a living track
    if len(tr) > 1:
        same = duplicates(tr, cfg, state.time)
        dead = same if dead is None else dead | same
    if dead is not None and np.count_nonzero(dead):
        stats.deaths += np.count_nonzero(dead)
        if cfg.reid_window_s > 0 and lost is not None and np.count_nonzero(lost):
            for k in lost.nonzero()[0].tolist():  # lost because a source that saw it fell silent?
                if any(state.source_last.get(s, -np.inf) <= tr.last_update[k] for s in tr.sources[k]):
                    state.keep_until[int(tr.ids[k])] = float(tr.last_update[k]) + cfg.outage_keep_s
            bury(state, tr.select(lost))
        state.tracks = tr.select(~dead)
    if len(state.graveyard):
        g = state.graveyard
        keep = state.time - g.last_update <= cfg.reid_window_s
        if state.keep_until:
            until = np.array([state.keep_until.get(int(i), -np.inf) for i in g.ids])
            keep |= state.time <= until
            state.keep_until = {i: t for i, t in state.keep_until.items() if t >= state.time}
        if np.count_nonzero(keep) < len(g):
            state.graveyard = g.select(keep)


@functools.lru_cache(maxsize=33)
def _upper_pairs(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pairs i < j of ``n`` points: i, j and the (K, 2) pairs (read-only), ordered by i then j."""
    i, j = np.triu_indices(n, 1)
    pairs = np.stack([i, j], axis=1)
    for a in (i, j, pairs):
        a.flags.writeable = False
    return i, j, pairs


def pairs_within(xy: np.ndarray, radius: float) -> np.ndarray:
    """(K, 2) index pairs i < j of the points ``xy`` within ``radius`` of each other, ordered by i then j:
    every pair's distance for a frame's worth of tracks (up to 32), a KD-tree for more."""
    if len(xy) > 32:
        pairs = cKDTree(xy).query_pairs(radius, output_type="ndarray")
        return pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]
    i, j, pairs = _upper_pairs(len(xy))
    d = xy.take(i, axis=0) - xy.take(j, axis=0)
    return pairs[(d * d).sum(axis=1) <= radius * radius]  # (a new array: boolean indexing copies)


def duplicates(tr: TrackSet, cfg, now: float | None = None) -> np.ndarray:
    """Tracks that follow the same vehicle as an older track (born when one frame failed the gate, or from
    another kind of source: a vehicle's GNSS report next to its LiDAR detections; both would then take turns
    at the vehicle's measurements): the younger one goes, and its vehicle id passes to the one that stays.
    Candidates lie within ``merge_distance_m``, or ``merge_sigmas`` position standard deviations of the less
    certain of the two; they merge when their states agree (chi-square, 4 dof) and they do not carry two
    different vehicle ids; when the younger has measurements the older has not had (born of a detection the
    older one's gate missed), the older one's state is fused with it. A track not updated since a younger
    one was born within ``merge_distance_m`` of it has been taken over (the vehicle turned or braked harder
    than the motion model allows, the gate failed, and the new track has had its detections since): they
    merge whatever their velocities, the old id with the young track's state. Two tracks farther apart than
    ``merge_distance_m`` last updated (or started) by the same frame of a sensor that sees an area
    (``last_frame``; relayed self-reports in between do not count) are two objects: its source told them
    apart (the detector's clusters), however uncertain one of them is (a far car parked behind a near one),
    until a frame says otherwise; closer, they are pieces of one
    vehicle that the detector split. Two confirmed tracks one of which has been unseen longer than
    ``silent_after_s`` (at ``now``) merge only within ``merge_distance_m``: the uncertainty it gained coasting
    says nothing about its being its neighbour, and two vehicles tracked side by side stay two when one of
    them goes unseen (its trace ended in plain view: it is lost, and may come back; with city traffic's
    process noise, 1 s of coasting spreads a track over 3 m at 3 sigmas)."""
    out = np.zeros(len(tr), dtype=bool)
    if len(tr) < 2:
        return out
    sigma = np.sqrt(np.maximum(tr.P[:, 0, 0], tr.P[:, 1, 1]))
    radius = max(cfg.merge_distance_m, min(cfg.merge_sigmas * float(sigma.max()), 10.0))
    pairs = pairs_within(tr.x[:, :2], radius)
    if not len(pairs):
        return out
    a, b = pairs[:, 0], pairs[:, 1]
    dist = np.hypot(tr.x[a, 0] - tr.x[b, 0], tr.x[a, 1] - tr.x[b, 1])
    last = tr.last_frame
    told_apart = (last[a] == last[b]) & (last[a] > 0) & (dist > cfg.merge_distance_m)
    if np.count_nonzero(told_apart):
        if np.count_nonzero(told_apart) == len(pairs):
            return out
        a, b, dist = a[~told_apart], b[~told_apart], dist[~told_apart]
    spread = np.maximum(sigma[a], sigma[b])
    if now is not None:  # two confirmed tracks, one of them unseen a while: its coast does not widen the merge
        unseen_pair = (tr.status[a] == CONFIRMED) & (tr.status[b] == CONFIRMED) & (
            now - np.minimum(tr.last_update[a], tr.last_update[b]) > cfg.silent_after_s)
        spread[unseen_pair] = 0.0
    near = dist <= np.maximum(cfg.merge_distance_m, cfg.merge_sigmas * spread)
    if np.count_nonzero(near) < len(near):  # only pairs near enough can be one vehicle (a takeover is near too)
        if not np.count_nonzero(near):
            return out
        a, b, dist, near = a[near], b[near], dist[near], near[near]
    takeover = (dist <= cfg.merge_distance_m) & (np.minimum(tr.last_update[a], tr.last_update[b])
                                                 < np.maximum(tr.born[a], tr.born[b]))
    diff = tr.x[a] - tr.x[b]
    S = tr.P[a] + tr.P[b]
    maha = np.einsum("ni,ni->n", diff, np.linalg.solve(S, diff[..., None])[..., 0])
    va, vb = tr.vehicle_id[a], tr.vehicle_id[b]
    other_vehicle = np.array([bool(x) and bool(y) and x != y for x, y in zip(va, vb, strict=True)], dtype=bool)
    same = (near & (maha < cfg.merge_chi2) | takeover) & ~other_vehicle
    older_a = (tr.born[a] < tr.born[b]) | ((tr.born[a] == tr.born[b]) & (tr.ids[a] < tr.ids[b]))
    # two confirmed tracks that lived side by side (the younger was tracked over tentative_max_age_s before
    # the other's last update) were two vehicles to the sensors: the one the frames still update is the
    # vehicle seen now, and keeps its id (sweep seed 42's s07_airport, rsu_00: two taxis 2.5 m apart in a
    # rank, one of whose traces then ended, seen as one cluster; the merge gave the one still there the id
    # of the one leaving)
    side_by_side = (tr.status[a] == CONFIRMED) & (tr.status[b] == CONFIRMED) & (
        np.maximum(tr.born[a], tr.born[b]) + cfg.tentative_max_age_s < np.minimum(tr.last_update[a], tr.last_update[b]))
    fresher_a = tr.last_update[a] > tr.last_update[b]
    keep_a = np.where(side_by_side & (tr.last_update[a] != tr.last_update[b]), fresher_a, older_a)
    keep, drop = np.where(keep_a, a, b)[same], np.where(keep_a, b, a)[same]
    for k, d, taken in zip(keep.tolist(), drop.tolist(), takeover[same].tolist(), strict=True):
        if tr.last_update[d] > tr.last_update[k]:  # the young track has measurements the old one has not had
            if taken:  # it holds the vehicle's state now
                tr.x[k], tr.P[k] = tr.x[d], tr.P[d]
            else:  # two estimates of one vehicle from different measurements: fused (an update of the old one
                # by the young one's whole state; a track born this frame: by its detection)
                x, P = update(tr.x[k:k + 1], tr.P[k:k + 1], tr.x[d:d + 1], tr.P[d:d + 1])
                tr.x[k], tr.P[k] = x[0], P[0]
            for f in ("dims", "box_yaw", "last_update"):
                getattr(tr, f)[k] = getattr(tr, f)[d]
            tr.existence[k] = max(tr.existence[k], tr.existence[d])
            tr.misses[k] = tr.misses[d]
            tr.missed_by[k] = tr.missed_by[d]
        tr.seen_by[k] |= tr.seen_by[d]
        if not tr.vehicle_id[k] and tr.vehicle_id[d]:
            tr.vehicle_id[k] = tr.vehicle_id[d]
            tr.status[k] = CONFIRMED
    out[drop] = True
    return out

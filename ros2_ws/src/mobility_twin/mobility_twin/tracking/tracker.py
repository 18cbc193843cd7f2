"""Multi-source multi-object tracker: late fusion of detections from many sensors into one set of tracks.

Each track is a constant-velocity Kalman filter over (x, y, vx, vy) in `map`, with white-acceleration
process noise. Frames of detections are processed in sensor-time order; for each frame:

1. every track is predicted to the frame's stamp (the common time: each source's own latency is
   compensated by its stamp, whatever it is);
2. gating by the Mahalanobis distance of the position innovation (chi-square, 2 dof), candidates found
   with a KD-tree, then optimal assignment of detections to tracks (Hungarian algorithm, per connected
   group of gated pairs, so thousands of tracks cost little); a vehicle's self-report goes to the track
   already carrying its id;
3. Kalman update of assigned tracks (position, and velocity when the source measures it);
4. tracks inside the source's coverage that got no detection count a miss; unassigned detections
   start tentative tracks; a tentative track is confirmed after ``confirm_hits`` hits and dropped after
   ``tentative_misses`` misses; a confirmed track is deleted ``max_coast_s`` after its last update, but
   its last state is kept for ``reid_window_s``: a detection that fits where it would be now brings it
   back under its old id (re-identification after a long occlusion or a run of lost frames).

Out-of-order input is handled by time, not arrival: the tracker keeps a snapshot before each frame of
the last ``reorder_window_s``; a late frame rewinds to the snapshot before its stamp and the frames after
it are processed again, so the result equals in-order processing. Frames older than the window are
stale and duplicate frames (same source and stamp) are dropped; both are counted.

State is kept as arrays (one row per track), so predicting and snapshotting 200 tracks is a few numpy
operations.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from mobility_twin.perception.detections import Detections

TENTATIVE, CONFIRMED = 0, 1
_BIG = 1e9


@dataclass(frozen=True)
class TrackerConfig:
    accel_noise: float = 2.5  # m/s^2, white-acceleration process noise
    gate_chi2: float = 13.8  # 99.9 % of chi-square with 2 dof
    gate_max_m: float = 5.0  # never associate farther than this, whatever the covariances
    initial_speed_sigma: float = 6.0  # m/s
    birth_min_confidence: float = 0.2
    confirm_hits: int = 3
    tentative_misses: int = 2
    max_coast_s: float = 1.5  # a confirmed track lives this long without updates
    tentative_max_age_s: float = 1.0
    miss_margin_m: float = 3.0  # a track this far inside a source's coverage edge counts misses
    dims_smoothing: float = 0.3
    reorder_window_s: float = 0.5
    reid_window_s: float = 5.0  # a confirmed track lost this recently gives its id back to a new one that fits
    reid_max_m: float = 10.0  # ... within this distance of where it was predicted to be
    merge_distance_m: float = 1.5  # two tracks this close with consistent states are one vehicle
    merge_chi2: float = 9.5  # 95 % of chi-square with 4 dof, on the difference of the two states


@dataclass
class TrackerStats:
    frames: int = 0
    detections: int = 0
    associated: int = 0
    births: int = 0
    deaths: int = 0
    out_of_order: int = 0
    reprocessed_frames: int = 0
    dropped_stale: int = 0
    dropped_duplicate: int = 0
    reidentified: int = 0


@dataclass
class TrackSet:
    """Tracks as arrays, one row per track. ``x``: (N, 4) x, y, vx, vy; ``P``: (N, 4, 4)."""

    ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    x: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))
    P: np.ndarray = field(default_factory=lambda: np.zeros((0, 4, 4)))
    dims: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    box_yaw: np.ndarray = field(default_factory=lambda: np.zeros(0))
    object_class: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    status: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    hits: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    misses: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    born: np.ndarray = field(default_factory=lambda: np.zeros(0))
    last_update: np.ndarray = field(default_factory=lambda: np.zeros(0))
    existence: np.ndarray = field(default_factory=lambda: np.zeros(0))
    sources: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))  # frozenset of recent sources
    vehicle_id: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))

    FIELDS = ("ids", "x", "P", "dims", "box_yaw", "object_class", "status", "hits", "misses", "born",
              "last_update", "existence", "sources", "vehicle_id")

    def __len__(self) -> int:
        return len(self.ids)

    def copy(self) -> TrackSet:
        return TrackSet(**{f: getattr(self, f).copy() for f in self.FIELDS})

    def select(self, mask: np.ndarray) -> TrackSet:
        return TrackSet(**{f: getattr(self, f)[mask] for f in self.FIELDS})

    def extend(self, other: TrackSet) -> None:
        for f in self.FIELDS:
            setattr(self, f, np.concatenate([getattr(self, f), getattr(other, f)]))

    def predicted(self, dt: float, accel_noise: float) -> tuple[np.ndarray, np.ndarray]:
        """(x, P) predicted ``dt`` seconds ahead with the constant-velocity model."""
        F = np.eye(4)
        F[0, 2] = F[1, 3] = dt
        q = accel_noise**2
        Q1 = np.array([[dt**4 / 4, dt**3 / 2], [dt**3 / 2, dt**2]]) * q
        Q = np.zeros((4, 4))
        Q[np.ix_([0, 2], [0, 2])] = Q1
        Q[np.ix_([1, 3], [1, 3])] = Q1
        return self.x @ F.T, F @ self.P @ F.T + Q

    def heading(self) -> np.ndarray:
        """Heading from the velocity when moving, else the box orientation."""
        speed = np.hypot(self.x[:, 2], self.x[:, 3])
        return np.where(speed > 1.0, np.arctan2(self.x[:, 3], self.x[:, 2]), self.box_yaw)


@dataclass
class _Snapshot:
    stamp: float
    frame: Detections
    tracks: TrackSet
    next_id: int
    time: float
    graveyard: TrackSet


class MultiSourceTracker:
    def __init__(self, config: TrackerConfig = TrackerConfig(), *, id_offset: int = 0) -> None:
        self.config = config
        self.stats = TrackerStats()
        self.tracks = TrackSet()
        self.time = -np.inf  # sensor time all tracks are predicted to
        self.next_id = id_offset + 1
        self.graveyard = TrackSet()  # lost confirmed tracks last seen within reid_window_s
        self._history: list[_Snapshot] = []  # frames processed within the reorder window, by stamp
        self._seen: set[tuple[str, float]] = set()

    # ---------------------------------------------------------------------------------- input
    def update(self, frame: Detections) -> None:
        """Process one frame of detections (in any arrival order; see the module docstring)."""
        key = (frame.source_id, round(frame.stamp, 6))
        if key in self._seen:
            self.stats.dropped_duplicate += 1
            return
        if frame.stamp < self.time - self.config.reorder_window_s:
            self.stats.dropped_stale += 1
            return
        self._seen.add(key)
        self.stats.detections += len(frame)
        if frame.stamp >= self.time:
            self._push(frame)
            return
        # late frame: rewind to before it and process it and the frames after it in stamp order
        self.stats.out_of_order += 1
        stamps = [s.stamp for s in self._history]
        i = bisect.bisect_right(stamps, frame.stamp)
        later = self._history[i:]
        snap = later[0]
        self.tracks, self.next_id, self.time, self.graveyard = snap.tracks, snap.next_id, snap.time, snap.graveyard
        del self._history[i:]
        self._push(frame)
        for s in later:
            self._push(s.frame)
            self.stats.reprocessed_frames += 1

    def _push(self, frame: Detections) -> None:
        self._history.append(_Snapshot(frame.stamp, frame, self.tracks.copy(), self.next_id, self.time,
                                       self.graveyard.copy()))
        horizon = frame.stamp - self.config.reorder_window_s
        while self._history and self._history[0].stamp < horizon:
            old = self._history.pop(0)
            self._seen.discard((old.frame.source_id, round(old.frame.stamp, 6)))
        self._process(frame)

    # ---------------------------------------------------------------------------------- one frame
    def _process(self, frame: Detections) -> None:
        cfg = self.config
        self.stats.frames += 1
        t = frame.stamp
        if np.isfinite(self.time) and len(self.tracks):
            self.tracks.x, self.tracks.P = self.tracks.predicted(t - self.time, cfg.accel_noise)
        self.time = t
        tr = self.tracks
        n, m = len(tr), len(frame)
        assigned_t = np.zeros(0, dtype=np.int64)
        assigned_d = np.zeros(0, dtype=np.int64)
        if n and m:
            assigned_t, assigned_d = self._associate(frame)
            self._kalman_update(frame, assigned_t, assigned_d)
        self.stats.associated += len(assigned_t)
        # misses for tracks in this source's coverage that got no detection
        if n:
            d_sensor = np.hypot(tr.x[:, 0] - frame.sensor_xy[0], tr.x[:, 1] - frame.sensor_xy[1])
            in_view = d_sensor < frame.sensor_range - cfg.miss_margin_m
            missed = in_view.copy()
            missed[assigned_t] = False
            tr.misses[missed] += 1
        # births
        free = np.ones(m, dtype=bool)
        free[assigned_d] = False
        free &= (frame.confidence >= cfg.birth_min_confidence) | (frame.self_report != "")
        if free.any():
            self._birth(frame, np.flatnonzero(free))
        self._prune()

    def _associate(self, frame: Detections) -> tuple[np.ndarray, np.ndarray]:
        """Gated optimal assignment: pairs within ``gate_max_m`` (KD-tree) and the Mahalanobis gate, split
        into connected groups; a group of one track and one detection is assigned directly, larger groups
        by the Hungarian algorithm. A self-report goes to the track that carries its vehicle's id."""
        cfg = self.config
        tr = self.tracks
        n, m = len(tr), len(frame)
        forced_t, forced_d = [], []
        if (frame.self_report != "").any():
            owners = {v: k for k, v in enumerate(tr.vehicle_id) if v}
            for j in np.flatnonzero(frame.self_report != ""):
                k = owners.get(frame.self_report[j])
                if k is not None:
                    forced_t.append(k)
                    forced_d.append(j)
        free_t = np.ones(n, dtype=bool)
        free_d = np.ones(m, dtype=bool)
        free_t[forced_t] = False
        free_d[forced_d] = False
        tree = cKDTree(frame.xy[free_d])
        d_index = np.flatnonzero(free_d)
        t_index = np.flatnonzero(free_t)
        near = tree.query_ball_point(tr.x[t_index, :2], r=cfg.gate_max_m)
        counts = np.fromiter((len(v) for v in near), dtype=np.int64, count=len(near))
        ti = np.repeat(t_index, counts)
        dj = d_index[np.fromiter((j for v in near for j in v), dtype=np.int64, count=int(counts.sum()))]
        if len(ti):
            innov = frame.xy[dj] - tr.x[ti, :2]
            S = tr.P[ti, :2, :2] + frame.cov[dj]
            a, b, d = S[:, 0, 0], S[:, 0, 1], S[:, 1, 1]
            det = a * d - b * b
            with np.errstate(divide="ignore", invalid="ignore"):
                maha = (d * innov[:, 0] ** 2 - 2 * b * innov[:, 0] * innov[:, 1] + a * innov[:, 1] ** 2) / det
                ok = (det > 0) & (maha < cfg.gate_chi2)  # a degenerate innovation covariance never gates
                cost = maha + np.log(np.where(ok, det, 1.0))
            ti, dj, cost = ti[ok], dj[ok], cost[ok]
        else:
            cost = np.zeros(0)
        out_t, out_d = list(forced_t), list(forced_d)
        if len(ti):
            graph = coo_matrix((np.ones(len(ti)), (ti, n + dj)), shape=(n + m, n + m))
            _, label = connected_components(graph, directed=False)
            group = label[ti]
            order = np.argsort(group, kind="stable")
            bounds = np.flatnonzero(np.diff(group[order])) + 1
            for pairs in np.split(order, bounds):
                rows, cols = np.unique(ti[pairs]), np.unique(dj[pairs])
                if len(pairs) == 1:
                    out_t.append(int(ti[pairs[0]]))
                    out_d.append(int(dj[pairs[0]]))
                    continue
                sub = np.full((len(rows), len(cols)), _BIG)
                sub[np.searchsorted(rows, ti[pairs]), np.searchsorted(cols, dj[pairs])] = cost[pairs]
                r, c = linear_sum_assignment(sub)
                keep = sub[r, c] < _BIG
                out_t += rows[r[keep]].tolist()
                out_d += cols[c[keep]].tolist()
        return np.asarray(out_t, dtype=np.int64), np.asarray(out_d, dtype=np.int64)

    def _kalman_update(self, frame: Detections, ti: np.ndarray, di: np.ndarray) -> None:
        if not len(ti):
            return
        cfg = self.config
        tr = self.tracks
        has_vel = np.isfinite(frame.velocity[di, 0])
        for with_velocity in (False, True):
            sel = has_vel == with_velocity
            if not sel.any():
                continue
            t_idx, d_idx = ti[sel], di[sel]
            x, P = tr.x[t_idx], tr.P[t_idx]
            if with_velocity:
                z = np.concatenate([frame.xy[d_idx], frame.velocity[d_idx]], axis=1)
                R = np.zeros((len(d_idx), 4, 4))
                R[:, :2, :2] = frame.cov[d_idx]
                R[:, 2, 2] = R[:, 3, 3] = 0.25
                H = np.eye(4)
            else:
                z = frame.xy[d_idx]
                R = frame.cov[d_idx]
                H = np.eye(4)[:2]
            y = z - x @ H.T
            S = H @ P @ H.T + R
            K = P @ H.T @ np.linalg.inv(S)
            tr.x[t_idx] = x + np.einsum("nij,nj->ni", K, y)
            tr.P[t_idx] = (np.eye(4) - K @ H) @ P
        alpha = cfg.dims_smoothing
        tr.dims[ti] = (1 - alpha) * tr.dims[ti] + alpha * frame.dims[di]
        tr.box_yaw[ti] = frame.yaw[di]
        tr.hits[ti] += 1
        tr.misses[ti] = 0
        tr.last_update[ti] = frame.stamp
        tr.existence[ti] = np.minimum(1.0, tr.existence[ti] + 0.5 * frame.confidence[di])
        promote = (tr.status[ti] == TENTATIVE) & (tr.hits[ti] >= cfg.confirm_hits)
        tr.status[ti[promote]] = CONFIRMED
        for k, j in zip(ti.tolist(), di.tolist(), strict=True):
            if frame.source_id not in tr.sources[k]:
                tr.sources[k] = tr.sources[k] | {frame.source_id}
            if frame.self_report[j]:
                tr.vehicle_id[k] = frame.self_report[j]
                tr.status[k] = CONFIRMED  # a vehicle reporting itself exists

    def _reidentify(self, frame: Detections, idx: np.ndarray) -> np.ndarray:
        """Detections (of ``idx``) that fit a recently lost track get it back; returns the others."""
        cfg = self.config
        g = self.graveyard
        if not len(g) or not len(idx):
            return idx
        dt = frame.stamp - g.last_update
        x, P = g.x.copy(), g.P
        x[:, :2] += x[:, 2:] * dt[:, None]  # where each would be now, position uncertainty grown below
        q = cfg.accel_noise**2 * dt**4 / 4
        S = P[:, None, :2, :2] + frame.cov[None, idx] + (q + (dt * 2.0) ** 2)[:, None, None, None] * np.eye(2)
        innov = frame.xy[idx][None, :, :] - x[:, None, :2]
        a, b, d = S[..., 0, 0], S[..., 0, 1], S[..., 1, 1]
        maha = (d * innov[..., 0] ** 2 - 2 * b * innov[..., 0] * innov[..., 1] + a * innov[..., 1] ** 2) / (a * d - b * b)
        ok = (maha < cfg.gate_chi2) & (np.hypot(innov[..., 0], innov[..., 1]) < cfg.reid_max_m)
        if not ok.any():
            return idx
        cost = np.where(ok, maha, _BIG)
        rows, cols = linear_sum_assignment(cost)
        keep = cost[rows, cols] < _BIG
        rows, cols = rows[keep], cols[keep]
        back = g.select(rows)
        back.x = x[rows]
        back.x[:, :2] = frame.xy[idx[cols]]
        back.P = back.P.copy()
        back.P[:, :2, :2] = frame.cov[idx[cols]]
        back.last_update = np.full(len(rows), frame.stamp)
        back.misses = np.zeros(len(rows), dtype=np.int64)
        back.hits = np.maximum(back.hits, cfg.confirm_hits)
        back.status = np.full(len(rows), CONFIRMED, dtype=np.int64)
        back.sources = object_array([s | {frame.source_id} for s in back.sources])
        self.tracks.extend(back)
        self.graveyard = g.select(np.setdiff1d(np.arange(len(g)), rows))
        self.stats.reidentified += len(rows)
        return np.delete(idx, cols)

    def _birth(self, frame: Detections, idx: np.ndarray) -> None:
        cfg = self.config
        idx = self._reidentify(frame, idx)
        if not len(idx):
            return
        k = len(idx)
        x = np.zeros((k, 4))
        x[:, :2] = frame.xy[idx]
        P = np.zeros((k, 4, 4))
        P[:, :2, :2] = frame.cov[idx]
        P[:, 2, 2] = P[:, 3, 3] = cfg.initial_speed_sigma**2
        vel = np.isfinite(frame.velocity[idx, 0])
        x[vel, 2:] = frame.velocity[idx][vel]
        P[vel, 2, 2] = P[vel, 3, 3] = 0.25
        self_report = frame.self_report[idx]
        born = TrackSet(
            ids=np.arange(self.next_id, self.next_id + k, dtype=np.int64), x=x, P=P, dims=frame.dims[idx].copy(),
            box_yaw=frame.yaw[idx].copy(), object_class=frame.object_class[idx].copy(),
            status=np.where(self_report != "", CONFIRMED, TENTATIVE).astype(np.int64),
            hits=np.ones(k, dtype=np.int64), misses=np.zeros(k, dtype=np.int64), born=np.full(k, frame.stamp),
            last_update=np.full(k, frame.stamp), existence=0.5 * frame.confidence[idx],
            sources=object_array([frozenset((frame.source_id,))] * k),
            vehicle_id=object_array(self_report.tolist()),
        )
        self.next_id += k
        self.tracks.extend(born)
        self.stats.births += k

    def _prune(self) -> None:
        cfg = self.config
        tr = self.tracks
        age = self.time - tr.last_update
        dead = ((tr.status == TENTATIVE) & ((tr.misses >= cfg.tentative_misses) | (age > cfg.tentative_max_age_s))) \
            | ((tr.status == CONFIRMED) & (age > cfg.max_coast_s))
        lost = dead & (tr.status == CONFIRMED)  # not duplicates: those are the same vehicle as a living track
        dead |= self._duplicates()
        if dead.any():
            self.stats.deaths += int(dead.sum())
            if cfg.reid_window_s > 0 and lost.any():
                self.graveyard.extend(tr.select(lost))
            self.tracks = tr.select(~dead)
        if len(self.graveyard):
            self.graveyard = self.graveyard.select(self.time - self.graveyard.last_update <= cfg.reid_window_s)

    def _duplicates(self) -> np.ndarray:
        """Tracks that follow the same vehicle as an older track (born when one frame failed the gate;
        both would then take turns at the vehicle's detections): the younger one goes."""
        cfg = self.config
        tr = self.tracks
        out = np.zeros(len(tr), dtype=bool)
        if len(tr) < 2:
            return out
        pairs = cKDTree(tr.x[:, :2]).query_pairs(cfg.merge_distance_m, output_type="ndarray")
        if not len(pairs):
            return out
        a, b = pairs[:, 0], pairs[:, 1]
        diff = tr.x[a] - tr.x[b]
        S = tr.P[a] + tr.P[b]
        maha = np.einsum("ni,ni->n", diff, np.linalg.solve(S, diff[..., None])[..., 0])
        same = maha < cfg.merge_chi2
        older_a = (tr.born[a] < tr.born[b]) | ((tr.born[a] == tr.born[b]) & (tr.ids[a] < tr.ids[b]))
        out[np.where(older_a, b, a)[same]] = True
        return out

    # ---------------------------------------------------------------------------------- output
    def confirmed_at(self, t: float) -> TrackSet:
        """A copy of the confirmed tracks predicted to time ``t`` (not earlier than the last frame).

        Tracks older than ``max_coast_s`` at ``t`` are left out: the next frame would delete them, and when
        every source falls silent no frame comes to do it.
        """
        alive = (self.tracks.status == CONFIRMED) & (t - self.tracks.last_update <= self.config.max_coast_s)
        out = self.tracks.select(alive)
        if len(out) and np.isfinite(self.time) and t > self.time:
            out.x, out.P = out.predicted(t - self.time, self.config.accel_noise)
        return out


def object_array(items: list) -> np.ndarray:
    """An object array holding ``items`` as they are (numpy would unpack strings or sets otherwise)."""
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out

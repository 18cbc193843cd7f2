"""Association of one frame's detections to the tracks predicted to its stamp.

Candidates within ``gate_max_m`` come from a KD-tree, the Mahalanobis gate (chi-square, 2 dof) keeps the
plausible pairs, the pairs are split into connected groups, and each group is solved optimally (Hungarian
algorithm; a group of one pair directly), so thousands of tracks cost little. Identity is evidence: a
vehicle's self-report goes to the track already carrying its id, before any gating; a self-report whose id
no track carries yet binds to the track without an id it clearly fits (inside the gate with the report's
own covariance, and far more likely than any other such track): the vehicle the other sensors already
track, so one vehicle seen by LiDAR and reporting itself is one track.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from mobility_twin.perception.detections import Detections
from mobility_twin.tracking.gating import mahalanobis2, mahalanobis2_unchecked
from mobility_twin.tracking.trackset import TrackSet

_BIG = 1e9
_DENSE_MAX = 4096  # gated pairs spanning at most this many (track, detection) cells: one dense assignment
_NO_ROWS = np.zeros(0, dtype=np.int64)
_NO_ROWS.flags.writeable = False
_ALL_PAIRS_MAX = 64  # a frame of at most this many (track, detection) pairs gates every pair, without candidates


def associate(tracks: TrackSet, frame: Detections, gate_chi2: float, gate_max_m: float, rescue_m: float = 0.0
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(track rows, detection rows) of the assigned pairs, and the detections withheld: self-reports that fit
    several tracks without telling which (neither assigned nor a new track; the next report will tell).

    ``rescue_m``: after the gated assignment, a track and a detection left over that are each other's nearest
    within this distance are paired anyway: a source whose stated covariance is too small (or a vehicle
    that changed speed) would otherwise fail the gate and start a second track of the same vehicle.
    A degenerate innovation covariance never gates; numpy warns of its division unless called inside
    ``np.errstate`` (the tracker enters one per frame)."""
    tr = tracks
    n, m = len(tr), len(frame)
    if not frame.report_count:  # detections only (a LiDAR frame): no identities to use
        out_t, out_d = _gated_assignment(tr, frame, None, None, gate_chi2, gate_max_m)
        if rescue_m > 0 and len(out_t) < min(n, m):  # a track and a detection both left over
            out_t, out_d = out_t.tolist(), out_d.tolist()
            _rescue(tr, frame, out_t, out_d, np.ones(n, dtype=bool), np.ones(m, dtype=bool), rescue_m)
            out_t, out_d = np.asarray(out_t, dtype=np.int64), np.asarray(out_d, dtype=np.int64)
        return out_t, out_d, _NO_ROWS
    reports = frame.reports
    forced_t, forced_d = [], []
    owners = {v: k for k, v in enumerate(tr.vehicle_id) if v}
    for j in np.flatnonzero(reports):
        k = owners.get(frame.self_report[j])
        if k is not None:
            forced_t.append(k)
            forced_d.append(j)
    free_t = np.ones(n, dtype=bool)
    free_d = np.ones(m, dtype=bool)
    free_t[forced_t] = False
    free_d[forced_d] = False
    unowned = np.flatnonzero(free_d & reports)
    anonymous = np.flatnonzero(free_t & np.array([not v for v in tr.vehicle_id], dtype=bool)) if len(unowned) else ()
    if len(unowned) and len(anonymous):
        innov = frame.xy[unowned, None, :] - tr.x[None, anonymous, :2]
        S = tr.P[None, anonymous, :2, :2] + frame.cov[unowned, None]
        maha, det = mahalanobis2(innov, S)
        with np.errstate(invalid="ignore"):
            ok = (det > 0) & (maha < gate_chi2) & (np.hypot(innov[..., 0], innov[..., 1]) <= gate_max_m)
        # bind only where it is unambiguous: the report's best track clearly better than its second best
        masked = np.where(ok, maha, np.inf)
        second = np.sort(masked, axis=1)[:, 1] if masked.shape[1] > 1 else np.full(len(unowned), np.inf)
        clear = ok & (masked <= np.minimum(masked.min(axis=1), 0.25 * second)[:, None])
        for r, c in assign_gated(np.where(clear, maha, _BIG), clear):
            forced_t.append(int(anonymous[c]))
            forced_d.append(int(unowned[r]))
            free_t[anonymous[c]] = False
            free_d[unowned[r]] = False
        withheld = unowned[ok.any(axis=1) & free_d[unowned]]
        free_d[withheld] = False
    else:
        withheld = np.zeros(0, dtype=np.int64)
    free_d &= ~reports  # an unbound self-report starts its own track (merged later if it is one)
    out_t, out_d = _gated_assignment(tr, frame, np.flatnonzero(free_t), np.flatnonzero(free_d), gate_chi2, gate_max_m)
    out_t, out_d = forced_t + out_t.tolist(), forced_d + out_d.tolist()
    if rescue_m > 0:
        _rescue(tr, frame, out_t, out_d, free_t, free_d, rescue_m)
    return np.asarray(out_t, dtype=np.int64), np.asarray(out_d, dtype=np.int64), withheld


def _rescue(tr: TrackSet, frame: Detections, out_t: list, out_d: list, free_t: np.ndarray, free_d: np.ndarray,
            rescue_m: float) -> None:
    """Append to ``out_t``, ``out_d`` the free tracks and detections left over that are each other's nearest
    within ``rescue_m`` (``free_t``, ``free_d`` are written into)."""
    free_t[out_t] = False
    free_d[out_d] = False
    rt, rd = _mutual_nearest(tr.x[:, :2], frame.xy, np.flatnonzero(free_t), np.flatnonzero(free_d), rescue_m)
    out_t += rt
    out_d += rd


def _gated_assignment(tr: TrackSet, frame: Detections, t_index: np.ndarray | None, d_index: np.ndarray | None,
                      gate_chi2: float, gate_max_m: float) -> tuple[np.ndarray, np.ndarray]:
    """The optimal assignment, inside the gate, of the tracks ``t_index`` to the detections ``d_index`` (None:
    all): (track rows, detection rows)."""
    n, m = len(tr), len(frame)
    if t_index is None and d_index is None and n * m <= _ALL_PAIRS_MAX:
        # a few tracks and detections (a sparse LiDAR frame): every pair gated at once, no candidates to find
        innov = frame.xy[None, :, :] - tr.x[:, None, :2]
        maha, det = mahalanobis2_unchecked(innov, tr.P[:, None, :2, :2] + frame.cov[None])
        ok = (det > 0) & (maha < gate_chi2) & (innov[..., 0] ** 2 + innov[..., 1] ** 2 <= gate_max_m * gate_max_m)
        ti, dj = ok.nonzero()
        maha, det = maha[ti, dj], det[ti, dj]
    else:
        ti, dj = _candidates(tr.x[:, :2], frame.xy, t_index, d_index, gate_max_m)
        if not len(ti):
            return ti, dj
        t, d = every_row_as_slice(ti, n), every_row_as_slice(dj, m)  # no gathers for few tracks and detections
        maha, det = mahalanobis2_unchecked(frame.xy[d] - tr.x[t, :2], tr.P[t, :2, :2] + frame.cov[d])
        ok = (det > 0) & (maha < gate_chi2)  # a degenerate innovation covariance never gates
        if np.count_nonzero(ok) < len(ok):
            ti, dj, maha, det = ti[ok], dj[ok], maha[ok], det[ok]
    if len(ti) < 2 or (len(set(ti.tolist())) == len(ti) and len(set(dj.tolist())) == len(dj)):
        # pairs that share neither their track nor their detection are groups of one each (a frame of one
        # V2X report, sparse traffic): each is assigned, no graph to build
        return ti, dj
    cost = maha + np.log(det)  # the negative log-likelihood of the pair, up to a constant
    out_t, out_d = [], []
    rows, row_of = _compact(ti, n)
    cols, col_of = _compact(dj, m)
    if len(rows) * len(cols) <= _DENSE_MAX:
        # a frame's worth of tracks: one assignment over the gated pairs solves every group at once
        # (the groups share no row or column), cheaper than finding the groups
        _assign(rows, row_of, cols, col_of, cost, out_t, out_d)
    else:
        _assign_by_group(ti, dj, cost, n, m, out_t, out_d)
    return np.asarray(out_t, dtype=np.int64), np.asarray(out_d, dtype=np.int64)


def every_row_as_slice(index: np.ndarray, size: int) -> np.ndarray | slice:
    """``index`` (rows of an array of ``size``) as a slice when it is every row in order (a frame that pairs
    each of few tracks with the detection of its row: basic indexing, views instead of copies), else itself."""
    return slice(None) if len(index) == size and index.tolist() == list(range(size)) else index


def _compact(index: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values of ``index`` (all in [0, size)), sorted, and where each entry of ``index`` stands
    among them: ``np.unique(index, return_inverse=True)`` for small non-negative integers, at a fraction of
    its cost."""
    values = np.flatnonzero(np.bincount(index, minlength=size))
    return values, np.searchsorted(values, index)


def _assign_by_group(ti: np.ndarray, dj: np.ndarray, cost: np.ndarray, n: int, m: int, out_t: list, out_d: list
                     ) -> None:
    """Optimal assignment of the gated pairs (track rows ``ti``, detection rows ``dj``) group by group: the
    pairs split into connected groups, each solved on its own (a group of one pair directly); appends to
    ``out_t`` and ``out_d``. Thousands of tracks cost little."""
    graph = coo_matrix((np.ones(len(ti)), (ti, n + dj)), shape=(n + m, n + m))
    _, label = connected_components(graph, directed=False)
    group = label[ti]
    order = np.argsort(group, kind="stable")
    bounds = np.flatnonzero(np.diff(group[order])) + 1
    for pairs in np.split(order, bounds):
        if len(pairs) == 1:
            out_t.append(int(ti[pairs[0]]))
            out_d.append(int(dj[pairs[0]]))
            continue
        rows, row_of = np.unique(ti[pairs], return_inverse=True)
        cols, col_of = np.unique(dj[pairs], return_inverse=True)
        _assign(rows, row_of, cols, col_of, cost[pairs], out_t, out_d)


def _assign(rows: np.ndarray, row_of: np.ndarray, cols: np.ndarray, col_of: np.ndarray, cost: np.ndarray,
            out_t: list, out_d: list) -> None:
    """Optimal assignment of gated pairs given as (``rows[row_of[k]]``, ``cols[col_of[k]]``) with ``cost[k]``:
    the chosen (track, detection) rows appended to ``out_t`` and ``out_d``, none outside the gate."""
    sub = np.full((len(rows), len(cols)), _BIG)
    sub[row_of, col_of] = cost
    r, c = linear_sum_assignment(sub)
    keep = sub[r, c] < _BIG
    out_t += rows[r[keep]].tolist()
    out_d += cols[c[keep]].tolist()


def _candidates(txy: np.ndarray, dxy: np.ndarray, t_index: np.ndarray | None, d_index: np.ndarray | None,
                radius: float) -> tuple[np.ndarray, np.ndarray]:
    """(track rows, detection rows) of the pairs among the given rows (None: all) within ``radius`` of each
    other, by track then detection: brute force for small frames, a KD-tree on the detections for large ones."""
    if t_index is None or d_index is None:
        if t_index is None and d_index is None and len(txy) * len(dxy) <= 8192:  # every row (a LiDAR frame)
            return np.nonzero(_squared_distances(txy, dxy) <= radius * radius)
        t_index = np.arange(len(txy)) if t_index is None else t_index
        d_index = np.arange(len(dxy)) if d_index is None else d_index
    if not len(t_index) or not len(d_index):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    if len(t_index) * len(d_index) <= 8192:
        r, c = np.nonzero(_squared_distances(txy[t_index], dxy[d_index]) <= radius * radius)
        return t_index[r], d_index[c]
    near = cKDTree(dxy[d_index]).query_ball_point(txy[t_index], r=radius)
    counts = np.fromiter((len(v) for v in near), dtype=np.int64, count=len(near))
    ti = np.repeat(t_index, counts)
    return ti, d_index[np.fromiter((j for v in near for j in v), dtype=np.int64, count=int(counts.sum()))]


def _squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) squared distances between the points ``a`` (N, 2) and ``b`` (M, 2)."""
    diff = a[:, None, :] - b[None, :, :]
    return diff[..., 0] ** 2 + diff[..., 1] ** 2


def _mutual_nearest(txy: np.ndarray, dxy: np.ndarray, t_index: np.ndarray, d_index: np.ndarray, radius: float
                    ) -> tuple[list[int], list[int]]:
    """Pairs (track, detection) among the given rows that are each other's nearest, within ``radius``."""
    if not len(t_index) or not len(d_index):
        return [], []
    if len(t_index) * len(d_index) <= 4096:  # a frame's worth: the distance matrix, no trees to build
        d2 = _squared_distances(txy[t_index], dxy[d_index])
        near_d, near_t = d2.argmin(axis=1), d2.argmin(axis=0)
        within = d2[np.arange(len(t_index)), near_d] <= radius * radius
        mutual = [a for a in np.flatnonzero(within).tolist() if near_t[near_d[a]] == a]
        return [int(t_index[a]) for a in mutual], [int(d_index[near_d[a]]) for a in mutual]
    dist_t, near_d = cKDTree(dxy[d_index]).query(txy[t_index], distance_upper_bound=radius)
    dist_d, near_t = cKDTree(txy[t_index]).query(dxy[d_index], distance_upper_bound=radius)
    out_t, out_d = [], []
    for a in np.flatnonzero(np.isfinite(dist_t)).tolist():
        b = int(near_d[a])
        if np.isfinite(dist_d[b]) and int(near_t[b]) == a:
            out_t.append(int(t_index[a]))
            out_d.append(int(d_index[b]))
    return out_t, out_d


def assign_gated(maha: np.ndarray, ok: np.ndarray) -> list[tuple[int, int]]:
    """Optimal assignment on a (rows, cols) matrix of squared distances where ``ok`` marks the gated pairs:
    the (row, col) pairs chosen, none outside the gate."""
    if not ok.any():
        return []
    cost = np.where(ok, maha, _BIG)
    rows, cols = linear_sum_assignment(cost)
    keep = cost[rows, cols] < _BIG
    return list(zip(rows[keep].tolist(), cols[keep].tolist(), strict=True))

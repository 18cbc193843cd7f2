"""The global twin (cloud): local twins federated into one picture with global identities.

Vertical interaction: every local twin sends its tracks; each local track (site, local id) is linked to
one global track. A local track new to the global twin is matched (Mahalanobis gate on position, then
optimal assignment) against the global tracks that its site does not already contribute to: a vehicle
in the overlap of two sites gets one global track, and a vehicle crossing from one site into the next
keeps its global id (the handover between neighbouring sites). Only when nothing matches is a new
global id born.

The global estimate of a track is the contribution with the freshest measurement (the other sites'
views of it are older or equal). A site that falls silent for ``stale_after_s`` is marked stale and its
links are dropped: its tracks coast and age out after ``track_ttl_s`` while every other site keeps
working; when it comes back its tracks are matched again and recover their global ids where the
vehicles are still tracked.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from mobility_twin.tracking import TrackSet
from mobility_twin.tracking.tracker import object_array

_BIG = 1e9


@dataclass(frozen=True)
class GlobalTwinConfig:
    stale_after_s: float = 1.0
    track_ttl_s: float = 1.5
    gate_chi2: float = 13.8
    gate_max_m: float = 4.0
    accel_noise: float = 2.5


@dataclass
class SiteState:
    site_id: str
    last_stamp: float = -np.inf
    snapshots: int = 0
    rejected: int = 0
    stale: bool = False


@dataclass
class _GlobalTrack:
    gid: int
    x: np.ndarray  # (4,) at ``t``
    P: np.ndarray  # (4, 4)
    t: float
    last_measurement: float
    dims: np.ndarray
    object_class: int
    vehicle_id: str
    sources: frozenset
    links: dict[str, int] = field(default_factory=dict)  # site -> local id
    born: float = 0.0


class GlobalTwin:
    def __init__(self, config: GlobalTwinConfig = GlobalTwinConfig()) -> None:
        self.config = config
        self.sites: dict[str, SiteState] = {}
        self.tracks: dict[int, _GlobalTrack] = {}
        self._by_link: dict[tuple[str, int], int] = {}
        self.next_id = 1
        self.stats = {"snapshots": 0, "handovers": 0, "births": 0, "deaths": 0, "stale_snapshots": 0}

    # ---------------------------------------------------------------------------------- input
    def ingest(self, site_id: str, stamp: float, tracks: TrackSet) -> bool:
        """One local twin's tracks at ``stamp`` (their last_update is the sensor time of their newest data)."""
        site = self.sites.setdefault(site_id, SiteState(site_id))
        if stamp <= site.last_stamp:
            site.rejected += 1
            self.stats["stale_snapshots"] += 1
            return False
        if site.stale:
            site.stale = False
        site.last_stamp = stamp
        site.snapshots += 1
        self.stats["snapshots"] += 1
        present = set()
        new_rows = []
        for row, lid in enumerate(tracks.ids.tolist()):
            key = (site_id, lid)
            present.add(key)
            gid = self._by_link.get(key)
            if gid is None or gid not in self.tracks:
                new_rows.append(row)
                continue
            self._contribute(self.tracks[gid], tracks, row, stamp)
        # local tracks this site no longer has: unlink
        for key in [k for k in self._by_link if k[0] == site_id and k not in present]:
            gid = self._by_link.pop(key)
            if gid in self.tracks:
                self.tracks[gid].links.pop(site_id, None)
        if new_rows:
            self._match_new(site_id, stamp, tracks, np.array(new_rows))
        return True

    def _contribute(self, g: _GlobalTrack, tracks: TrackSet, row: int, stamp: float) -> None:
        measured = float(tracks.last_update[row])
        if measured >= g.last_measurement:
            g.x, g.P, g.t = tracks.x[row].copy(), tracks.P[row].copy(), stamp
            g.last_measurement = measured
            g.dims = tracks.dims[row].copy()
            g.object_class = int(tracks.object_class[row])
        if tracks.vehicle_id[row]:
            g.vehicle_id = tracks.vehicle_id[row]
        g.sources = g.sources | tracks.sources[row]

    def _match_new(self, site_id: str, stamp: float, tracks: TrackSet, rows: np.ndarray) -> None:
        cfg = self.config
        candidates = [g for g in self.tracks.values() if site_id not in g.links]
        assigned: dict[int, int] = {}
        if candidates:
            gx, gP = self._predict([g for g in candidates], stamp)
            innov = tracks.x[rows, None, :2] - gx[None, :, :2]
            S = tracks.P[rows, None, :2, :2] + gP[None, :, :2, :2]
            a, b, d = S[..., 0, 0], S[..., 0, 1], S[..., 1, 1]
            det = a * d - b * b
            ix, iy = innov[..., 0], innov[..., 1]
            maha = (d * ix * ix - 2 * b * ix * iy + a * iy * iy) / det
            cost = np.where((maha < cfg.gate_chi2) & (np.hypot(ix, iy) < cfg.gate_max_m), maha, _BIG)
            for r, c in zip(*linear_sum_assignment(cost), strict=True):
                if cost[r, c] < _BIG:
                    assigned[int(rows[r])] = candidates[c].gid
        for row in rows.tolist():
            lid = int(tracks.ids[row])
            gid = assigned.get(row)
            if gid is None:
                gid = self.next_id
                self.next_id += 1
                self.tracks[gid] = _GlobalTrack(gid, tracks.x[row].copy(), tracks.P[row].copy(), stamp,
                                                float(tracks.last_update[row]), tracks.dims[row].copy(),
                                                int(tracks.object_class[row]), tracks.vehicle_id[row] or "",
                                                tracks.sources[row], born=stamp)
                self.stats["births"] += 1
            else:
                if not self.tracks[gid].links:  # else: an overlap, another site tracks it too
                    self.stats["handovers"] += 1
                self._contribute(self.tracks[gid], tracks, row, stamp)
            self.tracks[gid].links[site_id] = lid
            self._by_link[(site_id, lid)] = gid

    def _predict(self, tracks: list[_GlobalTrack], t: float) -> tuple[np.ndarray, np.ndarray]:
        q = self.config.accel_noise**2
        xs, Ps = [], []
        for g in tracks:
            dt = max(0.0, t - g.t)
            F = np.eye(4)
            F[0, 2] = F[1, 3] = dt
            Q1 = np.array([[dt**4 / 4, dt**3 / 2], [dt**3 / 2, dt**2]]) * q
            Q = np.zeros((4, 4))
            Q[np.ix_([0, 2], [0, 2])] = Q1
            Q[np.ix_([1, 3], [1, 3])] = Q1
            xs.append(F @ g.x)
            Ps.append(F @ g.P @ F.T + Q)
        return np.array(xs).reshape(-1, 4), np.array(Ps).reshape(-1, 4, 4)

    # ---------------------------------------------------------------------------------- upkeep and output
    def update_staleness(self, now: float) -> list[str]:
        """Mark sites silent for ``stale_after_s`` as stale (dropping their links); age out old tracks."""
        newly = []
        for site in self.sites.values():
            if not site.stale and now - site.last_stamp > self.config.stale_after_s:
                site.stale = True
                newly.append(site.site_id)
                for key in [k for k in self._by_link if k[0] == site.site_id]:
                    gid = self._by_link.pop(key)
                    if gid in self.tracks:
                        self.tracks[gid].links.pop(site.site_id, None)
        for gid in [g.gid for g in self.tracks.values()
                    if not g.links and now - g.last_measurement > self.config.track_ttl_s]:
            del self.tracks[gid]
            self.stats["deaths"] += 1
        return newly

    def tracks_at(self, t: float) -> TrackSet:
        """The global tracks predicted to ``t`` as a TrackSet (ids are global ids)."""
        tracks = sorted(self.tracks.values(), key=lambda g: g.gid)
        x, P = self._predict(tracks, t)
        n = len(tracks)
        out = TrackSet(
            ids=np.array([g.gid for g in tracks], dtype=np.int64), x=x, P=P,
            dims=np.array([g.dims for g in tracks]).reshape(n, 3), box_yaw=np.zeros(n),
            object_class=np.array([g.object_class for g in tracks], dtype=np.int64),
            status=np.ones(n, dtype=np.int64), hits=np.zeros(n, dtype=np.int64), misses=np.zeros(n, dtype=np.int64),
            born=np.array([g.born for g in tracks]), last_update=np.array([g.last_measurement for g in tracks]),
            existence=np.ones(n), sources=object_array([g.sources for g in tracks]),
            vehicle_id=object_array([g.vehicle_id for g in tracks]),
        )
        return out

    def site_of_track(self) -> dict[int, str]:
        """For each global id, a site contributing to it ('' for none)."""
        return {g.gid: next(iter(g.links), "") for g in self.tracks.values()}


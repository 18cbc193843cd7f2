"""The global twin (cloud): local twins federated into one picture with global identities.

Vertical interaction: every local twin sends its tracks; each local track (site, local id) is linked to
one global track. A local track new to the global twin is matched (KD-tree candidates, Mahalanobis gate
on position, optimal assignment) against the global tracks that its site does not already contribute
to: a vehicle in the overlap of two sites gets one global track, and a vehicle crossing from one site
into the next keeps its global id (the handover between neighbouring sites). Only when nothing matches
is a new global id born. A new local track carrying a vehicle's own id is never matched to a global track
that carries another vehicle's id. When two sites' tracks of one vehicle still got two global ids (the
later was born out of the gate, e.g. from a late V2X report), the two are merged once they have stayed
together (position within the gate and ``merge_max_m``, velocities within ``merge_max_dv_mps``) for
``merge_after_s``; tracks
that one site reports both of, or that carry different vehicle ids, are never merged.

The global estimate of a track fuses what every site reporting it says: the local tracks of two sites are
correlated estimates of the same vehicle (they may share sensors, and each is the output of a filter), so
they are fused by covariance intersection, each predicted to the publication time, with the weight that
minimises the trace of the fused covariance (a site whose vehicle is only seen through GNSS reports weighs
little next to one that sees it with LiDAR), never as independent measurements. Identity is evidence here
too: a new local track that carries a vehicle's own id joins the global track with that id. A site that falls silent for ``stale_after_s`` is marked stale and its
links go dormant: its tracks coast and age out of the output after ``track_ttl_s`` while every other
site keeps working; a track of a silent site is still shown, predicted, for ``dormant_show_s`` (its vehicle
went unseen, it did not leave). A track no site reports is kept hidden for ``reid_window_s`` (``dormant_keep_s`` when
its site fell silent: a local twin restarting takes a few seconds): when a site finds the vehicle again
(after an occlusion, or when a silent site comes back with the same local ids) it gets its global id back.

:meth:`GlobalTwin.to_plain` and :meth:`GlobalTwin.from_plain` carry the whole state (tracks, links, next
id) through a restart of the node, so the vehicles keep their global ids.

Global tracks are kept as arrays (one row per track), so a city of thousands of vehicles is a few numpy
operations per local update.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.spatial import cKDTree

from mobility_twin.tracking import TrackSet, object_array
from mobility_twin.tracking.gating import mahalanobis2
from mobility_twin.tracking.motion import predict, predict_positions
from mobility_twin.tracking.trackset import pack_array, unpack_array

_BIG = 1e9


@dataclass(frozen=True)
class GlobalTwinConfig:
    stale_after_s: float = 1.0
    # a track no site reports any more is shown this long after its last measurement: two frames of slack
    # (a site's track replaced by a new one not yet confirmed), no more: its sites coasted it already, and
    # dropped it when their evidence said it left, at once where a LiDAR saw its place clear (0.3 s, before
    # the sites used what their LiDARs saw, showed such a vehicle two frames after its site dropped it: sweep
    # seed 42's s02 rsu_06, global -0.012 MOTA below the RSU alone; 0.2 s: -0.006, and 0.1 s cut the slack
    # that the replaced tracks need)
    track_ttl_s: float = 0.2
    reid_window_s: float = 5.0  # ... and kept this long, hidden, so that a site finding it again keeps its id
    dormant_keep_s: float = 30.0  # ... this long when its site fell silent (the site may be restarting)
    dormant_show_s: float = 15.0  # a track whose site fell silent is shown, predicted, this long (it went unseen)
    gate_chi2: float = 13.8
    gate_max_m: float = 4.0
    accel_noise: float = 2.5
    # two global tracks that different sites report and that stay within the gate (position and velocity)
    # this long are one vehicle whose tracks did not meet when the later was born: merged (0: never)
    merge_after_s: float = 1.0
    merge_max_m: float = 2.0  # ... within half a lane of each other (neighbours in the next lane stay apart)
    merge_max_dv_mps: float = 2.0
    # the pairs are looked for at most this often (twin time), not on every site's update: a pair must stay
    # together for merge_after_s, which a look every tenth of a second sees as well, for a fraction of the cost
    merge_check_s: float = 0.1


@dataclass
class SiteState:
    site_id: str
    last_stamp: float = -np.inf
    snapshots: int = 0
    rejected: int = 0
    stale: bool = False


class GlobalTwin:
    def __init__(self, config: GlobalTwinConfig = GlobalTwinConfig()) -> None:
        self.config = config
        self.sites: dict[str, SiteState] = {}
        self.tracks = TrackSet()  # ids are global ids; last_update = freshest measurement; born = time of birth
        self.t = np.zeros(0)  # time each row's state refers to
        self.links: dict[str, dict[int, int]] = {}  # site -> {local id: global id}
        self.latest: dict[str, tuple[float, TrackSet, np.ndarray]] = {}  # site -> (stamp, its tracks, their gids)
        self.dormant: dict[str, dict[int, int]] = {}  # the links of a site that fell silent, until it is back
        # links whose local track the site stopped reporting: site -> {local id: (global id, when)}. A local id
        # names one track of one local twin, so when the site reports it again (its tracker found the vehicle
        # again, e.g. after its sensor's outage) it is the same vehicle: it gets its global id back
        self.released: dict[str, dict[int, tuple[int, float]]] = {}
        self.next_id = 1
        self.stats = {"snapshots": 0, "handovers": 0, "births": 0, "deaths": 0, "stale_snapshots": 0, "merges": 0,
                      "unlinked": 0}
        self._close: dict[tuple[int, int], float] = {}  # (global id, global id) -> since when they stay together
        self._merge_checked = -np.inf  # stamp of the last look for pairs to merge

    def __len__(self) -> int:
        return len(self.tracks)

    # ---------------------------------------------------------------------------------- input
    def ingest(self, site_id: str, stamp: float, tracks: TrackSet, keep_linked=()) -> bool:
        """One local twin's tracks at ``stamp`` (their last_update is the sensor time of their newest data).

        A local id absent from ``tracks`` ends its link to its global track, except those in ``keep_linked``:
        tracks the site did report but validation refused (the next good update finds its global id again)."""
        site = self.sites.setdefault(site_id, SiteState(site_id))
        if stamp <= site.last_stamp:
            site.rejected += 1
            self.stats["stale_snapshots"] += 1
            return False
        site.stale = False
        site.last_stamp = stamp
        site.snapshots += 1
        self.stats["snapshots"] += 1
        links = self.links.setdefault(site_id, {})
        if site_id in self.dormant:  # back from silence (e.g. restarted): its surviving local ids keep their ids
            alive = set(self.tracks.ids.tolist())
            links.update({lid: gid for lid, gid in self.dormant.pop(site_id).items() if gid in alive})
        local_ids = tracks.ids.tolist()
        released = self.released.setdefault(site_id, {})
        if released:
            taken = set(links.values())  # (unless the site has linked that global track to another of its tracks)
            for lid in local_ids:
                if lid not in links and lid in released and released[lid][0] not in taken:
                    links[lid] = released.pop(lid)[0]
        gids = np.array([links.get(i, -1) for i in local_ids], dtype=np.int64)
        apart = self._apart(site_id, stamp, tracks, gids)
        if apart.any():  # linked to a global track that another site reports far from it: another vehicle
            for lid in tracks.ids[apart].tolist():
                links.pop(lid, None)
            gids[apart] = -1
            self.stats["unlinked"] += int(np.count_nonzero(apart))
        row_of = self._rows(gids)
        known = row_of >= 0
        self._contribute(row_of[known], tracks, np.flatnonzero(known), stamp)
        present = set(local_ids) | {int(i) for i in keep_linked}
        for lid in [lid for lid in links if lid not in present]:
            released[lid] = (links.pop(lid), stamp)
        new = np.flatnonzero(~known)
        if len(new):
            self._match_new(site_id, stamp, tracks, new)
        self.latest[site_id] = (stamp, tracks, np.array([links.get(i, -1) for i in local_ids], dtype=np.int64))
        if self.config.merge_after_s > 0 and stamp - self._merge_checked >= self.config.merge_check_s:
            self._merge_checked = stamp
            self._merge_duplicates(stamp)
        return True

    def _apart(self, site_id: str, stamp: float, tracks: TrackSet, gids: np.ndarray) -> np.ndarray:
        """Bool per local track of ``site_id``: linked to a global track that another site's latest report, or
        the global track's own estimate, places beyond the gate of it, in Mahalanobis distance and
        ``gate_max_m`` both. Two sites' tracks of one vehicle agree; these are two vehicles on one global id (a
        link made when they passed close by), which would show as one track between them and leave the other
        vehicle's own id beside it. Against its own estimate: a local id the site gave another vehicle (a
        local twin that reuses ids, or restarted without its state), whose link would carry this vehicle's
        identity and vehicle id over to that one."""
        apart = np.zeros(len(gids), dtype=bool)
        mine = np.flatnonzero(gids >= 0)
        if not len(mine):
            return apart
        rows = self._rows(gids[mine])
        have = rows >= 0
        if have.any():
            a, r = mine[have], rows[have]
            apart[a] |= self._beyond_gate(tracks, a, self.tracks.x[r], self.tracks.P[r], np.maximum(stamp - self.t[r], 0.0))
        for other, (o_stamp, o_tracks, o_gids) in self.latest.items():
            if other == site_id or not len(o_gids):
                continue
            _, a, b = np.intersect1d(gids[mine], o_gids, return_indices=True)
            if len(a):
                a = mine[a]
                apart[a] |= self._beyond_gate(tracks, a, o_tracks.x[b], o_tracks.P[b], max(stamp - o_stamp, 0.0))
        return apart

    def _beyond_gate(self, tracks: TrackSet, a: np.ndarray, x: np.ndarray, P: np.ndarray, dt) -> np.ndarray:
        """Bool per local track ``a`` of ``tracks``: beyond the gate (``gate_max_m`` and Mahalanobis both) of the
        state ``x``, ``P`` of its row predicted ``dt`` ahead (a float, or one per row)."""
        cfg = self.config
        dt = np.broadcast_to(np.asarray(dt, dtype=float), len(a))
        diff = tracks.x[a, :2] - predict_positions(x, dt)
        out = np.hypot(diff[:, 0], diff[:, 1]) > cfg.gate_max_m  # (the covariances only of those: few)
        if out.any():
            far = out.nonzero()[0]
            _, Pf = predict(x[far], P[far], dt[far], cfg.accel_noise)
            maha, _ = mahalanobis2(diff[far], tracks.P[a[far], :2, :2] + Pf[:, :2, :2])
            out[far] = maha > cfg.gate_chi2
        return out

    def _rows(self, gids: np.ndarray) -> np.ndarray:
        """Row of each global id in the arrays (-1 when it has none)."""
        if not len(self.tracks) or not len(gids):
            return np.full(len(gids), -1, dtype=np.int64)
        order = np.argsort(self.tracks.ids)
        pos = np.clip(np.searchsorted(self.tracks.ids[order], gids), 0, len(order) - 1)
        rows = order[pos]
        return np.where(self.tracks.ids[rows] == gids, rows, -1)

    def _contribute(self, rows: np.ndarray, tracks: TrackSet, local: np.ndarray, stamp: float) -> None:
        g = self.tracks
        fresher = tracks.last_update[local] >= g.last_update[rows]
        r, lo = rows[fresher], local[fresher]
        g.x[r], g.P[r], self.t[r] = tracks.x[lo], tracks.P[lo], stamp
        g.last_update[r] = tracks.last_update[lo]
        g.dims[r], g.object_class[r] = tracks.dims[lo], tracks.object_class[lo]
        for k, j in zip(rows.tolist(), local.tolist(), strict=True):
            if tracks.vehicle_id[j]:
                g.vehicle_id[k] = tracks.vehicle_id[j]
            if not tracks.sources[j] <= g.sources[k]:
                g.sources[k] = g.sources[k] | tracks.sources[j]

    def _linked_to(self, site_id: str) -> np.ndarray:
        """Bool per row: the row is linked to ``site_id``."""
        mask = np.zeros(len(self.tracks), dtype=bool)
        rows = self._rows(np.fromiter(self.links.get(site_id, {}).values(), dtype=np.int64))
        mask[rows[rows >= 0]] = True
        return mask

    def _linked_any(self) -> np.ndarray:
        gids = np.fromiter((g for links in self.links.values() for g in links.values()), dtype=np.int64)
        mask = np.zeros(len(self.tracks), dtype=bool)
        rows = self._rows(gids)
        mask[rows[rows >= 0]] = True
        return mask

    def _match_new(self, site_id: str, stamp: float, tracks: TrackSet, new: np.ndarray) -> None:
        cfg = self.config
        g = self.tracks
        candidates = np.flatnonzero(~self._linked_to(site_id))
        assigned: dict[int, int] = {}  # local row -> global row
        if len(candidates) and any(tracks.vehicle_id[i] for i in new):  # a vehicle's own id: that global track
            row_of_vehicle = {g.vehicle_id[c]: int(c) for c in candidates if g.vehicle_id[c]}
            for i in new.tolist():
                row = row_of_vehicle.pop(tracks.vehicle_id[i], None) if tracks.vehicle_id[i] else None
                if row is not None:
                    assigned[i] = row
            if assigned:
                taken = set(assigned.values())
                candidates = np.array([c for c in candidates if int(c) not in taken], dtype=np.int64)
                new = np.array([i for i in new.tolist() if i not in assigned], dtype=np.int64)
        if len(candidates) and len(new):
            cx, cP = predict(g.x[candidates], g.P[candidates], stamp - self.t[candidates], cfg.accel_noise)
            near = cKDTree(cx[:, :2]).query_ball_point(tracks.x[new, :2], r=cfg.gate_max_m)
            rows = [(i, c) for i, cand in enumerate(near) for c in cand]
            if rows:
                ri = np.array([r for r, _ in rows])
                ci = np.array([c for _, c in rows])
                maha, _ = mahalanobis2(tracks.x[new[ri], :2] - cx[ci, :2], tracks.P[new[ri], :2, :2] + cP[ci, :2, :2])
                # another vehicle's own id is evidence against, whatever the distance
                vid_new, vid_old = tracks.vehicle_id[new[ri]], g.vehicle_id[candidates[ci]]
                other = np.array([bool(a) and bool(b) and a != b for a, b in zip(vid_new, vid_old, strict=True)],
                                 dtype=bool)
                ok = (maha < cfg.gate_chi2) & ~other
                if ok.any():
                    ur, inv_r = np.unique(ri[ok], return_inverse=True)
                    uc, inv_c = np.unique(ci[ok], return_inverse=True)
                    cost = np.full((len(ur), len(uc)), _BIG)
                    cost[inv_r, inv_c] = maha[ok]
                    for r, c in zip(*linear_sum_assignment(cost), strict=True):
                        if cost[r, c] < _BIG:
                            assigned[int(new[ur[r]])] = int(candidates[uc[c]])
        links = self.links[site_id]
        linked_any = self._linked_any()
        matched_local = np.array(sorted(assigned), dtype=np.int64)
        if len(matched_local):
            matched_rows = np.array([assigned[i] for i in matched_local], dtype=np.int64)
            self.stats["handovers"] += int((~linked_any[matched_rows]).sum())  # else an overlap with another site
            self._contribute(matched_rows, tracks, matched_local, stamp)
            for lid, row in zip(tracks.ids[matched_local].tolist(), matched_rows.tolist(), strict=True):
                links[lid] = int(g.ids[row])
        born = np.array([i for i in new.tolist() if i not in assigned], dtype=np.int64)
        if len(born):
            gids = np.arange(self.next_id, self.next_id + len(born), dtype=np.int64)
            self.next_id += len(born)
            fresh = tracks.select(born)
            fresh.ids = gids
            fresh.born = np.full(len(born), stamp)
            fresh.vehicle_id = object_array([v or "" for v in fresh.vehicle_id])
            self.tracks.extend(fresh)
            self.t = np.concatenate([self.t, np.full(len(born), stamp)])
            for lid, gid in zip(tracks.ids[born].tolist(), gids.tolist(), strict=True):
                links[lid] = gid
            self.stats["births"] += len(born)

    def _merge_duplicates(self, stamp: float) -> None:
        """Merge global tracks that are one vehicle seen by different sites. When a site's track is born
        before (or out of the gate of) the other site's track of the same vehicle, both get a global id and
        no later update joins them: here a pair reported by disjoint sets of sites, carrying no different
        vehicle ids, whose positions stay within the gate (Mahalanobis) and ``merge_max_m`` and velocities
        within ``merge_max_dv_mps`` for ``merge_after_s`` becomes one track (the older id; the other's
        links move to it)."""
        cfg = self.config
        g = self.tracks
        close_now: set[tuple[int, int]] = set()
        linking = {site for source in (self.links, self.dormant) for site, links in source.items() if links}
        if len(g) >= 2 and len(linking) >= 2:  # (a single site has no cross-site duplicates: nothing to do)
            # positions predicted to the stamp for the search; the covariances only of the tracks in a pair
            # (predicting every track's covariance was most of this look's cost)
            dt = np.maximum(stamp - self.t, 0.0)
            pairs = cKDTree(predict_positions(g.x, dt)).query_pairs(cfg.merge_max_m, output_type="ndarray")
            ok = np.zeros(0, np.int64)
            if len(pairs):
                rows, inverse = np.unique(pairs, return_inverse=True)
                a, b = inverse.reshape(pairs.shape).T
                x, P = predict(g.x[rows], g.P[rows], dt[rows], cfg.accel_noise)
                maha, _ = mahalanobis2(x[a, :2] - x[b, :2], P[a, :2, :2] + P[b, :2, :2])
                dv = np.linalg.norm(x[a, 2:4] - x[b, 2:4], axis=1)
                a, b = rows[a], rows[b]  # back to rows of the global tracks
                ok = np.flatnonzero((maha < cfg.gate_chi2) & (dv <= cfg.merge_max_dv_mps))
            if len(ok):  # which sites report each global track (only when some pair stays together)
                sites_of: dict[int, set[str]] = {}
                for source in (self.links, self.dormant):
                    for site, links in source.items():
                        for gid in links.values():
                            sites_of.setdefault(gid, set()).add(site)
                for i, j in zip(a[ok].tolist(), b[ok].tolist(), strict=True):
                    ga, gb = int(g.ids[i]), int(g.ids[j])
                    sa, sb = sites_of.get(ga), sites_of.get(gb)
                    if not sa or not sb or sa & sb:  # one site reports both: two vehicles (or its own duplicate)
                        continue
                    if g.vehicle_id[i] and g.vehicle_id[j] and g.vehicle_id[i] != g.vehicle_id[j]:
                        continue
                    close_now.add((min(ga, gb), max(ga, gb)))
        self._close = {pair: self._close.get(pair, stamp) for pair in close_now}
        due = [pair for pair, since in self._close.items() if stamp - since >= cfg.merge_after_s]
        gone: set[int] = set()  # global ids merged away in this update
        for keep, drop in sorted(due):
            if keep not in gone and drop not in gone and self._merge(keep, drop):
                gone.add(drop)

    def _merge(self, keep: int, drop: int) -> bool:
        """Global track ``drop`` becomes ``keep``: every link to it moves over, its row goes (False: one of them
        is no longer there)."""
        rows = self._rows(np.array([keep, drop], dtype=np.int64))
        if (rows < 0).any():
            return False
        for source in (self.links, self.dormant):
            for links in source.values():
                for lid, gid in links.items():
                    if gid == drop:
                        links[lid] = keep
        for released in self.released.values():
            for lid, (gid, when) in released.items():
                if gid == drop:
                    released[lid] = (keep, when)
        for site, (stamp, tracks, gids) in self.latest.items():
            self.latest[site] = (stamp, tracks, np.where(gids == drop, keep, gids))
        k, d = int(rows[0]), int(rows[1])
        if self.tracks.last_update[d] > self.tracks.last_update[k]:  # the fresher estimate stands for both
            for f in ("x", "P", "last_update", "dims", "object_class"):
                getattr(self.tracks, f)[k] = getattr(self.tracks, f)[d]
            self.t[k] = self.t[d]
        if not self.tracks.vehicle_id[k]:
            self.tracks.vehicle_id[k] = self.tracks.vehicle_id[d]
        self.tracks.sources[k] = self.tracks.sources[k] | self.tracks.sources[d]
        self.tracks.born[k] = min(self.tracks.born[k], self.tracks.born[d])
        alive = np.arange(len(self.tracks)) != d
        self.tracks = self.tracks.select(alive)
        self.t = self.t[alive]
        self.stats["merges"] += 1
        return True

    # ---------------------------------------------------------------------------------- upkeep and output
    def update_staleness(self, now: float) -> list[str]:
        """Mark sites silent for ``stale_after_s`` as stale (dropping their links); age out old tracks."""
        newly = []
        for site in self.sites.values():
            if not site.stale and now - site.last_stamp > self.config.stale_after_s:
                site.stale = True
                newly.append(site.site_id)
                self.dormant[site.site_id] = self.links.get(site.site_id, {})
                self.links[site.site_id] = {}
                self.latest.pop(site.site_id, None)
        keep_for = np.full(len(self.tracks), self.config.reid_window_s)
        waiting = [g for links in self.dormant.values() for g in links.values()]
        for site_id, released in self.released.items():  # forget releases older than dormant_keep_s
            self.released[site_id] = released = {lid: (g, t) for lid, (g, t) in released.items()
                                                 if now - t <= self.config.dormant_keep_s}
            waiting += [g for g, _ in released.values()]
        dormant = self._rows(np.fromiter(waiting, dtype=np.int64))
        keep_for[dormant[dormant >= 0]] = max(self.config.reid_window_s, self.config.dormant_keep_s)
        dead = ~self._linked_any() & (now - self.tracks.last_update > keep_for)
        if dead.any():
            self.stats["deaths"] += int(dead.sum())
            self.tracks = self.tracks.select(~dead)
            self.t = self.t[~dead]
        return newly

    def tracks_at(self, t: float) -> TrackSet:
        """The global tracks predicted to ``t`` (ids are global ids, sorted): those some site reports, those
        no site reports any more for ``track_ttl_s`` after their last measurement, and those of a silent site
        for ``dormant_show_s``."""
        age = t - self.tracks.last_update
        shown = self._linked_any() | (age <= self.config.track_ttl_s)
        if self.dormant and (~shown & (age <= self.config.dormant_show_s)).any():
            silent = self._rows(np.fromiter((g for links in self.dormant.values() for g in links.values()),
                                            dtype=np.int64))
            silent = silent[silent >= 0]
            shown[silent] |= age[silent] <= self.config.dormant_show_s
        order = np.flatnonzero(shown)[np.argsort(self.tracks.ids[shown])]
        out = self.tracks.select(order)
        if len(out):
            out.x, out.P = predict(out.x, out.P, t - self.t[order], self.config.accel_noise)
            self._fuse_sites(out, t)
        return out

    def _fuse_sites(self, out: TrackSet, t: float) -> None:
        """Replace the estimate of every shown track that two or more sites report by the covariance
        intersection of their reports, each predicted to ``t``."""
        if len(self.latest) < 2:
            return
        gids = np.concatenate([g for _, _, g in self.latest.values()])
        counts = np.bincount(np.searchsorted(out.ids, gids[np.isin(gids, out.ids)]), minlength=len(out))
        shared = np.flatnonzero(counts >= 2)
        if not len(shared):
            return
        wanted = out.ids[shared]
        xs, Ps, ts, owner = [], [], [], []
        for stamp, tracks, g in self.latest.values():
            pick = np.flatnonzero(np.isin(g, wanted))
            if len(pick):
                xs.append(tracks.x[pick])
                Ps.append(tracks.P[pick])
                ts.append(np.full(len(pick), stamp))
                owner.append(g[pick])
        x, P = predict(np.concatenate(xs), np.concatenate(Ps), t - np.concatenate(ts), self.config.accel_noise)
        group = np.searchsorted(wanted, np.concatenate(owner))  # wanted is sorted (out.ids are)
        order = np.argsort(group, kind="stable")  # each track's reports in the order of the sites
        count = np.bincount(group, minlength=len(wanted))
        first = np.concatenate([[0], np.cumsum(count)[:-1]])
        fx, fP = x[order[first]], P[order[first]]
        for j in range(1, int(count.max())):  # fold in every track's j-th report at once
            sel = np.flatnonzero(count > j)
            k = order[first[sel] + j]
            fx[sel], fP[sel] = covariance_intersection(fx[sel], fP[sel], x[k], P[k])
        out.x[shared], out.P[shared] = fx, fP

    def site_of_track(self) -> dict[int, str]:
        """For each global id linked to a site, one such site."""
        out: dict[int, str] = {}
        for site, links in self.links.items():
            for gid in links.values():
                out.setdefault(gid, site)
        return out

    # ---------------------------------------------------------------------------------- persistence
    def to_plain(self) -> dict:
        """The whole state as JSON-safe data (tracks, the time each refers to, links, next id, sites)."""
        return {
            "next_id": self.next_id, "t": pack_array(self.t), "tracks": self.tracks.to_plain(),
            "links": {s: {str(k): v for k, v in links.items()} for s, links in self.links.items()},
            "dormant": {s: {str(k): v for k, v in links.items()} for s, links in self.dormant.items()},
            "sites": {s.site_id: {"last_stamp": s.last_stamp if np.isfinite(s.last_stamp) else None,
                                  "snapshots": s.snapshots, "rejected": s.rejected} for s in self.sites.values()},
        }

    @classmethod
    def from_plain(cls, data: dict, config: GlobalTwinConfig = GlobalTwinConfig()) -> GlobalTwin:
        """A twin resumed from :meth:`to_plain`: every site's links go dormant until the site speaks again
        (it may have restarted too), so the ids of vehicles still present come back."""
        twin = cls(config)
        twin.tracks = TrackSet.from_plain(data["tracks"])
        twin.t = unpack_array(data["t"], float).reshape(len(twin.tracks))
        twin.next_id = int(data["next_id"])
        for source in (data.get("dormant", {}), data.get("links", {})):
            for site, links in source.items():
                twin.dormant.setdefault(site, {}).update({int(k): int(v) for k, v in links.items()})
        for site, s in data.get("sites", {}).items():
            # the site's clock may have moved (a replay restarted): its next update is taken whatever its stamp
            twin.sites[site] = SiteState(site, -np.inf, int(s.get("snapshots", 0)), int(s.get("rejected", 0)), stale=True)
        return twin


_OMEGAS = np.linspace(0.05, 0.95, 19)


def covariance_intersection(xa: np.ndarray, Pa: np.ndarray, xb: np.ndarray, Pb: np.ndarray
                            ) -> tuple[np.ndarray, np.ndarray]:
    """Fuse two estimates of one state whose errors may be correlated in an unknown way (Julier and
    Uhlmann's covariance intersection): ``P^-1 = w Pa^-1 + (1 - w) Pb^-1``, ``x = P (w Pa^-1 xa + (1 - w)
    Pb^-1 xb)``, with ``w`` the one of a fine grid that minimises the trace of ``P``. Consistent whatever the
    correlation, so the same measurements reaching the global twin through two sites are not counted twice.

    One pair (``x`` of shape (n,), ``P`` (n, n)) or a stack of pairs ((m, n), (m, n, n)), fused each on its own."""
    if xa.ndim == 1:
        x, P = covariance_intersection(xa[None], Pa[None], xb[None], Pb[None])
        return x[0], P[0]
    try:
        return _intersect(xa, Pa, xb, Pb)
    except np.linalg.LinAlgError:  # a singular one in the stack: each pair on its own
        fused = [_intersect_or_smaller(*pair) for pair in zip(xa, Pa, xb, Pb, strict=True)]
        return np.array([f[0] for f in fused]).reshape(xa.shape), np.array([f[1] for f in fused]).reshape(Pa.shape)


def _intersect(xa: np.ndarray, Pa: np.ndarray, xb: np.ndarray, Pb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Covariance intersection of a stack of pairs; LinAlgError when a matrix of the stack is singular."""
    Ia, Ib = np.linalg.inv(Pa), np.linalg.inv(Pb)
    Ps = np.linalg.inv(_OMEGAS[None, :, None, None] * Ia[:, None] + (1.0 - _OMEGAS)[None, :, None, None] * Ib[:, None])
    best = np.argmin(np.trace(Ps, axis1=2, axis2=3), axis=1)
    w = _OMEGAS[best][:, None]
    P = Ps[np.arange(len(best)), best]
    x = np.einsum("kij,kj->ki", P, w * np.einsum("kij,kj->ki", Ia, xa) + (1.0 - w) * np.einsum("kij,kj->ki", Ib, xb))
    return x, 0.5 * (P + P.transpose(0, 2, 1))


def _intersect_or_smaller(xa: np.ndarray, Pa: np.ndarray, xb: np.ndarray, Pb: np.ndarray
                          ) -> tuple[np.ndarray, np.ndarray]:
    """One pair fused, or, when a covariance is singular, the estimate with the smaller one."""
    try:
        x, P = _intersect(xa[None], Pa[None], xb[None], Pb[None])
        return x[0], P[0]
    except np.linalg.LinAlgError:
        return (xa, Pa) if np.trace(Pa) <= np.trace(Pb) else (xb, Pb)

"""Multi-source multi-object tracker: late fusion of detections from many sensors into one set of tracks.

Frames of detections are processed in sensor-time order; for each frame:

1. every track is predicted to the frame's stamp with the motion model (:mod:`.motion`; each source's own
   latency is compensated by its stamp, whatever it is);
2. detections are associated to tracks (:mod:`.association`: KD-tree candidates, Mahalanobis gate of
   :mod:`.gating`, optimal assignment per connected group; a self-report to the track carrying its id);
3. the assigned tracks are updated, the unassigned tracks in the source's coverage count a miss, the
   unassigned detections re-identify a lost track or start a new one, and tracks are confirmed, deleted
   and merged (:mod:`.management`);
4. late frames are handled by time, not arrival (:mod:`.reorder`): the tracks equal in-order processing's;
   stale and duplicate frames are dropped and counted. An id, once given, names one vehicle: a replay
   gives a detection that started a track before the id it gave it then, never another vehicle's, and a
   track it starts anew where a track it no longer has stood takes that track's id back (ids are what
   the twins downstream link by: an id handed to another vehicle moves its identity and its vehicle id
   there).

The frames of several sources that share one stamp and see no area (the V2X relays of a site's edge servers,
sent together at every instant) can be fused as one (:meth:`MultiSourceTracker.update_instant`): their
detections are associated together, each keeping its source (its track's ``sources`` and ``seen_by``, the
sources' silence): one pass instead of one per relay. Each vehicle reports to one server, so this ends where
taking them one after the other ends (to the bit on 40 s of ``dense`` and ``mixed_v2x``: scripts/twin_digest.py).

Any tracker with the same surface (:class:`Tracker`) can replace this one in the local twin.
State is kept as arrays (one row per track), so predicting and snapshotting 200 tracks is a few numpy
operations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from mobility_twin.perception.detections import Detections
from mobility_twin.tracking import management
from mobility_twin.tracking.association import assign_gated, associate
from mobility_twin.tracking.gating import mahalanobis2
from mobility_twin.tracking.management import TrackerState
from mobility_twin.tracking.motion import predict
from mobility_twin.tracking.reorder import ReorderBuffer
from mobility_twin.tracking.trackset import CONFIRMED, TENTATIVE, TrackSet, object_array

__all__ = ["CONFIRMED", "TENTATIVE", "MultiSourceTracker", "TrackSet", "Tracker", "TrackerConfig", "TrackerStats",
           "object_array"]


@dataclass(frozen=True)
class TrackerConfig:
    # m/s^2, white-acceleration process noise. City traffic brakes for lights and queues at 2-4.5 m/s^2: at 2.5
    # the filter lagged every stop (SUMO city, RSUs alone: speed 2.2 m/s too high while braking, 13% of braking
    # vehicles' tracks over 2 m off); the T-Drive replay's straight runs barely notice (speed error p90 +0.05 m/s)
    accel_noise: float = 5.0
    # a track whose measurement falls beyond its own uncertainty (normalised innovation squared above this)
    # twice in a row is manoeuvring (turning, braking): its covariance is scaled by NIS / this before the
    # update, so that it follows the turn instead of lagging it; one surprise alone (a stray detection) is
    # not (0: off)
    maneuver_nis: float = 2.0
    gate_chi2: float = 13.8  # 99.9 % of chi-square with 2 dof
    gate_max_m: float = 5.0  # never associate farther than this ...
    gate_sigmas: float = 3.0  # ... or than this many of a source's position standard deviations (GNSS: wider)
    rescue_m: float = 3.0  # a track and a detection outside the gate but each other's nearest within this: one vehicle
    initial_speed_sigma: float = 6.0  # m/s
    birth_min_confidence: float = 0.0  # below this a detection starts no track (evidence decides; see management)
    birth_existence: float = 0.2  # existence probability of a new track: this + the next times its confidence
    birth_existence_confidence: float = 0.3
    existence_hit: float = 0.6  # log-odds of existence added by a detection: this + the next times its confidence
    existence_hit_confidence: float = 1.2
    existence_miss: float = 0.9  # log-odds removed by a frame of a source that sees the track's place but not it
    # (a confirmed track: -log(1 - its detection probability), learnt from its own hits and misses, at most this)
    detection_prob_max: float = 0.95
    max_existence: float = 0.99  # existence never exceeds this (evidence against a track must be able to tell)
    confirm_existence: float = 0.85  # a tentative track is confirmed at this existence probability ...
    delete_existence: float = 0.05  # ... and any track deleted below this one
    max_coast_s: float = 1.5  # a confirmed track lives this long without updates, ...
    hidden_coast_s: float = 3.0  # ... or this long when every source covering its place since saw it hidden
    # (perception.visibility: something standing nearer on its bearing, which may be the vehicle itself)
    # a frame whose LiDAR saw a track's place clear (a beam crossed a vehicle's height there and went on) while
    # it detected nothing there: the vehicle would have been detected with this probability, so it is not there
    # (its trace ended, it turned off) and its existence falls at once; only for a track known to within this
    clear_detection_prob: float = 0.999
    clear_max_sigma_m: float = 1.0
    show_existence: float = 0.5  # a confirmed track is published while its existence is at least this
    tentative_max_age_s: float = 1.0
    miss_margin_m: float = 3.0  # a track this far inside a source's coverage edge counts misses, ...
    miss_min_range_m: float = 6.0  # ... and no nearer to the sensor (under a pole's LiDAR: its blind cone)
    dims_smoothing: float = 0.3
    reorder_window_s: float = 0.5
    reid_window_s: float = 5.0  # a confirmed track lost this recently gives its id back to a new one that fits
    reid_max_m: float = 10.0  # ... within this distance of where it was predicted to be
    outage_keep_s: float = 30.0  # ... or this long when it was lost while a source that saw it was silent
    outage_coast_s: float = 15.0  # a confirmed track whose every source fell silent (a sensor or its link down)
    # coasts, shown and predicted, this long after its last update instead of max_coast_s: it went unseen, it
    # did not leave (its covariance grows; the age of its data is published with it)
    silent_after_s: float = 0.5  # a source is silent after this long without a frame (LiDAR sweeps: 0.1-0.2 s)
    merge_distance_m: float = 1.5  # two tracks this close with consistent states are one vehicle (or farther, up
    merge_sigmas: float = 3.0  # to this many standard deviations of the less certain one: a GNSS-born track)
    merge_chi2: float = 9.5  # 95 % of chi-square with 4 dof, on the difference of the two states


@dataclass
class TrackerStats:
    frames: int = 0  # frames processed (frames replayed after a late one count again)
    detections: int = 0  # detections of the frames accepted (once each, however often replayed)
    associated: int = 0  # detections that updated a track
    births: int = 0  # tracks started
    deaths: int = 0  # tracks deleted (evidence gone, coasted out, or a duplicate of another)
    out_of_order: int = 0  # frames older than the newest one fused, within the reorder window
    reprocessed_frames: int = 0  # frames fused again after a late frame was put before them
    dropped_stale: int = 0  # frames older than the reorder window: not fused, counted here
    dropped_duplicate: int = 0  # frames received before (same key): not fused again
    reidentified: int = 0  # new tracks that took back a recently lost track's id
    diverged: int = 0  # tracks dropped because their state stopped being finite


class Tracker(Protocol):
    """What the local twin needs of a tracker."""

    stats: TrackerStats
    time: float  # sensor time of the newest frame processed

    def update(self, frame: Detections, *, may_spawn: bool = True) -> bool:
        """Fuse one frame (any arrival order); False when it was dropped (stale or duplicate)."""
        ...

    def confirmed_at(self, t: float) -> TrackSet:
        """The confirmed tracks predicted to time ``t``."""
        ...


class MultiSourceTracker:
    def __init__(self, config: TrackerConfig = TrackerConfig(), *, id_offset: int = 0) -> None:
        self.config = config
        self.stats = TrackerStats()
        self.state = TrackerState(TrackSet(), TrackSet(), id_offset + 1, -np.inf)
        self._reorder = ReorderBuffer(config.reorder_window_s)
        self._spawn: dict[tuple[str, float], bool] = {}  # the frames whose detections may start no track
        # ids are never given twice: the highest given (a rewind takes the state's counter back, not this),
        # and the id each detection that started a track gave it, (frame key, row) -> id, while a rewind may
        # process its frame again
        self._issued = id_offset
        self._birth_ids: dict[tuple[tuple[str, float], int], int] = {}

    @property
    def tracks(self) -> TrackSet:
        return self.state.tracks

    @property
    def time(self) -> float:
        return self.state.time

    @property
    def next_id(self) -> int:
        """The id the next new track gets (above every id given, those a rewind took back included)."""
        return max(self.state.next_id, self._issued + 1)

    # ---------------------------------------------------------------------------------- input
    def update(self, frame: Detections, *, may_spawn: bool = True) -> bool:
        """Process one frame of detections (in any arrival order; see the module docstring). ``may_spawn``:
        whether its unassigned detections may start tracks (a channel's setting)."""
        if not self._admit(frame):
            return False
        self._take(frame, may_spawn)
        return True

    def update_instant(self, frames: list[Detections], *, may_spawn: bool = True) -> list[bool]:
        """Process frames of several sources that share one stamp and see no area (the V2X relays of a site's
        edge servers) as one frame (``Detections.of_instant``): their detections are associated together,
        each keeping its source. Whether each frame was taken (False: stale or a duplicate, counted)."""
        taken = [self._admit(f) for f in frames]
        parts = [f for f, ok in zip(frames, taken, strict=True) if ok]
        if parts:
            self._take(Detections.of_instant(parts), may_spawn)
        return taken

    def _admit(self, frame: Detections) -> bool:
        """Whether ``frame`` is new and within the reorder window (else counted); a new one is marked seen."""
        refused = self._reorder.admit(frame, self.state.time)
        if not refused:
            return True
        if refused == "duplicate":
            self.stats.dropped_duplicate += 1
        else:
            self.stats.dropped_stale += 1
        return False

    def _take(self, frame: Detections, may_spawn: bool) -> None:
        if not may_spawn:
            self._spawn[frame.key] = False
        self.stats.detections += len(frame)
        if frame.stamp >= self.state.time:
            self._push(frame)
            return
        # late frame: rewind to the newest snapshot before it and process the frames from there, it among
        # them, in stamp order
        self.stats.out_of_order += 1
        had, had_time, issued = self.state.tracks, self.state.time, self._issued
        self.state, before, later = self._reorder.rewind(frame.stamp)
        for f in before:  # from the snapshot to the late frame's stamp
            self._push(f)
            self.stats.reprocessed_frames += 1
        self._push(frame)
        for f in later:
            self._push(f)
            self.stats.reprocessed_frames += 1
        self._keep_ids(had, had_time, issued)

    def _push(self, frame: Detections) -> None:
        self._reorder.record(frame, self.state.copy)
        if len(self._spawn) > 512:  # forget the settings of frames the reorder buffer no longer holds
            for key in [k for k in self._spawn if not self._reorder.holds(k)]:
                del self._spawn[key]
        if len(self._birth_ids) > 2048:  # ... and the ids of births no rewind can reach any more
            oldest = self._reorder.history[0].stamp
            self._birth_ids = {k: i for k, i in self._birth_ids.items() if k[0][1] >= oldest}
        self._process(frame)

    def _new_ids(self, frame: Detections, idx: np.ndarray) -> np.ndarray:
        """Ids of tracks started by the detections ``idx`` of ``frame``: the one each got when its frame was
        processed before (a rewind processes it again), else one never given."""
        ids = np.empty(len(idx), dtype=np.int64)
        key = frame.key
        for n, i in enumerate(idx.tolist()):
            tid = self._birth_ids.get((key, i))
            if tid is None:
                self._issued += 1
                tid = self._birth_ids[(key, i)] = self._issued
            ids[n] = tid
        return ids

    def _keep_ids(self, had: TrackSet, had_time: float, issued: int) -> None:
        """After a rewind: a track the replay started from a detection that started none before (an id above
        ``issued``) where a track of before the rewind (``had``, at ``had_time``), now gone, stands is that
        vehicle seen first by the late frame: it takes that track's id back."""
        tr, cfg = self.state.tracks, self.config
        fresh = np.flatnonzero(tr.ids > issued)
        if not len(fresh) or not len(had):
            return
        kept = np.concatenate([tr.ids, self.state.graveyard.ids])
        gone = np.flatnonzero(~np.isin(had.ids, kept))
        if not len(gone):
            return
        x_had, P_had = predict(had.x[gone], had.P[gone], max(self.state.time - had_time, 0.0), cfg.accel_noise)
        diff = tr.x[fresh, None, :2] - x_had[None, :, :2]
        maha, _ = mahalanobis2(diff, tr.P[fresh, None, :2, :2] + P_had[None, :, :2, :2])
        pairs = assign_gated(maha, (maha < cfg.gate_chi2) & (np.linalg.norm(diff, axis=2) < cfg.gate_max_m))
        if pairs:
            self._rename({int(tr.ids[fresh[r]]): int(had.ids[gone[c]]) for r, c in pairs})

    def _rename(self, rename: dict[int, int]) -> None:
        """Tracks ``old`` become ``new`` for every ``old: new`` of ``rename``, in the state and in every snapshot
        a rewind may start from; the detections that started them give the new ids in a replay (and those
        that gave the new ids before give none of them again)."""
        old = np.fromiter(rename, dtype=np.int64)

        def renamed(ids: np.ndarray) -> np.ndarray:
            hit = np.isin(ids, old)
            if not hit.any():
                return ids
            out = ids.copy()  # (a snapshot's arrays may be shared: replaced, never written into)
            out[hit] = [rename[i] for i in ids[hit].tolist()]
            return out

        states = [self.state] + [c.state for c in self._reorder.history if c.state is not None]
        for st in states:
            st.tracks.ids = renamed(st.tracks.ids)
            st.graveyard.ids = renamed(st.graveyard.ids)
        taken = set(rename.values())
        self._birth_ids = {k: rename.get(i, i) for k, i in self._birth_ids.items() if i not in taken}

    # ---------------------------------------------------------------------------------- one frame
    def _process(self, frame: Detections) -> None:
        self.stats.frames += 1
        if not len(frame) and not len(self.state.tracks):  # nothing seen, nothing to keep: only time moves on
            self._advance(frame)
            if len(self.state.graveyard):
                management.prune(self.state, self.config, self.stats)
            return
        # a state that diverged (an input that slipped past validation) gives infs and NaNs: no warnings, the
        # track is dropped and counted (management.prune); one errstate for the frame, not one per step
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            self._fuse(frame)

    def _advance(self, frame: Detections) -> None:
        """The tracks predicted to the frame's stamp, which becomes the tracker's time; its sources heard from."""
        cfg, state = self.config, self.state
        # frames of one instant (the V2X relays of every server, a tick's sensors) share their stamp: the
        # tracks are where the first of them left them (a step of 0 s would change nothing)
        if len(state.tracks) and math.isfinite(state.time) and frame.stamp != state.time:
            state.tracks.x, state.tracks.P = state.tracks.predicted(frame.stamp - state.time, cfg.accel_noise)
        state.time = frame.stamp
        for source in ((frame.source_id,) if frame.sources is None else frame.source_ids):
            if len(state.tracks):
                management.retire_unseen(state, source, cfg)
            state.source_last[source] = max(state.source_last.get(source, -np.inf), frame.stamp)

    def _fuse(self, frame: Detections) -> None:
        """One frame with something in it (detections, or tracks to miss): tracks predicted to its stamp,
        association, track updates, misses, births and pruning."""
        self._advance(frame)
        cfg, state = self.config, self.state
        tr = state.tracks
        n, m = len(tr), len(frame)
        if n and m:
            sigma = math.sqrt(frame.cov.max())  # its largest position deviation (a covariance's largest entry is a variance)
            assigned_t, assigned_d, withheld = associate(tr, frame, cfg.gate_chi2,
                                                         max(cfg.gate_max_m, cfg.gate_sigmas * sigma), cfg.rescue_m)
            management.apply_measurements(tr, frame, assigned_t, assigned_d, cfg)
        else:
            assigned_t = assigned_d = withheld = np.zeros(0, dtype=np.int64)
        self.stats.associated += len(assigned_t)
        management.count_misses(tr, frame, assigned_t, cfg)
        if len(assigned_d) < m:  # detections left: new tracks (or lost ones back), where the channel allows
            free = np.ones(m, dtype=bool)
            free[assigned_d] = False
            free[withheld] = False
            free &= (frame.confidence >= cfg.birth_min_confidence) | frame.reports
            if not self._spawn.get(frame.key, True):
                free &= frame.reports
            if np.count_nonzero(free):
                management.birth(state, frame, np.flatnonzero(free), cfg, self.stats, self._new_ids)
        # the frame that last updated each track, of a sensor that sees an area (the last to tell it from its
        # neighbours: a vehicle's own report, relayed, says nothing of the others; with a V2X track updated
        # between two LiDAR frames, a far parked car's new track beside it merged into it): the assigned
        # ones, and those it started (appended after row n, self-reports' too)
        if frame.sensor_range > 0:
            state.tracks.last_frame[assigned_t] = self.stats.frames
        if len(state.tracks) > n:
            state.tracks.last_frame[n:] = self.stats.frames
        management.prune(state, cfg, self.stats)

    # ---------------------------------------------------------------------------------- restart
    def saved(self) -> dict:
        """The confirmed tracks and the id counter as JSON-safe data (what a restart needs to keep the ids)."""
        tracks = self.state.tracks.select(self.state.tracks.status == CONFIRMED)
        return {"next_id": self.next_id, "time": self.state.time if np.isfinite(self.state.time) else None,
                "tracks": tracks.to_plain()}

    def restore(self, saved: dict, keep_s: float) -> int:
        """After a restart: the saved confirmed tracks wait ``keep_s`` (from their last update) to be found
        again by re-identification under their old ids; new ids continue the saved counter. Returns how many
        tracks were restored."""
        tracks = TrackSet.from_plain(saved["tracks"])
        self.state.next_id = max(self.state.next_id, int(saved["next_id"]))
        self._issued = max(self._issued, self.state.next_id - 1)
        if len(tracks):
            self.state.graveyard = self.state.graveyard.joined(tracks)
            until = float(tracks.last_update.max()) + keep_s
            self.state.keep_until.update({int(i): until for i in tracks.ids.tolist()})
        return len(tracks)

    # ---------------------------------------------------------------------------------- output
    def confirmed_at(self, t: float) -> TrackSet:
        """A copy of the confirmed tracks predicted to time ``t`` (not earlier than the last frame).

        Tracks whose existence fell below ``show_existence`` (more likely gone than there) are left out, and
        so are those older than ``max_coast_s`` at ``t`` (the next frame would delete them, and when every source
        falls silent no frame comes to do it), except those hidden since (shown up to ``hidden_coast_s``) and
        those whose every source has been silent since their last update (shown up to ``outage_coast_s``).
        """
        tracks, now = self.state.tracks, self.state.time
        if not len(tracks):
            return tracks.sharing()  # no rows to write into: sharing the empty arrays is a copy
        cfg = self.config
        if int(tracks.status.min()) == CONFIRMED and float(tracks.existence.min()) >= cfg.show_existence \
                and t - float(tracks.last_update.min()) <= cfg.max_coast_s:
            out = tracks.copy()  # (the common case: every track shown)
        else:
            age = t - tracks.last_update
            confirmed = (tracks.status == CONFIRMED) & (tracks.existence >= cfg.show_existence)
            alive = confirmed & (age <= cfg.max_coast_s)
            if np.count_nonzero(alive) < np.count_nonzero(confirmed):  # some coast past max_coast_s: hidden, or
                alive |= confirmed & tracks.hidden & (age <= cfg.hidden_coast_s)  # through a silence of their
                late = (confirmed & ~alive & (age <= cfg.outage_coast_s)).nonzero()[0]  # sources?
                alive[late[management.unseen(self.state, late, t, cfg.silent_after_s)]] = True
            out = tracks.select(alive)
        if not len(out):
            return out
        if math.isfinite(now) and t > now:
            out.x, out.P = out.predicted(t - now, cfg.accel_noise)
        if np.count_nonzero(out.systematic):  # the error its sources repeat in every frame, on top of the filter's
            var = out.systematic**2
            out.P[:, 0, 0] += var
            out.P[:, 1, 1] += var
        return out

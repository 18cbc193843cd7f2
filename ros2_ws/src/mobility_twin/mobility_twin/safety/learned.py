"""Rear-end conflicts predicted by a model learned from the road (:mod:`mobility_twin_models.safety`).

:class:`ConflictPredictor` moves every road user on at constant velocity (with random accelerations) and
warns of the bodies touching. Followers brake: most approaches to a queue that a constant-velocity prediction
sees end in a touch end with the follower stopping in time, and the truth the warnings are judged by (SUMO's
surrogate-safety device: a time to collision below 1.5 s) is about how closely they do. The learned
predictor scores each follower-leader pair (the follower's nearest road user ahead in its lane) with a model
trained on SUMO's conflicts: its probability is that of the follower's time to collision falling below the
critical value within the horizon. It predicts rear-end conflicts only.

**Views gate** (``max_unseen_gap_m``, with :attr:`Motion.views` or :attr:`Motion.unseen_ahead_m`): a follower
whose road to the road user ahead holds a stretch at least that long that no LiDAR saw clear is not warned:
a car the twin does not hold may stand there, and the follower's conflict is then with it (:mod:`.views`).

**Crossing conflicts are not predicted.** Tried (scratch, not shipped): the pairs of road users on lanes into
or inside one junction with a pair of crossing movements (SUMO's foe table) hold every crossing conflict and
collision of seeds 7-14 of the collision bench (54 of 54 on the true states), but a model of the same kind
trained on them (seeds 11-14) flagged 49 pairs on the twin's input of seeds 7-10 to find 13 of the 24
conflicts' pairs at p >= 0.5 (99 for 21 at p >= 0.3): most are left turns at a light's green start, and
whether the car in a lane for straight on and left turns left is not in its motion. Knowing each car's
actual movement would at best halve the pairs that do not conflict.

Also tried and not shipped (scratch, the twin's saved inputs of ``mtwin bench collision --quick``, seeds 7-10):
the unseen stretch as a feature of the model instead of a gate (retrained on seeds 11-14 beside the same model
without it: mean recall 0.824 against 0.806 and precision 0.793 against 0.799 when trained on the twin's, the true
states' and the raw detections' inputs, 0.809 against 0.819 and 0.787 against 0.781 on the twin's alone: no
consistent gain, and the gate on top of it lifts precision less than on the model without it); and leaders along a
junction's movements for a follower in the last 30 m of a lane into a junction or inside one (the road it may turn
into): no conflict more warned on any of the four seeds, precision 0.804 -> 0.792 on average. The conflicts missed
with no follower-leader pair on the true states are crossing ones and collisions (SUMO's type 111), not turns
into a queue.

Conflicts come out as :class:`Conflict` (kind ``REAR_END``, the follower yields, the point at the leader's
rear, ``ttc_s`` the time to collision of the pair's current motion, capped at the horizon), so the warnings
with hysteresis (:class:`WarningTracker`) take them as they take the Monte Carlo predictor's; the warning rule
for them has no time-to-collision bar of its own (``learned_warning_config``): the model's probability
already says within the horizon.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import numpy as np

from mobility_twin.safety.predictor import REAR_END, Conflict, Motion
from mobility_twin.safety.warnings import WarningConfig
from mobility_twin_models.safety.features import FEATURES, Accelerations, follower_pairs

_TTC, _GAP = FEATURES.index("ttc_s"), FEATURES.index("gap_m")  # the feature columns a Conflict reports


def learned_warning_config(base: WarningConfig = WarningConfig(), horizon_s: float = 4.0) -> WarningConfig:
    """``base`` with the time-to-collision bars at the horizon (the learned probability covers it)."""
    return replace(base, ttc_on_s=horizon_s, ttc_off_s=max(base.ttc_off_s, horizon_s))


def usable_states(m: Motion, max_age_s: float) -> tuple[np.ndarray, np.ndarray | None, int, int]:
    """(the states of ``m`` with NaN rows for those that are not finite or older than ``max_age_s``, each one's age
    (None: not known), how many were not finite, how many stale): the rows the learned predictor pairs."""
    x = np.asarray(m.x, float)
    finite = np.isfinite(x).all(axis=1)
    age = None if m.last_update is None else m.t - np.asarray(m.last_update, float)
    stale = np.zeros(len(x), bool) if age is None else (age > max_age_s) & finite
    usable = finite & ~stale
    return (np.where(usable[:, None], x, np.nan), age, int(len(x) - np.count_nonzero(finite)),
            int(np.count_nonzero(stale)))


def gap_segments(m: Motion, i: np.ndarray, j: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """((K, 2) the front bumpers of followers ``i``, (K, 2) the end of the road between them and their leaders
    ``j``, (K, 2) the leaders' rear bumpers) in ``m``, along the line from follower to leader. The road ends at
    the leader's rear, or at the follower's front where the bumpers overlap (no road between them)."""
    x, length = np.asarray(m.x, float), np.asarray(m.length, float)
    ahead = x[j, :2] - x[i, :2]
    unit = ahead / np.maximum(np.hypot(ahead[:, 0], ahead[:, 1]), 1e-6)[:, None]
    fronts = x[i, :2] + 0.5 * length[i, None] * unit
    rears = x[j, :2] - 0.5 * length[j, None] * unit
    behind = np.einsum("kd,kd->k", rears - fronts, unit) <= 0
    return fronts, np.where(behind[:, None], fronts, rears), rears


class LearnedConflictPredictor:
    """``predict(motion) -> list[Conflict]`` with a rear-end model (default: the shipped checkpoint)."""

    def __init__(self, model=None, *, min_probability: float = 0.05, max_age_s: float = 1.0,
                 max_unseen_gap_m: float | None = None) -> None:
        if model is None:
            from mobility_twin_models.safety import load_checkpoint

            model, _ = load_checkpoint()
        self.model = model
        self.horizon_s = float(model.config.horizon_s)
        self.min_probability = min_probability
        self.max_age_s = max_age_s
        self.max_unseen_gap_m = max_unseen_gap_m
        self.counts: Counter = Counter()
        self.accelerations = Accelerations()

    def predict(self, m: Motion) -> list[Conflict]:
        n = len(m.ids)
        accel = self.accelerations.update(m.t, m.ids, m.x)  # (every cycle: the velocities they are taken from)
        if n < 2:
            return []
        x, age, not_finite, stale = usable_states(m, self.max_age_s)  # (a NaN row takes no part)
        self.counts["not_finite"] += not_finite
        self.counts["stale"] += stale
        i, j, feats = follower_pairs(x, np.asarray(m.length, float), None if m.heading is None else np.asarray(m.heading, float),
                                     P=m.P, lane_heading=m.lane_heading, stop_m=m.stop_m, age_s=age, accel=accel)
        self.counts["pairs_considered"] += len(i)
        if not len(i):
            return []
        p = self.model.probability(feats)
        keep = np.flatnonzero(p >= self.min_probability)
        fronts, ends, rears = gap_segments(m, i[keep], j[keep])
        unseen = None
        if self.max_unseen_gap_m is not None and len(keep):
            if m.unseen_ahead_m is not None:  # (measured with the motion: the same pairs)
                unseen = np.nan_to_num(np.asarray(m.unseen_ahead_m, float)[i[keep]], nan=0.0)
            elif m.views is not None and m.views.fresh(m.t):
                unseen = m.views.unseen_m(m.t, fronts, ends)
            else:  # no view to go by (none came, or none fresh): no gate, rather than no warning at all
                self.counts["no_fresh_views"] += 1
        if unseen is not None:
            hidden = unseen >= self.max_unseen_gap_m
            self.counts["gap_unseen"] += int(np.count_nonzero(hidden))
            keep, rears = keep[~hidden], rears[~hidden]
        out = []
        for k, rear in zip(keep.tolist(), rears, strict=True):
            f, ld = int(i[k]), int(j[k])
            a, b = int(m.ids[f]), int(m.ids[ld])
            yield_a = a < b  # the follower yields; a < b in a Conflict
            out.append(Conflict(min(a, b), max(a, b), float(p[k]), float(min(feats[k, _TTC], self.horizon_s)),
                                float("nan"), float(feats[k, _GAP]), REAR_END, yield_a, not yield_a,
                                (float(rear[0]), float(rear[1]))))
        return out

"""Validation of what enters a twin: one place for each input, every rejection counted with its reason.

A frame of detections (local twin) or a local twin's tracks (global twin) is checked before anything fuses
it:

* the stamp must lie within ``max_age_s`` before and ``max_future_s`` after the node's clock: a message
  stamped far in the future would otherwise move the twin's time ahead and make it refuse every real
  update after it; one far in the past cannot be fused anyway (reasons ``stamp_in_future``, ``stamp_too_old``);
* each object must be finite (position, velocity, covariance, box, confidence), inside the deployment's
  area plus ``area_margin_m``, no faster than its class can drive, with a positive-definite position
  covariance no wider than ``max_position_sigma_m`` and no narrower than ``min_position_sigma_m`` (a
  covariance of 1e-300 m^2 claims an impossible certainty and overflows the filter's gain), and a box no larger than ``max_box_m``; an object that
  is not is dropped from the frame (reasons ``not_finite``, ``outside_area``, ``implausible_speed``,
  ``bad_covariance``, ``implausible_box``), the rest of the frame is fused.

The limits are those of a real city, not of a scenario: 70 m/s for cars and motorcycles, 45 m/s for trucks
and buses, 15 m/s for pedestrians; anything faster is a fault or a forgery.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from shapely import contains_xy
from shapely.geometry import Polygon

from mobility_twin.perception.detections import Detections
from mobility_twin.tracking import TrackSet
from mobility_twin_core import ObjectClass

#: fastest plausible speed per object class, m/s (a class not listed: the first entry's, cars)
MAX_SPEED_MPS = {int(ObjectClass.UNKNOWN): 70.0, int(ObjectClass.CAR): 70.0, int(ObjectClass.MOTORCYCLE): 70.0,
                 int(ObjectClass.TRUCK): 45.0, int(ObjectClass.BUS): 45.0, int(ObjectClass.PEDESTRIAN): 15.0}


@dataclass(frozen=True)
class InputLimits:
    area: tuple[tuple[float, float], ...] = ()  # the deployment's polygon in map; () = no area check
    area_margin_m: float = 200.0
    max_future_s: float = 2.0
    max_age_s: float = 30.0
    max_position_sigma_m: float = 50.0
    min_position_sigma_m: float = 0.005
    max_velocity_sigma_mps: float = 50.0
    max_box_m: float = 30.0
    max_speed_mps: dict = field(default_factory=lambda: dict(MAX_SPEED_MPS))


class InputValidator:
    """Checks frames and track sets against :class:`InputLimits`; :attr:`rejected` counts by reason."""

    def __init__(self, limits: InputLimits = InputLimits()) -> None:
        self.limits = limits
        self.rejected: Counter = Counter()
        self._area = Polygon(limits.area).buffer(limits.area_margin_m) if limits.area else None
        speeds = limits.max_speed_mps
        self._speed_table = np.full(256, speeds.get(int(ObjectClass.CAR), 70.0))
        for cls, v in speeds.items():
            self._speed_table[int(cls) % 256] = v

    # ------------------------------------------------------------------------------------------ stamps
    def stamp_ok(self, stamp: float, now: float) -> bool:
        """Whether ``stamp`` is within the window around ``now`` (a clock at 0 has not started: only
        finiteness is checked then)."""
        if now <= 0.0:
            if np.isfinite(stamp):
                return True
            self.rejected["not_finite"] += 1
            return False
        if not np.isfinite(stamp) or stamp > now + self.limits.max_future_s:
            self.rejected["stamp_in_future" if np.isfinite(stamp) else "not_finite"] += 1
            return False
        if stamp < now - self.limits.max_age_s:
            self.rejected["stamp_too_old"] += 1
            return False
        return True

    # ------------------------------------------------------------------------------------------ objects
    def _keep(self, xy, vel, cov, dims, cls, extra_finite) -> np.ndarray:
        if self._all_plausible(xy, vel, cov, dims, cls, extra_finite):
            return np.ones(len(xy), dtype=bool)
        lim = self.limits
        finite = np.isfinite(xy).all(axis=1) & np.isfinite(cov).all(axis=(1, 2)) & np.isfinite(dims).all(axis=1) \
            & extra_finite
        has_vel = np.isfinite(vel).all(axis=1)
        finite &= has_vel | np.isnan(vel).all(axis=1)  # velocity: measured (finite) or not (both NaN), never inf
        keep = finite.copy()
        self.rejected["not_finite"] += int(np.count_nonzero(~finite))
        if self._area is not None and keep.any():
            inside = np.zeros(len(xy), dtype=bool)
            inside[keep] = contains_xy(self._area, xy[keep, 0], xy[keep, 1])
            self.rejected["outside_area"] += int(np.count_nonzero(keep & ~inside))
            keep &= inside
        speed = np.where(has_vel, np.hypot(vel[:, 0], vel[:, 1]), 0.0)
        fast = keep & (speed > self._speed_limit(cls))
        self.rejected["implausible_speed"] += int(np.count_nonzero(fast))
        keep &= ~fast
        with np.errstate(invalid="ignore", over="ignore"):
            low, high = _variance_bounds(cov)
            pd = (low >= lim.min_position_sigma_m**2) & (high <= lim.max_position_sigma_m**2)
        bad_cov = keep & ~pd
        self.rejected["bad_covariance"] += int(np.count_nonzero(bad_cov))
        keep &= pd
        with np.errstate(invalid="ignore"):
            box = (dims >= 0).all(axis=1) & (dims <= lim.max_box_m).all(axis=1)
        self.rejected["implausible_box"] += int(np.count_nonzero(keep & ~box))
        return keep & box

    def _all_plausible(self, xy, vel, cov, dims, cls, extra_finite) -> bool:
        """Whether every object passes every check of :meth:`_keep`, from a few whole-array reductions (what
        nearly every frame and update holds: then no mask per check and reason is built)."""
        lim = self.limits
        if not len(xy):
            return True
        if not (extra_finite.all() and np.isfinite(xy).all() and np.isfinite(cov).all() and np.isfinite(dims).all()):
            return False
        has_vel = np.isfinite(vel).all(axis=1)
        if not (has_vel | np.isnan(vel).all(axis=1)).all():
            return False
        speed = np.where(has_vel, np.hypot(vel[:, 0], vel[:, 1]), 0.0)
        with np.errstate(invalid="ignore", over="ignore"):  # a huge finite covariance: not plausible, no warning
            low, high = _variance_bounds(cov)
            return bool((speed <= self._speed_limit(cls)).all() and low.min() >= lim.min_position_sigma_m**2
                        and high.max() <= lim.max_position_sigma_m**2 and dims.min() >= 0
                        and dims.max() <= lim.max_box_m
                        and (self._area is None or contains_xy(self._area, xy[:, 0], xy[:, 1]).all()))

    def _speed_limit(self, cls) -> np.ndarray:
        """The fastest plausible speed (m/s) of each object class of ``cls``."""
        return self._speed_table[np.asarray(cls, dtype=np.int64) % 256]

    def detections(self, frame: Detections, now: float) -> Detections | None:
        """The frame without its implausible objects, or None when the whole frame is refused."""
        if not self.stamp_ok(frame.stamp, now):
            return None
        if not (np.isfinite(frame.sensor_xy[0]) and np.isfinite(frame.sensor_xy[1]) and np.isfinite(frame.sensor_range)
                and frame.sensor_range >= 0):
            self.rejected["bad_sensor_pose"] += 1
            return None
        if not len(frame):
            return frame
        conf_ok = np.isfinite(frame.confidence) & (frame.confidence >= 0) & (frame.confidence <= 1) \
            & np.isfinite(frame.yaw)
        keep = self._keep(frame.xy, frame.velocity, frame.cov, frame.dims, frame.object_class, conf_ok)
        if keep.all():
            return frame
        return frame.select(keep)

    def tracks(self, tracks: TrackSet, stamp: float, now: float) -> TrackSet | None:
        """A local twin's tracks without the implausible ones, or None when the message is refused."""
        if not self.stamp_ok(stamp, now):
            return None
        if not len(tracks):
            return tracks
        P = tracks.P
        finite_p = np.isfinite(P).all(axis=(1, 2)) & np.isfinite(tracks.last_update) & np.isfinite(tracks.box_yaw)
        # the whole state covariance: finite, symmetric, positive semi-definite, velocity sigma at most
        # max_velocity_sigma_mps (a finite 1e308 cross term would overflow the first prediction)
        with np.errstate(invalid="ignore", over="ignore"):
            Pf = P if finite_p.all() else np.where(finite_p[:, None, None], P, 0.0)
            largest = np.abs(Pf).max(axis=(1, 2))
            sym = np.abs(Pf - Pf.transpose(0, 2, 1)).max(axis=(1, 2)) <= 1e-6 * (1.0 + largest)
            vel_ok = np.maximum(Pf[:, 2, 2], Pf[:, 3, 3]) <= self.limits.max_velocity_sigma_mps**2
            eig_ok = np.zeros(len(P), dtype=bool)
            cand = finite_p & sym & vel_ok & (largest <= self.limits.max_position_sigma_m**2 * 4)
            if cand.any():
                eig_ok[cand] = _positive_semidefinite(Pf[cand])
        keep = self._keep(tracks.x[:, :2], tracks.x[:, 2:], P[:, :2, :2], tracks.dims, tracks.object_class, finite_p)
        self.rejected["bad_covariance"] += int(np.count_nonzero(keep & ~eig_ok))
        keep &= eig_ok
        future = keep & (tracks.last_update > now + self.limits.max_future_s)
        self.rejected["stamp_in_future"] += int(np.count_nonzero(future))
        keep &= ~future
        return tracks if keep.all() else tracks.select(keep)

    def summary(self) -> str:
        return ", ".join(f"{k} {v}" for k, v in sorted(self.rejected.items())) or "none"


def _variance_bounds(cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per 2x2 covariance [[a, b], [b, d]] of ``cov``: its smaller eigenvalue (the narrowest direction of the
    ellipse) and the larger of its two variances a, d."""
    a, b, d = cov[:, 0, 0], cov[:, 0, 1], cov[:, 1, 1]
    return 0.5 * (a + d) - np.hypot(0.5 * (a - d), b), np.maximum(a, d)


_JITTER = 1e-9 * np.eye(4)


def _positive_semidefinite(P: np.ndarray) -> np.ndarray:
    """Whether each symmetric matrix of ``P`` has no eigenvalue below -1e-9. One Cholesky factorisation of
    the whole stack shifted by 1e-9 answers for all at once when all are (what every update but a bad one
    holds: four times cheaper than the eigenvalues); otherwise the eigenvalues decide for each."""
    try:
        np.linalg.cholesky(P + _JITTER)
        return np.ones(len(P), dtype=bool)
    except np.linalg.LinAlgError:
        return np.linalg.eigvalsh(P).min(axis=1) >= -1e-9

"""The MDP state (eq. 14) as the actor-critic's input vector, shared by training, evaluation and the ROS node.

Eq. 14: ``S_t = {d_e, f_e, f_hat_e, Q(t) | e in E_t}``. Two layouts, both with the candidates nearest
first (the order of eq. 15's action index):

* ``"paper"``: per candidate ``d_e`` (km), ``f_e`` (10 GHz), ``f_hat_e`` (GHz) and whether it is the
  current server; then ``Q(t) / C`` scaled, and whether the current server is among the candidates.
  The current-server flag is our addition: the reward (eq. 16) charges ``C(e_t)`` only when ``e_t``
  differs from ``e_{t-1}``, which eq. 14 does not contain, so without it the state is not Markov.
* ``"extended"`` (default): the above plus, per candidate, the twin's eq. 10 latency of this slot's
  task divided by its deadline (capped at 2). It is a function of the twin's state and the task, so it
  adds no information the twin does not have; it saves the networks from learning eq. 4-10.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mobility_twin_models.offloading.errors import OffloadingError

LAYOUTS = ("paper", "extended")
QUEUE_SCALE = 4.0  # Q / C divided by this


@dataclass(frozen=True)
class FeatureSpec:
    """Which layout, for how many candidates; ``size`` is the input width of the networks."""

    candidates: int
    layout: str = "extended"

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise OffloadingError(f"feature layout must be one of {LAYOUTS}, got {self.layout!r}")
        if self.candidates < 1:
            raise OffloadingError(f"candidates must be >= 1, got {self.candidates}")

    @property
    def per_candidate(self) -> int:
        return 5 if self.layout == "extended" else 4

    @property
    def size(self) -> int:
        return self.candidates * self.per_candidate + 2


def state_features(spec: FeatureSpec, *, distance_m, f_est_hz, deviation_hz, is_current, queue, cost: float,
                   latency_est_s=None, deadline_s=None) -> np.ndarray:
    """(U, spec.size) float32 states from (U, N) candidate arrays and (U,) queue / deadline."""
    distance_m = np.asarray(distance_m, dtype=float)
    if distance_m.ndim != 2 or distance_m.shape[1] != spec.candidates:
        raise OffloadingError(f"expected (users, {spec.candidates}) candidate arrays, got {distance_m.shape}")
    is_current = np.asarray(is_current, dtype=float)
    cols = [distance_m / 1000.0, np.asarray(f_est_hz) / 1e10, np.asarray(deviation_hz) / 1e9, is_current]
    if spec.layout == "extended":
        if latency_est_s is None or deadline_s is None:
            raise OffloadingError("the extended layout needs latency_est_s and deadline_s")
        ratio = np.asarray(latency_est_s) / np.asarray(deadline_s)[:, None]
        cols.append(np.minimum(np.nan_to_num(ratio, nan=2.0, posinf=2.0), 2.0))
    per = np.stack(cols, axis=-1).reshape(len(distance_m), -1)
    glob = np.column_stack([np.asarray(queue, dtype=float) / (cost * QUEUE_SCALE), is_current.max(axis=1)])
    out = np.concatenate([per, glob], axis=1).astype(np.float32)
    if not np.all(np.isfinite(out)):
        raise OffloadingError("state features are not finite (NaN or infinite input)")
    return out


def observation_features(spec: FeatureSpec, obs, cost: float) -> np.ndarray:
    """:func:`state_features` of a :class:`~mobility_twin_models.offloading.rollout.Observation`."""
    return state_features(spec, distance_m=obs.distance_m, f_est_hz=obs.f_est_hz, deviation_hz=obs.deviation_hz,
                          is_current=obs.is_current, queue=obs.queue, cost=cost, latency_est_s=obs.latency_est_s,
                          deadline_s=obs.deadline_s)

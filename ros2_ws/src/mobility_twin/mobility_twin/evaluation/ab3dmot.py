"""An AB3DMOT-style baseline tracker (Weng et al., IROS 2020), in bird's-eye view: the reference a tracker
should beat with the least effort.

Per frame, with the frame's stamp ``t`` and detections ``z`` (M, 2) (box centres, m):

1. every track's constant-velocity Kalman filter, state ``[x, y, vx, vy]``, is predicted to ``t``
   (``dt`` from the stamps; white-acceleration process noise of ``accel_noise`` m/s^2);
2. detections are assigned to tracks by the Hungarian algorithm on the centre distance between the
   prediction and the detection; a pair farther than ``match_distance_m`` is no match;
3. matched tracks are updated (measurement noise ``measurement_sigma_m`` on x and y); each unmatched
   detection starts a track (at rest, speed standard deviation ``initial_speed_sigma``);
4. a track not updated for more than ``max_age_s`` is deleted;
5. output: tracks with at least ``confirm_hits`` updates (the first detection counts), while not older
   than ``max_age_s`` (AB3DMOT's rule), or, with ``output_coasting`` off, only those updated in this frame
   (SORT's rule).

numpy and scipy only, nothing of ``mobility_twin``: the peers' runner, in an environment of its own,
imports this file as a top-level module.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment


@dataclass(frozen=True)
class BaselineConfig:
    match_distance_m: float = 2.0
    confirm_hits: int = 3
    max_age_s: float = 2.0
    accel_noise: float = 3.0  # m/s^2
    measurement_sigma_m: float = 0.3
    initial_speed_sigma: float = 10.0  # m/s
    output_coasting: bool = True


class Ab3dmotBaseline:
    """The baseline; ``update(stamp, xy)`` then ``confirmed()`` gives the ids and positions to report."""

    def __init__(self, config: BaselineConfig = BaselineConfig()) -> None:
        self.config = config
        self.x = np.zeros((0, 4))
        self.P = np.zeros((0, 4, 4))
        self.ids = np.zeros(0, dtype=np.int64)
        self.hits = np.zeros(0, dtype=np.int64)
        self.last_update = np.zeros(0)
        self.time = -np.inf
        self.next_id = 1

    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        return f"Ab3dmotBaseline({', '.join(f'{k}={v}' for k, v in asdict(self.config).items())})"

    def update(self, stamp: float, xy: np.ndarray) -> None:
        """Process one frame: detections ``xy`` (M, 2) in metres at ``stamp`` (s)."""
        cfg = self.config
        z = np.asarray(xy, dtype=float).reshape(-1, 2)
        if np.isfinite(self.time) and len(self.ids):
            self._predict(stamp - self.time)
        self.time = stamp
        rows = cols = np.zeros(0, dtype=np.int64)
        if len(self.ids) and len(z):
            d = np.linalg.norm(self.x[:, None, :2] - z[None, :, :], axis=2)
            gated = d <= cfg.match_distance_m
            if gated.any():
                rows, cols = linear_sum_assignment(np.where(gated, d, 1e6))
                ok = gated[rows, cols]
                rows, cols = rows[ok], cols[ok]
        if len(rows):
            self._correct(rows, z[cols])
            self.hits[rows] += 1
            self.last_update[rows] = stamp
        free = np.ones(len(z), dtype=bool)
        free[cols] = False
        if free.any():
            self._birth(z[free], stamp)
        alive = stamp - self.last_update <= cfg.max_age_s
        if not alive.all():
            self.x, self.P, self.ids = self.x[alive], self.P[alive], self.ids[alive]
            self.hits, self.last_update = self.hits[alive], self.last_update[alive]

    def confirmed(self) -> tuple[np.ndarray, np.ndarray]:
        """Ids (K,) and positions (K, 2) of the tracks to report after the last frame."""
        keep = self.hits >= self.config.confirm_hits
        if not self.config.output_coasting:
            keep &= self.last_update == self.time
        return self.ids[keep].copy(), self.x[keep, :2].copy()

    # ---------------------------------------------------------------------------------- filter
    def _predict(self, dt: float) -> None:
        if dt <= 0:
            return
        q = self.config.accel_noise**2
        F = np.eye(4)
        F[0, 2] = F[1, 3] = dt
        Q = np.zeros((4, 4))
        Q[[0, 1], [0, 1]] = q * dt**4 / 4
        Q[[0, 1, 2, 3], [2, 3, 0, 1]] = q * dt**3 / 2
        Q[[2, 3], [2, 3]] = q * dt**2
        self.x = self.x @ F.T
        self.P = F @ self.P @ F.T + Q

    def _correct(self, rows: np.ndarray, z: np.ndarray) -> None:
        x, P = self.x[rows], self.P[rows]
        R = np.eye(2) * self.config.measurement_sigma_m**2
        S = P[:, :2, :2] + R
        K = P[:, :, :2] @ np.linalg.inv(S)  # (k, 4, 2)
        innovation = z - x[:, :2]
        self.x[rows] = x + np.einsum("kij,kj->ki", K, innovation)
        self.P[rows] = P - K @ P[:, :2, :]

    def _birth(self, z: np.ndarray, stamp: float) -> None:
        m = len(z)
        cfg = self.config
        x = np.zeros((m, 4))
        x[:, :2] = z
        P = np.zeros((m, 4, 4))
        P[:, [0, 1], [0, 1]] = cfg.measurement_sigma_m**2
        P[:, [2, 3], [2, 3]] = cfg.initial_speed_sigma**2
        self.x = np.concatenate([self.x, x])
        self.P = np.concatenate([self.P, P])
        self.ids = np.concatenate([self.ids, np.arange(self.next_id, self.next_id + m, dtype=np.int64)])
        self.next_id += m
        self.hits = np.concatenate([self.hits, np.ones(m, dtype=np.int64)])
        self.last_update = np.concatenate([self.last_update, np.full(m, stamp)])

"""Users' journeys from T-Drive trajectories, scaled into the network square (DITEN Sec. V).

Built on the project's simulator: :func:`mobility_twin_sim.tdrive.iter_tracks` streams the taxis,
:class:`mobility_twin_sim.geo.LocalENU` projects them to metres around the box centre, :class:`mobility_twin_sim.geo.SquareScaler`
maps the box into the square and :class:`mobility_twin_sim.fleet.Fleet` interpolates positions at any time.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from mobility_twin_models.offloading.config import TrajectoryConfig
from mobility_twin_models.offloading.errors import OffloadingError
from mobility_twin_sim.fleet import Fleet
from mobility_twin_sim.geo import LocalENU, SquareScaler
from mobility_twin_sim.tdrive import BUNDLED, iter_tracks

#: The busy hour of the bundled extract (2008-02-02 16:00-17:00 Beijing time, UNIX seconds).
BUSY_HOUR = (1201939200.0, 1201942800.0)


@dataclass(frozen=True, eq=False)
class Journeys:
    """Positions of ``U`` users over ``tau`` slots in the network square.

    Attributes:
        taxi_ids: (U,) T-Drive taxi ids.
        xy: (tau, U, 2) positions, metres.
        start_s: trajectory time of slot 0 (UNIX s).
        step_s: trajectory seconds between slots (``slot_s * speed_factor``).
        slot_s: simulated seconds per slot.
    """

    taxi_ids: np.ndarray
    xy: np.ndarray
    start_s: float
    step_s: float
    slot_s: float

    @property
    def n_users(self) -> int:
        return self.xy.shape[1]

    @property
    def n_slots(self) -> int:
        return self.xy.shape[0]

    def mean_speed(self) -> float:
        """Mean speed of the users in the square, m/s of simulated time."""
        if self.n_slots < 2:
            return 0.0
        step = np.linalg.norm(np.diff(self.xy, axis=0), axis=-1)
        return float(step.mean() / self.slot_s)


def source_path(config: TrajectoryConfig) -> Path:
    return Path(config.source) if config.source else BUNDLED / "cbd"


@lru_cache(maxsize=4)
def _fleet(path: str, centre_lon: float, centre_lat: float, box_side_m: float, side_m: float,
           max_gap_s: float) -> Fleet:
    half = box_side_m / 2.0
    scaler = SquareScaler(-half, half, -half, half, side_m)
    return Fleet.from_tracks(iter_tracks(path), LocalENU(centre_lon, centre_lat), scaler=scaler,
                             max_gap_s=max_gap_s)


def load_fleet(config: TrajectoryConfig, side_m: float) -> Fleet:
    """The taxis of ``config.source`` in the network square (cached: loading the CBD subset takes ~1 s)."""
    return _fleet(str(source_path(config)), config.centre_lon, config.centre_lat, config.box_side_m,
                  side_m, config.max_gap_s)


def _window(config: TrajectoryConfig, fleet: Fleet) -> tuple[float, float]:
    lo, hi = fleet.time_range
    busy_lo, busy_hi = max(lo, BUSY_HOUR[0]), min(hi, BUSY_HOUR[1])
    if busy_hi - busy_lo < 600.0:  # another data set: its own time range
        busy_lo, busy_hi = lo, hi
    mid = (busy_lo + busy_hi) / 2.0
    return {"train": (busy_lo, mid), "test": (mid, busy_hi), "all": (busy_lo, busy_hi)}[config.split]


def sample_journeys(fleet: Fleet, config: TrajectoryConfig, side_m: float, n_users: int,
                    rng: np.random.Generator, *, attempts: int = 20) -> Journeys:
    """``n_users`` taxis present and inside the square for ``config.slots`` slots from a random start.

    The start is uniform in the split's window (the journey may run past the window's end). When fewer
    than ``n_users`` taxis qualify, another start is tried; after ``attempts`` the error names the best count.
    """
    step = config.slot_s * config.speed_factor
    lo, hi = _window(config, fleet)
    best = 0
    for _ in range(attempts):
        start = float(rng.uniform(lo, hi))
        states = [fleet.state_at(start + k * step) for k in range(config.slots)]
        common = states[0].ids
        for s in states[1:]:
            common = np.intersect1d(common, s.ids, assume_unique=True)
        xy = np.empty((config.slots, len(common), 2))
        for k, s in enumerate(states):
            pos = np.searchsorted(s.ids, common) if np.all(np.diff(s.ids) > 0) else _index_of(s.ids, common)
            xy[k, :, 0] = s.x[pos]
            xy[k, :, 1] = s.y[pos]
        inside = np.all((xy >= 0.0) & (xy <= side_m), axis=(0, 2))
        ids, xy = common[inside], xy[:, inside]
        best = max(best, len(ids))
        if len(ids) >= n_users:
            pick = np.sort(rng.choice(len(ids), size=n_users, replace=False))
            return Journeys(ids[pick], xy[:, pick], start, step, config.slot_s)
    raise OffloadingError(
        f"at most {best} taxis of {source_path(config)} stay in the square for {config.slots} slots of "
        f"{step:g} trajectory seconds ({config.split} window); asked for {n_users} users")


def _index_of(ids: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    order = np.argsort(ids)
    return order[np.searchsorted(ids[order], wanted)]

"""How the twin sees the simulated fleet: the whole truth, or telemetry plus roadside perception.

The simulator's fleet is the ground truth: every taxi's position at every instant (fixes interpolated).
A twin does not necessarily know it:

* :func:`truth_view` (``observation="truth"``): the twin knows every vehicle's position and velocity at
  every slot (a connected fleet reporting every slot, or perception everywhere). Every age is zero.
* :class:`TelemetryView` (``observation="telemetry"``): the twin is fed by what T-Drive really is, a
  telematics feed: a vehicle's twin holds its last GPS report (position, and the velocity of the leg
  that ended there) and its age; a vehicle within ``rsu_range_m`` of an RSU is seen by that RSU's LiDAR
  and its twin is fresh. After it leaves the RSU's range the twin keeps that sighting (position, velocity,
  its age) until a newer GPS report arrives: a twin holds its freshest observation, whichever sensor
  made it. The view is therefore stateful: call it slot by slot in time order (an earlier time than the
  last call starts it afresh). The cellular network knows which server serves every vehicle (the true
  association), so the twin's vehicle-server relation is exact even when its position is stale.

Labels (the serving server ``k`` slots later) always come from the truth.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from mobility_twin_core import Layout
from mobility_twin_models.relations.snapshot import TwinSnapshot, snapshot_from_fleet

OBSERVATIONS = ("truth", "telemetry")


def truth_view(state, layout: Layout) -> TwinSnapshot:
    """The twin knows the fleet state exactly (ages zero)."""
    return snapshot_from_fleet(state, layout)


class TelemetryView:
    """The twin of a fleet known from its GPS reports, plus RSU perception.

    Args:
        fleet: the simulator's :class:`mobility_twin_sim.fleet.Fleet` (its fixes are the reports).
        layout: servers and RSUs.
        rsu_range_m: an RSU perceives vehicles within this range (default 100 m).
    """

    def __init__(self, fleet, layout: Layout, *, rsu_range_m: float = 100.0) -> None:
        self.fleet = fleet
        self.layout = layout
        self.rsu_range_m = float(rsu_range_m)
        rsu_xy = np.asarray([(r.x, r.y) for r in layout.rsus], dtype=float).reshape(-1, 2)
        self._rsu_tree = cKDTree(rsu_xy) if len(rsu_xy) else None
        self._servers = layout.server_set
        self._reset()

    def _reset(self) -> None:
        """Forget every RSU sighting (per taxi: time, position, velocity of the last one)."""
        n = len(self.fleet.taxi_ids)
        self._seen_t = np.full(n, -np.inf)
        self._seen_xy = np.zeros((n, 2))
        self._seen_vel = np.zeros((n, 2))
        self._last_t = -np.inf

    def __call__(self, state) -> TwinSnapshot:
        if state.t < self._last_t:
            self._reset()
        self._last_t = float(state.t)
        truth = snapshot_from_fleet(state, layout=self.layout)
        serving = self._servers.serving(truth.vehicle_xy)
        truth = truth.with_vehicles(serving >= 0)  # the network serves them; the others are not in the twin
        serving = serving[serving >= 0]
        n = len(truth.vehicle_ids)
        if n == 0:
            return truth
        f = self.fleet
        taxi = f.rows(truth.vehicle_ids)
        j = f.last_fix_index(taxi, truth.t)  # >= 0: a taxi in the fleet state has a fix by now
        prev = j - 1
        has_prev = prev >= f.offsets[taxi]
        prev = np.maximum(prev, 0)
        dt = f.t[j] - f.t[prev]
        leg_ok = has_prev & (dt > 0) & (dt <= f.max_gap_s)
        safe_dt = np.where(leg_ok, dt, 1.0)
        vel = np.where(leg_ok[:, None], np.column_stack([f.x[j] - f.x[prev], f.y[j] - f.y[prev]]) / safe_dt[:, None],
                       0.0)
        xy = np.column_stack([f.x[j], f.y[j]])
        age = truth.t - f.t[j]
        if self._rsu_tree is not None:
            seen = self._rsu_tree.query(truth.vehicle_xy, k=1, distance_upper_bound=self.rsu_range_m)[0] <= \
                self.rsu_range_m
        else:
            seen = np.zeros(n, bool)
        self._seen_t[taxi[seen]] = truth.t
        self._seen_xy[taxi[seen]] = truth.vehicle_xy[seen]
        self._seen_vel[taxi[seen]] = truth.vehicle_vel[seen]
        sighting = self._seen_t[taxi] > f.t[j]  # seen by an RSU since its last report (now, or earlier)
        xy = np.where(sighting[:, None], self._seen_xy[taxi], xy)
        vel = np.where(sighting[:, None], self._seen_vel[taxi], vel)
        age = np.where(sighting, truth.t - self._seen_t[taxi], age)
        return TwinSnapshot(truth.t, truth.vehicle_ids, xy, vel, truth.server_ids, truth.server_xy,
                            truth.server_coverage_m, truth.server_capacity_ghz, truth.rsu_ids, truth.rsu_xy,
                            vehicle_age_s=age, vehicle_server=serving)

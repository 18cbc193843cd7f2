"""Offline data: simulator trajectories -> observed snapshots -> labelled graphs, and task streams.

:func:`observe_fleet` replays a :class:`mobility_twin_sim.fleet.Fleet` slot by slot over a server layout through a
:class:`~mobility_twin_models.relations.snapshot.TwinHistory` (exactly what the live node does with the twin's
messages). :func:`make_samples` pairs each snapshot at ``t`` with the one at ``t + k`` slots to label it:
the serving server of each vehicle at ``t + k`` (handover) and each server's load at ``t + k`` (load).
A :class:`Sample` can be restricted to a district: its graph holds the nodes within the district grown
by a margin (context), its loss and metrics only the vehicles and servers inside the district.

A vehicle is labelled when it is present and served both at ``t`` and at ``t + k``; a vehicle that
leaves the data (end of its trace, a gap longer than the fleet's ``max_gap_s``) or the covered area in
between is not.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch_geometric.data import HeteroData

from mobility_twin_core import Layout
from mobility_twin_models.relations.config import GraphConfig
from mobility_twin_models.relations.graph import SERVER, VEHICLE, build_graph
from mobility_twin_models.relations.layout import Area
from mobility_twin_models.relations.observation import OBSERVATIONS, TelemetryView, truth_view
from mobility_twin_models.relations.snapshot import (
    ObservedSnapshot,
    StaticRelations,
    TwinHistory,
    kept_index,
    renumber,
)


def observe_fleet(fleet, layout: Layout, slot_s: float, *, start: float | None = None,
                  end: float | None = None, config: GraphConfig | None = None, rsu_range_m: float = 100.0,
                  observation: str = "truth", reports=None, roads=None, signals=None) -> list[ObservedSnapshot]:
    """One observed snapshot per slot of ``fleet`` from ``start`` to ``end`` (UNIX s; defaults: its range).

    ``observation``: how the twin sees the fleet, ``"truth"`` or ``"telemetry"``
    (see :mod:`mobility_twin_models.relations.observation`). Labels made from these snapshots always use the true
    association, which both views carry. ``reports``: the fleet of the vehicles' own reports that telemetry
    sees (default: ``fleet``'s fixes, as T-Drive's are; a SUMO world's dense fleet has a thinned one).
    ``roads``: a :class:`~mobility_twin_models.relations.roads.RoadNetwork` to put the vehicles on;
    ``signals(t)``: the traffic lights' states at ``t`` (the SUMO recording's ``signals_at``).
    """
    if observation not in OBSERVATIONS:
        raise ValueError(f"observation must be one of {OBSERVATIONS}, got {observation!r}")
    view = (TelemetryView(fleet if reports is None else reports, layout, rsu_range_m=rsu_range_m) if observation == "telemetry"
            else (lambda state: truth_view(state, layout)))
    history = TwinHistory(config or GraphConfig(), rsu_range_m=rsu_range_m, roads=roads)
    return [history.observe(view(state), None if signals is None else signals(state.t))
            for state in fleet.slots(slot_s, start, end)]


@dataclass
class Sample:
    """One labelled snapshot: the observation at ``t`` and what happened ``k`` slots later.

    ``y_server[v]``: index (into this sample's servers) of the server serving vehicle ``v`` at ``t + k``,
    -1 when unknown. ``y_load[s]``: load of server ``s`` at ``t + k``. ``vehicle_mask`` / ``server_mask``:
    the nodes that count for the loss and the metrics. ``task``: which task of a stream it belongs to.
    """

    obs: ObservedSnapshot
    y_server: np.ndarray
    y_load: np.ndarray
    vehicle_mask: np.ndarray
    server_mask: np.ndarray
    task: int = 0
    _graph: HeteroData | None = field(default=None, repr=False)

    def graph(self, config: GraphConfig, *, cache: bool = False) -> HeteroData:
        """The labelled graph (built on demand; kept when ``cache``)."""
        if self._graph is not None:
            return self._graph
        data = label_graph(build_graph(self.obs, config), self.y_server, self.y_load, self.vehicle_mask,
                           self.server_mask)
        if cache:
            self._graph = data
        return data

    @property
    def labelled_vehicles(self) -> int:
        return int(np.count_nonzero(self.vehicle_mask & (self.y_server >= 0)))


def label_graph(data: HeteroData, y_server: np.ndarray, y_load: np.ndarray, vehicle_mask: np.ndarray,
                server_mask: np.ndarray) -> HeteroData:
    """Attach labels and masks: ``vehicle.y_server``, ``vehicle.mask`` (counted and labelled),
    ``server.y_load``, ``server.mask``."""
    data[VEHICLE].y_server = torch.from_numpy(np.asarray(y_server, dtype=np.int64))
    data[VEHICLE].mask = torch.from_numpy(np.asarray(vehicle_mask, dtype=bool) & (np.asarray(y_server) >= 0))
    data[SERVER].y_load = torch.from_numpy(np.asarray(y_load, dtype=np.float32))
    data[SERVER].mask = torch.from_numpy(np.asarray(server_mask, dtype=bool))
    return data


def future_server(now: ObservedSnapshot, later: ObservedSnapshot) -> np.ndarray:
    """[V] serving server (index into ``now``'s servers) of each vehicle of ``now`` in ``later``, -1 when
    the vehicle is absent or unserved there. Both snapshots must share their servers."""
    out = np.full(len(now.snapshot.vehicle_ids), -1, dtype=np.int64)
    _, i_now, i_later = np.intersect1d(now.snapshot.vehicle_ids, later.snapshot.vehicle_ids, return_indices=True)
    out[i_now] = later.serving[i_later]
    return out


def make_samples(observed: Sequence[ObservedSnapshot], horizon_slots: int, *, config: GraphConfig | None = None,
                 region: Area | None = None, margin_m: float = 1000.0, indices: Iterable[int] | None = None,
                 task: int = 0) -> list[Sample]:
    """Labelled samples from consecutive observed snapshots (one slot apart).

    Args:
        observed: the full-area snapshots, one per slot, sharing one server layout.
        horizon_slots: k, the label is taken k slots later.
        region: restrict to a district (None: everything). The graph keeps the nodes within
            ``margin_m`` of the district; the loss and metrics count those inside it.
        indices: which snapshots to label (default all that have a snapshot k slots later).
        task: task number stored in the samples.
    """
    config = config or GraphConfig()
    if horizon_slots < 1:
        raise ValueError(f"horizon_slots must be >= 1, got {horizon_slots}")
    n = len(observed)
    indices = range(n - horizon_slots) if indices is None else [i for i in indices if 0 <= i < n - horizon_slots]
    samples: list[Sample] = []
    static_cache: dict[tuple, StaticRelations] = {}
    for i in indices:
        now, later = observed[i], observed[i + horizon_slots]
        y = future_server(now, later)
        y_load = later.load
        if region is None:
            samples.append(Sample(now, y, y_load.copy(), np.ones(len(y), bool),
                                  np.ones(len(now.snapshot.server_ids), bool), task))
            continue
        s = now.snapshot
        outer = region.grown(margin_m)
        keep_s = outer.contains(s.server_xy)
        keep_r = outer.contains(s.rsu_xy)
        keep_v = outer.contains(s.vehicle_xy)
        key = (keep_s.tobytes(), keep_r.tobytes())
        if key not in static_cache:
            static_cache[key] = StaticRelations.build(s.server_xy[keep_s], s.server_coverage_m[keep_s],
                                                      s.rsu_xy[keep_r], config)
        # the vehicles that select() keeps: inside the outer box and served by a kept server
        kept_v = keep_v & keep_s[now.serving]
        sub = now.select(keep_v, keep_s, keep_r, static_cache[key])
        y_sub = renumber(y[kept_v], kept_index(keep_s))
        samples.append(Sample(sub, y_sub, y_load[keep_s].copy(), region.contains(sub.snapshot.vehicle_xy),
                              region.contains(sub.snapshot.server_xy), task))
    return samples


def split_indices(n: int, horizon_slots: int, *, test_fraction: float = 0.25) -> tuple[range, range]:
    """Train on the first part, test on the last ``test_fraction``; a gap of ``horizon_slots`` between
    them so that no training label looks into the test period."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    usable = n - horizon_slots
    cut = round(usable * (1 - test_fraction))
    return range(0, max(cut - horizon_slots, 0)), range(cut, usable)

"""Configuration of the relation models, as frozen dataclasses (units in the field names and docstrings).

* :class:`LayoutConfig`: where the edge servers and RSUs of the offline (simulated) city stand.
* :class:`GraphConfig`: which relations become edges, and how features are scaled.
* :class:`ModelConfig`: the heterogeneous GNN (or, with ``message_passing=False``, the same network
  without the graph: the MLP ablation).
* :class:`TrainConfig`: optimiser and the continual-learning strategy of one learner.

Every config validates itself in ``__post_init__`` and names the bad value; a field's range is declared with the
field (``positive(...)``, ``int_at_least(...)``... of :mod:`mobility_twin_core.checks`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from mobility_twin_core.checks import (
    check_fields,
    fraction,
    int_at_least,
    non_negative,
    one_of,
    positive,
)

STRATEGIES = ("naive", "replay", "ewc", "joint")


def from_dict(cls, values: dict[str, Any]):
    """Rebuild a config dataclass from :func:`dataclasses.asdict` output (lists back to tuples)."""
    known = {f.name for f in fields(cls)}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"{cls.__name__} has no field(s) {sorted(unknown)}")
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def to_dict(config) -> dict[str, Any]:
    return asdict(config)


@dataclass(frozen=True)
class LayoutConfig:
    """A hexagonal grid of edge servers (base stations) and RSUs scattered among them.

    Args:
        spacing_m: distance between neighbouring servers (default 300 m). DITEN (004) serves users from
            base stations of 150 m radius; a hexagonal grid covers the plane without holes when the radius
            is at least ``spacing / sqrt(3)``, so 300 m spacing with a 200 m radius is DITEN's cell size
            with a margin of overlap (urban small cells).
        coverage_m: coverage radius of every server (default 200 m). Must be >= ``spacing / sqrt(3)``
            unless ``allow_holes``.
        jitter_m: seeded uniform jitter of each server position, metres (default 0).
        rsus_per_server: RSUs placed uniformly at random in the area, per server (default 0.25).
        rsu_range_m: sensing range of an RSU; its load is the vehicles within it (default 100 m).
        capacity_ghz: each server draws its CPU clock once, uniformly in this range (default 1.5-3 GHz).
        seed: seed of the jitter, the RSU positions and the capacities.
        allow_holes: accept a coverage radius that leaves gaps between cells.
    """

    spacing_m: float = positive(300.0)
    coverage_m: float = positive(200.0)
    jitter_m: float = non_negative(0.0)
    rsus_per_server: float = non_negative(0.25)
    rsu_range_m: float = positive(100.0)
    capacity_ghz: tuple[float, float] = (1.5, 3.0)
    seed: int = 0
    allow_holes: bool = False

    def __post_init__(self) -> None:
        check_fields(self)
        lo, hi = self.capacity_ghz
        if not 0 < lo <= hi:
            raise ValueError(f"capacity_ghz must be an increasing pair of positive numbers, got {self.capacity_ghz!r}")
        if not self.allow_holes and self.coverage_m < self.spacing_m / math.sqrt(3) - 1e-9:
            raise ValueError(f"coverage_m {self.coverage_m} leaves holes in a hexagonal grid of spacing "
                             f"{self.spacing_m} m (needs >= {self.spacing_m / math.sqrt(3):.1f}); "
                             f"set allow_holes=True to accept them")


@dataclass(frozen=True)
class GraphConfig:
    """The relations that become edges, and feature scaling.

    Args:
        vehicle_radius_m: vehicle-vehicle proximity radius (default 150 m).
        max_vehicle_neighbours: each vehicle receives from at most this many nearest vehicles within the
            radius (default 8), so a traffic jam does not make the graph quadratic.
        server_adjacency_factor: servers closer than this factor times the median nearest-server distance
            are adjacent (default 1.5: the six neighbours of a hexagonal grid).
        candidate_radius_m: the servers a vehicle may be handed to within the horizon are those within
            this radius of it (default 800 m: 30 s at 20 m/s plus a cell radius; on T-Drive 99.9 % of
            the 30 s displacements are below 750 m).
        max_candidates: at most this many (the nearest) candidate servers per vehicle (default 32).
        horizon_s: how far ahead handovers and loads are predicted (default 30 s).
        position_scale_m: positions are divided by this (default 5000 m).
        origin_m: positions are taken relative to this point of ``map`` (default (0, 0)).
        absolute_position: give nodes their (scaled) absolute position. Lets the model learn places
            (roads, busy servers); without it the model sees only relative geometry.
        speed_scale_mps: speeds are divided by this (default 10 m/s).
        load_scale: loads (vehicles served) are divided by this (default 10).
        motion_change_mps: a change of velocity larger than this starts a new leg of a vehicle's motion
            (default 0.5 m/s).
        leg_scale_s: time since the last change of motion (and the last leg's length) is divided by this
            and capped at 1 (default 300 s).
        load_lags: how many past loads each server carries as features (default 6).
        fresh_age_s: a vehicle twin whose state is older than this is stale: its handover candidates are
            looked for around its serving server rather than its (outdated) position (default 2 s).
        follow_window_s: a vehicle follows the vehicles that made the same handover (previous -> current
            server) at most this long before or after it (default 300 s).
        max_leaders: each vehicle follows at most this many of them, the closest in time (default 8).
        roads: the graph holds the road network (road nodes, vehicle-on-road and road-to-road relations;
            :mod:`mobility_twin_models.relations.roads`) of the snapshots that carry one; a snapshot without
            one (the T-Drive replay, a twin with no map) gets no road nodes, so one model serves both
            (default False).
        turn_half_life_s: with a road network, the history counts the turns each road's vehicles take
            (the junctions' turn ratios, :class:`~mobility_twin_models.relations.roads.TurnCounts`) with
            this half-life, so that they follow the traffic as it changes (default 1800 s).
    """

    vehicle_radius_m: float = positive(150.0)
    max_vehicle_neighbours: int = int_at_least(8, low=1)
    server_adjacency_factor: float = positive(1.5)
    candidate_radius_m: float = positive(800.0)
    max_candidates: int = int_at_least(32, low=1)
    horizon_s: float = positive(30.0)
    position_scale_m: float = positive(5000.0)
    origin_m: tuple[float, float] = (0.0, 0.0)
    absolute_position: bool = True
    speed_scale_mps: float = positive(10.0)
    load_scale: float = positive(10.0)
    motion_change_mps: float = positive(0.5)
    leg_scale_s: float = positive(300.0)
    load_lags: int = int_at_least(6, low=1)
    fresh_age_s: float = non_negative(2.0)
    follow_window_s: float = positive(300.0)
    max_leaders: int = int_at_least(8, low=1)
    roads: bool = False
    turn_half_life_s: float = positive(1800.0)

    def __post_init__(self) -> None:
        check_fields(self)
        if len(self.origin_m) != 2:
            raise ValueError(f"origin_m must be (x, y), got {self.origin_m!r}")


@dataclass(frozen=True)
class ModelConfig:
    """The relation network.

    Args:
        hidden: width of every node embedding (default 48).
        layers: message-passing layers (default 2).
        message_passing: False removes the graph: every node is encoded from its own features only
            (the "MLP without the graph" ablation, same heads, same depth).
        load_weight: weight of the load-forecast loss next to the handover loss (default 1.0).
        without_relations: names of message-passing relations to leave out (e.g. ``("near",)`` drops
            ``(vehicle, near, vehicle)``); a node type (``"server"``, ``"road"``, ...) leaves out every
            relation that touches it, the nodes keeping their own features; for ablations of what each
            relation adds (default: none).

    The size is the live prediction's: a larger network learns a little more on the SUMO city but is slower
    than the node's 20 ms. Tried on 2026-12-07 (``mtwin bench relations --world sumo``'s handover section at
    30 s, its ``--quick`` training, seeds 0-4 in both regimes, the MLP ablation at the same size): the GNN's
    margin over the MLP was 2.77 points on average with these defaults (3 points or more on 2 of the 10), 3.07
    with 3 layers (5 of 10) and 3.08 with 3 layers of 64 (7 of 10; the GNN 0.900 / 0.922 against 0.896 / 0.920
    in the telemetry / truth regime). The bench's live prediction on its 1,000-node graph, compiled as the
    node runs it (one thread, 120 slots, two rounds): 18.9 / 19.7 ms with these defaults, 20.7 / 20.4 ms with
    3 layers, 23.2 / 24.2 ms with 3 layers of 64 (forward pass 7.4-7.9, 8.9-9.1, 11.8-12.4 ms).
    """

    hidden: int = int_at_least(48, low=4)
    layers: int = int_at_least(2, low=1)
    message_passing: bool = True
    load_weight: float = non_negative(1.0)
    without_relations: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_fields(self)
        if not (isinstance(self.without_relations, tuple) and all(isinstance(r, str) for r in self.without_relations)):
            raise ValueError(f"without_relations must be a tuple of relation names, got {self.without_relations!r}")


@dataclass(frozen=True)
class TrainConfig:
    """Optimiser and continual-learning strategy.

    Args:
        lr: Adam learning rate (default 3e-3).
        weight_decay: Adam weight decay (default 0).
        graphs_per_step: snapshot graphs per gradient step (default 2).
        strategy: ``naive`` (fine-tune on the newest data only), ``replay`` (plus graphs drawn from a
            bounded reservoir of past graphs), ``ewc`` (plus an elastic penalty on parameters that mattered
            for past tasks), ``joint`` (all data seen so far; the upper reference).
        buffer_graphs: capacity of the replay reservoir, in graphs (default 64).
        replay_graphs: replayed graphs added to every step (default 2).
        ewc_lambda: strength of the EWC penalty (default 2e5). The Fisher information of a loss averaged
            over a graph's vehicles is small, so the strength is large: on the sensing-changes stream of
            ``mtwin bench relations --quick``, 2e3 / 2e4 / 2e5 left 5.5 / 3.6 / 1.5 points of forgetting
            (naive fine-tuning: 11.3), at an average accuracy of 0.760 / 0.771 / 0.778.
        ewc_fisher_graphs: graphs used to estimate the diagonal Fisher information at a task's end.
        ewc_decay: online EWC: the old Fisher is multiplied by this before the new one is added.
        seed: seed of the weights, the reservoir and the sampling of graphs.
    """

    lr: float = positive(3e-3)
    weight_decay: float = non_negative(0.0)
    graphs_per_step: int = int_at_least(2, low=1)
    strategy: str = one_of("naive", STRATEGIES)
    buffer_graphs: int = int_at_least(64, low=1)
    replay_graphs: int = int_at_least(2, low=0)
    ewc_lambda: float = non_negative(2e5)
    ewc_fisher_graphs: int = int_at_least(32, low=1)
    ewc_decay: float = fraction(1.0)
    seed: int = 0

    def __post_init__(self) -> None:
        check_fields(self)

"""Train the relation GNN the ``relation_learner`` node starts from, and write the shipped checkpoint.

    python -m mobility_twin_models.relations.train                     # writes the shipped relations_gnn.pt
    python -m mobility_twin_models.relations.train --steps 200 --out /tmp/relations.pt   # a quick one

The data and the set-up are those of ``mtwin bench relations --quick`` (which calls the same functions,
and reports how the model does on the held-out quarter): the bundled CBD subset of T-Drive, the busy hour,
a hexagonal grid of edge servers 300 m apart with RSUs, both observation regimes (the twin knows every
vehicle exactly, and the twin fed by GPS reports plus RSU perception), 5 s slots, a 30 s horizon; the
model is trained on the first three quarters of both regimes. Seeded: the same command gives the same
weights.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

#: lon, lat of the ``map`` origin: the bundled CBD subset's centre
CBD_ORIGIN = (116.4468, 39.9135)
#: How the twin sees the fleet (mobility_twin_models.relations.observation): from GPS reports + RSU LiDAR, or exactly.
REGIMES = ("telemetry", "truth")


@dataclass(frozen=True)
class Prepared:
    """The observed snapshots of the busy hour, per regime, and what they were made from. ``fleet``: the
    vehicles' own reports (the telemetry regime's fixes; T-Drive's GPS fixes)."""

    fleet: object
    fixes: int
    start_s: float
    layout: object
    layout_config: object
    area: object
    observed: dict  # regime -> list[ObservedSnapshot]
    #: SUMO: each vehicle's destination road (index into the road network; -1 unknown), in ``fleet.taxi_ids`` order
    destination: object = None


def busiest_start(fleet) -> float:
    """Start of the data's busy hour: the first whole minute after the first five minutes of fixes (the
    fleet needs a few minutes before every taxi has a fix to interpolate from)."""
    import numpy as np

    lo, _ = fleet.time_range
    counts, edges = np.histogram(fleet.t, bins=np.arange(lo, lo + 6 * 3600, 300.0))
    busy = edges[:-1][counts >= 0.5 * counts.max()]
    return float(math.ceil((busy[0] + 300.0) / 60.0) * 60.0)


def graph_for(horizon_s: float, *, roads: bool = False):
    """The graph configuration of a horizon: candidates are everything a vehicle reaches at 20 m/s, plus a
    cell radius; ``roads``: with the road network (snapshots of a SUMO world)."""
    from mobility_twin_models.relations import GraphConfig

    return GraphConfig(horizon_s=horizon_s, candidate_radius_m=200.0 + 20.0 * horizon_s, roads=roads)


def prepare(data_path: Path, *, area_m: tuple[float, float, float, float] = (-3000.0, 3000.0, -3000.0, 3000.0),
            minutes: float = 50.0, slot_s: float = 5.0, seed: int = 0) -> Prepared:
    """Load the T-Drive files, lay out the servers and RSUs, and observe the fleet slot by slot in both regimes."""
    from mobility_twin_models.relations import Area, GraphConfig, LayoutConfig, hex_layout, observe_fleet
    from mobility_twin_sim.fleet import Fleet
    from mobility_twin_sim.geo import LocalENU
    from mobility_twin_sim.tdrive import LoadReport, ReaderConfig, iter_tracks

    report = LoadReport()
    fleet = Fleet.from_tracks(iter_tracks(data_path, ReaderConfig(), report), LocalENU(*CBD_ORIGIN), max_gap_s=300.0)
    t0 = busiest_start(fleet)
    area = Area(*area_m)
    layout_cfg = LayoutConfig(seed=seed)
    layout = hex_layout(area, layout_cfg)
    observed = {regime: observe_fleet(fleet, layout, slot_s, start=t0, end=t0 + minutes * 60.0, config=GraphConfig(),
                                      rsu_range_m=layout_cfg.rsu_range_m, observation=regime)
                for regime in REGIMES}
    return Prepared(fleet, report.kept, t0, layout, layout_cfg, area, observed)


def prepare_sumo(scenario: str | Path = "city", *, minutes: float = 50.0, slot_s: float = 5.0, seed: int = 0,
                 start: str = "2008-02-02 16:05:00", report_period_s: float = 30.0, demand_scale: float | None = None,
                 incidents: tuple | None = None, layout=None, regimes: tuple[str, ...] = REGIMES,
                 log=print) -> Prepared:
    """The same set-up on the SUMO world of ``scenario`` (a shipped name or a YAML path): its T-Drive rush-hour
    demand driven on its road network for ``minutes`` from ``start`` (recorded once, then cached), the
    hexagonal server grid over its area, and the observation ``regimes`` (default both); the telemetry regime
    sees each vehicle's report every ``report_period_s`` (random phase) plus the RSUs' sightings.

    Variants of the world, each recorded (and cached) on its own: ``demand_scale`` (total trips per T-Drive
    taxi trip; 1: the taxis alone, no background traffic; default the scenario's), ``incidents`` (a tuple of
    :class:`~mobility_twin_sim.sumo.config.IncidentSection`, replacing the scenario's; ``at_s`` counts from
    ``start``). ``layout``: the servers and RSUs (default: the hexagonal grid over the scenario's area)."""
    import dataclasses

    import numpy as np

    from mobility_twin_models.relations import Area, GraphConfig, LayoutConfig, hex_layout, observe_fleet
    from mobility_twin_models.relations.roads import RoadNetwork
    from mobility_twin_sim.scenario import load_scenario
    from mobility_twin_sim.sumo.trajectories import record_fleet, telematics

    sc = load_scenario(scenario)
    world = sc.world
    if demand_scale is not None:
        world = dataclasses.replace(world, demand=dataclasses.replace(world.demand, scale=float(demand_scale)))
    if incidents is not None:
        world = dataclasses.replace(world, incidents=tuple(incidents))
    sc = dataclasses.replace(sc, world=world)
    recorded = record_fleet(sc, start=start, duration_s=minutes * 60.0 + slot_s, log=log,
                            progress=lambda done, total: log(f"  SUMO {done:.0f} / {total:.0f} s"))
    fleet = recorded.fleet
    roads = RoadNetwork.of(recorded.roads())
    reports = telematics(fleet, report_period_s, seed=seed)
    t0 = fleet.time_range[0]
    x_min, y_min, x_max, y_max = sc.area.shape().bounds
    area = Area(x_min, x_max, y_min, y_max)
    layout_cfg = LayoutConfig(seed=seed)
    layout = layout or hex_layout(area, layout_cfg)
    observed = {regime: observe_fleet(fleet, layout, slot_s, start=t0, end=t0 + minutes * 60.0, config=GraphConfig(),
                                      rsu_range_m=layout_cfg.rsu_range_m, observation=regime, reports=reports,
                                      roads=roads, signals=recorded.signals_at)
                for regime in regimes}
    index = roads.graph.index
    destination = np.asarray([index.get(str(e), -1) for e in recorded.destination], np.int64) \
        if len(recorded.destination) == len(fleet.taxi_ids) else None
    return Prepared(reports, len(reports.t), t0, layout, layout_cfg, area, observed, destination)


def training_samples(observed: list, k: int, graph_cfg) -> tuple[list, list]:
    """(training samples: the first three quarters, test indices: the last quarter after a gap of ``k``)."""
    from mobility_twin_models.relations import make_samples
    from mobility_twin_models.relations.dataset import split_indices

    train_idx, test_idx = split_indices(len(observed), k)
    return make_samples(observed, k, config=graph_cfg, indices=train_idx), list(test_idx)


def fit_shipped(train_by_regime: dict, steps: int, *, seed: int = 0, graphs_per_step: int = 1, roads: bool = False):
    """The shipped model: the 30 s GNN trained on the training samples of both regimes, so that it serves
    fresh and stale twins alike (``steps`` per regime)."""
    from mobility_twin_models.relations import ModelConfig, RelationLearner, TrainConfig

    graph_cfg = graph_for(30.0, roads=roads)
    train = [s for regime in REGIMES for s in train_by_regime[regime]]
    learner = RelationLearner(graph_cfg, ModelConfig(), TrainConfig(seed=seed, graphs_per_step=graphs_per_step,
                                                                     replay_graphs=graphs_per_step))
    learner.fit(train, steps * len(REGIMES), graph_of=lambda s: s.graph(graph_cfg))
    return learner


def main(argv: list[str] | None = None) -> int:
    from mobility_twin_models.relations.learner import DEFAULT_CHECKPOINT
    from mobility_twin_sim.tdrive import BUNDLED

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=BUNDLED / "cbd", help="T-Drive folder (default: the bundled CBD subset)")
    p.add_argument("--out", type=Path, default=DEFAULT_CHECKPOINT, help="checkpoint to write (default: the shipped one)")
    p.add_argument("--steps", type=int, default=1000, help="gradient steps per regime (default 1000)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    started = time.perf_counter()
    prepared = prepare(args.data, seed=args.seed)
    print(f"{len(prepared.fleet)} taxis, {prepared.fixes} fixes; {len(prepared.layout.servers)} servers, "
          f"{len(prepared.layout.rsus)} RSUs; {len(prepared.observed['truth'])} slots", flush=True)
    k = round(30.0 / 5.0)
    train = {regime: training_samples(prepared.observed[regime], k, graph_for(30.0))[0] for regime in REGIMES}
    learner = fit_shipped(train, args.steps, seed=args.seed)
    path = learner.save(args.out, with_buffer=False, metadata={
        "command": " ".join(["python -m mobility_twin_models.relations.train", *(argv or sys.argv[1:])]),
        "data": str(args.data), "steps_per_regime": args.steps, "seed": args.seed})
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB, {learner.updates} updates) in "
          f"{time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

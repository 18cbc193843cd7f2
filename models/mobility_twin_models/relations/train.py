"""Train the relation GNN the ``relation_learner`` node starts from, and write the shipped checkpoint.

    python -m mobility_twin_models.relations.train                     # writes the shipped relations_gnn.pt
    python -m mobility_twin_models.relations.train --world tdrive --steps 200 --out /tmp/relations.pt  # a quick one

The data and the set-up are those of ``mtwin bench relations --quick`` and ``--world sumo`` (which call the
same functions, and report how the model does on the held-out quarter), on both worlds by default: the
bundled CBD subset of T-Drive replayed (the busy hour), and the SUMO city (T-Drive rush-hour demand
driven on its road network, recorded once into the SUMO cache: ~10 min the first time). Each with a
hexagonal grid of edge servers 300 m apart with RSUs, both observation regimes (the twin knows every
vehicle exactly, and the twin fed by GPS or telematics reports plus RSU perception), 5 s slots, a 30 s
horizon; the model is trained on the first three quarters of every (world, regime). With the SUMO world
the model has road relations (``GraphConfig.roads``); on a twin without a road network it reads the same
graph without road nodes. Seeded: the same command gives the same weights.
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


def fit_shipped(train_sets: dict, steps: int, *, seed: int = 0, graphs_per_step: int = 1, roads: bool = False):
    """The shipped model: the 30 s GNN trained on the training samples of every set (each regime, of each
    world), so that it serves fresh and stale twins alike (``steps`` per set)."""
    from mobility_twin_models.relations import ModelConfig, RelationLearner, TrainConfig

    graph_cfg = graph_for(30.0, roads=roads)
    train = [s for samples in train_sets.values() for s in samples]
    learner = RelationLearner(graph_cfg, ModelConfig(), TrainConfig(seed=seed, graphs_per_step=graphs_per_step,
                                                                     replay_graphs=graphs_per_step))
    learner.fit(train, steps * len(train_sets), graph_of=lambda s: s.graph(graph_cfg))
    return learner


def held_out_scores(learner, observed: dict, test: dict, k: int, stride: int = 3) -> dict:
    """Per set: handover accuracy and load MAE of ``learner`` on every ``stride``-th held-out snapshot, next
    to stay and last value."""
    from mobility_twin_models.relations import make_samples, stay
    from mobility_twin_models.relations.baselines import HandoverScore, LoadScore, last_value

    cfg = learner.graph_config
    out = {}
    for name, indices in test.items():
        h, hs, lo, ll = HandoverScore(), HandoverScore(), LoadScore(), LoadScore()
        for sample in make_samples(observed[name], k, config=cfg, indices=list(indices)[::stride]):
            g = sample.graph(cfg)
            p = learner.predict(g)
            h.add(g, p.server)
            hs.add(g, stay(g))
            lo.add(g, p.load)
            ll.add(g, last_value(g))
        out[name] = {"accuracy": h.accuracy, "stay": hs.accuracy, "load_mae": lo.mae, "last_value_mae": ll.mae,
                     "vehicles": h.total}
    return out


def main(argv: list[str] | None = None) -> int:
    from mobility_twin_models.relations.learner import DEFAULT_CHECKPOINT
    from mobility_twin_sim.tdrive import BUNDLED

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--world", choices=("tdrive", "sumo", "both"), default="both",
                   help="train on the T-Drive replay, the SUMO city, or both (default)")
    p.add_argument("--data", type=Path, default=BUNDLED / "cbd", help="T-Drive folder (default: the bundled CBD subset)")
    p.add_argument("--scenario", default="city", help="the SUMO scenario (default city)")
    p.add_argument("--out", type=Path, default=DEFAULT_CHECKPOINT, help="checkpoint to write (default: the shipped one)")
    p.add_argument("--steps", type=int, default=1000, help="gradient steps per regime of each world (default 1000)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    started = time.perf_counter()
    worlds = ("tdrive", "sumo") if args.world == "both" else (args.world,)
    roads = "sumo" in worlds
    k = round(30.0 / 5.0)
    train, test, observed, data = {}, {}, {}, {}
    for world in worlds:
        if world == "tdrive":
            prepared = prepare(args.data, seed=args.seed)
            data[world] = str(args.data)
        else:
            prepared = prepare_sumo(args.scenario, seed=args.seed, log=lambda text: print(text, flush=True))
            data[world] = f"SUMO scenario {args.scenario}"
        print(f"{world}: {len(prepared.fleet)} vehicles, {prepared.fixes} fixes; {len(prepared.layout.servers)} "
              f"servers, {len(prepared.layout.rsus)} RSUs; {len(prepared.observed['truth'])} slots", flush=True)
        for regime in REGIMES:
            train[f"{world}/{regime}"], test[f"{world}/{regime}"] = training_samples(
                prepared.observed[regime], k, graph_for(30.0, roads=roads))
            observed[f"{world}/{regime}"] = prepared.observed[regime]
    learner = fit_shipped(train, args.steps, seed=args.seed, roads=roads)
    scores = held_out_scores(learner, observed, test, k)
    for name, row in scores.items():
        print(f"  {name}: handover accuracy at 30 s {row['accuracy']:.4f} (stay {row['stay']:.4f}), load MAE "
              f"{row['load_mae']:.3f} (last value {row['last_value_mae']:.3f}) on the held-out quarter", flush=True)
    path = learner.save(args.out, with_buffer=False, metadata={
        "command": " ".join(["python -m mobility_twin_models.relations.train", *(argv or sys.argv[1:])]),
        "data": data, "training_sets": sorted(train), "steps_per_set": args.steps, "seed": args.seed,
        "held_out": scores})
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB, {learner.updates} updates) in "
          f"{time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Collision warning (issue 18) against SUMO's surrogate-safety device, open and closed loop.

The world is ``scenarios/city_conflicts.yaml``: the SUMO city with imperfect drivers (sigma, a short headway,
a share of red-light runners), SUMO's ``ssm`` device on every vehicle, 30% of vehicles connected (V2X).
Each run drives the whole perception-to-twin pipeline in one process, ROS-free, with the library code the
nodes run (:mod:`mobility_twin.evaluation.offline`'s local twins with every input channel, the global
twin), and every ``period_s``:

* **twin**: the collision-warning library (:mod:`mobility_twin.safety`) on the global twin's tracks with their
  covariance (Monte Carlo), warnings with hysteresis;
* **baseline** (same run, same frames): time to collision from the raw, unfused detections and V2X reports
  alone (each source's newest frame, frame-differencing velocities, the mean motion only), with the same
  warning rule;
* **oracle_states** (same run): the twin's predictor and warning rule on the true states of the vehicles (a
  perfect twin): what is left between it and SUMO's conflicts is the motion model's, not the twin's.

With the road network (the default; ``--no-lanes`` leaves it out) all three move road users on a lane along
it (:class:`mobility_twin.safety.LaneHeadings`), and with the lights' states (SPaT, as the world publishes
them on ``/infrastructure/signals``; ``--no-signals`` leaves them out) hold the ones a red light will stop
at its stop line.

Ground truth: ``ssm.xml`` conflicts with a minimum TTC below 1.5 s whose minimum-TTC position is within
``coverage_m`` of an RSU (inside sensor coverage), after the twin's warm-up (recall counts these). A warning
(each of its two tracks mapped, every cycle, to the nearest true vehicle within ``match_m``, and named by the
vehicle it was mapped to most often while the warning lasted, as tracking metrics match identities) is a
true positive when SUMO measures a TTC below 1.5 s for that pair, inside coverage, at some moment from 1 s
before the warning to ``horizon + 1 s`` after it, or to its end if it lasts longer (a warning held from 5 s
ahead through the conflict warned of it): the bench turns on ssm's trajectories (TTC at every step of
every encounter), since one encounter may come close more than once and its minimum is only one of those
moments. The run goes on ``horizon + 1 s`` past the scored period so that a warning at its end can be judged.
The lead time is the minimum-TTC instant minus the first matching warning. Warnings are counted inside
coverage only: their predicted conflict point within ``coverage_m`` of an RSU at some moment while the warning
lasted (a pair warned while it still approaches the sensed area, of a conflict that then happens inside it,
is counted, for precision as for recall; ``in_coverage_at_start`` keeps whether it was so when the warning
started).

Coverage is a disc around each RSU; its sensors do not see all of it. Each conflict records at how many instants
of the ``horizon + 1 s`` before it the twin's sources saw each party (``seen``: a LiDAR return of an RSU or a CAV
hit it, or it reported itself over V2X or as a CAV), and recall is also given over the conflicts both of whose
parties were seen at least once (``recall_by_conflict.both_parties_seen``): a car hidden all that time behind
others in a queue is in the disc but out of sight, and no predictor on the twin can warn of it.

What perception costs the learned arm (``per_seed[].perception_gap``, from each open-loop run's saved inputs): its
precision and recall on the twin's road users, then with the true velocity of each vehicle the twin holds, then
with its true position too, then on the true states of the vehicles the twin holds, and of every vehicle
(:data:`GAP_STEPS`): how much of the gap to the true states is the velocity, the position, and the vehicles the
twin does not hold (hidden, not yet confirmed, or its track more than ``match_m`` off). The conflicts it warns of
on the true states and not on the twin's input are split by why (``perception_gap.lost_conflicts``): the twin
held both parties in at least half of the warning's window (its states were off), or a party in under half of it
though the raw detections and reports had it in at least half (the tracker lost it), or the raw detections had it
in under half too (the sensors did not see it: a car hidden in a queue, hit by a few LiDAR points now and then,
which no tracker holds). Seeds 7-10 of ``--quick``: 35 of the 44 such conflicts are of the last kind, 2 of the second.
Over the conflicts both of whose parties the raw detections had in at least half of the window (about four in
five), the learned arm's recall on the twin's input is 0.845 / 0.872 / 0.886 / 0.889, on the true states 0.869 /
0.897 / 0.911 / 0.931; of the twin's misses there, 6 / 7 / 7 / 5 are of other kinds than following (on these seeds
crossing conflicts and collisions), which the rear-end model does not predict, and 7 / 3 / 2 / 3 following ones.

Operating points (``per_seed[].operating_points``, from each open-loop run's saved inputs, each predictor run once
per cycle and followed by every rule): the learned arms at each conflict probability of :data:`SWEEP_P_ON` and the
raw-detection baseline at each time to collision of :data:`SWEEP_TTC_ON_S`. Seeds 7 / 8 of ``--quick``: no
threshold brings the baseline's precision above 0.389 / 0.375 (its recall tops out at 0.846 / 0.875 at 4 s, with
2,163 / 1,847 warnings); from p_on 0.1 to 0.8 the learned arm goes from precision 0.545 / 0.493 at recall
0.788 / 0.854 to 0.837 / 0.918 at 0.577 / 0.729. On seeds 7-14 the baseline's best precision at any threshold
is 0.27-0.42, below the learned arm's at its loosest (p_on 0.1: 0.49-0.58).

Closed loop: a second run of the same seed in which a connected vehicle (a CAV or a V2X vehicle: the twin's
track carries its id) that a twin warning tells to yield is slowed through the co-simulation control
(``SpeedCommand``: its speed less ``brake_drop_mps``, and no faster than the other party's, ``brake_to_other``),
and given its own speed back when the warning ends (or after ``max_brake_s``); it keeps a time gap of at least
``warned_headway_s`` (1.5 s, an adaptive cruise control's usual setting; SUMO's tau, ``HeadwayCommand``) to the
vehicle ahead for ``warned_headway_hold_s`` after its last warning, so that it does not close in again at once
(the scenario's drivers keep 0.6 s). ``conflicts_with_warnings`` /
``conflicts_without`` count, in the two runs, the TTC < 1.5 s conflicts in coverage in which a connected vehicle
is the one a warning tells to brake: the follower (ssm's encounter type at the minimum TTC names it; a conflict
whose type names none counts when either party is connected). ``connected_conflicts_*`` count those involving a
connected vehicle either way (a connected leader that an unconnected driver runs up on included).

Each (seed, loop) run is its own process (libsumo holds one simulation per process).
"""

from __future__ import annotations

import argparse
import bisect
import json
import math
import multiprocessing as mp
import statistics
import time
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np

SUMMARY = "collision warning from the twin vs raw detections, against SUMO's ssm conflicts, open and closed loop"
TTC_CRITICAL_S = 1.5
#: a warning speaks of its pair from this long before it to the horizon plus this long after it (or to its end)
SLACK_S = 1.0
#: ssm's encounter types of a vehicle following another (the rear-end model's kind)
FOLLOWING_TYPES = (1, 2, 3)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="a shorter run (45 s of traffic per run)")
    parser.add_argument("--duration", type=float, default=0.0, help="seconds of traffic per run (default 45 quick, "
                                                                     "180 full)")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="scenario seeds (default 7 and 8)")
    parser.add_argument("--jobs", type=int, default=4, help="runs in parallel (one process each)")
    parser.add_argument("--no-lanes", action="store_true", help="predict without the road network's lanes (each "
                                                                 "road user on its own heading)")
    parser.add_argument("--no-signals", action="store_true", help="predict without the lights' states (no road user "
                                                                   "is held at a red light)")
    parser.add_argument("--rescore", action="store_true", help="score the runs saved by the last run again "
                                                              "(<out>/collision_runs/*/result.json), no simulation")
    parser.add_argument("--repredict", action="store_true", help="as --rescore, with the open-loop warnings "
                        "predicted again from the runs' saved inputs (every cycle's road users) with the settings "
                        "given now: another predictor or warning rule without running SUMO again (the closed loop's "
                        "counts stay the run's)")
    parser.add_argument("--open-loop-only", action="store_true", help="only the open-loop runs (what training "
                        "the learned model needs; the closed-loop target is then not measured)")
    parser.add_argument("--learned", type=Path, default=None, help="the rear-end conflict model to score as the "
                        "twin_learned arm (default: the shipped checkpoint, when there is one; 'none': no such arm)")
    parser.add_argument("--ttc-on", type=float, default=None, help="a warning starts at a predicted time to "
                        "collision at most this (s; default: the warning rule's, WarningConfig)")
    parser.add_argument("--p-on", type=float, default=None, help="... and a conflict probability at least this")
    parser.add_argument("--confirm", type=int, default=None, help="... in this many predictions in a row")


# ------------------------------------------------------------------------------------------------ one run
def _prepare(job: dict) -> str:
    """Build (or find in the cache) the network and the seed's demand, once per seed, before the runs start: two
    runs building the same demand at once would each clear the other's folder."""
    from mobility_twin_sim.scenario import load_scenario
    from mobility_twin_sim.world import build_world

    scenario = replace(load_scenario(job["scenario"]), seed=job["seed"])
    world = build_world(scenario, start=False, log=lambda *a, **k: None)
    return str(world.backend.demand.folder if world.backend.demand is not None else "")


def _run(job: dict) -> dict:
    """One SUMO run through the twins with the twin's and the baseline's warnings (in a process of its own)."""
    import os

    os.nice(5)
    from mobility_twin.evaluation.offline import TickFusion, local_twins_for
    from mobility_twin.safety import (
        ConflictPredictor,
        LaneHeadings,
        Motion,
        RawDetections,
        WarningTracker,
    )
    from mobility_twin.safety.views import SensorViews
    from mobility_twin.tracking import TrackerConfig
    from mobility_twin.twin import GlobalTwin
    from mobility_twin_core import VEHICLE_CLASSES
    from mobility_twin_sim.backend import HeadwayCommand, SpeedCommand
    from mobility_twin_sim.replay import Replay
    from mobility_twin_sim.scenario import load_scenario
    from mobility_twin_sim.world import build_world

    scenario = load_scenario(job["scenario"])
    # the run goes on a warning's window (horizon + slack) past the scored end, so that a warning given at the end
    # can be judged
    end = job["duration_s"] + job["horizon_s"] + SLACK_S
    # with ssm's trajectories: each encounter's TTC at every step (hundreds of MB; read, then deleted)
    scenario = replace(scenario, seed=job["seed"], time=replace(scenario.time, duration_s=end + 1.0),
                       world=replace(scenario.world, ssm_trajectories=True))
    run_dir = Path(job["run_dir"])
    run_dir.mkdir(parents=True, exist_ok=True)
    wall0 = time.monotonic()
    world = build_world(scenario, run_dir=run_dir, log=lambda *a, **k: None)
    open_s = time.monotonic() - wall0
    replay = Replay(world)
    replay.seek(0.0)
    local = local_twins_for(world, TrackerConfig())
    global_twin = GlobalTwin()
    fusion = TickFusion(world, local)
    rsu_xy = np.array([(r.x, r.y) for r in world.rsus])
    pcfg = predictor_config(job)
    lanes = None
    if job["lanes"]:  # the road network, in the map frame (both the twin and the baseline know the map)
        from mobility_twin_core.roads import RoadGraph

        lanes = LaneHeadings(RoadGraph.from_net_file(world.backend.network.net_file)
                             .in_frame(world.backend.frame.to_map))
    wcfg = warning_config(job)
    twin_pred, base_pred = ConflictPredictor(pcfg), ConflictPredictor(replace(pcfg, samples=0))
    twin_warn, base_warn = WarningTracker(wcfg), WarningTracker(wcfg)
    oracle_pred, oracle_warn = ConflictPredictor(pcfg), WarningTracker(wcfg)
    learned_pred = learned_warn = oracle_learned = None
    if job.get("learned"):  # the learned rear-end predictor on the same twin input (and on the true states)
        from mobility_twin_models.safety.model import load_checkpoint

        model = load_checkpoint(job["learned"])[0]
        learned_pred, learned_warn = learned_arm(model, wcfg)
        oracle_learned = learned_arm(model, wcfg)
    raw = RawDetections()
    vehicle_classes = np.array([int(c) for c in VEHICLE_CLASSES])
    events = {"twin": WarningLog(), "baseline": WarningLog(), "oracle": WarningLog()}
    inputs = {name: MotionLog() for name in events}  # every cycle's predictor input: --repredict reads them
    if learned_pred is not None:
        events["twin_learned"] = WarningLog()
        events["oracle_states_learned"] = WarningLog()  # (these two arms read the twin's and the oracle's inputs)
    views = SensorViews()  # what the LiDARs saw of the road (the learned arm's views gate reads it)
    braking: dict[str, tuple[tuple[int, int], float]] = {}
    careful: dict[str, float] = {}  # vehicle -> until when it keeps the longer time gap a warning gave it
    commands = {"sent": 0, "accepted": 0, "refused": 0, "released": 0}
    predict_ms = {"twin": [], "baseline": []}
    last_cycle = -math.inf
    gt = signals = None
    vehicle_s_in_coverage = 0.0
    last_gt_t = None
    coverage = job["coverage_m"]
    warm = job["warmup_s"]

    def in_coverage(x, y):
        d = np.hypot(np.asarray(x)[..., None] - rsu_xy[:, 0], np.asarray(y)[..., None] - rsu_xy[:, 1])
        return (d <= coverage).any(axis=-1)

    def near_rsu(x, y):
        """Where warnings are scored (coverage) and a margin: the road users predicted (the rest of the area is
        only seen through V2X reports; predicting it costs time and is not scored)."""
        d = np.hypot(np.asarray(x)[:, None] - rsu_xy[:, 0], np.asarray(y)[:, None] - rsu_xy[:, 1])
        return (d <= coverage + job["predict_margin_m"]).any(axis=1)

    def to_truth(xy):
        """Ground-truth id of the vehicle nearest each position (within match_m), else -1."""
        if gt is None or not len(gt.ids):
            return np.full(len(xy), -1)
        d = np.hypot(gt.x[None, :] - xy[:, 0, None], gt.y[None, :] - xy[:, 1, None])
        k = d.argmin(axis=1)
        return np.where(d[np.arange(len(xy)), k] <= job["match_m"], gt.ids[k], -1)

    def truth_of(m):
        """The ground-truth id of each road user of ``m`` (the nearest vehicle within match_m, else -1)."""
        return to_truth(m.x[:, :2]) if len(m.ids) else np.zeros(0, np.int64)

    seen: dict[int, list[float]] = {}  # vehicle -> the instants a LiDAR return hit it or it reported itself

    def saw(ids, t: float) -> None:
        for v in np.asarray(ids).tolist():
            times = seen.setdefault(int(v), [])
            if not times or times[-1] != t:
                times.append(t)

    while not replay.finished and replay.position <= end:
        tick = replay.step()
        for f in tick.frames:
            saw(f.seen_ids(), tick.t)
        for report in tick.v2x:
            saw(report.ids, tick.t)
        for odo in tick.odometry:  # a CAV reports itself
            own = world.backend.vehicle_id(odo.cav_id)
            if own is not None:
                saw([own], tick.t)
        for kind, source, d in fusion.feed(tick):
            raw.add(d)
            if kind != "v2x":
                views.add(source, tick.t, d.visibility, d.sensor_xy)
        if tick.ground_truth is not None:
            gt = tick.ground_truth.state
            signals = tick.ground_truth.signals if job["signals"] else None
            if last_gt_t is not None and warm <= replay.position <= job["duration_s"]:  # the scored period
                veh = gt.vehicles_only()
                vehicle_s_in_coverage += float(in_coverage(gt.x[veh], gt.y[veh]).sum()) * (tick.t - last_gt_t)
            last_gt_t = tick.t
        if tick.t - last_cycle < job["period_s"] - 1e-9:
            continue
        last_cycle = tick.t
        for twin in local.values():
            snap = twin.snapshot(tick.t)
            global_twin.ingest(snap.site_id, tick.t, snap.tracks)
        global_twin.update_staleness(tick.t)
        if replay.position < warm:
            continue
        # --- the twin's warnings
        tracks = global_twin.tracks_at(tick.t)
        tracks = tracks.select(np.isin(tracks.object_class, vehicle_classes)
                               & near_rsu(tracks.x[:, 0], tracks.x[:, 1]))
        t0 = time.perf_counter()
        twin_motion = Motion.from_tracks(tracks, tick.t, lanes=lanes, signals=signals)
        truth = truth_of(twin_motion)
        evs = warn_cycle(twin_pred, twin_warn, twin_motion, truth, in_coverage, events["twin"], forget=True)
        scored = replay.position <= job["duration_s"]  # (the run goes on past it to judge the last warnings)
        if scored:
            predict_ms["twin"].append(1e3 * (time.perf_counter() - t0))
        if learned_pred is not None:  # (not timed: saved for the views arm, which needs the learned model)
            twin_motion = replace(twin_motion, unseen_ahead_m=unseen_ahead(twin_motion, views, learned_pred.max_age_s))
        inputs["twin"].add(twin_motion, truth)
        if learned_pred is not None:
            t0 = time.perf_counter()
            learned_evs = warn_cycle(learned_pred, learned_warn, twin_motion, truth, in_coverage,
                                     events["twin_learned"], forget=True)
            if scored:
                predict_ms.setdefault("twin_learned", []).append(1e3 * (time.perf_counter() - t0))
            if job.get("act_on") == "twin_learned":  # the closed loop acts on the learned warnings
                evs = learned_evs
        if job["closed_loop"]:
            vid = {int(i): str(v or "") for i, v in zip(tracks.ids, tracks.vehicle_id, strict=True)}
            speed = {int(i): float(np.hypot(x[2], x[3])) for i, x in zip(tracks.ids, tracks.x, strict=True)}
            for ev in evs:
                w, c = ev.warning, ev.warning.conflict
                for party, other, yields in ((c.a, c.b, c.yield_a), (c.b, c.a, c.yield_b)):
                    vehicle = vid.get(int(party), "")
                    if not vehicle:
                        continue
                    target = _world_vehicle(vehicle)
                    if target is None:
                        continue
                    if ev.kind == "start" and yields and vehicle not in braking:
                        res = replay.command(SpeedCommand(target, yield_speed(speed.get(int(party), 0.0),
                                                                              speed.get(int(other)), job)))
                        commands["sent"] += 1
                        commands["accepted" if res.accepted else "refused"] += 1
                        if res.accepted:
                            braking[vehicle] = ((w.a, w.b), tick.t)
                            if job.get("warned_headway_s", 0.0) > 0:
                                if vehicle not in careful:
                                    replay.command(HeadwayCommand(target, job["warned_headway_s"]))
                                careful[vehicle] = tick.t + job["warned_headway_hold_s"]
                    elif ev.kind == "end" and braking.get(vehicle, ((None, None), 0))[0] == (w.a, w.b):
                        replay.command(SpeedCommand(target, -1.0))
                        commands["released"] += 1
                        del braking[vehicle]
            for vehicle, (_, since) in list(braking.items()):  # never hold a vehicle back for long
                if tick.t - since > job["max_brake_s"]:
                    replay.command(SpeedCommand(_world_vehicle(vehicle), -1.0))
                    commands["released"] += 1
                    del braking[vehicle]
            for vehicle, until in list(careful.items()):  # the driver's own gap back
                if tick.t > until:
                    replay.command(HeadwayCommand(_world_vehicle(vehicle), -1.0))
                    del careful[vehicle]
        # --- the oracle's warnings: the same predictor on the true states (what a perfect twin would hold)
        if gt is not None and len(gt.ids):
            sel = np.isin(gt.object_class, vehicle_classes) & near_rsu(gt.x, gt.y)
            vx, vy = gt.velocity()
            xs = np.column_stack([gt.x, gt.y, vx, vy])[sel]
            m = Motion(tick.t, gt.ids[sel].astype(np.int64), xs, np.tile(np.diag([0.01, 0.01, 0.01, 0.01]),
                                                                         (len(xs), 1, 1)),
                       gt.length[sel], gt.width[sel], gt.heading[sel])
            if lanes is not None:
                lane, stop = lanes.locate(m.x[:, 0], m.x[:, 1], m.heading, gt.speed[sel], m.length, signals)
                m = replace(m, lane_heading=lane, stop_m=stop)
            truth = m.ids  # (the true states: their own ids)
            warn_cycle(oracle_pred, oracle_warn, m, truth, in_coverage, events["oracle"])
            if oracle_learned is not None:
                warn_cycle(*oracle_learned, m, truth, in_coverage, events["oracle_states_learned"], forget=True)
            inputs["oracle"].add(m, truth)
        # --- the baseline's warnings (raw detections, no twin)
        t0 = time.perf_counter()
        m = raw.motion(tick.t, vehicle_classes)
        near = near_rsu(m.x[:, 0], m.x[:, 1])
        m = Motion(m.t, m.ids[near], m.x[near], None, m.length[near], m.width[near])
        if lanes is not None:
            speed = np.hypot(m.x[:, 2], m.x[:, 3])
            heading = np.where(speed > 1.0, np.arctan2(m.x[:, 3], m.x[:, 2]), np.nan)  # (stopped: not known)
            lane, stop = lanes.locate(m.x[:, 0], m.x[:, 1], heading, speed, m.length, signals)
            m = replace(m, lane_heading=lane, stop_m=stop)
        truth = truth_of(m)
        warn_cycle(base_pred, base_warn, m, truth, in_coverage, events["baseline"])
        if scored:
            predict_ms["baseline"].append(1e3 * (time.perf_counter() - t0))
        inputs["baseline"].add(m, truth)
    sim_s = replay.position
    wall_s = time.monotonic() - wall0
    backend = world.backend
    start_s, begin_s = backend.start_s, backend.begin_s
    num = dict(backend._num)
    frame = backend.frame
    connected = {int(i) for i in num.values() if world.is_connected(int(i))}
    cav_ids = {num[c] for c in backend._cavs if c in num}
    out = replay.close()
    conflicts = _ssm_conflicts(run_dir / "ssm.xml", num, frame, begin_s)
    for c in conflicts:  # at how many instants of a warning's window before it the twin's sources saw each party
        c["seen"] = [_seen_in(seen.get(v, ()), c["t"] - job["horizon_s"] - SLACK_S, c["t"]) for v in (c["a"], c["b"])]
    if (run_dir / "ssm.xml").exists():
        (run_dir / "ssm.xml").unlink()  # every step of every encounter (hundreds of MB): result.json keeps what counts
    result = {"job": job, "events": events, "conflicts": conflicts, "connected": sorted(connected | cav_ids),
            "cavs": sorted(cav_ids), "start_s": start_s, "sim_s": sim_s, "wall_s": wall_s, "open_s": open_s,
            "vehicle_hours_in_coverage": vehicle_s_in_coverage / 3600.0, "commands": commands,
            "rsu_xy": rsu_xy.tolist(), "counters": {k: v for k, v in (out.get("counters") or {}).items()}
            if isinstance(out, dict) else {},
            "predict_ms": {k: _pct(v) for k, v in predict_ms.items()},
            "skipped": {"twin": dict(twin_pred.counts), "baseline": dict(base_pred.counts),
                        **({"twin_learned": dict(learned_pred.counts)} if learned_pred is not None else {})}}
    for name, log in inputs.items():
        log.save(run_dir / f"inputs_{name}.npz")
    (run_dir / "result.json").write_text(json.dumps(result, default=float))  # what --rescore reads
    return result


def _seen_in(times, lo: float, hi: float) -> int:
    """How many of the sorted instants ``times`` fall in [lo, hi]."""
    return bisect.bisect_right(times, hi) - bisect.bisect_left(times, lo)


def _world_vehicle(vehicle: str) -> int | str | None:
    """The world's id of the vehicle a twin track names (``vehicle_id``): a CAV by its name, a V2X vehicle
    by its ground-truth id; None for anything else."""
    return vehicle if vehicle.startswith("cav_") else int(vehicle) if vehicle.isdigit() else None


def yield_speed(own_mps: float, other_mps: float | None, job: dict) -> float:
    """The speed a warned road user is told to hold: ``brake_drop_mps`` below its own, and no faster than
    the other party's (``brake_to_other``: a follower closing on a slower or stopped leader falls back
    behind it instead of only closing more slowly); never below 0."""
    target = own_mps - job["brake_drop_mps"]
    if job.get("brake_to_other", False) and other_mps is not None and math.isfinite(other_mps):
        target = min(target, other_mps)
    return max(0.0, target)


def predictor_config(job: dict):
    """The conflict predictor's settings of a run (the baseline's: the same without Monte Carlo)."""
    from mobility_twin.safety import PredictorConfig

    return PredictorConfig(horizon_s=job["horizon_s"], samples=job["samples"], seed=job["seed"])


def warning_config(job: dict):
    """The warning rule of a run's settings (runs saved before p_on and confirm were settings: the defaults)."""
    from mobility_twin.safety import WarningConfig

    default = WarningConfig()
    p_on = job.get("p_on", default.p_on)
    return WarningConfig(ttc_on_s=job["ttc_on_s"], p_on=p_on, p_off=min(default.p_off, p_on),
                         confirm=job.get("confirm", default.confirm))


def coverage_of(run: dict):
    """Whether a point (x, y) of a saved run lies inside sensor coverage (within coverage_m of an RSU)."""
    rsu = np.asarray(run["rsu_xy"])
    coverage = run["job"]["coverage_m"]

    def covered(x, y) -> bool:
        return bool((np.hypot(rsu[:, 0] - x, rsu[:, 1] - y) <= coverage).any())

    return covered


class WarningLog(list):
    """The warnings an arm gave (a list of records, as a run saves them) and, by pair of tracks, each active
    warning's record with the true vehicles each of its two tracks was matched to, cycle by cycle
    (:func:`warn_cycle`)."""

    def __init__(self, *records) -> None:
        super().__init__(*records)
        self.active: dict[tuple[int, int], tuple[dict, tuple[Counter, Counter]]] = {}


def _most_matched(votes: Counter) -> int:
    """The true vehicle a track was matched to most often (the first of a tie; -1 only if never any)."""
    return next((v for v, _ in votes.most_common() if v >= 0), -1)


def warn_cycle(predictor, warner, m, truth: np.ndarray, in_coverage, out: WarningLog, forget: bool = False) -> list:
    """One prediction cycle at ``m.t``: the conflicts of ``m`` predicted, fed to the warnings; the warnings that
    start appended to ``out`` with their two tracks' true ids and states. ``truth`` is each road user's true
    vehicle in this cycle (aligned with ``m.ids``; -1: none within ``match_m``).

    While a warning lasts its record follows it:

    * ``a`` / ``b``: the true vehicle each of its tracks was matched to in most of the cycles so far, as
      identities are matched in tracking metrics (``a_at_start`` / ``b_at_start``: in its first cycle). A box
      in a queue may stand off its car by more than ``match_m`` in one cycle, and a warning then named no
      vehicle, though the track followed that car before and after.
    * ``in_coverage``: whether its predicted conflict point was inside coverage at some moment
      (``in_coverage_at_start``: when it started). A pair warned while still approaching the sensors' area, of
      a conflict that then happens inside it, is a warning of that conflict.
    * ``until``: the last cycle in which it was active.

    ``forget``: the warnings of road users no longer in ``m`` end (the twin's tracks it dropped). Returns the
    warning events (the closed loop acts on them). What a run does every cycle and what a re-prediction of its
    saved inputs does (:func:`repredict`)."""
    evs = warner.update(m.t, predictor.predict(m))
    if forget:
        evs += warner.forget(set(k for pair in warner.active for k in pair) - set(int(i) for i in m.ids))
    row = {int(i): k for k, i in enumerate(m.ids)}
    for ev in evs:
        w, c = ev.warning, ev.warning.conflict
        key = (w.a, w.b)
        if ev.kind == "end":
            out.active.pop(key, None)
            continue
        if ev.kind == "update":
            rec = out.active.get(key, (None,))[0]
            if rec is not None and not rec["in_coverage"] and in_coverage(*c.point):
                rec["in_coverage"] = True
            continue
        ka, kb = row.get(c.a), row.get(c.b)
        if ka is None or kb is None:
            continue
        inside = bool(in_coverage(*c.point))
        a, b = int(truth[ka]), int(truth[kb])
        rec = {"t": m.t, "a": a, "b": b, "a_at_start": a, "b_at_start": b, "tracks": [int(c.a), int(c.b)],
               "ttc": c.ttc_s, "p": c.probability, "kind": int(c.kind), "in_coverage": inside,
               "in_coverage_at_start": inside, "point": [round(c.point[0], 1), round(c.point[1], 1)],
               "states": [[round(float(v), 2) for v in m.x[k]] for k in (ka, kb)]}
        out.append(rec)
        out.active[key] = (rec, (Counter(), Counter()))
    for key, (rec, votes_ab) in out.active.items():  # this cycle's match of each active warning's tracks
        rec["until"] = m.t
        for k, (track, votes) in enumerate(zip(key, votes_ab, strict=True)):
            r = row.get(track)
            if r is not None:
                votes[int(truth[r])] += 1
                rec["ab"[k]] = _most_matched(votes)
    return evs


class MotionLog:
    """Every cycle's predictor input (a :class:`mobility_twin.safety.Motion`) and the true id of each of its
    road users, kept as concatenated arrays: saved with a run (``inputs_<who>.npz``, a few MB), so that the
    warnings can be predicted again from them with another predictor or warning rule (``--repredict``)
    without running SUMO again."""

    FIELDS = ("ids", "x", "P", "length", "width", "heading", "last_update", "yaw_rate", "lane_heading", "stop_m",
              "unseen_ahead_m")

    def __init__(self) -> None:
        self.t: list[float] = []
        self.rows: list[int] = []
        self.parts: dict[str, list] = {f: [] for f in (*self.FIELDS, "truth")}

    def add(self, m, truth: np.ndarray) -> None:
        self.t.append(float(m.t))
        self.rows.append(len(m.ids))
        for f in self.FIELDS:
            self.parts[f].append(getattr(m, f))
        self.parts["truth"].append(np.asarray(truth, np.int64))

    def save(self, path: Path) -> None:
        arrays = {"t": np.array(self.t), "rows": np.array(self.rows, np.int64)}
        for f, parts in self.parts.items():
            if parts and all(p is not None for p in parts):  # a field the motions of this source carry
                arrays[f] = np.concatenate(parts)
        np.savez_compressed(path, **arrays)

    @staticmethod
    def motions(path: Path):
        """The saved cycles: (Motion, truth ids) per cycle, in order."""
        from mobility_twin.safety import Motion

        with np.load(path) as data:
            arrays = {k: data[k] for k in data.files}
        bounds = np.r_[0, np.cumsum(arrays["rows"])]
        for c, t in enumerate(arrays["t"]):
            a, b = bounds[c], bounds[c + 1]
            fields = {f: (arrays[f][a:b] if f in arrays else None) for f in MotionLog.FIELDS}
            yield Motion(float(t), **fields), arrays["truth"][a:b]


#: The views gate of the twin_learned_views arm: a follower whose road to the one ahead holds a stretch this long
#: that no LiDAR saw clear is not warned. Room for a car standing in a queue: 4.5 m and SUMO's standstill gap of
#: 2.5 m on each side (set from that, not fitted).
VIEWS_GAP_M = 9.5


def _has_unseen_gaps(path: Path) -> bool:
    if not path.exists():
        return False
    with np.load(path) as data:
        return "unseen_ahead_m" in data.files


def unseen_ahead(m, views, max_age_s: float = 1.0) -> np.ndarray:
    """(N,) each road user's stretch of road to the one ahead of it (the learned predictor's follower-leader
    pairs, its rows of tracks at most ``max_age_s`` old) that no fresh LiDAR view saw clear
    (:meth:`mobility_twin.safety.views.SensorViews.unseen_m`); NaN where it follows no one. Saved with the twin's
    inputs, so that the views gate can be judged from them."""
    from mobility_twin.safety.learned import gap_segments, usable_states
    from mobility_twin_models.safety.features import follower_pairs

    out = np.full(len(m.ids), np.nan)
    if len(m.ids) < 2:
        return out
    x = usable_states(m, max_age_s)[0]
    i, j, _ = follower_pairs(x, np.asarray(m.length, float), None if m.heading is None else np.asarray(m.heading, float),
                             lane_heading=m.lane_heading)
    if len(i):
        fronts, ends, _ = gap_segments(m, i, j)
        out[i] = views.unseen_m(m.t, fronts, ends)
    return out


def repredict(run: dict, run_dir: Path, pcfg, wcfg) -> dict[str, list]:
    """The warnings of a saved run predicted again from its saved inputs with predictor settings ``pcfg`` and
    warning rule ``wcfg`` (the baseline without Monte Carlo, as in the run): events as a run records them."""
    from mobility_twin.safety import ConflictPredictor, WarningTracker

    in_coverage = coverage_of(run)
    events = {}
    for name in ("twin", "baseline", "oracle"):
        path = run_dir / f"inputs_{name}.npz"
        if not path.exists():
            continue
        predictor = ConflictPredictor(replace(pcfg, samples=0) if name == "baseline" else pcfg)
        warner, out = WarningTracker(wcfg), WarningLog()
        for m, truth in MotionLog.motions(path):
            warn_cycle(predictor, warner, m, truth, in_coverage, out, forget=name == "twin")
        events[name] = out
    return events


def learned_arm(model, wcfg, max_unseen_gap_m: float | None = None):
    """(predictor, warnings) of the learned rear-end arm: :class:`mobility_twin.safety.learned.
    LearnedConflictPredictor` of ``model`` (with the views gate at ``max_unseen_gap_m``; None: none), the warning
    rule ``wcfg`` less its TTC bars (``learned_warning_config``)."""
    from mobility_twin.safety import WarningTracker
    from mobility_twin.safety.learned import LearnedConflictPredictor, learned_warning_config

    predictor = LearnedConflictPredictor(model, max_unseen_gap_m=max_unseen_gap_m)
    return predictor, WarningTracker(learned_warning_config(wcfg, predictor.horizon_s))


def learned_events(run: dict, run_dir: Path, model, wcfg, who: str = "twin", cycles=None,
                   max_unseen_gap_m: float | None = None) -> list:
    """The warnings of the learned arm (:func:`learned_arm`) on a saved run's inputs of ``who`` (``twin``, or
    ``oracle``: the true states), or on ``cycles`` ((Motion, truth ids) per cycle) when given: events as a run
    records them."""
    predictor, warner = learned_arm(model, wcfg, max_unseen_gap_m)
    out = WarningLog()
    in_coverage = coverage_of(run)
    for m, truth in (MotionLog.motions(run_dir / f"inputs_{who}.npz") if cycles is None else cycles):
        warn_cycle(predictor, warner, m, truth, in_coverage, out, forget=True)
    return out


#: The warning thresholds of the operating points (open loop, from a run's saved inputs): the learned arms' conflict
#: probability (p_on) and the raw-detection baseline's time to collision (ttc_on_s; its predictor draws no samples,
#: so its probability is 0 or 1), each with the run's own added. Each rule is the run's with that threshold, as a run
#: given it would have it (:func:`warning_config`: p_off at most p_on).
SWEEP_P_ON = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
SWEEP_TTC_ON_S = (1.0, 1.5, 2.0, 2.5, 3.0, 4.0)
#: what each operating point gives (:func:`score`'s keys)
POINT_KEYS = ("precision", "recall", "warnings", "median_lead_time_s", "false_warnings_per_vehicle_hour")


class _Predicted:
    """A predictor that gives back the conflicts predicted once this cycle: several warning rules follow one
    prediction."""

    def __init__(self) -> None:
        self.conflicts: list = []

    def predict(self, m) -> list:
        return self.conflicts


def _swept(run: dict, cycles, predictor, rules: dict, forget: bool) -> dict:
    """``{threshold: score}`` of the warning rules ``rules`` ({threshold: WarningConfig}) following one
    ``predictor`` over ``cycles`` ((Motion, truth ids) per cycle), each as :func:`warn_cycle` runs it."""
    from mobility_twin.safety import WarningTracker

    in_coverage = coverage_of(run)
    replayed = _Predicted()
    follow = {k: (WarningTracker(rule), WarningLog()) for k, rule in rules.items()}
    for m, truth in cycles:
        replayed.conflicts = predictor.predict(m)
        for warner, out in follow.values():
            warn_cycle(replayed, warner, m, truth, in_coverage, out, forget=forget)
    out = {}
    for k, (_, log) in follow.items():
        s = score({**run, "events": {"swept": log}}, "swept", run["job"]["horizon_s"])
        out[k] = {key: s[key] for key in POINT_KEYS}
    return out


def operating_points(run: dict, run_dir: Path, model) -> dict | None:
    """The open-loop operating points of a saved run (None: its inputs were not saved): precision, recall,
    warnings, median lead and false warnings per vehicle-hour (:data:`POINT_KEYS`) of the learned arm of ``model``
    (``twin_learned``, and ``twin_learned_views`` where the run saved its unseen stretches) at each p_on of
    :data:`SWEEP_P_ON`, and of the raw-detection baseline at each ttc_on_s of :data:`SWEEP_TTC_ON_S` (each with the
    run's own): how each trades precision for recall, and whether some setting of the baseline reaches the twin's.
    Each predictor runs once per cycle; the learned arm as :func:`learned_events` runs it, the baseline as the run
    and :func:`repredict` do."""
    from mobility_twin.safety import ConflictPredictor
    from mobility_twin.safety.learned import LearnedConflictPredictor, learned_warning_config

    twin_in, raw_in = run_dir / "inputs_twin.npz", run_dir / "inputs_baseline.npz"
    if not (twin_in.exists() and raw_in.exists()):
        return None
    job = run["job"]
    out: dict[str, list] = {}
    twin = list(MotionLog.motions(twin_in))
    arms = {"twin_learned": None}
    if twin and twin[0][0].unseen_ahead_m is not None:  # (saved with every cycle or none: MotionLog)
        arms["twin_learned_views"] = VIEWS_GAP_M
    for arm, gate in arms.items():
        predictor = LearnedConflictPredictor(model, max_unseen_gap_m=gate)
        rules = {p: learned_warning_config(warning_config({**job, "p_on": p}), predictor.horizon_s)
                 for p in sorted({*SWEEP_P_ON, warning_config(job).p_on})}
        out[arm] = [{"p_on": p, **s} for p, s in _swept(run, twin, predictor, rules, forget=True).items()]
    rules = {t: warning_config({**job, "ttc_on_s": t}) for t in sorted({*SWEEP_TTC_ON_S, job["ttc_on_s"]})}
    swept = _swept(run, MotionLog.motions(raw_in), ConflictPredictor(replace(predictor_config(job), samples=0)), rules,
                   forget=False)
    out["baseline"] = [{"ttc_on_s": t, **s} for t, s in swept.items()]
    return out


def best_recall_at(points: list[dict], precision: float) -> float | None:
    """The highest recall of ``points`` (operating points) at ``precision`` or above (None: none reaches it, or
    ``precision`` is NaN; points without a number are left out)."""
    reach = [p["recall"] for p in points if math.isfinite(p["precision"]) and math.isfinite(p["recall"])
             and p["precision"] >= precision]
    return max(reach) if reach else None


#: What perception costs the learned arm, one part at a time, from a run's saved inputs: the twin's road users
#: with the true velocity of each vehicle it holds (its track matched to it), then with the true position too,
#: then the true states of the vehicles it holds (their true boxes and headings as well), then the true states
#: of every vehicle (the oracle_states_learned arm). The first step is the twin's own input (twin_learned).
GAP_STEPS = ("twin", "true_velocity", "true_position_velocity", "true_states_of_held", "true_states_of_all")


def gap_cycles(twin: list, truth_cycles: dict, step: str):
    """(Motion, truth ids) of each cycle of a saved run for one of :data:`GAP_STEPS` after the first: the twin's
    cycles ``twin`` (from ``inputs_twin.npz``) with parts of the true states of the same cycles put in
    (``truth_cycles``: time rounded to the ms -> (Motion, ids), from ``inputs_oracle.npz``)."""
    for m, truth in twin:
        om, oids = truth_cycles.get(round(m.t, 3), (None, None))
        if om is None:  # (no true states that cycle)
            if step != "true_states_of_held":
                yield m, truth
            continue
        if step == "true_states_of_held":
            keep = np.isin(oids, truth[truth >= 0])
            yield replace(om, **{f: getattr(om, f)[keep] for f in MotionLog.FIELDS
                                 if getattr(om, f) is not None}), oids[keep]
            continue
        row = {int(v): k for k, v in enumerate(oids.tolist())}
        k = np.array([row.get(int(v), -1) for v in truth.tolist()], np.int64)
        held = k >= 0
        x = m.x.copy()
        cols = slice(2, 4) if step == "true_velocity" else slice(0, 4)
        x[held, cols] = om.x[k[held], cols]
        yield replace(m, x=x), truth


def perception_gap(run: dict, run_dir: Path, model, wcfg) -> dict | None:
    """Precision and recall of the learned arm at each of :data:`GAP_STEPS` on a saved open-loop run (None:
    its inputs were not saved), and ``lost_conflicts``: the conflicts it warns of on the true states and not on
    the twin's input, by why (:func:`lost_conflicts`). The first and last steps are the run's ``twin_learned``
    and ``oracle_states_learned`` warnings where it has them; the saved inputs are read once."""
    if not ((run_dir / "inputs_twin.npz").exists() and (run_dir / "inputs_oracle.npz").exists()):
        return None
    twin = list(MotionLog.motions(run_dir / "inputs_twin.npz"))
    truth_cycles = {round(m.t, 3): (m, ids) for m, ids in MotionLog.motions(run_dir / "inputs_oracle.npz")}
    ends = {"twin": ("twin_learned", twin),
            "true_states_of_all": ("oracle_states_learned", list(truth_cycles.values()))}
    out, events = {}, {}
    for step in GAP_STEPS:
        if step in ends:
            arm, cycles = ends[step]
            events[step] = run["events"].get(arm)
            if events[step] is None:
                events[step] = learned_events(run, run_dir, model, wcfg, cycles=cycles)
        else:
            events[step] = learned_events(run, run_dir, model, wcfg, cycles=gap_cycles(twin, truth_cycles, step))
        s = score({**run, "events": {step: events[step]}}, step, run["job"]["horizon_s"])
        out[step] = {k: s[k] for k in ("precision", "recall", "warnings", "conflicts", "conflicts_warned")}
    baseline = run_dir / "inputs_baseline.npz"
    raw = list(MotionLog.motions(baseline)) if baseline.exists() else None
    out["lost_conflicts"] = lost_conflicts(run, events["twin"], events["true_states_of_all"], twin, raw)
    return out


def lost_conflicts(run: dict, twin_events: list, truth_events: list, twin: list, raw: list | None) -> dict:
    """The conflicts the learned arm warns of on the true states of every vehicle and not on the twin's input,
    split by what the twin held of their parties in the ``horizon + 1 s`` before each (the warning's window):
    ``held`` (both parties in at least half of its cycles: the twin's states were off), ``not_held_but_detected``
    (a party held in fewer, and each such party in at least half of them in the raw detections and reports, the
    baseline's inputs ``raw``: the tracker lost it) and ``not_detected`` (such a party the raw detections had in
    fewer than half too: the sensors did not see it; a car hidden in a queue, hit by a few LiDAR points now and
    then); ``not_held`` is the sum of the last two. ``twin`` and ``raw``: (Motion, truth ids) per cycle. With
    ``raw``, also the recall on the twin's input and on the true states over the conflicts both of whose parties
    the raw detections had in at least half of the window (``detected_conflicts``), and how many of these each
    misses, following conflicts and the others; without it, these and the split of ``not_held`` are None.
    The saved inputs start after the warm-up: a window cut short counts the cycles it has (none: a share of 0)."""
    horizon_s = run["job"]["horizon_s"]
    critical = critical_conflicts(run)
    on_twin = lead_times(critical, scored_warnings(run, twin_events), horizon_s)
    on_truth = lead_times(critical, scored_warnings(run, truth_events), horizon_s)

    def present(cycles) -> list[tuple[float, set]]:  # per cycle, its time and the vehicles there (once)
        return [(m.t, set(ids[ids >= 0].tolist())) for m, ids in cycles]

    def share(cycles, c) -> list[float]:  # of the window's cycles, the share in which each party is there
        window = [there for t, there in cycles if c["t"] - horizon_s - SLACK_S <= t <= c["t"]]
        return [sum(v in w for w in window) / len(window) if window else 0.0 for v in (c["a"], c["b"])]

    twin = present(twin)
    raw = present(raw) if raw is not None else None
    detected = [share(raw, c) for c in critical] if raw is not None else None
    out = {"conflicts": 0, "held": 0, "not_held": 0, "not_held_but_detected": None, "not_detected": None,
           "detected_conflicts": None, "recall_of_detected_twin": None, "recall_of_detected_true_states": None,
           "detected_missed_twin_following": None, "detected_missed_twin_other": None,
           "detected_missed_true_states_following": None, "detected_missed_true_states_other": None}
    if detected is not None:
        out.update(not_held_but_detected=0, not_detected=0)
        # recall over the conflicts both of whose parties the raw detections had in at least half of the window
        # (what the sensors let any predictor see), on the twin's input and on the true states, and the conflicts
        # each misses there, following (the rear-end model's kind) or not (crossing, merging, a collision)
        seen = [min(d) >= 0.5 for d in detected]
        out["detected_conflicts"] = sum(seen)
        for who, leads in (("twin", on_twin), ("true_states", on_truth)):
            hits = [lead is not None for lead, ok in zip(leads, seen, strict=True) if ok]
            out[f"recall_of_detected_{who}"] = sum(hits) / len(hits) if hits else float("nan")
            missed = [c for c, lead, ok in zip(critical, leads, seen, strict=True) if ok and lead is None]
            following = sum(c["type"] in FOLLOWING_TYPES for c in missed)
            out[f"detected_missed_{who}_following"] = following
            out[f"detected_missed_{who}_other"] = len(missed) - following
    for k, (c, a, b) in enumerate(zip(critical, on_twin, on_truth, strict=True)):
        if a is not None or b is None:  # not lost
            continue
        out["conflicts"] += 1
        held = share(twin, c)
        if min(held) >= 0.5:
            out["held"] += 1
            continue
        out["not_held"] += 1
        if detected is not None:
            unseen = any(h < 0.5 and d < 0.5 for h, d in zip(held, detected[k], strict=True))
            out["not_detected" if unseen else "not_held_but_detected"] += 1
    return out


def _learned_path(arg) -> Path | None:
    """The rear-end model's checkpoint the bench runs as the twin_learned arm (None: no such arm)."""
    from mobility_twin_models.safety.model import DEFAULT_CHECKPOINT

    if arg is not None and str(arg).lower() == "none":
        return None
    if arg is None:
        return DEFAULT_CHECKPOINT if DEFAULT_CHECKPOINT.exists() else None
    return Path(arg).resolve()


def _pct(values) -> dict:
    if not values:
        return {}
    a = np.asarray(values)
    return {"mean": float(a.mean()), "p50": float(np.percentile(a, 50)), "p95": float(np.percentile(a, 95)),
            "max": float(a.max()), "cycles": len(a)}


# ssm's encounter types at the minimum TTC, seen from the ego: it follows (following, merging, crossing
# follower: 2, 7, 11) or leads (3, 6, 10); others (1 following, 5 merging, 9 crossing, undecided) name no follower
_EGO_FOLLOWS = (2, 7, 11)
_FOE_FOLLOWS = (3, 6, 10)


def _ssm_conflicts(path: Path, num: dict, frame, begin_s: float) -> list[dict]:
    """SUMO's conflicts (each pair once per episode): ids as ground-truth ids, times in UNIX s, map positions,
    and ``follower``: the one of the two that came up behind the other (ssm's encounter type at the minimum
    TTC; None when it names neither), the party a warning tells to yield.

    With ssm's trajectories (``world.ssm_trajectories``) each also carries ``critical``: the stretches
    ``[first, last, x, y]`` (UNIX s; map position of the ego at the first) in which its TTC stayed below
    :data:`TTC_CRITICAL_S`: a long encounter may come close more than once, and its minimum is only one of
    those moments. The file is read element by element and each element dropped once read (with every
    step of every encounter it holds hundreds of MB)."""
    if not path.exists():
        return []
    rows = []
    for _, c in ET.iterparse(path, events=("end",)):
        if c.tag != "conflict":
            continue
        m = c.find("minTTC")
        ego, foe = num.get(c.get("ego")), num.get(c.get("foe"))
        if m is None or m.get("value") in (None, "NA") or m.get("position") in (None, "NA") or ego is None \
                or foe is None:
            c.clear()
            continue
        sx, sy = (float(v) for v in m.get("position").split(","))
        mx, my = frame.to_map(np.array([sx]), np.array([sy]))
        pet = c.find("PET")
        kind = int(m.get("type") or -1)
        row = {"a": min(ego, foe), "b": max(ego, foe), "ttc": float(m.get("value")),
               "follower": ego if kind in _EGO_FOLLOWS else foe if kind in _FOE_FOLLOWS else None,
               "t": begin_s + float(m.get("time")), "begin": begin_s + float(c.get("begin")),
               "type": kind, "x": float(mx[0]), "y": float(my[0]),
               "speed": float(m.get("speed")) if m.get("speed") not in (None, "NA") else None,
               "pet": float(pet.get("value")) if pet is not None and pet.get("value") not in (None, "NA")
               else None}
        times, ttc, ego_xy = c.find("timeSpan"), c.find("TTCSpan"), c.find("egoPosition")
        if times is not None and ttc is not None and ego_xy is not None:
            row["critical"] = _critical_stretches(times.get("values", ""), ttc.get("values", ""),
                                                  ego_xy.get("values", ""), frame, begin_s)
        rows.append(row)
        c.clear()
    rows.sort(key=lambda r: (r["a"], r["b"], r["t"]))
    out = []
    for r in rows:  # the ego's and the foe's records of one episode: keep the lower TTC
        if out and out[-1]["a"] == r["a"] and out[-1]["b"] == r["b"] and abs(out[-1]["t"] - r["t"]) < 2.0:
            merged = (out[-1].get("critical") or []) + (r.get("critical") or [])
            if r["ttc"] < out[-1]["ttc"]:
                out[-1] = r
            if "critical" in r or "critical" in out[-1]:
                out[-1]["critical"] = merged
            continue
        out.append(r)
    return out


def _critical_stretches(times: str, ttc: str, ego_xy: str, frame, begin_s: float) -> list[list[float]]:
    """The ``[first, last, x, y]`` stretches of an ssm trajectory whose TTC ("NA": none) is below the critical
    value (times in UNIX s, the ego's map position at the first moment)."""
    t = np.array(times.split(), dtype=float)
    v = np.array([float(x) if x != "NA" else np.inf for x in ttc.split()])
    xy = ego_xy.split()
    if len(t) == 0 or len(v) != len(t) or len(xy) != len(t):
        return []
    low = v < TTC_CRITICAL_S
    if not low.any():
        return []
    edges = np.diff(np.r_[0, low.astype(np.int8), 0])
    first, last = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1
    sumo_xy = np.array([[float(u) for u in xy[i].split(",")[:2]] for i in first])
    mx, my = frame.to_map(sumo_xy[:, 0], sumo_xy[:, 1])
    return [[begin_s + float(t[a]), begin_s + float(t[b]), float(x), float(y)]
            for a, b, x, y in zip(first, last, mx, my, strict=True)]


# ------------------------------------------------------------------------------------------------ scoring
def critical_conflicts(run: dict) -> list[dict]:
    """The conflicts recall counts: SUMO's, with a minimum TTC below the critical value inside coverage, in the
    scored period (from 1 s after the warm-up)."""
    job = run["job"]
    lo = run["start_s"] + job["warmup_s"]
    hi = run["start_s"] + job["duration_s"]
    covered = coverage_of(run)
    return [c for c in run["conflicts"] if c["ttc"] < TTC_CRITICAL_S and lo + 1.0 <= c["t"] <= hi
            and covered(c["x"], c["y"])]


def scored_warnings(run: dict, events: list) -> list:
    """The warnings of ``events`` that are scored: in coverage, started in the scored period."""
    lo = run["start_s"] + run["job"]["warmup_s"]
    hi = run["start_s"] + run["job"]["duration_s"]
    return [w for w in events if w["in_coverage"] and lo <= w["t"] <= hi]


def _last(w, before):
    """Until when a warning speaks of its pair: ``before`` after its start, or to its end if it lasts longer."""
    return max(w["t"] + before, w.get("until", w["t"]))


def _matches(w, c, before, after):
    return {w["a"], w["b"]} == {c["a"], c["b"]} and w["t"] - after <= c["t"] <= _last(w, before)


def lead_times(critical: list, warnings: list, horizon_s: float) -> list:
    """Per conflict of ``critical``, its lead time (s) from the first warning of its pair that came before it
    and spoke of it, or None when none did."""
    before = horizon_s + SLACK_S
    out = []
    for c in critical:
        lead = [c["t"] - w["t"] for w in warnings if _matches(w, c, before, after=0.0)]
        out.append(max(lead) if lead else None)
    return out


def score(run: dict, name: str, horizon_s: float) -> dict:
    job = run["job"]
    lo = run["start_s"] + job["warmup_s"]
    hi = run["start_s"] + job["duration_s"]
    covered = coverage_of(run)

    critical = critical_conflicts(run)
    recorded = [c for c in run["conflicts"] if lo <= c["t"] <= hi + horizon_s]
    warnings = scored_warnings(run, run["events"][name])

    def matches(w, c, before=horizon_s + SLACK_S, after=SLACK_S):
        return _matches(w, c, before, after)

    # a warning is right when its pair's TTC is below the critical value inside coverage at some moment of its
    # window, from 1 s before it to horizon + 1 s after it or to its end if it lasts longer (ssm's trajectories:
    # any stretch of the encounter, not only its minimum), else when the encounter's minimum is (runs without
    # trajectories)
    stretches: dict[tuple[int, int], list] = {}
    for c in run["conflicts"]:
        for first, end, x, y in c.get("critical", []):
            if covered(x, y):
                stretches.setdefault((c["a"], c["b"]), []).append((first, end))
    with_stretches = any("critical" in c for c in run["conflicts"])

    def right(w, before=horizon_s + SLACK_S, after=SLACK_S):
        if not with_stretches:
            return any(matches(w, c) for c in critical)
        pair = (min(w["a"], w["b"]), max(w["a"], w["b"]))
        return any(first <= _last(w, before) and end >= w["t"] - after for first, end in stretches.get(pair, ()))

    tp = sum(right(w) for w in warnings)
    near = sum(any(matches(w, c) for c in recorded) for w in warnings)
    lead = lead_times(critical, warnings, horizon_s)
    leads = [t for t in lead if t is not None]
    found = len(leads)
    false = len(warnings) - tp
    by_kind = {}
    for label, pick in (("following", lambda c: c["type"] in FOLLOWING_TYPES), ("crossing", lambda c: 9 <= c["type"] <= 11),
                        ("merging", lambda c: 5 <= c["type"] <= 8),
                        ("at_5_mps_or_more", lambda c: (c.get("speed") or 0.0) >= 5.0),
                        ("below_5_mps", lambda c: (c.get("speed") or 0.0) < 5.0),
                        # whether the twin's sources (a LiDAR return, a V2X or CAV self-report) saw both parties at
                        # least once in a warning's window (horizon + SLACK_S) before: one hidden all that time (a car behind a truck in a
                        # queue) is in the disc of coverage but out of sight
                        ("both_parties_seen", lambda c: "seen" in c and min(c["seen"]) > 0),
                        ("a_party_unseen", lambda c: "seen" in c and min(c["seen"]) == 0)):
        these = [t is not None for c, t in zip(critical, lead, strict=True) if pick(c)]
        by_kind[label] = {"conflicts": len(these), "recall": sum(these) / len(these) if these else float("nan")}
    return {
        "warnings": len(warnings), "true_warnings": tp, "false_warnings": false, "conflicts": len(critical),
        "conflicts_warned": found,
        "precision": tp / len(warnings) if warnings else float("nan"),
        "precision_any_ssm_conflict": near / len(warnings) if warnings else float("nan"),
        "recall": found / len(critical) if critical else float("nan"),
        "median_lead_time_s": statistics.median(leads) if leads else float("nan"),
        "false_warnings_per_vehicle_hour": false / run["vehicle_hours_in_coverage"]
        if run["vehicle_hours_in_coverage"] > 0 else float("nan"),
        "unmatched_tracks": sum(w["a"] < 0 or w["b"] < 0 for w in warnings),
        "recall_by_conflict": by_kind,
    }


def conflicts_involving(run: dict, ids=None, *, yielding: bool = False) -> int:
    """TTC < 1.5 s conflicts in coverage after the warm-up involving one of ``ids`` (None: any vehicle);
    ``yielding``: only those in which it is the follower (the party a warning tells to brake; a conflict
    whose type names no follower counts for both)."""
    ids = None if ids is None else set(ids)

    def counts(c) -> bool:
        if ids is None:
            return True
        if yielding and c.get("follower") is not None:
            return c["follower"] in ids
        return c["a"] in ids or c["b"] in ids

    return sum(1 for c in critical_conflicts(run) if counts(c))


# ------------------------------------------------------------------------------------------------ the benchmark
def run(args: argparse.Namespace) -> int:
    from mobility_twin.safety import WarningConfig
    from mobility_twin_bench.common import RESULTS, format_table, write_results

    duration = args.duration or (45.0 if args.quick else 180.0)
    seeds = args.seeds or [7, 8]
    rule = WarningConfig()  # the warning rule the stack runs, unless told otherwise
    ttc_on = rule.ttc_on_s if args.ttc_on is None else args.ttc_on
    p_on = rule.p_on if args.p_on is None else args.p_on
    confirm = rule.confirm if args.confirm is None else args.confirm
    base = dict(scenario="city_conflicts", duration_s=duration, warmup_s=5.0, period_s=0.2, horizon_s=4.0,
                samples=24, ttc_on_s=ttc_on, p_on=p_on, confirm=confirm, coverage_m=60.0, match_m=3.0,
                brake_drop_mps=4.0, brake_to_other=True, max_brake_s=4.0, warned_headway_s=1.5,
                warned_headway_hold_s=10.0,
                predict_margin_m=40.0, lanes=not args.no_lanes, signals=not args.no_lanes and not args.no_signals)
    learned = model_path = _learned_path(args.learned)
    # the twin's warnings are the learned predictor's when there is a model (the stack's collision warning with
    # predictor learned), else the Monte Carlo predictor's; the closed loop acts on them
    base.update(learned=str(learned) if learned else "", act_on="twin_learned" if learned else "twin")
    out_dir = Path(args.out) if args.out else RESULTS
    jobs = [dict(base, seed=s, closed_loop=closed, run_dir=str(out_dir / "collision_runs" /
                                                                f"seed{s}-{'closed' if closed else 'open'}"))
            for s in seeds for closed in ((False,) if args.open_loop_only else (False, True))]
    started = time.monotonic()
    missing: list[str] = []
    if args.rescore or args.repredict:  # the runs that finished (one that did not is reported missing, never made up)
        runs = []
        for j in jobs:
            path = Path(j["run_dir"]) / "result.json"
            if path.exists():
                runs.append(json.loads(path.read_text()))
                runs[-1]["job"]["run_dir"] = str(path.parent)  # (where it is now)
            else:
                missing.append(Path(j["run_dir"]).name)
        if args.repredict:
            for r in runs:
                if r["job"]["closed_loop"]:
                    continue
                r["job"].update({k: base[k] for k in ("ttc_on_s", "p_on", "confirm", "horizon_s", "samples")})
                again = repredict(r, Path(r["job"]["run_dir"]), predictor_config(r["job"]), warning_config(r["job"]))
                if not again:
                    print(f"{r['job']['run_dir']}: no saved inputs (a run of an older bench): scored as it ran")
                r["events"].update(again)
        if not runs or not any(not r["job"]["closed_loop"] for r in runs):
            print(f"no finished open-loop run to score in {out_dir / 'collision_runs'}")
            return 2
        base = runs[0]["job"] | {k: v for k, v in base.items() if k not in runs[0]["job"]}
        seeds = [s for s in seeds if any(r["job"]["seed"] == s and not r["job"]["closed_loop"] for r in runs)]
    else:
        loops = "open loop only" if args.open_loop_only else "open and closed loop"
        print(f"collision warning: {len(jobs)} runs of {duration:g} s of SUMO traffic (seeds {seeds}, {loops}), "
              f"{args.jobs} at a time ...", flush=True)
        ctx = mp.get_context("spawn")
        with ctx.Pool(1) as pool:  # each seed's demand, one after the other
            pool.map(_prepare, [j for j in jobs if not j["closed_loop"]], chunksize=1)
        with ctx.Pool(max(1, args.jobs), maxtasksperchild=1) as pool:
            runs = pool.map(_run, jobs, chunksize=1)
    if (args.rescore or args.repredict) and learned is not None and args.learned is not None:
        from mobility_twin_models.safety.model import load_checkpoint

        model = load_checkpoint(learned)[0]  # a model named: its warnings again from the saved twin inputs
        for r in runs:
            folder = Path(r["job"]["run_dir"])
            if not r["job"]["closed_loop"] and (folder / "inputs_twin.npz").exists():
                r["events"]["twin_learned"] = learned_events(r, folder, model, warning_config(r["job"]))
                if (folder / "inputs_oracle.npz").exists():
                    r["events"]["oracle_states_learned"] = learned_events(r, folder, model, warning_config(r["job"]),
                                                                          who="oracle")
    headline = "twin_learned" if all("twin_learned" in r["events"] for r in runs if not r["job"]["closed_loop"]) \
        else "twin"
    gap_model = None
    if learned is not None and headline == "twin_learned":
        from mobility_twin_models.safety.model import load_checkpoint

        gap_model = load_checkpoint(learned)[0]
        for r in runs:  # the learned arm with the views gate, from the twin's saved inputs and their unseen gaps
            folder = Path(r["job"]["run_dir"])
            if not r["job"]["closed_loop"] and _has_unseen_gaps(folder / "inputs_twin.npz"):
                r["events"]["twin_learned_views"] = learned_events(r, folder, gap_model, warning_config(r["job"]),
                                                                   max_unseen_gap_m=VIEWS_GAP_M)
    per_seed = []
    for s in seeds:
        open_run = next(r for r in runs if r["job"]["seed"] == s and not r["job"]["closed_loop"])
        closed_run = next((r for r in runs if r["job"]["seed"] == s and r["job"]["closed_loop"]), None)
        twin, baseline = score(open_run, "twin", base["horizon_s"]), score(open_run, "baseline", base["horizon_s"])
        oracle = score(open_run, "oracle", base["horizon_s"]) if "oracle" in open_run["events"] else None
        learned = score(open_run, "twin_learned", base["horizon_s"]) if "twin_learned" in open_run["events"] else None
        oracle_learned = score(open_run, "oracle_states_learned", base["horizon_s"]) \
            if "oracle_states_learned" in open_run["events"] else None
        views = score(open_run, "twin_learned_views", base["horizon_s"]) \
            if "twin_learned_views" in open_run["events"] else None
        nan = float("nan")
        per_seed.append({
            "seed": s, "twin": twin, "baseline": baseline, "oracle_states": oracle, "twin_learned": learned,
            # the learned arm not warning a follower whose road to the one ahead was out of every LiDAR's sight for
            # VIEWS_GAP_M or more (a car the twin does not hold may stand there)
            "twin_learned_views": views,
            # the learned model on the true states: what perception costs the headline arm
            "oracle_states_learned": oracle_learned,
            # ... and part by part (GAP_STEPS): velocity, position, the vehicles the twin does not hold
            "perception_gap": perception_gap(open_run, Path(open_run["job"]["run_dir"]), gap_model,
                                             warning_config(open_run["job"])) if gap_model is not None else None,
            # the learned arms and the baseline at other warning thresholds (SWEEP_P_ON, SWEEP_TTC_ON_S)
            "operating_points": operating_points(open_run, Path(open_run["job"]["run_dir"]), gap_model)
            if gap_model is not None else None,
            "twin_closed_loop": score(closed_run, closed_run["job"].get("act_on", "twin"), base["horizon_s"])
            if closed_run else None,
            # the conflicts of the road users a warning tells to brake: a connected vehicle as the follower
            "conflicts_without": conflicts_involving(open_run, open_run["connected"], yielding=True),
            "conflicts_with_warnings": conflicts_involving(closed_run, closed_run["connected"], yielding=True)
            if closed_run else nan,
            "connected_conflicts_without": conflicts_involving(open_run, open_run["connected"]),
            "connected_conflicts_with_warnings": conflicts_involving(closed_run, closed_run["connected"])
            if closed_run else nan,
            "cav_conflicts_without": conflicts_involving(open_run, open_run["cavs"]),
            "cav_conflicts_with_warnings": conflicts_involving(closed_run, closed_run["cavs"]) if closed_run else nan,
            "all_conflicts_without": conflicts_involving(open_run),
            "all_conflicts_with_warnings": conflicts_involving(closed_run) if closed_run else nan,
            "commands": closed_run["commands"] if closed_run else {"accepted": nan},
            "runs": {k: {"sim_s": r["sim_s"], "wall_s": r["wall_s"], "open_s": r["open_s"],
                         "vehicle_hours_in_coverage": r["vehicle_hours_in_coverage"], "predict_ms": r["predict_ms"],
                         "skipped": r["skipped"], "ssm_conflicts": len(r["conflicts"]),
                         "connected_vehicles": len(r["connected"])}
                     for k, r in (("open", open_run), ("closed", closed_run)) if r is not None},
        })
    for p in per_seed:  # the sweep at the run's own rule is the headline arm's own score, unless told otherwise
        run_ = next(r for r in runs if r["job"]["seed"] == p["seed"] and not r["job"]["closed_loop"])
        own = {o["p_on"]: o for o in (p.get("operating_points") or {}).get("twin_learned", ())}.get(
            warning_config(run_["job"]).p_on)
        if own is not None and p["twin_learned"] is not None and \
                repr([own[k] for k in POINT_KEYS]) != repr([p["twin_learned"][k] for k in POINT_KEYS]):
            print(f"note: seed {p['seed']}'s operating points at its own rule are not its twin_learned arm's (the arm's "
                  f"warnings came with the run, the points from {model_path}: give --learned with the run's model)")
    head = per_seed[0]

    results = {
        "scenario": base["scenario"], "settings": base, "seeds": seeds,
        "fed_by": "the offline pipeline (mobility_twin.evaluation.offline's local twins with RSU LiDAR, CAV LiDAR + "
                  "self-reports, V2X reports; the global twin), ROS-free in one process; no network latency; "
                  "road users predicted within coverage_m + predict_margin_m of an RSU",
        "ground_truth": f"SUMO ssm conflicts, minTTC < {TTC_CRITICAL_S} s, minTTC position within "
                        f"{base['coverage_m']:g} m of an RSU",
        # the headline keys (first seed); every seed below
        "headline_arm": headline,  # the twin's warnings: the learned predictor's when a model ran
        "precision": head[headline]["precision"], "recall": head[headline]["recall"],
        "median_lead_time_s": head[headline]["median_lead_time_s"],
        "false_warnings_per_vehicle_hour": head[headline]["false_warnings_per_vehicle_hour"],
        "conflicts_with_warnings": head["conflicts_with_warnings"], "conflicts_without": head["conflicts_without"],
        "baseline": head["baseline"], "per_seed": per_seed, "seconds": time.monotonic() - started,
        "runs_missing": missing,
    }
    table = []
    for p in per_seed:
        for who in ("twin", "twin_learned", "twin_learned_views", "baseline", "oracle_states", "oracle_states_learned"):
            r = p.get(who)
            if r is None:
                continue
            table.append({"seed": p["seed"], "warnings from": who, "conflicts": r["conflicts"],
                          "warnings": r["warnings"], "precision": r["precision"],
                          "prec. any ssm": r["precision_any_ssm_conflict"], "recall": r["recall"],
                          # the conflicts both of whose parties a sensor saw at least once in a warning's window before
                          "seen": r["recall_by_conflict"]["both_parties_seen"]["conflicts"],
                          "recall of seen": r["recall_by_conflict"]["both_parties_seen"]["recall"],
                          "median lead s": r["median_lead_time_s"],
                          "false /veh h": r["false_warnings_per_vehicle_hour"]})
    print(format_table(table, title="\nWarnings against SUMO's TTC < 1.5 s conflicts inside coverage (open loop)"))
    gap = [{"seed": p["seed"], **{step.replace("_", " "): f"{p['perception_gap'][step]['recall']:.3f} / "
                                                       f"{p['perception_gap'][step]['precision']:.3f}"
                                  for step in GAP_STEPS}}
           for p in per_seed if p["perception_gap"]]
    if gap:
        print(format_table(gap, title="\nWhat perception costs the learned arm (recall / precision): the twin's input, "
                                      "then with the true velocity, position, states of the vehicles it holds, of all"))
        short = {"not_held_but_detected": "lost by tracker", "detected_conflicts": "detected",
                 "recall_of_detected_twin": "recall: twin", "recall_of_detected_true_states": "recall: true states",
                 "detected_missed_twin_following": "missed: twin following", "detected_missed_twin_other": "twin other",
                 "detected_missed_true_states_following": "true states following",
                 "detected_missed_true_states_other": "true states other"}
        lost = [{"seed": p["seed"], **{short.get(k, k.replace("_", " ")): v
                                       for k, v in p["perception_gap"]["lost_conflicts"].items()}}
                for p in per_seed if p["perception_gap"]]
        print(format_table(lost, title="\nConflicts the learned arm warns of on the true states and not on the twin's "
                                       "input: both parties held, a party held in under half the warning's window "
                                       "though the raw detections had it (lost by the tracker), or not (not "
                                       "detected); the conflicts both of whose parties the raw detections had in "
                                       "half of it (detected), the recall there on the twin's input and on the true "
                                       "states, and the conflicts each misses there, following and other kinds"))
    points = [{"seed": p["seed"], "warnings from": arm, "threshold": f"{'p_on' if 'p_on' in o else 'ttc_on_s'} "
                                                                    f"{o.get('p_on', o.get('ttc_on_s')):g}",
               "precision": o["precision"], "recall": o["recall"], "warnings": o["warnings"],
               "median lead s": o["median_lead_time_s"], "false /veh h": o["false_warnings_per_vehicle_hour"]}
              for p in per_seed if p.get("operating_points") for arm, rows in p["operating_points"].items()
              for o in rows]
    if points:
        print(format_table(points, title="\nOperating points (open loop, from the saved inputs): the learned arms at other "
                                         "conflict probabilities (p_on), the raw-detection baseline at other times to "
                                         "collision (ttc_on_s); the rest of the rule as run"))
    loop = [{"seed": p["seed"], "connected following: without": p["conflicts_without"],
             "with warnings": p["conflicts_with_warnings"],
             "connected either way: without": p["connected_conflicts_without"],
             "with": p["connected_conflicts_with_warnings"], "CAVs: without": p["cav_conflicts_without"],
             "CAVs: with": p["cav_conflicts_with_warnings"], "all: without": p["all_conflicts_without"],
             "all: with": p["all_conflicts_with_warnings"], "brake commands": p["commands"]["accepted"]}
            for p in per_seed]
    print(format_table(loop, title="\nClosed loop: TTC < 1.5 s conflicts in coverage, connected vehicles braking on "
                                   "the twin's warnings vs not (same seed)"))
    targets = []

    def target(name, ok_each, measured):
        targets.append({"target": name, "measured": measured, "verdict": "met" if all(ok_each) else "MISSED"})

    tw = [p[headline] for p in per_seed]
    bl = [p["baseline"] for p in per_seed]
    fmt = lambda key: ", ".join(f"{r[key]:.3g}" for r in tw)  # noqa: E731
    seen = ", ".join(f"{r['recall_by_conflict']['both_parties_seen']['recall']:.3g}" for r in tw)
    views = [p.get("twin_learned_views") for p in per_seed]

    def views_of(key: str) -> str:
        if headline != "twin_learned" or not all(views):
            return ""
        return f" (with the views gate, twin_learned_views: {', '.join(f'{r[key]:.3g}' for r in views)})"

    target("recall >= 0.90", [r["recall"] >= 0.90 for r in tw], f"{fmt('recall')} (of the conflicts both of whose "
                                                               f"parties a sensor saw: {seen}){views_of('recall')}")
    target("precision >= 0.80", [r["precision"] >= 0.80 for r in tw], fmt("precision") + views_of("precision"))
    target("median lead time >= 1.5 s", [r["median_lead_time_s"] >= 1.5 for r in tw], fmt("median_lead_time_s"))

    def matched(p: dict, t: dict) -> str:  # the baseline's best recall at the twin's precision, over its thresholds
        if not p.get("operating_points") or not math.isfinite(t["precision"]):
            return ""
        points = p["operating_points"]["baseline"]
        best = best_recall_at(points, t["precision"])
        if best is not None:
            return f" (at precision {t['precision']:.2f} or above the baseline reaches recall {best:.2f})"
        top = max((o["precision"] for o in points if math.isfinite(o["precision"])), default=math.nan)
        return (f" (no ttc_on_s of {points[0]['ttc_on_s']:g}-{points[-1]['ttc_on_s']:g} s brings the baseline's "
                f"precision to {t['precision']:.2f}: at most {top:.2f})")

    target("ahead of the raw-detection baseline (recall and precision)",
           [t["recall"] >= b["recall"] and t["precision"] >= b["precision"] for t, b in zip(tw, bl, strict=True)],
           "; ".join(f"twin {t['recall']:.2f}/{t['precision']:.2f} vs baseline {b['recall']:.2f}/{b['precision']:.2f}"
                     f"{matched(p, t)}" for t, b, p in zip(tw, bl, per_seed, strict=True)))
    target("warned vehicles' conflicts at least halved",
           [p["conflicts_with_warnings"] <= 0.5 * p["conflicts_without"] and p["conflicts_without"] > 0
            for p in per_seed],  # (a missing closed-loop run: NaN, not met)
           "; ".join(f"{p['conflicts_with_warnings']} vs {p['conflicts_without']}" for p in per_seed))
    acted_on = {r["job"].get("act_on", "twin") for r in runs if r["job"]["closed_loop"]}
    if any(p["twin_closed_loop"] is None for p in per_seed):
        targets[-1]["verdict"] = "NOT MEASURED (closed-loop run missing)"
    elif acted_on != {headline}:
        targets[-1]["verdict"] = f"NOT MEASURED (the closed-loop runs braked on the {', '.join(sorted(acted_on))} warnings)"
    if missing:
        for t in targets:
            t["verdict"] += f" (runs missing: {', '.join(missing)})"
    results["targets"] = targets
    print(format_table(targets, ["target", "measured", "verdict"], title="\nTargets (every seed)"))
    path = write_results("collision", results, args.out)
    print(f"\nwrote {path} ({results['seconds']:.0f} s)")
    return 0

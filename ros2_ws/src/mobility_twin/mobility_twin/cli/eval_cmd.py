"""`mtwin eval tracking`: run the stack on a scenario as separate processes and score it.

Runs replay (hardware-in-the-loop: wall-clock pacing and stamps, so latencies are real), one perception
process per RSU and CAV, a local twin per site and the global twin, from a launch file written into the
output folder; records ground truth, every twin's tracks and every RSU's detections; then scores each
RSU alone, each local twin and the global twin with py-motmetrics, and the latency of every stage.
The messages go to disk as they arrive (a spool in the output folder, removed after scoring) and are
decoded after the run in one pass, so the evaluator's memory does not grow with the raw stream.

With --record the run is also written to an MCAP recording (the scored messages exactly as received,
plus the other twin outputs); --recording FILE scores such a recording instead of running the stack,
to the same numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from mobility_twin.cli import add_verb, command_error, help_without_verb


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate the running stack against the simulator's ground truth",
                       description="Evaluate the stack on a scenario.")
    what = p.add_subparsers(dest="what", metavar="WHAT")
    t = add_verb(
        what, "tracking", run_tracking,
        help="MOTA, MOTP, IDF1, id switches per RSU, local twin and global twin; latency per stage",
        description=__doc__,
    )
    t.add_argument("--scenario", default="default", help="scenario file or shipped name (default: default)")
    t.add_argument("--duration", type=float, default=0.0, metavar="S", help="sim seconds (0: the whole scenario)")
    t.add_argument("--start", type=float, default=0.0, metavar="S", help="start S seconds into the scenario")
    t.add_argument("--eval-range", type=float, default=None, metavar="M",
                   help="score within this distance of the RSUs (default 60 m, or the recorded run's)")
    t.add_argument("--out", type=Path, default=None, help="output folder (default runs/eval-<time>)")
    t.add_argument("--json", action="store_true", help="print the results as JSON")
    t.add_argument("--record", nargs="?", const="", default=None, metavar="FILE.mcap",
                   help="also record the run to MCAP (default file: recording.mcap in the run folder)")
    t.add_argument("--recording", type=Path, default=None, metavar="FILE.mcap",
                   help="score a recorded run (made with --record, or by the recorder) instead of running the stack")

    w = add_verb(
        what, "sweep", run_sweep,
        help="generate scenarios across districts, times and sensor mixes of the city; score each and the worst",
        description="Generate scenarios across districts and times of the T-Drive city extract, V2X penetration, "
                    "GNSS noise, RSU density, CAV count, LiDAR noise and dropout (a Latin hypercube over the levels), "
                    "run each and report each scenario, the worst case and the targets (table, DIR/sweep.json, "
                    "DIR/sweep.png; one tracking.json and scenario.yaml per scenario).",
    )
    w.add_argument("--quick", action="store_true", help="8 scenarios of 60 s (under 20 minutes on 2 cores)")
    w.add_argument("--count", type=int, default=None, help="scenarios (default 8 with --quick, else 24)")
    w.add_argument("--duration", type=float, default=None, metavar="S",
                   help="sim seconds per scenario (default 60 with --quick, else 120)")
    w.add_argument("--seed", type=int, default=2008, help="the design's seed (another seed: other pairings)")
    w.add_argument("--data", type=Path, default=None,
                   help="T-Drive city extract (default $MTWIN_TDRIVE_CITY, else shared/data/tdrive/city beside the clone)")
    w.add_argument("--ros", action="store_true",
                   help="run each scenario through the real stack (mtwin eval tracking) instead of the offline pipeline")
    w.add_argument("--out", type=Path, default=None, help="output folder (default runs/sweep-<time>)")

    help_without_verb(p)


def run_tracking(args: argparse.Namespace) -> int:
    if args.recording is not None:
        return score_recording(args)
    from mobility_twin.deploy.stack import StackOptions, stack_launch_xml
    from mobility_twin.evaluation.live import RunCollector
    from mobility_twin.evaluation.report import tracking_table
    from mobility_twin.evaluation.scoring import score_run
    from mobility_twin_sim.scenario import ScenarioError, load_scenario
    from mobility_twin_sim.world import build_world

    try:
        scenario = load_scenario(args.scenario)
    except ScenarioError as err:
        return command_error("eval tracking", err)
    say = (lambda *a: print(*a, file=sys.stderr, flush=True)) if args.json else (lambda *a: print(*a, flush=True))
    out = (args.out or Path("runs") / time.strftime("eval-%Y%m%d-%H%M%S")).resolve()
    out.mkdir(parents=True, exist_ok=True)
    # the layout only: a SUMO world is prepared (network, demand, RSU junctions) but runs in the replay process
    world = build_world(scenario, start=False, log=say)
    duration = args.duration or (world.end_s - world.start_s - args.start)
    launch = out / "stack.launch.xml"
    sumo = world.kind == "sumo"
    # perception and twins only: the offloading, relation and placement nodes are not scored here
    launch.write_text(stack_launch_xml(world.layout, StackOptions(
        scenario=scenario.source, duration_s=duration, start_offset_s=args.start, hil=True, offloading=False,
        relations=False, placement=False, viz=False, output_dir=str(out / "sumo") if sumo else "")))
    # the launch's safety timeout; SUMO first simulates its warm-up (world.demand.begin -> the scenario start)
    startup_s = 60.0 + (120.0 + world.start_s - world.backend.begin_s if sumo else 0.0)
    say(f"mtwin eval tracking: scenario {scenario.name!r}, {duration:g} s, {len(world.rsus)} RSUs, "
        f"{len(world.cavs)} CAVs, {len(world.sites)} sites; run folder {out}")
    eval_range = 60.0 if args.eval_range is None else args.eval_range
    recording = None if args.record is None else (Path(args.record) if args.record else out / "recording.mcap")
    # every scored message goes to disk as it arrives (the recording, or a spool removed after scoring)
    spool = recording if recording is not None else out / "collected.mcap"
    collector = RunCollector(world.layout, spool, record_others=recording is not None)
    log = (out / "stack.log").open("w")
    os.environ["MTWIN_STATE_DIR"] = str(out / "state")  # a run never resumes another's ids
    proc = subprocess.Popen([sys.executable, "-m", "mobility_twin.cli", "launch", str(launch), "--duration",
                             str(duration + startup_s)], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    collector.yield_to_stack()
    try:
        started = time.monotonic()
        last = started
        while proc.poll() is None:
            collector.spin(0.5)
            if time.monotonic() - last > 10.0:
                last = time.monotonic()
                say(f"  {collector.progress()}  ({time.monotonic() - started:.0f} s)")
        collector.spin(1.0)
    except KeyboardInterrupt:
        proc.terminate()
        proc.wait()
        say("interrupted: scoring what was recorded")
    finally:
        collector.close({"scenario": scenario.name, "scenario_source": str(scenario.source), "duration_s": f"{duration!r}",
                         "start_s": f"{args.start!r}", "hil": "true", "eval_range_m": f"{eval_range!r}"})
        log.close()
    if proc.returncode not in (0, None):
        say(f"the stack ended with status {proc.returncode}: see {out / 'stack.log'}")
    say(f"decoding the {spool.stat().st_size / 1e6:.0f} MB of {spool.name}")
    record = collector.decode()
    if recording is None:
        spool.unlink()
    if collector.bad:
        say(f"{collector.bad} message(s) could not be decoded: not scored")
    results = score_run(record, eval_range_m=eval_range)
    results["scenario"] = scenario.name
    results["duration_s"] = duration
    results["run_folder"] = str(out)
    results["world"] = {"kind": world.kind, "label": world.statics.label}
    if sumo:  # SUMO's own outputs of the run (trip info, surrogate-safety conflicts, statistics)
        results["world"]["outputs"] = sorted(str(p) for p in (out / "sumo").glob("*.xml"))
    if recording is not None:
        results["recording"] = str(recording)
    # what the evaluation itself held at most (collecting, decoding, scoring): it must not grow with the run
    results["evaluator_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    (out / "tracking.json").write_text(json.dumps(results, indent=2))
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(tracking_table(results))
        print(f"\nevaluator peak memory {results['evaluator_peak_rss_mb']:.0f} MB; wrote {out / 'tracking.json'}")
    ok = results["tracking"].get("global", {}).get("num_frames", 0) > 0
    return 0 if ok else 1


def run_sweep(args: argparse.Namespace) -> int:
    from mobility_twin.evaluation import sweep

    data = args.data or sweep.city_extract()
    if data is None or not Path(data).is_dir():
        print("mtwin eval sweep: error: the T-Drive city extract was not found: pass --data DIR or set "
              "MTWIN_TDRIVE_CITY (the sweep's districts lie across the whole city)", file=sys.stderr)
        return 2
    count = args.count or (8 if args.quick else 24)
    duration = args.duration or (60.0 if args.quick else 120.0)
    try:
        scenarios = sweep.design(count, args.seed)
    except ValueError as err:
        return command_error("eval sweep", err)
    out = (args.out or Path("runs") / time.strftime("sweep-%Y%m%d-%H%M%S")).resolve()
    print(f"mtwin eval sweep: {count} scenarios of {duration:g} s ({'the ROS stack' if args.ros else 'offline pipeline'}), "
          f"data {data}, output {out}", flush=True)
    os.environ.setdefault("MTWIN_STATE_DIR", str(out / "state"))
    result = sweep.run_sweep(scenarios, Path(data).resolve(), out, duration, ros=args.ros,
                             say=lambda *a: print(*a, flush=True))
    print()
    print(sweep.sweep_table(result["scenarios"]))
    w = result["worst"]
    if w:
        print(f"\nworst: MOTA {w['mota']:.3f} ({w['mota_scenario']}), IDF1 {w['idf1']:.3f} ({w['idf1_scenario']}), "
              f"disc {w['disc_margin']:+.3f} ({w['disc_scenario']} {w['disc_rsu']})")
    for t in result["targets"]:
        print(f"  [{t['verdict']}] {t['target']}")
    print(f"\nwrote {out / 'sweep.json'} and {out / 'sweep.png'} ({result['wall_s'] / 60:.1f} min)")
    return 0 if all("error" not in r for r in result["scenarios"]) else 1


def score_recording(args: argparse.Namespace) -> int:
    """Score a recorded run: the same decoding and scoring as a live run, fed from the MCAP file."""
    from mobility_twin.evaluation.decoding import record_from_recording
    from mobility_twin.evaluation.report import tracking_table
    from mobility_twin.evaluation.scoring import score_run
    from mobility_twin.recording import RecordingError

    try:
        record, meta = record_from_recording(args.recording)
    except RecordingError as err:
        return command_error("eval tracking", err)
    eval_range = args.eval_range if args.eval_range is not None else float(meta.get("eval_range_m", 60.0))
    results = score_run(record, eval_range_m=eval_range)
    results["scenario"] = meta.get("scenario", record.layout.name or "?")
    if "duration_s" in meta:
        results["duration_s"] = float(meta["duration_s"])
    results["recording"] = str(args.recording)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "tracking.json").write_text(json.dumps(results, indent=2))
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(tracking_table(results))
    return 0 if results["tracking"].get("global", {}).get("num_frames", 0) > 0 else 1

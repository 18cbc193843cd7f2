"""`mtwin eval tracking`: run the stack on a scenario as separate processes and score it.

Runs replay (hardware-in-the-loop: wall-clock pacing and stamps, so latencies are real), one perception
process per RSU and CAV, a local twin per site and the global twin, from a launch file written into the
output folder; records ground truth, every twin's tracks and every RSU's detections; then scores each
RSU alone, each local twin and the global twin with py-motmetrics, and the latency of every stage.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate the running stack against the simulator's ground truth",
                       description="Evaluate the stack on a scenario.")
    what = p.add_subparsers(dest="what", metavar="WHAT")
    t = what.add_parser(
        "tracking", help="MOTA, MOTP, IDF1, id switches per RSU, local twin and global twin; latency per stage",
        description=__doc__,
    )
    t.add_argument("--scenario", default="default", help="scenario file or shipped name (default: default)")
    t.add_argument("--duration", type=float, default=0.0, metavar="S", help="sim seconds (0: the whole scenario)")
    t.add_argument("--start", type=float, default=0.0, metavar="S", help="start S seconds into the scenario")
    t.add_argument("--eval-range", type=float, default=60.0, metavar="M",
                   help="score within this distance of the RSUs (default 60 m)")
    t.add_argument("--out", type=Path, default=None, help="output folder (default runs/eval-<time>)")
    t.add_argument("--json", action="store_true", help="print the results as JSON")
    t.set_defaults(func=run_tracking)

    def no_what(_args: argparse.Namespace) -> int:
        p.print_help()
        return 2

    p.set_defaults(func=no_what)


def run_tracking(args: argparse.Namespace) -> int:
    from mobility_twin.deploy.stack import StackOptions, stack_launch_xml
    from mobility_twin.evaluation.live import RunCollector
    from mobility_twin.evaluation.report import tracking_table
    from mobility_twin.evaluation.scoring import score_run
    from sim.scenario import ScenarioError, load_scenario
    from sim.world import build_world

    try:
        scenario = load_scenario(args.scenario)
    except ScenarioError as err:
        print(f"mtwin eval tracking: error: {err}", file=sys.stderr)
        return 2
    say = (lambda *a: print(*a, file=sys.stderr, flush=True)) if args.json else (lambda *a: print(*a, flush=True))
    out = (args.out or Path("runs") / time.strftime("eval-%Y%m%d-%H%M%S")).resolve()
    out.mkdir(parents=True, exist_ok=True)
    world = build_world(scenario)
    layout = world.describe()
    duration = args.duration or (world.end_s - world.start_s - args.start)
    launch = out / "stack.launch.xml"
    launch.write_text(stack_launch_xml(layout, StackOptions(scenario=scenario.source, duration_s=duration,
                                                            start_offset_s=args.start, hil=True)))
    say(f"mtwin eval tracking: scenario {scenario.name!r}, {duration:g} s, {len(world.rsus)} RSUs, "
        f"{len(world.cavs)} CAVs, {len(world.sites)} sites; run folder {out}")
    collector = RunCollector(layout)
    log = (out / "stack.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "mobility_twin.cli", "launch", str(launch), "--duration",
                             str(duration + 60.0)], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
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
        collector.close()
        log.close()
    if proc.returncode not in (0, None):
        say(f"the stack ended with status {proc.returncode}: see {out / 'stack.log'}")
    record = collector.record
    results = score_run(record, eval_range_m=args.eval_range)
    results["scenario"] = scenario.name
    results["duration_s"] = duration
    results["run_folder"] = str(out)
    (out / "tracking.json").write_text(json.dumps(results, indent=2))
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(tracking_table(results))
        print(f"\nwrote {out / 'tracking.json'}")
    ok = results["tracking"].get("global", {}).get("num_frames", 0) > 0
    return 0 if ok else 1

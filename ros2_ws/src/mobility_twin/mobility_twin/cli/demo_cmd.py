"""`mtwin demo` (what `make demo` runs): the stack on the default scenario, for a bounded time, with a report."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="run the demo (launch/demo.launch.xml) for a bounded time and print its report",
        description="Run launch/demo.launch.xml for at most --duration seconds; the run's files go to "
        "runs/<timestamp>/ and a summary is printed at the end.",
    )
    p.add_argument("--duration", type=float, default=60.0, metavar="S", help="upper bound on the run (default 60)")
    p.add_argument("--runs-dir", type=Path, default=Path("runs"), help="parent folder of the run folder")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mobility_twin.cli.launch_cmd import split_target
    from mobility_twin.launch_runner import LaunchError, LaunchRunner, RunOptions, load_launch_file

    run_dir = (args.runs_dir / time.strftime("%Y%m%d-%H%M%S")).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    print(f"mtwin demo: run folder {run_dir}")
    try:
        path, arguments = split_target(["mobility_twin", "demo.launch.xml", f"run_dir:={run_dir}"])
        plan = load_launch_file(path, arguments)
        status = LaunchRunner(plan, RunOptions(duration=args.duration)).run()
    except LaunchError as err:
        print(f"mtwin demo: error: {err}", file=sys.stderr)
        return 2
    print()
    print("=" * 72)
    print(f"mobility_twin demo summary ({run_dir})")
    print("=" * 72)
    selftest = run_dir / "selftest.json"
    if selftest.is_file():
        report = json.loads(selftest.read_text())
        verdict = "intact" if report["passed"] else "FAILED"
        print(f"interfaces over DDS : {report['interfaces']} interfaces, "
              f"{sum(report['intact'].values())} messages {verdict} in {report['seconds']} s")
    else:
        print("interfaces over DDS : no report (the listener did not finish)")
        status = status or 1
    print(f"exit status         : {status}")
    return status

"""`mtwin replay`: run the simulator node (T-Drive replay or SUMO city, LiDAR, odometry, /clock) on a scenario.

With a SUMO world (``mtwin replay --scenario city``) SUMO's own outputs (trip info, surrogate-safety
conflicts, statistics) go to ``--out`` (default ``runs/replay-<time>/sumo``), never the working directory.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from mobility_twin.cli import node_argv


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "replay", help="replay a scenario: /clock, ground truth, LiDAR clouds and CAV odometry",
        description="Run the replay node on a scenario (a file, or the name of one in sim/scenarios). At run time "
        "the node's parameters paused, seek_to_s and rate pause, seek and change the pace. With a SUMO world the "
        "traffic signals go out on /infrastructure/signals, each CAV's drive interface takes route commands on "
        "/cav/<id>/control/route_command (answered on .../status; its route_follower passes them on from "
        "/cav/<id>/route_command) and its destination goes out on /cav/<id>/destination.",
    )
    p.add_argument("--scenario", default="default", help="scenario file or shipped name (default: default)")
    p.add_argument("--rate", type=float, default=1.0, help="real-time factor; 0 = as fast as possible (default 1)")
    p.add_argument("--start", type=float, default=0.0, metavar="S", help="start S seconds into the scenario")
    p.add_argument("--duration", type=float, default=0.0, metavar="S", help="stop after S sim seconds (0: the end)")
    p.add_argument("--no-lidar", action="store_true", help="trajectories, odometry and ground truth only")
    p.add_argument("--hil", action="store_true",
                   help="hardware-in-the-loop: wall-clock pacing and stamps, no /clock, deadline misses counted")
    p.add_argument("--progress", type=float, default=10.0, metavar="S", help="seconds between progress lines")
    p.add_argument("--out", type=Path, default=None, metavar="DIR",
                   help="SUMO worlds: folder for SUMO's outputs (default runs/replay-<time>/sumo)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mobility_twin.nodes.replay import ReplayNode
    from mobility_twin.ros.entry import run_node
    from mobility_twin_sim.scenario import ScenarioError, load_scenario

    params = {
        "scenario": args.scenario, "rate": args.rate, "start_offset_s": args.start, "duration_s": args.duration,
        "lidar": not args.no_lidar, "hil": args.hil, "progress_period_s": args.progress,
    }
    try:
        sumo = load_scenario(args.scenario).world.kind == "sumo"
    except ScenarioError:
        sumo = False  # the node reports the scenario's error
    if args.out is not None or sumo:
        out = args.out or Path("runs") / time.strftime("replay-%Y%m%d-%H%M%S") / "sumo"
        params["output_dir"] = str(out.resolve())
    return run_node(ReplayNode, node_argv(params))

"""`mtwin record`: run the recorder node here: chosen topics of the live graph into an MCAP file.

The same node as `ros2 launch mobility_twin record.launch.xml` (config/recorder.yaml describes it);
Ctrl-C, SIGTERM (or --duration) closes the file with its summary; a `kill -9` loses at most the last
--flush-interval seconds, and `mtwin recording repair FILE` makes such a file whole again. Play it back
with `mtwin play FILE`.
"""

from __future__ import annotations

import argparse

from mobility_twin.cli import node_argv


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("record", help="record topics of the live graph to MCAP (ros2 bag and Foxglove read it)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-o", "--output", default="", metavar="FILE.mcap",
                   help="the file to write (default runs/record-<date>-<time>.mcap)")
    p.add_argument("--topics", nargs="+", default=None, metavar="TOPIC",
                   help="topic names or regular expressions (whole name) to record; '.*' for all "
                   "(default: the twin, ground truth, decisions, migrations, detections, odometry, /clock)")
    p.add_argument("--exclude", nargs="+", default=None, metavar="TOPIC", help="topics not to record")
    p.add_argument("--clouds", action="store_true", help="also record the point clouds (big)")
    p.add_argument("--duration", type=float, default=0.0, metavar="S", help="stop after S seconds (0: Ctrl-C)")
    p.add_argument("--use-sim-time", action="store_true", help="log times from /clock")
    p.add_argument("--flush-interval", type=float, default=1.0, metavar="S",
                   help="write and flush the chunk in progress once its oldest message has waited S seconds: at "
                   "most S seconds of messages are lost if the recorder is killed (default 1; 0: when full)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mobility_twin.nodes.recorder import RecorderNode
    from mobility_twin.ros.entry import run_node

    params: dict[str, object] = {"output": args.output, "clouds": args.clouds, "duration_s": args.duration,
                                 "use_sim_time": args.use_sim_time, "flush_interval_s": float(args.flush_interval)}
    if args.topics is not None:
        params["topics"] = ",".join(args.topics)
    if args.exclude is not None:
        params["exclude"] = ",".join(args.exclude)
    return run_node(RecorderNode, node_argv(params))

"""`mtwin`: the mobility_twin command line.

Subcommands register themselves from their modules (see COMMANDS); heavy imports happen inside the
handlers so that `mtwin --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from mobility_twin import __version__

# Modules under mobility_twin.cli, each with register(subparsers) -> None.
COMMANDS = ["launch_cmd", "demo_cmd", "bench_cmd", "data_cmd", "replay_cmd", "topic_cmd", "eval_cmd", "snapshot_cmd", "record_cmd", "play_cmd", "recording_cmd", "security_cmd", "world_cmd"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mtwin",
        description="mobility_twin: a ROS 2 smart-mobility digital twin (T-Drive replay, RSU/CAV perception, "
        "federated twins, continual graph learning, edge offloading).",
    )
    parser.add_argument("--version", action="version", version=f"mobility_twin {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"mobility_twin.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

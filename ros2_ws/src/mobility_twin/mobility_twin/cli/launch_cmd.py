"""`mtwin launch`: run a ROS 2 XML launch file (the `ros2 launch` of this install)."""

from __future__ import annotations

import argparse
from pathlib import Path

from mobility_twin.cli import command_error


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "launch",
        help="run an XML launch file: nodes as processes, parameters, remaps, namespaces, args, includes",
        description="Run a ROS 2 XML launch file as `ros2 launch` would. FILE is a path, or PACKAGE FILE "
        "(looked up in the package's share/launch folder). Launch arguments are given as name:=value. Nodes with "
        "respawn=\"true\" are started again respawn_delay seconds after they exit; one that keeps exiting "
        "(--respawn-limit times within --respawn-window seconds) is reported and given up, and the others keep "
        "running.",
    )
    p.add_argument("target", nargs="+", metavar="FILE | PACKAGE FILE [name:=value ...]")
    p.add_argument("--duration", type=float, default=None, metavar="S", help="stop everything after S seconds")
    p.add_argument("--show-args", "-s", action="store_true", help="list the launch arguments and exit")
    p.add_argument("--print", dest="print_only", action="store_true",
                   help="print the command of every node and exit without starting anything")
    p.add_argument("--shutdown-timeout", type=float, default=5.0, metavar="S",
                   help="seconds between SIGINT and SIGTERM at shutdown (default 5)")
    p.add_argument("--respawn-limit", type=int, default=5, metavar="N",
                   help="give up on a respawning node (report it, do not start it again) once it has exited N times "
                   "within the respawn window (default 5)")
    p.add_argument("--respawn-window", type=float, default=60.0, metavar="S",
                   help="the window of --respawn-limit, in seconds (default 60)")
    p.set_defaults(func=run)


def split_target(target: list[str]) -> tuple[Path, dict[str, str]]:
    """(launch file, launch arguments) from `FILE args...` or `PACKAGE FILE args...`."""
    from mobility_twin.launch_runner import LaunchError
    from mobility_twin.launch_runner.ament import package_share

    words = [t for t in target if ":=" not in t]
    arguments = {}
    for item in target:
        if ":=" in item:
            name, value = item.split(":=", 1)
            if not name:
                raise LaunchError(f"launch argument {item!r} has no name (expected name:=value)")
            arguments[name] = value
    if len(words) == 1:
        return Path(words[0]), arguments
    if len(words) == 2:
        package, name = words
        try:
            share = package_share(package)
        except LookupError as err:
            raise LaunchError(str(err)) from None
        for candidate in (share / "launch" / name, share / name):
            if candidate.is_file():
                return candidate, arguments
        raise LaunchError(f"no launch file {name!r} in {share}/launch")
    raise LaunchError(f"expected FILE or PACKAGE FILE before the name:=value arguments, got {words}")


def run(args: argparse.Namespace) -> int:
    from mobility_twin.launch_runner import (
        LaunchError,
        LaunchRunner,
        RunOptions,
        declared_arguments,
        load_launch_file,
        node_command,
    )

    try:
        path, arguments = split_target(args.target)
        if args.show_args:
            for arg in declared_arguments(path):
                default = "(required)" if arg.default is None else f"default: {arg.default!r}"
                print(f"'{arg.name}': {arg.description or '(no description)'}\n    {default}")
            return 0
        plan = load_launch_file(path, arguments)
        if args.print_only:
            import tempfile

            with tempfile.TemporaryDirectory() as tmp:
                for i, node in enumerate(plan.nodes):
                    print(f"# {node.label} ({node.origin})")
                    print(" ".join(node_command(node, Path(tmp), i)))
            return 0
        options = RunOptions(duration=args.duration, shutdown_timeout=args.shutdown_timeout,
                             respawn_limit=args.respawn_limit, respawn_window=args.respawn_window)
        return LaunchRunner(plan, options).run()
    except LaunchError as err:
        return command_error("launch", err)

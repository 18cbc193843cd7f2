"""The `mtwin` command line. Each subcommand lives in its own module with a `register(subparsers)`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable


def add_verb(verbs: argparse._SubParsersAction, name: str, run: Callable[[argparse.Namespace], int],
             **options) -> argparse.ArgumentParser:
    """The parser of a command's verb ``name`` (``mtwin eval sweep``), which ``run`` handles; ``options`` are
    ``add_parser``'s (help, description...)."""
    parser = verbs.add_parser(name, **options)
    parser.set_defaults(func=run)
    return parser


def command_error(command: str, err: Exception) -> int:
    """Print ``err`` as the error of ``mtwin <command>`` on stderr; the exit status of a command that cannot run
    with what it was given (2)."""
    print(f"mtwin {command}: error: {err}", file=sys.stderr)
    return 2


def help_without_verb(parser: argparse.ArgumentParser) -> None:
    """A command given without one of its verbs (``mtwin eval``) prints its help and exits with status 2."""
    def no_verb(_args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    parser.set_defaults(func=no_verb)


def node_argv(params: dict[str, object]) -> list[str]:
    """The command line of a node run in this process with ``params`` as its ROS parameters (``-p name:=value``;
    a bool as true/false, a string quoted so that ROS keeps it a string)."""
    argv = ["mtwin", "--ros-args"]
    for name, value in params.items():
        text = str(value).lower() if isinstance(value, bool) else (f"'{value}'" if isinstance(value, str) else value)
        argv += ["-p", f"{name}:={text}"]
    return argv

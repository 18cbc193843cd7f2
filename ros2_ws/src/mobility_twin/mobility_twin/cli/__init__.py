"""The `mtwin` command line. Each subcommand lives in its own module with a `register(subparsers)`."""

from __future__ import annotations

import argparse


def help_without_verb(parser: argparse.ArgumentParser) -> None:
    """A command given without one of its verbs (``mtwin eval``) prints its help and exits with status 2."""
    def no_verb(_args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    parser.set_defaults(func=no_verb)

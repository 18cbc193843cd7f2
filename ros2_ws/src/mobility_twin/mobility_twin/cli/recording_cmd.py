"""`mtwin recording`: look after MCAP recordings.

  mtwin recording info FILE             what a recording holds (like `ros2 bag info`)
  mtwin recording repair FILE [-o OUT]  rewrite a recording that was cut short (recorder killed, disk
                                        full) with every complete message and a summary, so that every
                                        MCAP reader (the `mcap` library's indexed reader, Foxglove,
                                        `ros2 bag`) reads it; default OUT: FILE's name with .repaired
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mobility_twin.cli import add_verb, command_error, help_without_verb


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("recording", help="inspect or repair an MCAP recording", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    what = p.add_subparsers(dest="what", metavar="WHAT")
    info = add_verb(what, "info", run_info, help="topics, types, counts and times of a recording")
    info.add_argument("file", type=Path, metavar="FILE.mcap")
    fix = add_verb(what, "repair", run_repair, help="rewrite a recording cut short into a whole file with a summary",
                   description="Read FILE from its start, keep every schema, channel, metadata record and "
                   "complete message (also those at the start of a chunk that was cut off), and write them "
                   "with a summary to OUT. OUT may be FILE itself (replaced once the new file is whole).")
    fix.add_argument("file", type=Path, metavar="FILE.mcap")
    fix.add_argument("-o", "--output", type=Path, default=None, metavar="OUT.mcap",
                     help="where to write (default: FILE.repaired.mcap beside FILE)")

    help_without_verb(p)


def run_info(args: argparse.Namespace) -> int:
    from mobility_twin.recording import Recording, RecordingError

    try:
        with Recording(args.file) as rec:
            print(rec.describe())
            if not rec.complete:
                print(f"\nnot closed properly: `mtwin recording repair {args.file}` rewrites it with a summary")
    except RecordingError as err:
        return command_error("recording info", err)
    return 0


def run_repair(args: argparse.Namespace) -> int:
    from mobility_twin.recording import RecordingError
    from mobility_twin.recording.repair import repair

    try:
        report = repair(args.file, args.output)
    except RecordingError as err:
        return command_error("recording repair", err)
    print(report.describe())
    return 0

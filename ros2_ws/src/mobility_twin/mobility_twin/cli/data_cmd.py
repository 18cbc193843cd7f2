"""`mtwin data check PATH`: account for every line of a T-Drive folder, file or archive."""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from pathlib import Path

from mobility_twin.cli import add_verb, command_error, help_without_verb


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="inspect T-Drive data", description="Inspect T-Drive trajectory data.")
    verbs = p.add_subparsers(dest="verb", metavar="VERB")
    c = add_verb(
        verbs, "check", run_check,
        help="count kept and skipped lines per reason, with example file:line locations",
        description="Read every line under PATH (a T-Drive file, folder, .zip or .tar.gz) and print how many "
        "are kept and how many are skipped for each reason, with example file:line locations. "
        "Kept plus skipped always equals the lines read.",
    )
    c.add_argument("path", type=Path, help="T-Drive file, folder, .zip or .tar.gz")
    c.add_argument("--json", action="store_true", help="print the report as JSON")
    c.add_argument("--area", metavar="LON_MIN,LAT_MIN,LON_MAX,LAT_MAX", default="115.7,39.4,117.4,41.1",
                   help="area a kept point must lie in (default: the Beijing box of the T-Drive release)")
    c.add_argument("--start", metavar="'YYYY-MM-DD HH:MM:SS'", help="time window start (Beijing time)")
    c.add_argument("--end", metavar="'YYYY-MM-DD HH:MM:SS'", help="time window end, exclusive")
    c.add_argument("--max-speed", type=float, default=50.0, metavar="M/S",
                   help="implied speed above which a fix is a GPS jump (default 50 m/s)")

    help_without_verb(p)


def reader_config(area: str, start: str | None, end: str | None, max_speed: float):
    from mobility_twin_sim.tdrive import ReaderConfig

    try:
        lon_min, lat_min, lon_max, lat_max = (float(v) for v in area.split(","))
    except ValueError:
        raise SystemExit(f"--area {area!r}: expected LON_MIN,LAT_MIN,LON_MAX,LAT_MAX") from None

    def when(text: str | None, flag: str) -> datetime | None:
        if text is None:
            return None
        try:
            return datetime.strptime(text, "%Y-%m-%d %H:%M:%S")
        except ValueError:
            raise SystemExit(f"{flag} {text!r}: expected 'YYYY-MM-DD HH:MM:SS'") from None

    return ReaderConfig(lon_min, lon_max, lat_min, lat_max, when(start, "--start"), when(end, "--end"), max_speed)


def run_check(args: argparse.Namespace) -> int:
    from mobility_twin_sim.tdrive import TDriveError, check

    config = reader_config(args.area, args.start, args.end, args.max_speed)
    try:
        report = check(args.path, config)
    except TDriveError as err:
        return command_error("data check", err)
    data = report.to_dict()
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    print(f"{args.path}: {data['files']} files, {data['taxis_with_points']} taxis with kept points")
    print(f"  lines read  {data['lines_read']:>10,}")
    print(f"  kept        {data['kept']:>10,}")
    print(f"  skipped     {data['skipped_total']:>10,}")
    for reason, count in data["skipped"].items():
        print(f"    {reason:<30} {count:>8,}   e.g. {', '.join(data['examples'][reason][:3])}")
    return 0

"""`mtwin bench NAME`: run one of the benchmarks in bench/ (a table on screen, JSON and PNG in bench/results/)."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
from pathlib import Path


def _benchmarks() -> dict[str, object]:
    try:
        import bench
    except ImportError:
        return {}
    found = {}
    for info in pkgutil.iter_modules(bench.__path__):
        if info.name.startswith("_") or info.name == "common":
            continue
        module = importlib.import_module(f"bench.{info.name}")
        if hasattr(module, "configure") and hasattr(module, "run"):
            found[info.name] = module
    return found


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench", help="run a benchmark: prints a table, writes JSON (and PNG plots)",
        description="Benchmarks print a table and write <out>/<name>.json (default out: bench/results/).",
    )
    names = p.add_subparsers(dest="bench", metavar="NAME")
    for name, module in sorted(_benchmarks().items()):
        q = names.add_parser(name, help=getattr(module, "SUMMARY", ""), description=module.__doc__)
        q.add_argument("--out", type=Path, default=None, help="folder for the JSON/PNG results (default bench/results)")
        module.configure(q)
        q.set_defaults(func=module.run)

    def no_benchmark(_args: argparse.Namespace) -> int:
        p.print_help()
        return 2

    p.set_defaults(func=no_benchmark)

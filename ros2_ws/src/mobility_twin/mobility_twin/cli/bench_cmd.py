"""`mtwin bench NAME`: run one of the installed benchmarks (a table on screen, JSON and PNG in bench/results/).

Benchmarks are plugins: a package registers a module under the entry-point group
``mobility_twin.benchmarks`` (mobility_twin_bench registers the project's own), and the module defines
``configure(parser)``, ``run(args) -> int`` and a one-line ``SUMMARY``. The command line imports none of
them by name, so the benchmarks may import anything of the stack without an import cycle.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from importlib.metadata import entry_points
from pathlib import Path

from mobility_twin.cli import add_verb

GROUP = "mobility_twin.benchmarks"


def _benchmarks() -> dict[str, object]:
    found = {}
    for ep in entry_points(group=GROUP):
        try:
            module = importlib.import_module(ep.value)
        except ImportError as err:  # a plugin that cannot load must not take the command line down
            print(f"mtwin bench: benchmark {ep.name!r} ({ep.value}) cannot be loaded: {err}", file=sys.stderr)
            continue
        if hasattr(module, "configure") and hasattr(module, "run"):
            found[ep.name] = module
    return found


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench", help="run a benchmark: prints a table, writes JSON (and PNG plots)",
        description="Benchmarks print a table and write <out>/<name>.json (default out: bench/results/).",
    )
    names = p.add_subparsers(dest="bench", metavar="NAME")
    for name, module in sorted(_benchmarks().items()):
        q = add_verb(names, name, module.run, help=getattr(module, "SUMMARY", ""), description=module.__doc__)
        q.add_argument("--out", type=Path, default=None, help="folder for the JSON/PNG results (default bench/results)")
        module.configure(q)

    def no_benchmark(_args: argparse.Namespace) -> int:
        if not _benchmarks():
            print(f"no benchmark is installed (entry-point group {GROUP}); build mobility_twin_bench with make setup")
        p.print_help()
        return 2

    p.set_defaults(func=no_benchmark)

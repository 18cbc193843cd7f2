"""What every benchmark shares: a results folder, a printed table, a JSON file with the machine it ran on."""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Sequence
from pathlib import Path


def _results_folder() -> Path:
    """bench/results/ of the source tree when run from it (colcon --symlink-install, pip -e), else
    ./bench_results; ``MTWIN_BENCH_RESULTS`` overrides both."""
    if os.environ.get("MTWIN_BENCH_RESULTS"):
        return Path(os.environ["MTWIN_BENCH_RESULTS"])
    source = Path(__file__).resolve().parents[1]
    if (source / "package.xml").exists():
        return source / "results"
    return Path.cwd() / "bench_results"


RESULTS = _results_folder()


def machine() -> dict:
    """Where the numbers come from."""
    info = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    return info


def format_table(rows: Sequence[dict], columns: Sequence[str] | None = None, title: str = "") -> str:
    """A plain-text table; floats to 4 significant digits."""
    if not rows:
        return f"{title}\n(no rows)" if title else "(no rows)"
    columns = list(columns or rows[0].keys())

    def cell(v) -> str:
        if isinstance(v, float):
            return f"{v:.4g}"
        return "" if v is None else str(v)

    body = [[cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(b[i]) for b in body)) for i, c in enumerate(columns)]
    line = "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))
    sep = "  ".join("-" * w for w in widths)
    out = [title] if title else []
    out += [line, sep]
    out += ["  ".join(v.rjust(w) if _numeric(v) else v.ljust(w) for v, w in zip(b, widths, strict=True))
            for b in body]
    return "\n".join(out)


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def write_results(name: str, payload: dict, out_dir: Path | None = None) -> Path:
    """Write ``payload`` (plus the machine description) to ``<out_dir>/<name>.json``; return the path."""
    folder = Path(out_dir) if out_dir else RESULTS
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(json.dumps({"benchmark": name, "machine": machine(), **payload}, indent=2, default=_jsonable))
    return path


def _jsonable(value):
    try:
        import numpy as np

        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, np.ndarray):
            return value.tolist()
    except ImportError:
        pass
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")

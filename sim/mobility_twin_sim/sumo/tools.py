"""Where SUMO lives (the ``eclipse-sumo`` wheel), how its programs are run, and where generated files go.

The programs (``netgenerate``, ``netconvert``, ``duarouter``, ``od2trips``, ``polyconvert``, ``sumo``) are
found through the ``sumo`` Python package (``sumo.SUMO_HOME/bin``), never through ``PATH``; its Python
tools (``randomTrips.py`` ...) under ``SUMO_HOME/tools``. :func:`run` runs one of them with ``SUMO_HOME``
set, and turns a failure into a :class:`SumoToolError` that names the program and quotes its last error
lines.

Generated networks, demand and calibrations are cached under :func:`cache_dir`
(``$MTWIN_SUMO_CACHE``, else ``~/.cache/mobility_twin/sumo``), never in the repository.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from mobility_twin_sim.sumo.errors import SumoToolError

PROGRAMS = ("netgenerate", "netconvert", "duarouter", "od2trips", "polyconvert", "sumo")


def sumo_home() -> Path:
    """``SUMO_HOME`` of the installed ``eclipse-sumo`` wheel."""
    try:
        import sumo  # the eclipse-sumo wheel
    except ImportError:
        raise SumoToolError("the eclipse-sumo package is not installed (run `make setup`, which installs "
                            "requirements/requirements.txt)") from None
    return Path(sumo.SUMO_HOME)


def binary(name: str) -> Path:
    """Path of a SUMO program inside the wheel."""
    path = sumo_home() / "bin" / name
    if not path.is_file():
        raise SumoToolError(f"SUMO program {name!r} not found at {path} (known: {', '.join(PROGRAMS)})")
    return path


def tool(relative: str) -> Path:
    """Path of one of SUMO's Python tools, e.g. ``randomTrips.py``."""
    path = sumo_home() / "tools" / relative
    if not path.is_file():
        raise SumoToolError(f"SUMO tool {relative!r} not found under {sumo_home() / 'tools'}")
    return path


def data_file(relative: str) -> Path:
    """A file of SUMO's data folder, e.g. ``typemap/osmNetconvert.typ.xml``."""
    path = sumo_home() / "data" / relative
    if not path.is_file():
        raise SumoToolError(f"SUMO data file {relative!r} not found under {sumo_home() / 'data'}")
    return path


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env["SUMO_HOME"] = str(sumo_home())
    env.setdefault("PROJ_DATA", str(sumo_home() / "data" / "proj"))  # SUMO's projections need proj.db
    return env


def run(program: str, args: list[str], *, cwd: Path | None = None, what: str = "", timeout_s: float = 1800.0
        ) -> subprocess.CompletedProcess:
    """Run a SUMO program (a name of :data:`PROGRAMS`) or a tool (a name ending in ``.py``).

    Raises :class:`SumoToolError` naming the program, ``what`` it was doing and the last lines it printed.
    """
    if program.endswith(".py"):
        cmd = [sys.executable, str(tool(program)), *args]
    else:
        cmd = [str(binary(program)), *args]
    try:
        done = subprocess.run(cmd, cwd=cwd, env=environment(), capture_output=True, text=True, timeout=timeout_s,
                              check=False)
    except subprocess.TimeoutExpired:
        raise SumoToolError(f"{program} {what}: no result after {timeout_s:.0f} s") from None
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-8:])
        raise SumoToolError(f"{program} failed{' ' + what if what else ''} (exit {done.returncode}):\n{tail}")
    return done


def cache_dir() -> Path:
    """The cache of generated SUMO files: ``$MTWIN_SUMO_CACHE`` or ``~/.cache/mobility_twin/sumo``."""
    folder = Path(os.environ.get("MTWIN_SUMO_CACHE") or Path.home() / ".cache" / "mobility_twin" / "sumo")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def fingerprint(*parts) -> str:
    """A short stable hash of the inputs of a generated file (JSON of ``parts``), used in cache names.
    Numbers are hashed as floats, so that ``scale: 0`` and ``scale: 0.0`` name the same file."""
    text = json.dumps(_normalise(parts), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _normalise(value):
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, dict):
        return {str(k): _normalise(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_normalise(v) for v in value]
    if hasattr(value, "__dataclass_fields__"):
        from dataclasses import asdict

        return _normalise(asdict(value))
    return value


_DIGESTS: dict[tuple[str, int, int], str] = {}


def file_digest(path: Path) -> str:
    """sha256 of a file's content (remembered per path, size and modification time): cache keys follow what
    a file holds, not where it is."""
    path = Path(path)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _DIGESTS:
        h = hashlib.sha256()
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _DIGESTS[key] = h.hexdigest()
    return _DIGESTS[key]


def version() -> str:
    """The SUMO version of the wheel (part of every cache key: another SUMO, another file)."""
    try:
        from importlib.metadata import version as dist_version

        return dist_version("eclipse-sumo")
    except Exception:
        return "unknown"

"""Where nodes keep state that must survive a restart (learned models, the global twin's id map).

One documented folder for the whole stack: ``$MTWIN_STATE_DIR`` when set, else
``$XDG_STATE_HOME/mobility_twin``, else ``~/.local/state/mobility_twin``. A node's file lives under
``<folder>/<node's fully qualified name, '/' replaced by '__'>/<file>``, so two instances of the same node
(per site, per namespace) never share one. Writes are atomic (a temporary file renamed over the old one),
so a crash never leaves half a file.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

STATE_ENV = "MTWIN_STATE_DIR"


def state_root() -> Path:
    if os.environ.get(STATE_ENV):
        return Path(os.environ[STATE_ENV]).expanduser()
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "mobility_twin"


def node_state_path(fully_qualified_name: str, filename: str) -> Path:
    """``<state root>/<node>/<filename>`` for a node named ``fully_qualified_name`` (e.g. ``/cloud/global_twin``)."""
    folder = fully_qualified_name.strip("/").replace("/", "__") or "node"
    return state_root() / folder / filename


def resolve_state_path(value: str, fully_qualified_name: str, filename: str) -> Path | None:
    """What a node's ``..._path`` parameter means: ``""`` = the default file in the state folder, ``"none"`` =
    keep no state, anything else = that path."""
    if value.strip().lower() == "none":
        return None
    return Path(value).expanduser() if value else node_state_path(fully_qualified_name, filename)


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary file next to ``path``, then rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o666 & ~_umask())  # as a plain open() would create it (mkstemp makes it 0600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save_state(path: Path, data: dict, logger=None) -> bool:
    """Write ``data`` (JSON-safe) with the wall time it was saved at, atomically; False (logged) on an I/O error."""
    import json
    import time

    try:
        atomic_write(path, lambda tmp: tmp.write_text(json.dumps({"saved_at": time.time(), "state": data})))
        return True
    except OSError as err:
        if logger is not None:
            logger.error(f"cannot save state to {path}: {err}", throttle_duration_sec=30.0)
        return False


def read_state(path: Path) -> tuple[dict, float]:
    """The state saved at ``path`` by :func:`save_state` and its age (s, wall time); OSError or ValueError (with
    the reason) when it cannot be read."""
    import json
    import time

    try:
        saved = json.loads(path.read_text())
        return saved["state"], time.time() - float(saved["saved_at"])
    except (KeyError, TypeError) as err:
        raise ValueError(f"not a saved state: {err!r}") from None


def load_state(path: Path | None, max_age_s: float, logger=None) -> dict | None:
    """The state saved at ``path`` if it is there, readable and younger than ``max_age_s`` (wall time), else None
    (a reason logged when a file was there but could not be used)."""
    if path is None or not path.exists():
        return None
    try:
        state, age = read_state(path)
    except (OSError, ValueError) as err:
        if logger is not None:
            logger.warning(f"saved state {path} is unreadable ({err}): starting afresh")
        return None
    if not (0.0 <= age <= max_age_s):
        if logger is not None:
            logger.info(f"saved state {path} is {age:.0f} s old (more than {max_age_s:g} s): starting afresh")
        return None
    return state

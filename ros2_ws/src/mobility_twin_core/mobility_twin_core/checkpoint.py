"""The one checkpoint format of every learned model in the stack.

A checkpoint is a ``torch.save`` file holding a dict::

    {"mobility_twin_checkpoint": 1, "kind": "offloading_actor_critic", "version": 1,
     "metadata": {"created": "...", "torch": "2.13.0", ...}, "state": {...}}

``state`` holds only tensors and plain values (numbers, strings, lists, tuples, dicts), so the file is read
with ``torch.load(weights_only=True)``: loading a checkpoint cannot run code, whoever wrote it. Writing is
atomic (a temporary file renamed over the old one). Loading checks the kind and the version and says what to
run to make a file of the right one (``retrain``); every failure is a
:class:`~mobility_twin_core.CheckpointError` naming the path.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from mobility_twin_core.errors import CheckpointError

MAGIC = "mobility_twin_checkpoint"


@dataclass(frozen=True)
class Checkpoint:
    kind: str
    version: int
    state: dict
    metadata: dict


def save_checkpoint(path: str | Path, *, kind: str, version: int, state: dict, metadata: dict | None = None) -> Path:
    """Write ``state`` (tensors and plain values) as a checkpoint of ``kind`` and ``version``, atomically."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {MAGIC: 1, "kind": kind, "version": int(version),
               "metadata": {"created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "torch": str(torch.__version__),
                            **(metadata or {})},
               "state": state}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # as a plain open() would create it (mkstemp makes it 0600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | Path, *, kind: str, version: int, retrain: str = "") -> Checkpoint:
    """Read a checkpoint of ``kind`` and ``version`` (``weights_only=True``); ``retrain`` is the command that
    makes one, quoted in the error when the file is of another kind or version."""
    import torch

    path = Path(path)
    hint = f"; make one with: {retrain}" if retrain else ""
    if not path.is_file():
        raise CheckpointError(f"{kind} checkpoint {path} does not exist{hint}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many kinds for a bad or unsafe file
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"cannot read {kind} checkpoint {path} (safe loading, weights only): {first}") from None
    if not isinstance(payload, dict) or payload.get(MAGIC) != 1:
        raise CheckpointError(f"{path} is not a mobility_twin checkpoint{hint}")
    if payload.get("kind") != kind:
        raise CheckpointError(f"{path} is a {payload.get('kind')!r} checkpoint, not {kind!r}")
    if payload.get("version") != version:
        raise CheckpointError(f"{kind} checkpoint {path} has version {payload.get('version')!r}, this code reads "
                              f"version {version}{hint}")
    state = payload.get("state")
    if not isinstance(state, dict):
        raise CheckpointError(f"{kind} checkpoint {path} holds no state")
    return Checkpoint(kind, version, state, dict(payload.get("metadata") or {}))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask

"""The one checkpoint format: kind and version checked, clear errors, and loading that cannot run code."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from mobility_twin_core import CheckpointError  # noqa: E402
from mobility_twin_core.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402


class Payload:
    """A class a pickle would construct on load: what an attacker's checkpoint would carry."""

    def __reduce__(self):
        return (print, ("this ran while loading",))


def test_a_checkpoint_round_trips_with_its_metadata(tmp_path):
    path = save_checkpoint(tmp_path / "m.pt", kind="toy", version=2, state={"w": torch.ones(3), "n": 4},
                           metadata={"command": "train --fast"})
    ckpt = load_checkpoint(path, kind="toy", version=2)
    assert torch.equal(ckpt.state["w"], torch.ones(3)) and ckpt.state["n"] == 4
    assert ckpt.metadata["command"] == "train --fast" and "created" in ckpt.metadata and "torch" in ckpt.metadata
    assert path.stat().st_mode & 0o044  # readable by others (the container user)


def test_another_kind_or_version_is_refused_with_the_command_that_makes_one(tmp_path):
    path = save_checkpoint(tmp_path / "m.pt", kind="toy", version=1, state={})
    with pytest.raises(CheckpointError, match=r"m\.pt is a 'toy' checkpoint, not 'other'"):
        load_checkpoint(path, kind="other", version=1)
    with pytest.raises(CheckpointError, match=r"has version 1, this code reads version 2; make one with: python -m x"):
        load_checkpoint(path, kind="toy", version=2, retrain="python -m x")


def test_a_file_that_would_run_code_is_refused_and_the_code_does_not_run(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    torch.save({"mobility_twin_checkpoint": 1, "kind": "toy", "version": 1, "state": {"x": Payload()}}, path)
    with pytest.raises(CheckpointError, match=r"cannot read toy checkpoint .*evil\.pt \(safe loading"):
        load_checkpoint(path, kind="toy", version=1)
    assert "this ran while loading" not in capsys.readouterr().out


def test_missing_and_foreign_files_are_named(tmp_path):
    with pytest.raises(CheckpointError, match=r"toy checkpoint .*none\.pt does not exist"):
        load_checkpoint(tmp_path / "none.pt", kind="toy", version=1)
    torch.save({"weights": torch.zeros(1)}, tmp_path / "plain.pt")
    with pytest.raises(CheckpointError, match=r"plain\.pt is not a mobility_twin checkpoint"):
        load_checkpoint(tmp_path / "plain.pt", kind="toy", version=1)

"""scripts/twin_digest.py: the same frames fused twice give the same digest, and a changed fusion another."""

from __future__ import annotations

import importlib.util
from dataclasses import replace
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "twin_digest.py"


@pytest.fixture(scope="module")
def digest_script():
    spec = importlib.util.spec_from_file_location("twin_digest", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_digest_repeats_and_tells_a_different_fusion_apart(digest_script):
    world, ticks = digest_script.perceive("default", 2.0)
    assert ticks and any(frames for _, frames in ticks)
    times, first = digest_script.fuse(world, ticks)
    assert set(times) == set(digest_script.KINDS) and len(times["rsu"]) > 0
    assert all(t >= 0 for t in times["rsu"])
    assert digest_script.fuse(world, ticks)[1] == first
    # one RSU frame moved by a metre: the tracks differ, and so does the digest
    k = next(i for i, (_, frames) in enumerate(ticks) if any(kind == "rsu" and len(d) for kind, _, d in frames))
    t, frames = ticks[k]
    j = next(i for i, (kind, _, d) in enumerate(frames) if kind == "rsu" and len(d))
    kind, source, d = frames[j]
    moved = [*frames[:j], (kind, source, replace(d, xy=d.xy + 1.0)), *frames[j + 1:]]
    assert digest_script.fuse(world, [*ticks[:k], (t, moved), *ticks[k + 1:]])[1] != first

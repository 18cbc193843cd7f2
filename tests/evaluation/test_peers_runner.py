"""The peers' runner in the peers' environment (.venv-peers): it reads a stream, runs norfair, motpy and the
AB3DMOT-style baseline, and writes hypotheses the project scores. Skipped where that environment is not
built (CI does not build it: `make peers-env`)."""

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

import mobility_twin.evaluation.stream_format as fmt
from mobility_twin.evaluation.ab3dmot import Ab3dmotBaseline, BaselineConfig
from mobility_twin.evaluation.stream_format import load_hypotheses, save_stream
from mobility_twin.evaluation.streams import score_stream
from tests.evaluation.test_streams import synthetic_stream

REPO = Path(__file__).resolve().parents[2]
PEERS_PYTHON = REPO / ".venv-peers/bin/python"
RUNNER = REPO / "scripts/peers/run_peers.py"

pytestmark = pytest.mark.skipif(not PEERS_PYTHON.exists(),
                                reason=f"the peers' environment is not built ({PEERS_PYTHON}): make peers-env")


def run_peers(streams: Path, out: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run([str(PEERS_PYTHON), str(RUNNER), "--streams", str(streams), "--out", str(out),
                           "--lib", str(Path(fmt.__file__).parent)], env=env, capture_output=True, text=True,
                          timeout=120)


@pytest.fixture(scope="module")
def peers_run(tmp_path_factory):
    """One run of the runner on a synthetic stream (the peers' imports take seconds): (stream, hypotheses folder)."""
    tmp = tmp_path_factory.mktemp("peers")
    stream = synthetic_stream(frames=60)
    save_stream(tmp / "streams" / "rsu_09.npz", stream)
    proc = run_peers(tmp / "streams", tmp / "hyps")
    assert proc.returncode == 0, proc.stderr
    return stream, tmp / "hyps"


def test_the_runner_tracks_a_stream_with_every_peer_and_the_project_scores_them(peers_run):
    stream, out = peers_run
    info = json.loads((out / "peers.json").read_text())
    assert info["versions"]["numpy"].startswith("1.") and info["versions"]["norfair"] == "2.3.0"
    for peer in ("norfair", "motpy", "ab3dmot"):
        hyps = load_hypotheses(out / peer / "rsu_09.npz")
        assert hyps.tracker == peer and len(hyps) == len(stream) and (hyps.update_ms > 0).all()
        score = score_stream(stream, hyps).summary()
        assert score["mota"] > 0.8 and score["num_switches"] == 0, (peer, score)


def test_the_baseline_gives_the_same_tracks_in_both_environments(peers_run):
    stream, out = peers_run
    theirs = load_hypotheses(out / "ab3dmot" / "rsu_09.npz")
    settings = theirs.meta["settings"]
    ours = Ab3dmotBaseline(BaselineConfig(**settings))
    for k, frame in enumerate(stream.frames()):
        ours.update(frame.stamp, frame.xy)
        ids, xy = ours.confirmed()
        their_ids, their_xy = theirs.frame(k)
        np.testing.assert_array_equal(ids, their_ids)
        np.testing.assert_allclose(xy, their_xy, atol=1e-9)


def test_the_runner_says_when_there_is_no_stream(tmp_path):
    proc = run_peers(tmp_path, tmp_path / "hyps")
    assert proc.returncode == 2 and "no stream" in proc.stderr

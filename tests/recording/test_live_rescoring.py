"""A recording of a live evaluation re-scores to the same metrics as the live scoring."""

import json

import pytest
import yaml

from mobility_twin.recording import Recording
from tests.conftest import run_mtwin
from tests.ros_helpers import start_mtwin
from tests.twin.test_nodes import TWO_RSUS

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def test_recording_of_a_live_evaluation_rescores_to_the_same_metrics(tmp_path):
    scenario = tmp_path / "two_rsus.yaml"
    scenario.write_text(yaml.safe_dump(TWO_RSUS))
    out = tmp_path / "eval"
    live = start_mtwin("eval", "tracking", "--scenario", str(scenario), "--duration", "15", "--json", "--out", str(out),
                       "--record")
    text, _ = live.communicate(timeout=400)
    assert live.returncode == 0, text + (out / "stack.log").read_text()
    live_results = json.loads(text[text.index("{"):])
    recording = out / "recording.mcap"
    assert live_results["recording"] == str(recording)

    again = run_mtwin("eval", "tracking", "--recording", str(recording), "--json")
    assert again.returncode == 0, again.stderr
    rescored = json.loads(again.stdout)
    assert live_results["tracking"]["global"]["num_frames"] > 0
    for key in ("tracking", "latency_ms", "global_tracks"):
        assert rescored[key] == live_results[key], key
    assert (rescored["scenario"], rescored["duration_s"]) == ("two_rsus", 15.0)

    with Recording(recording) as rec:
        assert rec.complete
        for topic in ("/infrastructure/layout", "/sim/ground_truth", "/twin/global/objects", "/twin/local/site_0/objects",
                      "/rsu/rsu_00/detections", "/rsu/rsu_01/detections", "/twin/global/state"):
            assert rec.topics[topic].count > 0, topic
        assert not any(t.endswith("/points") for t in rec.topics)
        assert rec.metadata["mobility_twin.eval"]["eval_range_m"] == "60.0"

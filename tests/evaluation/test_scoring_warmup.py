"""The scoring of a run starts when the whole stack is up: a twin publishing (empty) before the sensors'
first frames is not charged for the vehicles present while perception was still starting."""

import numpy as np

from mobility_twin.evaluation.scoring import RunRecord, TrackFrame, score_run
from mobility_twin.perception.detections import Detections
from mobility_twin_core import Layout, Rsu, Site

SQUARE = ((-100.0, -100.0), (100.0, -100.0), (100.0, 100.0), (-100.0, 100.0), (-100.0, -100.0))
LAYOUT = Layout(rsus=(Rsu("rsu_a", 0.0, 0.0, 5.0, 0.0, "site_0", 80.0),), sites=(Site("site_0", SQUARE),)).validated()
CAR = np.array([[20.0, 5.0]])


def _detections(t: float) -> Detections:
    d = Detections.empty("rsu_a", 0, t, (0.0, 0.0), 80.0, provenance=(("received", t + 0.001), ("perception", t + 0.02)))
    return Detections("rsu_a", 0, t, (0.0, 0.0), 80.0, CAR.copy(), np.eye(2)[None] * 0.04, np.zeros(1),
                      np.array([[4.5, 1.8, 1.5]]), np.full((1, 2), np.nan), np.array([0.9]), np.array([50]),
                      np.array([1]), np.array([""], dtype=object), d.provenance)


def _record(sensors_from: float) -> RunRecord:
    """Ground truth and the global twin from t = 0 (the twin empty until the RSU's first frame, at
    ``sensors_from``), the RSU's frames from then on."""
    rec = RunRecord(LAYOUT)
    for k in range(100):
        t = k * 0.1
        rec.ground_truth.append(TrackFrame(t, np.array([7]), CAR.copy(), np.zeros((1, 2))))
        up = t >= sensors_from - 1e-9
        ids = np.array([1]) if up else np.zeros(0, dtype=np.int64)
        rec.twins.setdefault("global", []).append(TrackFrame(t + 0.03, ids, CAR[: len(ids)].copy(),
                                                             np.zeros((len(ids), 2))))
        if up:
            rec.detections.setdefault("rsu_a", []).append(_detections(t))
    return rec


def test_frames_before_every_sensor_is_up_are_warm_up():
    late = score_run(_record(sensors_from=4.0), warmup_s=1.0)["tracking"]["global"]
    assert late["num_misses"] == 0 and late["num_matches"] > 0
    # with the sensors up from the start the same frames are scored: the warm-up is not longer than needed
    early = score_run(_record(sensors_from=0.0), warmup_s=1.0)["tracking"]["global"]
    assert early["num_frames"] > late["num_frames"]

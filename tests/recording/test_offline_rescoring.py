"""A recorded run builds the same RunRecord, and the same scores, as the messages fed to the live decoder; its
layout is the recorded Layout message, or the /sim/world JSON of an older recording, to the same scores."""

import json

import numpy as np
import pytest

from mobility_twin.evaluation.decoding import RunRecordBuilder, record_from_recording
from mobility_twin.evaluation.scoring import score_run
from mobility_twin.recording import RecordingError, RecordingWriter
from mobility_twin.ros.cdr import (
    DetectionTable,
    Provenance,
    TrackTable,
    encode_detections,
    encode_tracks,
)
from mobility_twin_core import Layout, Rsu, Site

pytestmark = pytest.mark.ros  # schemas from the installed workspace

SQUARE = ((-100.0, -100.0), (100.0, -100.0), (100.0, 100.0), (-100.0, 100.0), (-100.0, -100.0))
LAYOUT = Layout(rsus=(Rsu("rsu_a", 0.0, 0.0, 5.0, 0.0, "site_0", 80.0),), sites=(Site("site_0", SQUARE),),
                origin=(39.9, 116.4), name="hand_made").validated()
#: the same layout as an older simulator published it, JSON on /sim/world (what older recordings hold)
LEGACY_WORLD = {"scenario": "hand_made", "origin": [116.4, 39.9], "start_s": 1.7e9, "end_s": 1.7e9 + 60,
                "rsus": [{"id": "rsu_a", "x": 0.0, "y": 0.0, "z": 5.0, "site": "site_0", "range": 80.0}],
                "sites": [{"id": "site_0", "polygon": [list(p) for p in SQUARE]}], "cavs": [], "edge_servers": [],
                "cloud": {"x": 0.0, "y": 0.0, "cpu_hz": 3.5e9}}
T0 = 1_700_000_000_000_000_000


def _tracks(stamp_ns: int, twin_id: str, ids, xy, *, vehicle: bool, provenance=()) -> bytes:
    rec = TrackTable.allocate(len(ids))
    rec["track_id"] = ids
    rec["px"], rec["py"] = xy[:, 0], xy[:, 1]
    rec["vx"] = 10.0
    n = len(ids)
    return encode_tracks(TrackTable(stamp_ns, "map", twin_id, rec, [["rsu_a"]] * n, ["site_0"] * n,
                                    [str(i) for i in ids] if vehicle else [""] * n, list(provenance)))


def _detections(stamp_ns: int, xy) -> bytes:
    rec = DetectionTable.allocate(len(xy))
    rec["px"], rec["py"] = xy[:, 0], xy[:, 1]
    rec["pose_cov"][:, 0] = rec["pose_cov"][:, 7] = 0.04
    rec["length"], rec["width"], rec["height"], rec["confidence"], rec["num_points"] = 4.5, 1.8, 1.5, 0.9, 50
    rec["object_class"] = 1
    t = stamp_ns * 1e-9
    return encode_detections(DetectionTable(stamp_ns, "map", "rsu_a", 0, (0.0, 0.0, 5.0, 0.0), 80.0, rec,
                                            [""] * len(xy), Provenance("rsu_a", stamp_ns, (("received", t + 0.001),
                                                                                           ("perception", t + 0.02)))))


def _run_messages() -> list[tuple[str, bytes]]:
    rng = np.random.default_rng(3)
    out = []
    for k in range(80):
        ns = T0 + k * 100_000_000
        t = ns * 1e-9
        truth = np.array([[-30.0 + k, 2.0], [10.0, -20.0 + 0.5 * k], [40.0, 40.0]])
        out.append(("/sim/ground_truth", _tracks(ns, "ground_truth", [7, 8, 9], truth, vehicle=True)))
        seen = truth[:2] + rng.normal(0, 0.2, (2, 2))
        out.append(("/rsu/rsu_a/detections", _detections(ns, seen)))
        stages = (("received", t + 0.001), ("perception", t + 0.02), ("local_received", t + 0.021),
                  ("local_twin", t + 0.03), ("global_received", t + 0.031), ("global_twin", t + 0.04))
        out.append(("/twin/local/site_0/objects", _tracks(ns + 30_000_000, "local/site_0", [1, 2], seen,
                                                          vehicle=False)))
        out.append(("/twin/global/objects", _tracks(ns + 40_000_000, "global", [101, 102], seen, vehicle=False,
                                                    provenance=[Provenance("rsu_a", ns, stages)])))
    return out


def _record(path, messages, *, layout: str = "message", legacy: dict = LEGACY_WORLD) -> None:
    """A recording of ``messages``; its layout: ``message`` (the Layout message), ``legacy`` (the JSON of
    ``legacy`` on /sim/world, as older recordings hold it) or ``none``."""
    from rclpy.serialization import serialize_message
    from std_msgs.msg import String

    from mobility_twin.ros.layout_msg import layout_to_msg

    types = {"/sim/ground_truth": "TrackedObjectArray", "/twin/local/site_0/objects": "TrackedObjectArray",
             "/twin/global/objects": "TrackedObjectArray", "/rsu/rsu_a/detections": "DetectedObjectArray"}
    with RecordingWriter(path) as w:
        if layout == "message":
            w.add_topic("/infrastructure/layout", "mobility_twin_msgs/msg/Layout")
            w.write("/infrastructure/layout", serialize_message(layout_to_msg(LAYOUT)), T0 - 1)
        elif layout == "legacy":
            w.add_topic("/sim/world", "std_msgs/msg/String")
            w.write("/sim/world", serialize_message(String(data=json.dumps(legacy))), T0 - 1)
        for topic, type_name in types.items():
            w.add_topic(topic, f"mobility_twin_msgs/msg/{type_name}")
        for i, (topic, data) in enumerate(messages):
            w.write(topic, data, T0 + i)


def test_recorded_run_scores_exactly_like_the_same_messages_decoded_live(tmp_path):
    messages = _run_messages()
    live = RunRecordBuilder(LAYOUT)
    for topic, data in messages:
        live.add(topic, data)
    _record(tmp_path / "run.mcap", messages)
    recorded, meta = record_from_recording(tmp_path / "run.mcap")
    assert meta == {} and recorded.hil  # no evaluation metadata; no /clock: wall-clock stamps
    assert recorded.layout == LAYOUT
    expected = score_run(live.record)
    assert expected["tracking"]["global"]["num_frames"] > 0
    assert score_run(recorded) == expected


def test_road_users_outside_the_scenario_area_are_ground_truth_where_an_rsu_sees_them():
    """The simulator marks a vehicle beyond the scenario's area with site "outside"; an RSU near the edge still
    sees it and its twin tracks it, as the offline pipeline scores it: a track of it is a match, not a false
    positive."""
    edge = Layout(rsus=(Rsu("rsu_a", 0.0, -80.0, 5.0, 0.0, "site_0", 80.0),), sites=(Site("site_0", SQUARE),),
                  origin=(39.9, 116.4), name="hand_made").validated()  # an RSU 20 m from the area's edge
    builder = RunRecordBuilder(edge)
    for k in range(60):
        ns = T0 + k * 100_000_000
        rec = TrackTable.allocate(2)
        rec["track_id"] = [7, 8]
        rec["px"], rec["py"] = [20.0, 30.0], [-95.0, -110.0]  # the second one beyond the area's edge (y < -100)
        rec["length"], rec["width"] = 4.5, 1.8
        builder.add("/sim/ground_truth", encode_tracks(TrackTable(ns, "map", "ground_truth", rec, [[], []],
                                                                  ["", "outside"], ["7", "8"])))
        seen = np.array([[20.0, -95.0], [30.0, -110.0]])
        builder.add("/twin/global/objects", _tracks(ns + 40_000_000, "global", [101, 102], seen, vehicle=False))
        builder.add("/rsu/rsu_a/detections", _detections(ns, seen))
    scores = score_run(builder.record)["tracking"]
    assert scores["global"]["num_false_positives"] == 0 and scores["global"]["num_matches"] > 0
    assert scores["global"]["num_objects"] == 2 * scores["global"]["num_frames"]


def test_builder_ignores_other_topics_and_counts_undecodable_messages():
    builder = RunRecordBuilder(LAYOUT)
    builder.add("/twin/global/state", b"\x00\x01\x00\x00whatever")
    builder.add("/twin/global/objects", b"\x00\x01\x00\x00\x01")
    assert builder.bad == 1 and builder.record.twins == {}


def test_an_older_recording_with_the_json_layout_scores_to_the_same_numbers(tmp_path):
    messages = _run_messages()
    _record(tmp_path / "new.mcap", messages)
    _record(tmp_path / "old.mcap", messages, layout="legacy")
    new, _ = record_from_recording(tmp_path / "new.mcap")
    old, _ = record_from_recording(tmp_path / "old.mcap")
    assert old.layout == new.layout == LAYOUT
    assert score_run(old) == score_run(new)
    assert score_run(old)["tracking"]["local/site_0"]["num_frames"] > 0


def test_a_recording_without_the_layout_cannot_be_scored(tmp_path):
    _record(tmp_path / "no_world.mcap", _run_messages()[:8], layout="none")
    with pytest.raises(RecordingError, match="no /infrastructure/layout message"):
        record_from_recording(tmp_path / "no_world.mcap")


def test_an_older_recording_whose_json_layout_is_incomplete_is_refused_naming_what_is_missing(tmp_path):
    broken = {**LEGACY_WORLD, "sites": [{"id": "site_0"}]}
    _record(tmp_path / "broken.mcap", _run_messages()[:8], layout="legacy", legacy=broken)
    with pytest.raises(RecordingError, match=r"/sim/world .*no 'polygon'"):
        record_from_recording(tmp_path / "broken.mcap")

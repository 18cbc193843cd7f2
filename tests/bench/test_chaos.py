"""The chaos benchmark's parts: the stack split over hosts, the bad inputs it sends, and how it judges a run."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mobility_twin_bench.chaos import (
    Frames,
    Settings,
    _counted,
    align,
    completeness,
    fused_cases,
    ids_kept,
    recovered_at,
    split_by_host,
    steady,
    targets,
    tracked,
)
from mobility_twin_core import Layout, Rsu, Site

SQUARE = ((0.0, 0.0), (200.0, 0.0), (200.0, 200.0), (0.0, 200.0), (0.0, 0.0))
LAYOUT = Layout(rsus=(Rsu("rsu_00", 50.0, 50.0, 6.0, 0.0, "site_0", 80.0), Rsu("rsu_01", 150.0, 50.0, 6.0, 0.0, "site_1", 80.0)),
                sites=(Site("site_0", ((0.0, 0.0), (100.0, 0.0), (100.0, 200.0), (0.0, 200.0))),
                       Site("site_1", ((100.0, 0.0), (200.0, 0.0), (200.0, 200.0), (100.0, 200.0)))),
                area=SQUARE, name="chaos_test").validated()


def frames(rows) -> Frames:
    """Frames from (stamp, {id: (x, y)}) rows; velocities zero, received at the stamp."""
    return Frames(np.array([t for t, _ in rows], dtype=float),
                  [np.array(list(d), dtype=np.int64) for _, d in rows],
                  [np.array(list(d.values()), dtype=float).reshape(-1, 2) for _, d in rows],
                  [np.zeros((len(d), 2)) for _, d in rows], np.array([t for t, _ in rows], dtype=float))


# ------------------------------------------------------------------------------------------------ the stack
@pytest.mark.ros
def test_the_stack_is_split_over_four_hosts_and_each_part_loads(tmp_path):
    from mobility_twin.deploy.stack import StackOptions, stack_launch_xml
    from mobility_twin.launch_runner import load_launch_file

    parts = split_by_host(stack_launch_xml(LAYOUT, StackOptions(offloading=False, placement=False, viz=False)))
    assert set(parts) == {"sim", "rsu", "edge", "cloud"}
    executables = {}
    for host, text in parts.items():
        assert 'name="hil"' in text  # every part declares the stack's arguments
        path = tmp_path / f"{host}.launch.xml"
        path.write_text(text)
        executables[host] = sorted(n.executable for n in load_launch_file(path).nodes)
    assert executables == {"sim": ["replay"], "rsu": ["rsu_perception", "rsu_perception"],
                           "edge": ["local_twin", "local_twin"], "cloud": ["global_twin", "relation_learner"]}


# ------------------------------------------------------------------------------------------------ bad inputs
@pytest.mark.ros
def test_every_bad_input_is_what_issue_15_describes():
    from mobility_twin.ros.cdr import CdrError, decode_cloud_xyz, decode_detections, decode_tracks
    from mobility_twin_bench.chaos_agent import build_message

    now = 1.7e9
    det = {"kind": "detections", "topic": "/rsu/rsu_00/detections", "source_id": "rsu_00", "sensor_pose": [50, 50, 6, 0]}
    tracks = {"kind": "tracks", "topic": "/twin/local/site_0/objects", "twin_id": "local/site_0", "case": "x"}

    from rclpy.serialization import serialize_message

    _, cloud = build_message({"kind": "cloud", "topic": "/rsu/rsu_00/points", "frame_id": "rsu_00/lidar"}, now)
    assert cloud.point_step == 4 and max(f.offset for f in cloud.fields) == 8
    with pytest.raises(CdrError):
        decode_cloud_xyz(serialize_message(cloud))
    nan = decode_detections(build_message({**det, "positions": [[math.nan, math.nan]]}, now)[1])
    assert nan.source_id == "rsu_00" and np.isnan(nan.records["px"]).all()
    future = decode_detections(build_message({**det, "positions": [[60, 60]], "stamp_offset_s": 1e6}, now)[1])
    assert future.stamp == pytest.approx(now + 1e6)
    fast = decode_detections(build_message({**det, "source_id": "edge_0/v2x", "source_type": 2, "positions": [[60, 60]],
                                            "velocity": [3e8, 0.0], "self_report_id": "chaos_v2x"}, now)[1])
    assert fast.source_type == 2 and fast.records["vx"][0] == 3e8 and fast.self_report_id == ["chaos_v2x"]
    inf = decode_tracks(build_message({**tracks, "positions": [[math.inf, -math.inf]]}, now)[1])
    assert np.isinf(inf.records["px"]).all() and inf.twin_id == "local/site_0"
    foreign = decode_tracks(build_message({**tracks, "twin_id": "local/site_1", "positions": [[1, 2]] * 5}, now)[1])
    assert foreign.twin_id == "local/site_1" and len(foreign) == 5


@pytest.mark.ros
def test_the_injector_process_delivers_its_case_to_a_subscriber(tmp_path):
    import json
    import subprocess
    import sys

    from mobility_twin.ros.cdr import decode_detections
    from mobility_twin_msgs.msg import DetectedObjectArray
    from tests.ros_helpers import Collector

    spec = {"case": "nan_detection", "kind": "detections", "topic": "/rsu/rsu_00/detections", "source_id": "rsu_00",
            "sensor_pose": [50, 50, 6, 0], "positions": [[math.nan, math.nan]]}
    with Collector({}) as c:
        got = []
        c.node.create_subscription(DetectedObjectArray, spec["topic"], got.append, 10, raw=True)
        proc = subprocess.Popen([sys.executable, "-m", "mobility_twin_bench.chaos_agent", "inject", "--spec",
                                 json.dumps(spec)], stdout=subprocess.PIPE, text=True)
        assert c.wait_for(lambda _m: len(got) >= 3, 60)
        out, _ = proc.communicate(timeout=30)
    report = json.loads(out.strip().splitlines()[-1])
    assert report["case"] == "nan_detection" and report["subscribers"] >= 1 and len(report["sent"]) == 3
    assert all(np.isnan(decode_detections(m).records["px"]).all() for m in got)


# ------------------------------------------------------------------------------------------------ judging
def test_the_twin_is_complete_when_every_settled_vehicle_in_range_is_tracked():
    s = Settings(eval_range_m=60.0, settle_s=1.0, complete_match_m=3.0)
    gt = frames([(t, {1: (50.0 + t, 50.0), 2: (500.0, 500.0)}) for t in np.arange(0.0, 5.0, 0.5)])
    # tracked from t = 2, with a gap at t = 3 (the vehicle 2 is out of range: never required)
    twin = frames([(t, {} if t == 3.0 else {7: (50.0 + t + 0.5, 50.0)}) for t in np.arange(2.0, 5.0, 0.5)])
    stamps, complete, missed = completeness(gt, twin, np.array([[50.0, 50.0]]), s)
    assert list(complete) == [False, False, False, False, True, True, False, True, True, True]
    assert list(missed[:4]) == [0, 0, 1, 1]  # vehicle 1 counts once it has been in range for 1 s
    assert recovered_at(stamps, complete, 2.6, hold_s=0.5) == 3.5
    assert recovered_at(stamps, complete, 0.0, hold_s=5.0) is None


def test_against_the_fault_free_run_only_what_its_twin_tracked_is_required():
    s = Settings(eval_range_m=60.0, settle_s=1.0, complete_match_m=3.0)
    rows = [(t, {1: (50.0 + t, 50.0), 2: (40.0, 40.0)}) for t in np.arange(0.0, 5.0, 0.5)]
    gt_ff = frames(rows)
    twin_ff = frames([(t, {7: (50.0 + t, 50.0)}) for t, _ in rows])  # vehicle 2 is never tracked, even fault-free
    # the chaos run's ground truth: the same instants, stamped 100 s later, the first two lost
    gt = frames([(t + 100.0, d) for t, d in rows[2:]])
    twin = frames([(t + 100.0, {} if 102.0 <= t + 100.0 < 103.0 else {8: (50.0 + t, 50.0)}) for t, _ in rows])
    index = align(gt, gt_ff)
    assert list(index) == list(range(2, 10))
    sets = tracked(gt_ff, twin_ff, np.array([[50.0, 50.0]]), s)
    assert sets[4] == ({1, 2}, {1})
    reference = [steady(sets, gt_ff.stamps, s.settle_s)[j] for j in index]
    _, absolute, _ = completeness(gt, twin, np.array([[50.0, 50.0]]), s)
    stamps, relative, missed = completeness(gt, twin, np.array([[50.0, 50.0]]), s, reference=reference)
    assert not absolute[2:].any()  # vehicle 2 is never tracked (due once it has been in range for 1 s)
    assert list(relative) == [True, True, False, False, True, True, True, True]
    assert list(missed) == [0, 0, 1, 1, 0, 0, 0, 0]  # vehicle 1 missing while the chaos twin is empty
    assert recovered_at(stamps, relative, 102.0, hold_s=0.5) == 103.0


def test_ids_kept_compares_the_tracks_matched_to_the_same_vehicles_before_and_after():
    gt = frames([(0.0, {1: (0.0, 0.0), 2: (10.0, 0.0), 3: (20.0, 0.0)}), (5.0, {1: (5.0, 0.0), 2: (15.0, 0.0)})])
    twin = frames([(0.0, {11: (0.2, 0.0), 12: (10.1, 0.0), 13: (20.0, 0.3)}), (5.0, {11: (5.0, 0.1), 99: (15.0, 0.0)})])
    assert ids_kept(gt, twin, 0.0, 5.0, 2.0) == (0.5, 2)  # vehicle 1 kept its id, vehicle 2 did not, 3 is gone
    assert ids_kept(gt, frames([(9.0, {})]), 0.0, 5.0, 2.0) == (None, 0)


def test_a_bad_input_counts_as_fused_only_with_evidence_in_the_twin_output():
    from shapely.geometry import Polygon

    area = Polygon(SQUARE).buffer(500.0)
    gt = frames([(t, {1: (50.0, 50.0)}) for t in np.arange(0.0, 10.0, 1.0)])
    faults = [{"name": "fake", "kind": "inject", "t_fault": 2.0, "t_slot_end": 5.0},
              {"name": "nan", "kind": "inject", "t_fault": 6.0, "t_slot_end": 9.0}]
    specs = {"fake": {"positions": [[120.0, 120.0]]}, "nan": {"positions": [[math.nan, math.nan]]}}
    clean = frames([(t, {5: (50.0, 50.5)}) for t in np.arange(0.0, 10.0, 1.0)])
    assert fused_cases(clean, gt, faults, specs, area) == {"fake": [], "nan": []}
    bad = frames([(t, {5: (50.0, 50.5), 6: (121.0, 120.0)} if t == 3.0 else
                   {5: (math.nan, 50.0)} if t == 7.0 else {5: (50.0, 50.5)}) for t in np.arange(0.0, 10.0, 1.0)])
    found = fused_cases(bad, gt, faults, specs, area)
    assert found["fake"] == ["a track at an injected fake vehicle (121, 120)"]
    assert found["nan"] == ["non-finite position or velocity at 7.0"]


def test_a_reason_counts_when_its_counter_grows_across_the_injection():
    lines = [(10.0, "[INFO] [cloud.global_twin]: refused: not_finite 1"),
             (20.0, "[INFO] [cloud.global_twin]: refused: not_finite 1, twin_id_mismatch 3"),
             (30.0, "[INFO] [edge.local_twin]: 40 frames fused; refused: not_finite 4")]
    assert _counted(lines, "twin_id_mismatch", 0.0, 15.0) == 3
    assert _counted(lines, "not_finite", 0.0, 15.0) == 0  # counted before, not by this injection
    assert _counted(lines, "not_finite", 0.0, 25.0) == 3
    assert _counted(lines, "not_finite", 0.0, 35.0) == 0  # nothing logged after it
    assert _counted([(5.0, "clouds 50, ...; skipped: wrong frame 0, no pose 0, unreadable 3, empty 0")],
                    "unreadable", 0.0, 1.0) == 3


def test_targets_are_met_only_when_every_fault_is():
    fault = {"kind": "kill", "name": "kill -9 global twin", "survived": True, "node_back_s": 2.0, "recovery_s": 3.0,
             "ids_kept": 1.0}
    inject = {"kind": "inject", "name": "nan_detection", "survived": True, "recovery_s": 0.1, "ids_kept": 1.0,
              "fused": False, "counted_by": {"local_twin-1": 3}}
    good = {"faults": [fault, inject], "bad_inputs_fused": 0, "mota": {"chaos": 0.90, "fault_free": 0.91}}
    assert [r["verdict"] for r in targets(good)[:6]] == ["met"] * 6
    bad = {"faults": [{**fault, "node_back_s": 6.0, "ids_kept": 0.5, "ids_kept_fault_free": 1.0},
                      {**inject, "counted_by": {}, "ids_kept": 0.8, "ids_kept_fault_free": 0.8}],
           "bad_inputs_fused": 1, "mota": {"chaos": 0.80, "fault_free": 0.91}}
    verdicts = {r["target"]: r["verdict"] for r in targets(bad)}
    assert verdicts["every crashed node back within 5 s"] == "MISSED"
    assert verdicts["the same global ids for vehicles still present"] == "MISSED"
    assert verdicts["MOTA over the chaos run within 0.02 of the fault-free run"] == "MISSED"
    assert verdicts["zero bad inputs fused; every one counted with a reason"] == "MISSED"
    assert verdicts["every injected fault survived (no stack exit)"] == "met"
    ids = next(r for r in targets(bad) if r["target"].startswith("the same global ids"))
    assert "kill -9 global twin 0.50 (fault-free 1.00)" in ids["measured"] and "nan_detection" not in ids["measured"]

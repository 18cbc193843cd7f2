"""The collision_warning node as a real process over DDS: twin tracks in, warnings (and a CAV's brake) out."""

from __future__ import annotations

import math
import subprocess
import sys
import time

import pytest

msgs = pytest.importorskip("mobility_twin_msgs.msg")
node_module = pytest.importorskip("mobility_twin.nodes.collision_warning")

from tests.ros_helpers import Collector, stop  # noqa: E402

pytestmark = pytest.mark.ros


def test_config_rejects_hysteresis_the_wrong_way_round():
    with pytest.raises(ValueError):
        node_module.CollisionWarningConfig(p_on=0.3, p_off=0.6).check()
    node_module.CollisionWarningConfig().check()


def tracks_message(stamp_s: float, topic_twin: str = "global"):
    from mobility_twin.ros.convert import to_time

    msg = msgs.TrackedObjectArray(twin_id=topic_twin)
    msg.header.frame_id, msg.header.stamp = "map", to_time(stamp_s)

    def track(tid, x, y, vx, vy, vehicle="", last=stamp_s, cls=1):
        o = msgs.TrackedObject(track_id=tid, object_class=cls, state=msgs.TrackedObject.STATE_CONFIRMED,
                               existence_probability=0.99, vehicle_id=vehicle)
        o.pose.pose.position.x, o.pose.pose.position.y = x, y
        o.pose.pose.orientation.z, o.pose.pose.orientation.w = math.sin(math.atan2(vy, vx) / 2), \
            math.cos(math.atan2(vy, vx) / 2)
        o.twist.twist.linear.x, o.twist.twist.linear.y = vx, vy
        cov = [0.0] * 16
        cov[0] = cov[5] = 0.09
        cov[10] = cov[15] = 0.09
        o.state_covariance = cov
        o.dimensions.x, o.dimensions.y, o.dimensions.z = 4.5, 1.8, 1.5
        o.last_measurement = to_time(last)
        return o

    msg.objects = [
        track(11, 0.0, 0.0, 10.0, 0.0, vehicle="cav_7"),  # a CAV closing in on ...
        track(12, 22.0, 0.0, 0.0, 0.0),  # ... a stopped car: about 1.7 s
        track(13, 100.0, 50.0, 10.0, 0.0),  # alone
        track(14, math.nan, 0.0, 1.0, 0.0),  # broken
        track(15, 120.0, 50.0, -10.0, 0.0, last=stamp_s - 30.0),  # stale (would be head-on with 13)
        track(16, 10.0, 0.5, 3.0, 0.0, cls=5),  # a pedestrian: not watched
    ]
    return msg


def test_node_warns_both_parties_and_brakes_the_cav(tmp_path):
    from mobility_twin.ros.qos import EVENTS, TWIN_STATE

    log = (tmp_path / "node.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "mobility_twin.nodes.collision_warning", "--ros-args",
                             "-p", "objects_topic:=/twin/cw_test/objects", "-p", "warnings_topic:=/cw_test/warnings",
                             "-p", "brake:=true", "-p", "log_period_s:=1.0"],
                            stdout=log, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    topics = {"/cw_test/warnings": msgs.CollisionWarningArray, "/cav/cav_7/collision_warning": msgs.CollisionWarning,
              "/cav/cav_7/route_command": msgs.RouteCommand}
    try:
        with Collector(topics, qos={t: EVENTS for t in topics}, name="cw_test") as c:
            pub = c.node.create_publisher(msgs.TrackedObjectArray, "/twin/cw_test/objects", TWIN_STATE)
            end = time.monotonic() + 45.0
            while time.monotonic() < end:
                pub.publish(tracks_message(time.time()))
                c.spin(0.1)
                if c.messages["/cav/cav_7/route_command"] and c.messages["/cav/cav_7/collision_warning"]:
                    break
            assert c.messages["/cw_test/warnings"], (tmp_path / "node.log").read_text()
            arrays = c.messages["/cw_test/warnings"]
            warnings = [w for a in arrays for w in a.warnings]
            assert {(w.track_id, w.other_track_id) for w in warnings} == {(11, 12), (12, 11)}
            first = [w for w in warnings if w.state == msgs.CollisionWarning.STATE_NEW]
            assert len(first) == 2  # one warning, both parties told once
            mine = next(w for w in first if w.track_id == 11)
            assert mine.vehicle_id == "cav_7" and mine.should_yield and mine.kind == msgs.CollisionWarning.KIND_REAR_END
            assert 1.2 <= mine.time_to_conflict <= 2.2 and mine.probability >= 0.5
            assert not next(w for w in first if w.track_id == 12).should_yield
            cav = c.messages["/cav/cav_7/collision_warning"]
            assert cav and all(w.vehicle_id == "cav_7" for w in cav)
            cmd = c.messages["/cav/cav_7/route_command"][0]
            assert cmd.set_speed and 0.0 <= cmd.speed <= 6.5 and cmd.vehicle_id == "cav_7" and not cmd.edges
            # the conflict goes away (the tracks stop coming): the warning ends and the CAV gets its speed back
            assert c.wait_for(lambda m: any(w.state == msgs.CollisionWarning.STATE_CLEARED
                                            for a in m["/cw_test/warnings"] for w in a.warnings), 10.0)
            assert c.wait_for(lambda m: any(x.speed < 0 for x in m["/cav/cav_7/route_command"]), 5.0)
            c.spin(1.5)  # a summary line with the skips
            assert proc.poll() is None
    finally:
        assert stop(proc) == 0
    text = (tmp_path / "node.log").read_text()
    for reason in ("not_finite", "other_class_or_tentative", "stale", "tracks_stale"):
        assert reason in text, text
    assert "Traceback" not in text


def test_node_reads_the_lanes_of_its_network_and_stops_on_one_it_cannot_load(tmp_path):
    def start(network: str, log_path):
        return subprocess.Popen([sys.executable, "-m", "mobility_twin.nodes.collision_warning", "--ros-args",
                                 "-p", "objects_topic:=/twin/cw_lanes/objects", "-p", f"network:={network}"],
                                stdout=log_path.open("w"), stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)

    bad = start(str(tmp_path / "nowhere.net.xml"), tmp_path / "bad.log")
    assert bad.wait(timeout=60) == 2
    text = (tmp_path / "bad.log").read_text()
    assert "parameter 'network'" in text and "nowhere.net.xml" in text and "Traceback" not in text
    good = start("beijing_cbd", tmp_path / "good.log")
    try:
        end = time.monotonic() + 60.0
        while time.monotonic() < end and "lanes of beijing_cbd" not in (tmp_path / "good.log").read_text():
            assert good.poll() is None, (tmp_path / "good.log").read_text()
            time.sleep(0.2)
        assert "lanes of beijing_cbd" in (tmp_path / "good.log").read_text()
    finally:
        assert stop(good) == 0


def test_node_with_the_learned_predictor_warns_the_follower_and_stops_on_a_model_it_cannot_load(tmp_path):
    from mobility_twin.ros.qos import EVENTS, TWIN_STATE
    from mobility_twin_models.safety import save_checkpoint
    from mobility_twin_models.safety.train import train
    from tests.safety.test_learned import _rule_data

    def start(model: str, log_path, topic: str):
        return subprocess.Popen([sys.executable, "-m", "mobility_twin.nodes.collision_warning", "--ros-args",
                                 "-p", "predictor:=learned", "-p", f"model:={model}", "-p", f"objects_topic:={topic}",
                                 "-p", "warnings_topic:=/cw_learned/warnings"],
                                stdout=log_path.open("w"), stderr=subprocess.STDOUT, text=True, start_new_session=True)

    bad = start(str(tmp_path / "missing.pt"), tmp_path / "bad.log", "/twin/cw_learned_bad/objects")
    assert bad.wait(timeout=60) == 2
    text = (tmp_path / "bad.log").read_text()
    assert "missing.pt" in text and "does not exist" in text and "Traceback" not in text
    feats, labels = _rule_data(n=1500)  # a model of a known rule: closing to within 3 s is a conflict
    path = save_checkpoint(tmp_path / "rule.pt", train(feats, labels, epochs=200))
    proc = start(str(path), tmp_path / "node.log", "/twin/cw_learned/objects")
    try:
        with Collector({"/cw_learned/warnings": msgs.CollisionWarningArray}, qos={"/cw_learned/warnings": EVENTS},
                       name="cw_learned") as c:
            pub = c.node.create_publisher(msgs.TrackedObjectArray, "/twin/cw_learned/objects", TWIN_STATE)
            end = time.monotonic() + 45.0
            while time.monotonic() < end and not c.messages["/cw_learned/warnings"]:
                pub.publish(tracks_message(time.time(), "cw_learned"))
                c.spin(0.1)
            warnings = [w for a in c.messages["/cw_learned/warnings"] for w in a.warnings]
            assert {(w.track_id, w.other_track_id) for w in warnings} == {(11, 12), (12, 11)}, \
                (tmp_path / "node.log").read_text()
            mine = next(w for w in warnings if w.track_id == 11)
            assert mine.should_yield and mine.kind == msgs.CollisionWarning.KIND_REAR_END
            assert mine.time_to_conflict == pytest.approx(1.75, abs=0.2) and mine.probability >= 0.5
            assert proc.poll() is None
    finally:
        assert stop(proc) == 0
    assert "learned rear-end model" in (tmp_path / "node.log").read_text()


def view_message(stamp_s: float, hidden_from_m: float | None):
    """A LiDAR frame of sensor rsu_v at (-10, 0) with no detections: what it saw of the space, every cell clear,
    or hidden from ``hidden_from_m`` on along +x (bins 178-182: the road of tracks 11 and 12)."""
    import numpy as np

    from mobility_twin.ros.convert import to_time

    bins, cells = 360, 80
    clear = np.ones((bins, cells), bool)
    blocked = np.full(bins, np.inf, np.float32)
    if hidden_from_m is not None:
        clear[178:183, int(hidden_from_m):] = False
        blocked[178:183] = hidden_from_m
    msg = msgs.DetectedObjectArray(source_id="rsu_v", source_type=msgs.DetectedObjectArray.SOURCE_RSU,
                                   sensor_range=80.0, visibility_bins=bins, visibility_cell_m=1.0)
    msg.header.frame_id, msg.header.stamp = "map", to_time(stamp_s)
    msg.sensor_pose.position.x, msg.sensor_pose.orientation.w = -10.0, 1.0
    msg.visibility_clear = np.packbits(clear, axis=None).tolist()
    msg.visibility_blocked = blocked.tolist()
    return msg


def test_node_with_views_warns_a_follower_whose_gap_is_seen_and_ends_the_warning_once_it_is_hidden(tmp_path):
    from mobility_twin.ros.qos import EVENTS, TWIN_STATE
    from mobility_twin_models.safety import save_checkpoint
    from mobility_twin_models.safety.train import train
    from tests.safety.test_learned import _rule_data

    feats, labels = _rule_data(n=1500)
    path = save_checkpoint(tmp_path / "rule.pt", train(feats, labels, epochs=200))
    proc = subprocess.Popen([sys.executable, "-m", "mobility_twin.nodes.collision_warning", "--ros-args",
                             "-p", "predictor:=learned", "-p", f"model:={path}",
                             "-p", "objects_topic:=/twin/cw_views/objects", "-p", "warnings_topic:=/cw_views/warnings",
                             "-p", "views_topics:=['/cw_views/rsu_v/detections']", "-p", "max_unseen_gap_m:=4.5",
                             "-p", "log_period_s:=1.0"],
                            stdout=(tmp_path / "node.log").open("w"), stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        with Collector({"/cw_views/warnings": msgs.CollisionWarningArray}, qos={"/cw_views/warnings": EVENTS},
                       name="cw_views") as c:
            tracks = c.node.create_publisher(msgs.TrackedObjectArray, "/twin/cw_views/objects", TWIN_STATE)
            views = c.node.create_publisher(msgs.DetectedObjectArray, "/cw_views/rsu_v/detections", TWIN_STATE)
            # the road between 11 and 12 seen clear: the follower is warned
            end = time.monotonic() + 30.0
            while time.monotonic() < end and not c.messages["/cw_views/warnings"]:
                now = time.time()
                views.publish(view_message(now, None))
                tracks.publish(tracks_message(now, "cw_views"))
                c.spin(0.1)
            warnings = [w for a in c.messages["/cw_views/warnings"] for w in a.warnings]
            assert {(w.track_id, w.other_track_id) for w in warnings} == {(11, 12), (12, 11)}, \
                (tmp_path / "node.log").read_text()
            # then hidden behind something standing 15 m from the sensor: the warning ends, the pair is counted

            def cleared(m):
                return any(w.state == msgs.CollisionWarning.STATE_CLEARED for a in m["/cw_views/warnings"]
                           for w in a.warnings)

            end = time.monotonic() + 15.0
            while time.monotonic() < end and not (cleared(c.messages)
                                                  and "gap_unseen" in (tmp_path / "node.log").read_text()):
                now = time.time()
                views.publish(view_message(now, 15.0))
                tracks.publish(tracks_message(now, "cw_views"))
                c.spin(0.1)
            assert cleared(c.messages) and "gap_unseen" in (tmp_path / "node.log").read_text()
            assert proc.poll() is None
    finally:
        assert stop(proc) == 0
    assert "Traceback" not in (tmp_path / "node.log").read_text()

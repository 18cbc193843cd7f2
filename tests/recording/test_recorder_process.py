"""The recorder as a real process (launch file, `mtwin record`) records test publishers of this process."""

import os
import signal
import time
from pathlib import Path

import pytest
from std_msgs.msg import String

from mobility_twin.recording import Recording, message_definition
from tests.conftest import run_mtwin
from tests.ros_helpers import REPO, Collector, start_mtwin, stop

pytestmark = pytest.mark.ros


def _wait_subscribed(c: Collector, *topics: str, timeout: float = 30.0, pubs=(), settle_s: float = 1.0) -> bool:
    """The recorder subscribes to ``topics`` (as the graph shows it) and ``pubs`` have matched it (else their
    first messages may go out before the match, and be lost on a busy machine); then ``settle_s`` more for
    the recorder's readers to match the writers in turn (a reliable reader that has not yet discovered a
    writer drops what it sends: one message of 20 was lost so in a full suite on a loaded machine)."""
    ok = c.wait_for(lambda _m: all(c.node.count_subscribers(t) > 0 for t in topics)
                    and all(p.get_subscription_count() > 0 for p in pubs), timeout)
    if ok:
        c.spin(settle_s)
    return ok


def test_recorder_launch_records_selected_topics_with_schemas_qos_and_counts(tmp_path):
    from rclpy.serialization import deserialize_message, serialize_message
    from sensor_msgs.msg import PointCloud2

    from mobility_twin.ros.interface_samples import SAMPLES
    from mobility_twin.ros.qos import EVENTS, LATCHED, SENSOR_STREAM, TWIN_STATE
    from mobility_twin_msgs.msg import Layout, MigrationEvent, TrackedObjectArray, TwinStateArray

    out = tmp_path / "run.mcap"
    with Collector({}, name="recorder_test_publishers") as c:
        layout = c.node.create_publisher(Layout, "/infrastructure/layout", LATCHED)
        layout.publish(SAMPLES["Layout"].build(0))  # before the recorder exists: latched, still recorded
        objects = c.node.create_publisher(TrackedObjectArray, "/twin/global/objects", TWIN_STATE)
        clouds = c.node.create_publisher(PointCloud2, "/rsu/r1/points", SENSOR_STREAM)
        markers = c.node.create_publisher(TwinStateArray, "/twin/markers", TWIN_STATE)  # excluded by default
        proc = start_mtwin("launch", str(REPO / "launch" / "record.launch.xml"), f"output:={out}", "clouds:=true",
                           log=tmp_path / "recorder.log")
        try:
            assert _wait_subscribed(c, "/twin/global/objects", "/rsu/r1/points", pubs=(objects, clouds)), \
                (tmp_path / "recorder.log").read_text()
            for seq in range(20):
                objects.publish(serialize_message(SAMPLES["TrackedObjectArray"].build(seq)))  # raw, as the twins do
                clouds.publish(PointCloud2())
                markers.publish(TwinStateArray())
                # at 20 Hz: a reliable writer keeps 10 (TWIN_STATE); faster, a recorder slowed down by a busy
                # machine can have the oldest unacknowledged one replaced (DDS keep-last), not lost by the recorder
                c.spin(0.05)
            late = c.node.create_publisher(MigrationEvent, "/placement/migrations", EVENTS)  # appears later
            assert _wait_subscribed(c, "/placement/migrations", pubs=(late,)), (tmp_path / "recorder.log").read_text()
            for seq in range(5):
                late.publish(SAMPLES["MigrationEvent"].build(seq))
            c.spin(1.0)
        finally:
            status = stop(proc)
    log = (tmp_path / "recorder.log").read_text()
    assert status in (0, 130), log
    with Recording(out) as rec:
        assert rec.complete, log
        assert set(rec.topics) == {"/infrastructure/layout", "/twin/global/objects", "/rsu/r1/points",
                                   "/placement/migrations"}
        counts = {t: i.count for t, i in rec.topics.items()}
        assert counts["/twin/global/objects"] == 20 and counts["/placement/migrations"] == 5
        assert counts["/infrastructure/layout"] == 1 and 1 <= counts["/rsu/r1/points"] <= 20
        for info in rec.topics.values():
            assert rec.definitions[info.type] == message_definition(info.type)
        assert not rec.topics["/rsu/r1/points"].offered_qos[0].reliable
        assert rec.topics["/infrastructure/layout"].offered_qos[0].latched
        got = [deserialize_message(m.data, TrackedObjectArray) for m in rec.messages(["/twin/global/objects"])]
    assert got == [SAMPLES["TrackedObjectArray"].build(s) for s in range(20)]  # as received, in order


def test_mtwin_record_takes_a_topic_selection_and_stops_after_its_duration(tmp_path):
    from std_msgs.msg import String

    from mobility_twin.ros.qos import TWIN_STATE

    out = tmp_path / "picked.mcap"
    with Collector({}, name="record_cli_publishers") as c:
        picked = c.node.create_publisher(String, "/twin/global/note", TWIN_STATE)
        other = c.node.create_publisher(String, "/twin/local/site_0/note", TWIN_STATE)
        proc = start_mtwin("record", "-o", str(out), "--topics", "/twin/global/.*", "--duration", "8",
                           log=tmp_path / "record.log")
        try:
            assert _wait_subscribed(c, "/twin/global/note", pubs=(picked,)), (tmp_path / "record.log").read_text()
            for k in range(5):
                picked.publish(String(data=f"picked {k}"))
                other.publish(String(data=f"other {k}"))
                c.spin(0.05)
            proc.wait(timeout=60)  # --duration ends it
        finally:
            stop(proc)
    assert proc.returncode == 0, (tmp_path / "record.log").read_text()
    with Recording(out) as rec:
        assert {t: i.count for t, i in rec.topics.items()} == {"/twin/global/note": 5}


def test_under_sim_time_log_times_are_sim_times_and_early_messages_wait_for_the_first_clock(tmp_path):
    from rosgraph_msgs.msg import Clock
    from std_msgs.msg import String

    from mobility_twin.ros.interface_samples import SAMPLES
    from mobility_twin.ros.qos import CLOCK, LATCHED, TWIN_STATE
    from mobility_twin_msgs.msg import Layout

    out = tmp_path / "sim.mcap"
    with Collector({}, name="sim_time_publishers") as c:
        layout = c.node.create_publisher(Layout, "/infrastructure/layout", LATCHED)
        layout.publish(SAMPLES["Layout"].build(0))
        clock = c.node.create_publisher(Clock, "/clock", CLOCK)
        objects = c.node.create_publisher(String, "/twin/global/note", TWIN_STATE)
        proc = start_mtwin("launch", str(REPO / "launch" / "record.launch.xml"), f"output:={out}",
                           "use_sim_time:=true", log=tmp_path / "recorder.log")
        try:
            assert _wait_subscribed(c, "/twin/global/note", "/infrastructure/layout"), \
                (tmp_path / "recorder.log").read_text()
            c.spin(1.0)  # the latched layout has arrived, before any /clock
            for k in range(5):
                msg = Clock()
                msg.clock.sec = 1_202_000_000 + k
                clock.publish(msg)
                c.spin(0.2)
                objects.publish(String(data=f"note {k}"))
                c.spin(0.2)
            c.spin(0.5)
        finally:
            stop(proc)
    with Recording(out) as rec:
        assert rec.topics["/twin/global/note"].count == 5, (tmp_path / "recorder.log").read_text()
        times = {m.topic: m.log_time_ns for m in rec.messages(["/infrastructure/layout", "/twin/global/note"])}
        assert rec.start_ns >= 1_202_000_000 * 10**9  # never 0: the layout waited for the first clock
        assert 1_202_000_000 * 10**9 <= times["/twin/global/note"] < 1_202_000_005 * 10**9  # the last note, sim time


def _publish_numbers(c: Collector, pub, start: int, count: int, period_s: float) -> list[float]:
    """Publish std_msgs/String "<n>" for n in [start, start + count) every period_s; their publish times."""
    from std_msgs.msg import String

    times = []
    for n in range(start, start + count):
        pub.publish(String(data=str(n)))
        times.append(time.time())
        c.spin(period_s)
    return times


def _numbers(path: Path) -> list[int]:
    """The numbers in a recording, through the mcap library's indexed reader (summary and indexes)."""
    from mcap.reader import make_reader

    with path.open("rb") as f:
        reader = make_reader(f)
        assert reader.get_summary() is not None and reader.get_summary().statistics is not None
        return [int(m.data[8:7 + int.from_bytes(m.data[4:8], "little")])
                for _s, _c, m in reader.iter_messages(log_time_order=True)]


def test_sigterm_closes_the_recording_with_its_summary(tmp_path):
    from mobility_twin.ros.qos import TWIN_STATE

    out = tmp_path / "term.mcap"
    with Collector({}, name="sigterm_publishers") as c:
        pub = c.node.create_publisher(String, "/twin/global/seq", TWIN_STATE)
        proc = start_mtwin("record", "-o", str(out), "--topics", "/twin/global/seq", log=tmp_path / "record.log")
        try:
            assert _wait_subscribed(c, "/twin/global/seq", pubs=(pub,)), (tmp_path / "record.log").read_text()
            _publish_numbers(c, pub, 0, 30, 0.02)
            c.spin(0.5)
            proc.send_signal(signal.SIGTERM)  # what docker stop and systemd send
            proc.wait(timeout=30)
        finally:
            stop(proc)
    log = (tmp_path / "record.log").read_text()
    assert proc.returncode == 0, log
    assert "wrote" in log and _numbers(out) == list(range(30)), log


def test_kill_9_of_the_recorder_loses_at_most_its_flush_interval(tmp_path):
    """The recorder killed while messages flow: what it had written is recovered by `mtwin recording repair`
    and read by the mcap library; what is lost is at most the last flush interval of messages."""
    from mobility_twin.ros.qos import TWIN_STATE

    flush_s, period_s = 1.0, 0.02  # 50 messages a second
    out = tmp_path / "killed.mcap"
    with Collector({}, name="kill9_publishers") as c:
        pub = c.node.create_publisher(String, "/twin/global/seq", TWIN_STATE)
        proc = start_mtwin("record", "-o", str(out), "--topics", "/twin/global/seq", "--flush-interval",
                           str(flush_s), log=tmp_path / "record.log")
        try:
            assert _wait_subscribed(c, "/twin/global/seq", pubs=(pub,)), (tmp_path / "record.log").read_text()
            sent = _publish_numbers(c, pub, 0, 300, period_s)  # about 6 s
            os.killpg(proc.pid, signal.SIGKILL)
            killed_at = time.time()
            proc.wait(timeout=10)
        finally:
            stop(proc)
    with Recording(out) as rec:  # the project's reader: up to where the file ends
        assert not rec.complete
        readable = rec.message_count
    fixed = run_mtwin("recording", "repair", str(out), "-o", str(tmp_path / "fixed.mcap"))
    assert fixed.returncode == 0, fixed.stderr
    kept = _numbers(tmp_path / "fixed.mcap")
    assert kept == list(range(len(kept)))  # every message up to the last flush, in order
    assert len(kept) == readable
    lost = len(sent) - len(kept)
    lost_s = killed_at - sent[len(kept)] if lost else 0.0  # how long before the kill the first lost one was sent
    print(f"kill -9 with flush interval {flush_s} s: {len(sent)} published, {len(kept)} recovered, {lost} lost "
          f"({lost * period_s:.2f} s of messages at {1 / period_s:.0f} Hz; the first lost one sent {lost_s:.2f} s "
          "before the kill)")
    assert lost_s <= flush_s + 0.5, fixed.stdout  # the interval, its timer's period (1/4) and delivery
    assert len(kept) >= 200

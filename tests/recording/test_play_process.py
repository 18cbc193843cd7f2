"""`mtwin play` as a real process publishes a recording into a real subscriber of this process."""


import pytest

from mobility_twin.recording import OfferedQos, RecordingWriter
from mobility_twin.recording.qos import BEST_EFFORT, TRANSIENT_LOCAL
from tests.ros_helpers import Collector, start_mtwin, stop

pytestmark = pytest.mark.ros

T0 = 1_700_000_000_000_000_000


def _recording(path, *, span_s: float = 0.4, n: int = 5) -> list:
    """Objects (n, spread over span_s), migrations (n), one latched layout, best-effort clouds.

    The objects were offered transient local (depth 10), so a reader asking the same gets every one of them
    even if it matches play's writer only after the first was published: a volatile reader drops what a
    writer sent before the reader's side of the match, and a writer cannot see when that side is done (a
    race of DDS discovery that a loaded CI machine lost about once in three full runs)."""
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import PointCloud2

    from mobility_twin.ros.interface_samples import SAMPLES

    objects = [SAMPLES["TrackedObjectArray"].build(s) for s in range(n)]
    with RecordingWriter(path) as w:
        w.add_topic("/infrastructure/layout", "mobility_twin_msgs/msg/Layout",
                    offered_qos=[OfferedQos(durability=TRANSIENT_LOCAL, depth=1)])
        w.add_topic("/twin/global/objects", "mobility_twin_msgs/msg/TrackedObjectArray",
                    offered_qos=[OfferedQos(durability=TRANSIENT_LOCAL, depth=10)])
        w.add_topic("/placement/migrations", "mobility_twin_msgs/msg/MigrationEvent")
        w.add_topic("/rsu/r1/points", "sensor_msgs/msg/PointCloud2", offered_qos=[OfferedQos(reliability=BEST_EFFORT)])
        w.write("/infrastructure/layout", serialize_message(SAMPLES["Layout"].build(0)), T0)
        for k, msg in enumerate(objects):
            t = T0 + round(k * span_s / max(n - 1, 1) * 1e9)
            w.write("/twin/global/objects", serialize_message(msg), t)
            w.write("/placement/migrations", serialize_message(SAMPLES["MigrationEvent"].build(k)), t)
            w.write("/rsu/r1/points", serialize_message(PointCloud2()), t)
    return objects


def test_play_publishes_only_the_selected_topics_with_their_messages(tmp_path):
    from mobility_twin.ros.interface_samples import SAMPLES
    from mobility_twin.ros.qos import EVENTS, LATCHED, keep_last
    from mobility_twin_msgs.msg import Layout, MigrationEvent, TrackedObjectArray

    objects = _recording(tmp_path / "run.mcap")
    wanted = {"/twin/global/objects": TrackedObjectArray, "/infrastructure/layout": Layout,
              "/placement/migrations": MigrationEvent}
    qos = {"/infrastructure/layout": LATCHED, "/placement/migrations": EVENTS,
           "/twin/global/objects": keep_last(10, latched=True)}
    with Collector(wanted, qos=qos) as c:
        proc = start_mtwin("play", str(tmp_path / "run.mcap"), "--topics", "/twin/global/objects",
                           "/infrastructure/.*",
                           "--rate", "0", "--delay", "0.5", "--wait-for-subscribers", log=tmp_path / "play.log")
        try:
            got = c.wait_for(lambda m: len(m["/twin/global/objects"]) >= 5 and len(m["/infrastructure/layout"]) >= 1,
                             60)
            proc.wait(timeout=60)
            c.spin(0.5)
        finally:
            stop(proc)
    log = (tmp_path / "play.log").read_text()
    assert got and proc.returncode == 0, log
    assert c.messages["/twin/global/objects"] == objects
    assert c.messages["/infrastructure/layout"] == [SAMPLES["Layout"].build(0)]
    assert c.messages["/placement/migrations"] == []  # not selected
    assert "published 6 messages" in log


def test_play_paces_messages_by_their_log_times_over_the_rate_and_publishes_clock(tmp_path):
    from rosgraph_msgs.msg import Clock

    from mobility_twin.ros.qos import keep_last
    from mobility_twin_msgs.msg import TrackedObjectArray

    objects = _recording(tmp_path / "run.mcap", span_s=1.0, n=3)
    with Collector({"/twin/global/objects": TrackedObjectArray, "/clock": Clock},
                   qos={"/twin/global/objects": keep_last(10, latched=True)}) as c:
        proc = start_mtwin("play", str(tmp_path / "run.mcap"), "--topics", "/twin/.*", "--rate", "0.25",
                           "--delay", "0.5", "--wait-for-subscribers", "--clock", "20", log=tmp_path / "play.log")
        try:
            got = c.wait_for(lambda m: len(m["/twin/global/objects"]) >= 3, 60)
            proc.wait(timeout=60)
        finally:
            stop(proc)
    received = [objects.index(m) if m in objects else "?" for m in c.messages["/twin/global/objects"]]
    assert got and proc.returncode == 0, f"received {received}\n" + (tmp_path / "play.log").read_text()
    assert c.messages["/twin/global/objects"] == objects
    arrival = c.arrival["/twin/global/objects"]
    # the last two are 0.5 s apart in the log, due 2 s apart at rate 0.25 (0.5 s if the rate were ignored); the
    # first may arrive late, with the reader's side of the match
    assert arrival[-1] - arrival[-2] > 1.5
    clock = [m.clock.sec * 10**9 + m.clock.nanosec for m in c.messages["/clock"]]
    assert clock and clock == sorted(clock) and T0 <= clock[0] and clock[-1] <= T0 + 1_000_000_000


def test_play_refuses_a_selection_that_matches_nothing(tmp_path):
    from tests.conftest import run_mtwin

    _recording(tmp_path / "run.mcap")
    result = run_mtwin("play", str(tmp_path / "run.mcap"), "--topics", "/nothing/.*")
    assert result.returncode == 2
    assert "no topic of" in result.stderr and "/twin/global/objects" in result.stderr
    info = run_mtwin("play", str(tmp_path / "run.mcap"), "--info")
    assert info.returncode == 0 and "/placement/migrations" in info.stdout and "Messages:          16" in info.stdout


def test_play_loops_until_interrupted(tmp_path):
    from mobility_twin_msgs.msg import TrackedObjectArray

    objects = _recording(tmp_path / "run.mcap")
    with Collector({"/twin/global/objects": TrackedObjectArray}) as c:
        proc = start_mtwin("play", str(tmp_path / "run.mcap"), "--topics", "/twin/global/objects", "--loop",
                           "--rate", "2", "--delay", "0.5", "--wait-for-subscribers", log=tmp_path / "play.log")
        try:
            got = c.wait_for(lambda m: len(m["/twin/global/objects"]) >= 3 * len(objects), 60)
        finally:
            status = stop(proc)
    log = (tmp_path / "play.log").read_text()
    assert got, log
    assert status == 130 and "interrupted after" in log
    received = c.messages["/twin/global/objects"]
    # the whole recording, then again from its start (the very first sample may still be lost while a
    # loaded machine completes discovery, so the first complete pass is looked for)
    n = len(objects)
    assert any(received[k:k + 2 * n] == objects + objects for k in range(len(received) - 2 * n + 1)), log

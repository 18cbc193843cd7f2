"""The evaluation collector writes what it receives to disk and decodes it after the run, to the same record."""

import pytest

from mobility_twin.evaluation.decoding import RunRecordBuilder, record_from_recording
from mobility_twin.evaluation.scoring import score_run
from mobility_twin.recording import Recording
from tests.recording.test_offline_rescoring import LAYOUT, _run_messages

pytestmark = pytest.mark.ros


def test_collector_spools_every_message_and_decodes_the_run_after_it_to_the_same_scores(tmp_path):
    from mobility_twin.evaluation.live import RunCollector
    from mobility_twin.ros.qos import TWIN_STATE
    from mobility_twin_msgs.msg import DetectedObjectArray, TrackedObjectArray
    from tests.ros_helpers import Collector

    messages = _run_messages()
    spool = tmp_path / "spool.mcap"
    collector = RunCollector(LAYOUT, spool)
    try:
        with Collector({}, name="spool_publishers") as c:
            pubs = {topic: c.node.create_publisher(
                DetectedObjectArray if topic.endswith("/detections") else TrackedObjectArray, topic, TWIN_STATE)
                for topic in {t for t, _ in messages}}

            def matched() -> bool:
                collector.spin(0.05)
                return all(c.node.count_subscribers(t) > 0 and p.get_subscription_count() > 0
                           for t, p in pubs.items())

            assert c.wait_for(lambda _m: matched(), 30)
            for start in range(0, len(messages), 8):  # in bursts the queues (depth 10) hold
                for topic, data in messages[start:start + 8]:
                    pubs[topic].publish(data)  # raw CDR, as the stack's nodes publish
                for _ in range(100):
                    if sum(collector.received.values()) >= min(start + 8, len(messages)):
                        break
                    collector.spin(0.02)
        assert sum(collector.received.values()) == len(messages)
        assert collector.record is None  # nothing decoded (nor kept) while the run goes on
        with Recording(spool) as live:  # already on disk, unflushed chunk aside
            assert not live.complete
        record = collector.decode()
    finally:
        collector.close()
    expected = RunRecordBuilder(LAYOUT)  # the same messages, decoded in memory in the order they were sent
    for topic, data in messages:
        expected.add(topic, data)
    assert record.layout == LAYOUT and collector.bad == 0  # the layout given
    assert score_run(record) == score_run(expected.record)
    assert score_run(record)["tracking"]["global"]["num_frames"] > 0
    with Recording(spool) as rec:  # the layout first, then every message received
        assert rec.complete and rec.message_count == len(messages) + 1
        assert next(m.topic for m in rec.messages()) == "/infrastructure/layout"
    rescored, _meta = record_from_recording(spool)  # a spool is scored on its own, with its own layout
    assert rescored.layout == LAYOUT and score_run(rescored) == score_run(expected.record)

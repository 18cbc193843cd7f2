"""Collecting a running stack's messages for scoring: a node in the evaluating process, spooled to disk.

The collector subscribes (raw) to the topics a run is scored from (:class:`RunRecordBuilder.topics`) and
writes every message, as received, into an MCAP file, the spool: nothing is decoded and nothing is kept
in memory while the stack runs, so the measuring process costs the measured stack little CPU and its
memory does not grow with the run. After the run, :meth:`RunCollector.decode` reads the spool back in
one pass (chunk by chunk, in the order the messages arrived) through the same decoding as a recording
(:func:`record_from_recording`): a run scores to the same numbers live and from its recording.

The spool starts with the run's layout, as the latched ``Layout`` message on ``/infrastructure/layout``
(the one the collector was given, which is what the simulator publishes), so that every spool can be
re-scored on its own. With ``record_others`` the same file also gets the other default topics of the
recorder (twin state, decisions, migrations, ...): the spool is then the run's recording, which ``mtwin
eval tracking --recording FILE`` re-scores. Without, the spool holds the layout and the scored topics only.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from mobility_twin.evaluation.decoding import (
    EVAL_METADATA,
    RunRecordBuilder,
    builder_from_recording,
    track_frame,
)
from mobility_twin.evaluation.scoring import RunRecord
from mobility_twin_core import Layout

__all__ = ["RunCollector", "track_frame"]


class RunCollector:
    """Spools the scored topics of a run of ``layout`` into ``spool`` (an MCAP file).

    Args:
        layout: the run's layout (the twin model's; ``World.layout`` under the simulator): which sites and
            RSUs are scored. It is written first into the spool (``/infrastructure/layout``).
        spool: the MCAP file to write (its folder is created).
        hil: hardware-in-the-loop stamps (wall clock), for the decoding.
        record_others: also record the recorder's other default topics (the spool is a full recording).
            A kept recording is compressed with zstd; a spool that is removed after scoring with lz4, which
            costs the running stack several times less CPU (the collector shares the machine with it).
    """

    def __init__(self, layout: Layout, spool: Path, *, hil: bool = True, record_others: bool = False) -> None:
        import time

        import rclpy
        from rclpy.context import Context
        from rclpy.serialization import serialize_message

        from mobility_twin.recording import OfferedQos, RecordingWriter, TopicSelection
        from mobility_twin.recording.qos import TRANSIENT_LOCAL
        from mobility_twin.ros import topics
        from mobility_twin.ros.entry import make_executor
        from mobility_twin.ros.layout_msg import layout_to_msg
        from mobility_twin.ros.qos import TWIN_STATE
        from mobility_twin.ros.recorder import TopicRecorder, message_class

        self.layout = layout
        self.hil = hil
        self.spool = Path(spool)
        self.topics = RunRecordBuilder(layout, hil=hil).topics
        self.record: RunRecord | None = None  # decoded by decode()
        self.bad = 0  # undecodable messages (known after decode())
        self.received: Counter[str] = Counter()
        self.context = Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node("mtwin_eval_collector", context=self.context)
        self.executor = make_executor(self.context)
        self.executor.add_node(self.node)
        self.writer = RecordingWriter(self.spool, compression="zstd" if record_others else "lz4")
        self.writer.add_topic(topics.LAYOUT, "mobility_twin_msgs/msg/Layout",
                              offered_qos=[OfferedQos(depth=1, durability=TRANSIENT_LOCAL)])
        self.writer.write(topics.LAYOUT, serialize_message(layout_to_msg(layout)), time.time_ns())
        # log times: wall clock, never going backwards, so that log-time order is arrival order
        self.recorder = TopicRecorder(self.node, self.writer, TopicSelection.default(),
                                      skip={*self.topics, topics.LAYOUT}, use_node_clock=False, discover=record_others)
        self._closed = False
        for topic, type_name in self.topics.items():
            self.node.create_subscription(message_class(type_name), topic,
                                          lambda data, t=topic, k=type_name: self._on_message(t, k, data),
                                          TWIN_STATE, raw=True)

    def _on_message(self, topic: str, type_name: str, data: bytes) -> None:
        self.recorder.write(topic, type_name, data)
        self.received[topic] += 1

    def yield_to_stack(self, increment: int = 5) -> None:
        """Lower this process's CPU priority (call it after starting the stack, whose processes must not
        inherit it): on a small machine the collector should take the CPU the stack under measurement
        leaves, not compete with it."""
        import os

        os.nice(increment)

    def spin(self, seconds: float) -> None:
        import time

        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=0.05)

    def progress(self) -> str:
        from mobility_twin.ros import topics

        det = sum(n for t, n in self.received.items() if t.endswith("/detections"))
        summary = self.writer.summary()
        return (f"received {self.received[topics.GROUND_TRUTH]} ground-truth frames, "
                f"{self.received[topics.GLOBAL_OBJECTS]} global twin updates, {det} detection frames; "
                f"{summary.message_count} messages ({sum(t.bytes for t in summary.topics.values()) / 1e6:.0f} MB) "
                f"spooled to {self.spool.name}, decoded at the end")

    def close(self, metadata: dict[str, str] | None = None) -> None:
        """Stop collecting and close the spool with its summary and ``metadata`` (the evaluation's) as its
        EVAL_METADATA record."""
        if self._closed:
            return
        self._closed = True
        self.recorder.close()
        if metadata:
            self.writer.add_metadata(EVAL_METADATA, metadata)
        self.writer.close()
        self.node.destroy_node()
        self.context.try_shutdown()

    def decode(self) -> RunRecord:
        """The RunRecord of the run, decoded from the spool in one pass (closes the collector first)."""
        self.close()
        builder, _meta = builder_from_recording(self.spool, hil=self.hil, layout=self.layout)
        self.record, self.bad = builder.record, builder.bad
        return self.record

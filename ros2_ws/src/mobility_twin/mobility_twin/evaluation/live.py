"""Recording a running stack into a RunRecord: a node in the evaluating process, on the raw messages.

With ``recording``, the same node also writes an MCAP recording of the run: the messages it scores
(exactly those, as it receives them) plus the other default topics of the recorder (twin state, decisions,
migrations, ...), so that ``mtwin eval tracking --recording FILE`` re-scores the run to the same numbers.

With ``defer_decoding``, the raw messages are kept as they arrive (up to ``defer_limit_bytes``, then it
decodes the backlog and goes on live) and decoded by :meth:`finish`, after the stack has stopped: the
measuring process then costs the measured stack almost no CPU (decoding every twin message of a dense
run took ~45% of a core).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from mobility_twin.evaluation.decoding import EVAL_METADATA, RunRecordBuilder, track_frame

__all__ = ["RunCollector", "track_frame"]


class RunCollector:
    def __init__(self, layout: dict, *, hil: bool = True, recording: Path | None = None,
                 defer_decoding: bool = False, defer_limit_bytes: int = 4 << 30) -> None:
        import rclpy
        from rclpy.context import Context

        from mobility_twin.ros.entry import make_executor
        from mobility_twin.ros.qos import TWIN_STATE
        from mobility_twin.ros.recorder import message_class

        self.builder = RunRecordBuilder(layout, hil=hil)
        self.record = self.builder.record
        self._backlog: list[tuple[str, bytes]] | None = [] if defer_decoding else None
        self._backlog_bytes = 0
        self._defer_limit = defer_limit_bytes
        self.received: Counter[str] = Counter()
        self.context = Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node("mtwin_eval_collector", context=self.context)
        self.executor = make_executor(self.context)
        self.executor.add_node(self.node)
        self.writer = self.recorder = None
        if recording is not None:
            from mobility_twin.recording import RecordingWriter, TopicSelection
            from mobility_twin.ros.recorder import TopicRecorder

            self.writer = RecordingWriter(recording)
            self.recorder = TopicRecorder(self.node, self.writer, TopicSelection.default(),
                                          skip=set(self.builder.topics), use_node_clock=False)
        for topic, type_name in self.builder.topics.items():
            self.node.create_subscription(message_class(type_name), topic,
                                          lambda data, t=topic, k=type_name: self._on_message(t, k, data),
                                          TWIN_STATE, raw=True)

    @property
    def bad(self) -> int:
        return self.builder.bad

    def _on_message(self, topic: str, type_name: str, data: bytes) -> None:
        if self.recorder is not None:
            self.recorder.write(topic, type_name, data)
        self.received[topic] += 1
        if self._backlog is None:
            self.builder.add(topic, data)
            return
        self._backlog.append((topic, data))
        self._backlog_bytes += len(data)
        if self._backlog_bytes > self._defer_limit:
            self.finish()  # too much to hold: decode what is held and go on live

    def finish(self) -> None:
        """Decode what was kept raw (with defer_decoding); from now on messages are decoded as they come."""
        backlog, self._backlog = self._backlog, None
        for topic, data in backlog or ():
            self.builder.add(topic, data)

    def yield_to_stack(self, increment: int = 5) -> None:
        """Lower this process's CPU priority (call it after starting the stack, whose processes must not
        inherit it): the collector decodes every twin message, and on a small machine it should take the
        CPU the stack under measurement leaves, not compete with it."""
        import os

        os.nice(increment)

    def spin(self, seconds: float) -> None:
        import time

        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=0.05)

    def progress(self) -> str:
        if self._backlog is not None:
            from mobility_twin.ros import topics

            det = sum(n for t, n in self.received.items() if t.endswith("/detections"))
            text = (f"received {self.received[topics.GROUND_TRUTH]} ground-truth frames, "
                    f"{self.received[topics.GLOBAL_OBJECTS]} global twin updates, {det} detection frames "
                    f"({self._backlog_bytes / 1e6:.0f} MB kept raw, decoded at the end)")
        else:
            gt = self.record.ground_truth
            span = gt[-1].stamp - gt[0].stamp if len(gt) > 1 else 0.0
            glob = self.record.twins.get("global", [])
            text = (f"recorded {span:.0f} s of ground truth, {len(glob)} global twin updates "
                    f"({len(glob[-1].ids) if glob else 0} tracks now), "
                    f"{sum(len(v) for v in self.record.detections.values())} RSU frames")
        if self.writer is not None:
            text += f"; {self.writer.summary().message_count} messages in the recording"
        return text

    def close(self, metadata: dict[str, str] | None = None) -> None:
        """Stop (decoding what was kept raw); with a recording, close it with ``metadata`` (the evaluation's)
        as its EVAL_METADATA record."""
        self.finish()
        if self.recorder is not None:
            self.recorder.close()
            if metadata:
                self.writer.add_metadata(EVAL_METADATA, metadata)
            self.writer.close()
        self.node.destroy_node()
        self.context.try_shutdown()

"""Recording a running stack into a RunRecord: a node in the evaluating process, on the raw messages.

With ``recording``, the same node also writes an MCAP recording of the run: the messages it scores
(exactly those, as it receives them) plus the other default topics of the recorder (twin state, decisions,
migrations, ...), so that ``mtwin eval tracking --recording FILE`` re-scores the run to the same numbers.
"""

from __future__ import annotations

from pathlib import Path

from mobility_twin.evaluation.decoding import EVAL_METADATA, RunRecordBuilder, track_frame

__all__ = ["RunCollector", "track_frame"]


class RunCollector:
    def __init__(self, layout: dict, *, hil: bool = True, recording: Path | None = None) -> None:
        import rclpy
        from rclpy.context import Context

        from mobility_twin.ros.entry import make_executor
        from mobility_twin.ros.qos import TWIN_STATE
        from mobility_twin.ros.recorder import message_class

        self.builder = RunRecordBuilder(layout, hil=hil)
        self.record = self.builder.record
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
        """Stop; with a recording, close it with ``metadata`` (the evaluation's) as its EVAL_METADATA record."""
        if self.recorder is not None:
            self.recorder.close()
            if metadata:
                self.writer.add_metadata(EVAL_METADATA, metadata)
            self.writer.close()
        self.node.destroy_node()
        self.context.try_shutdown()

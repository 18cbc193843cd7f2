"""Recording a running stack into a RunRecord: a node in the evaluating process, on the raw messages."""

from __future__ import annotations

import numpy as np

from mobility_twin.evaluation.scoring import RunRecord, TrackFrame
from mobility_twin.ros import topics
from mobility_twin.ros.cdr import CdrError, TrackTable, decode_detections, decode_tracks
from mobility_twin.ros.tables import table_to_detections


def track_frame(table: TrackTable, *, vehicle_ids: bool = False) -> TrackFrame:
    """Positions and velocities of a track table; ground truth is keyed by vehicle (taxi) id."""
    rec = table.records
    ids = np.array([int(v) for v in table.vehicle_id], dtype=np.int64) if vehicle_ids else rec["track_id"].astype(np.int64)
    return TrackFrame(table.stamp, ids, np.stack([rec["px"], rec["py"]], axis=1),
                      np.stack([rec["vx"], rec["vy"]], axis=1))


class RunCollector:
    def __init__(self, layout: dict, *, hil: bool = True) -> None:
        import rclpy
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor

        from mobility_twin.ros.qos import TWIN_STATE
        from mobility_twin_msgs.msg import DetectedObjectArray, TrackedObjectArray

        self.record = RunRecord(layout, hil=hil)
        self.bad = 0
        self.context = Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node("mtwin_eval_collector", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        sub = self.node.create_subscription
        sub(TrackedObjectArray, topics.GROUND_TRUTH, self._on_ground_truth, TWIN_STATE, raw=True)
        sub(TrackedObjectArray, topics.GLOBAL_OBJECTS, self._on_twin, TWIN_STATE, raw=True)
        for site in layout["sites"]:
            sub(TrackedObjectArray, topics.local_objects(site["id"]), self._on_twin, TWIN_STATE, raw=True)
        for rsu in layout["rsus"]:
            sub(DetectedObjectArray, topics.rsu_detections(rsu["id"]), self._on_detections, TWIN_STATE, raw=True)

    def _on_ground_truth(self, data: bytes) -> None:
        try:
            table = decode_tracks(data)
        except CdrError:
            self.bad += 1
            return
        inside = np.array([s != "outside" for s in table.site_id], dtype=bool)
        frame = track_frame(table, vehicle_ids=True)
        self.record.ground_truth.append(TrackFrame(frame.stamp, frame.ids[inside], frame.xy[inside], frame.v[inside]))

    def _on_twin(self, data: bytes) -> None:
        try:
            table = decode_tracks(data)
        except CdrError:
            self.bad += 1
            return
        self.record.twins.setdefault(table.twin_id, []).append(track_frame(table))
        if table.twin_id == "global":
            self.record.provenance += [(p.source_id, p.sensor_stamp, p.stages) for p in table.provenance]

    def _on_detections(self, data: bytes) -> None:
        try:
            frame = table_to_detections(decode_detections(data))
        except CdrError:
            self.bad += 1
            return
        self.record.detections.setdefault(frame.source_id, []).append(frame)

    def spin(self, seconds: float) -> None:
        import time

        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=0.05)

    def progress(self) -> str:
        gt = self.record.ground_truth
        span = gt[-1].stamp - gt[0].stamp if len(gt) > 1 else 0.0
        glob = self.record.twins.get("global", [])
        return (f"recorded {span:.0f} s of ground truth, {len(glob)} global twin updates "
                f"({len(glob[-1].ids) if glob else 0} tracks now), "
                f"{sum(len(v) for v in self.record.detections.values())} RSU frames")

    def close(self) -> None:
        self.node.destroy_node()
        self.context.try_shutdown()

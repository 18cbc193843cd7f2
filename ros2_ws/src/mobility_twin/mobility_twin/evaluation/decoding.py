"""The messages of a run, decoded into a RunRecord: one piece of code for the live evaluator and recordings.

:class:`RunRecordBuilder` knows which topics a run is scored from (ground truth, every twin's objects,
every RSU's detections, for the layout of the run) and turns each raw CDR message of those topics into
the record's frames, in the order it is given them. :func:`record_from_recording` feeds it from an MCAP
file: a recording, or the spool the live evaluator (:mod:`.live`) writes while the stack runs, so a run
and its recording are scored by the same code from the same messages. The layout of a recorded run is its
latched ``Layout`` message (:func:`recorded_layout`; older recordings: their ``/sim/world`` JSON). No ROS
runtime is needed but rclpy's deserialiser for that one message.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mobility_twin.evaluation.mot import overlapping_bodies
from mobility_twin.evaluation.scoring import RunRecord, TrackFrame
from mobility_twin.recording.errors import RecordingError
from mobility_twin.recording.legacy_world import LEGACY_WORLD_TOPIC, decode_string, layout_from_world_json
from mobility_twin.ros import topics
from mobility_twin.ros.cdr import CdrError, TrackTable, decode_detections, decode_tracks
from mobility_twin.ros.tables import table_to_detections
from mobility_twin_core import Layout, LayoutError

TRACKS = "mobility_twin_msgs/msg/TrackedObjectArray"
DETECTIONS = "mobility_twin_msgs/msg/DetectedObjectArray"
#: Metadata record an evaluation writes into its recording (scenario, duration, hil, eval range).
EVAL_METADATA = "mobility_twin.eval"


def track_frame(table: TrackTable, *, vehicle_ids: bool = False) -> TrackFrame:
    """Positions and velocities of a track table; ground truth is keyed by vehicle (taxi) id."""
    rec = table.records
    ids = np.array([int(v) for v in table.vehicle_id], dtype=np.int64) if vehicle_ids else rec["track_id"].astype(np.int64)
    return TrackFrame(table.stamp, ids, np.stack([rec["px"], rec["py"]], axis=1),
                      np.stack([rec["vx"], rec["vy"]], axis=1))


class RunRecordBuilder:
    """Builds the :class:`RunRecord` of a run of ``layout`` (the twin model's layout) from its raw messages."""

    def __init__(self, layout: Layout, *, hil: bool = True) -> None:
        self.record = RunRecord(layout, hil=hil)
        self.bad = 0  # undecodable messages
        self.topics: dict[str, str] = {topics.GROUND_TRUTH: TRACKS, topics.GLOBAL_OBJECTS: TRACKS}
        self.topics.update({topics.local_objects(site.site_id): TRACKS for site in layout.sites})
        self.topics.update({topics.rsu_detections(rsu.rsu_id): DETECTIONS for rsu in layout.rsus})

    def add(self, topic: str, data: bytes) -> None:
        """One message of ``topic`` (a key of ``topics``; others are ignored)."""
        if topic == topics.GROUND_TRUTH:
            self.add_ground_truth(data)
        elif self.topics.get(topic) == TRACKS:
            self.add_twin(data)
        elif self.topics.get(topic) == DETECTIONS:
            self.add_detections(data)

    def add_ground_truth(self, data: bytes) -> None:
        try:
            table = decode_tracks(data)
        except CdrError:
            self.bad += 1
            return
        # every road user, those outside the scenario's area (site "outside") too: an RSU near the area's edge
        # sees them, its twin tracks them, and the offline pipeline scores them (dropped, each track of one was
        # a false positive: sweep seed 42's s07_airport through the stack, a car parked 55 m from rsu_00 just
        # beyond the area, 640 false positives for the RSU alone and 730 for the twins, none offline)
        frame = track_frame(table, vehicle_ids=True)
        rec = table.records
        overlap = overlapping_bodies(frame.xy, 2 * np.arctan2(rec["qz"], rec["qw"]), rec["length"], rec["width"])
        self.record.ground_truth.append(TrackFrame(frame.stamp, frame.ids, frame.xy, frame.v, overlap))

    def add_twin(self, data: bytes) -> None:
        try:
            table = decode_tracks(data)
        except CdrError:
            self.bad += 1
            return
        self.record.twins.setdefault(table.twin_id, []).append(track_frame(table))
        if table.twin_id == "global":
            self.record.provenance += [(p.source_id, p.sensor_stamp, p.stages) for p in table.provenance]

    def add_detections(self, data: bytes) -> None:
        try:
            frame = table_to_detections(decode_detections(data))
        except CdrError:
            self.bad += 1
            return
        self.record.detections.setdefault(frame.source_id, []).append(frame)


def layout_from_cdr(data: bytes) -> Layout:
    """The validated layout of a CDR ``mobility_twin_msgs/Layout`` (LayoutError when it is not a valid one)."""
    from rclpy.serialization import deserialize_message

    from mobility_twin.ros.layout_msg import layout_from_msg
    from mobility_twin_msgs.msg import Layout as LayoutMsg

    try:
        msg = deserialize_message(bytes(data), LayoutMsg)
    except Exception as err:  # rclpy raises its RMWError (a RuntimeError) or a ValueError for bad bytes
        raise LayoutError(f"not a CDR mobility_twin_msgs/Layout: {err}") from None
    return layout_from_msg(msg)


def recorded_layout(recording, topic: str = topics.LAYOUT) -> Layout:
    """The layout of a recorded run: its first Layout message on ``topic`` (``/infrastructure/layout``), or,
    for a recording made before the simulator published that message, the JSON of its first ``/sim/world``
    message (converted by :func:`~mobility_twin.recording.legacy_world.layout_from_world_json`).
    RecordingError when it has neither, or when the one it has is not a valid layout."""
    message = recording.first(topic)
    if message is not None:
        try:
            return layout_from_cdr(message.data)
        except LayoutError as err:
            raise RecordingError(f"{recording.path}: the recorded {topic} is not a valid layout: {err}") from None
    legacy = recording.first(LEGACY_WORLD_TOPIC)
    if legacy is not None:
        where = f"{recording.path}: {LEGACY_WORLD_TOPIC} (a recording older than the Layout message)"
        return layout_from_world_json(decode_string(legacy.data), source=where)
    raise RecordingError(f"{recording.path} has no {topic} message (nor the {LEGACY_WORLD_TOPIC} JSON of "
                         "older recordings): the layout of the run is unknown")


def builder_from_recording(path: str | Path, *, hil: bool | None = None,
                           layout: Layout | None = None) -> tuple[RunRecordBuilder, dict[str, str]]:
    """The RunRecordBuilder fed with every scored message of a recording, in log-time order (arrival order
    for the project's recordings), and the evaluation metadata the recording carries (may be empty).

    One pass over the file, chunk by chunk: memory holds the decoded record, never the raw messages. The
    layout comes from ``layout``, else from the recording (:func:`recorded_layout`); ``hil`` (hardware-in-the-loop stamps)
    from ``hil``, else from the evaluation metadata, else from the recording: no /clock means wall-clock
    stamps.
    """
    from mobility_twin.recording import Recording

    with Recording(path) as rec:
        meta = rec.metadata.get(EVAL_METADATA, {})
        if hil is None:
            hil = meta["hil"] == "true" if "hil" in meta else topics.CLOCK not in rec.topics
        builder = RunRecordBuilder(layout if layout is not None else recorded_layout(rec), hil=hil)
        for msg in rec.messages(builder.topics):
            builder.add(msg.topic, msg.data)
    return builder, meta


def record_from_recording(path: str | Path, *, hil: bool | None = None,
                          layout: Layout | None = None) -> tuple[RunRecord, dict[str, str]]:
    """The RunRecord of a recorded run and the evaluation metadata the recording carries (may be empty);
    see :func:`builder_from_recording`."""
    builder, meta = builder_from_recording(path, hil=hil, layout=layout)
    return builder.record, meta

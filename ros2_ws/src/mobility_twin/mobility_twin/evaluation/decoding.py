"""The messages of a run, decoded into a RunRecord: one piece of code for the live evaluator and recordings.

:class:`RunRecordBuilder` knows which topics a run is scored from (ground truth, every twin's objects,
every RSU's detections, for the layout of the run) and turns each raw CDR message of those topics into
the record's frames, in the order it is given them. :func:`record_from_recording` feeds it from an MCAP
file: a recording, or the spool the live evaluator (:mod:`.live`) writes while the stack runs, so a run
and its recording are scored by the same code from the same messages. ROS-free.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from mobility_twin.evaluation.scoring import RunRecord, TrackFrame
from mobility_twin.recording.errors import RecordingError
from mobility_twin.ros import topics
from mobility_twin.ros.cdr import CdrError, TrackTable, decode_detections, decode_tracks
from mobility_twin.ros.tables import table_to_detections

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
    """Builds the :class:`RunRecord` of a run of ``layout`` (World.describe()) from its raw messages."""

    def __init__(self, layout: dict, *, hil: bool = True) -> None:
        self.record = RunRecord(layout, hil=hil)
        self.bad = 0  # undecodable messages
        self.topics: dict[str, str] = {topics.GROUND_TRUTH: TRACKS, topics.GLOBAL_OBJECTS: TRACKS}
        self.topics.update({topics.local_objects(site["id"]): TRACKS for site in layout["sites"]})
        self.topics.update({topics.rsu_detections(rsu["id"]): DETECTIONS for rsu in layout["rsus"]})

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
        inside = np.array([s != "outside" for s in table.site_id], dtype=bool)
        frame = track_frame(table, vehicle_ids=True)
        self.record.ground_truth.append(TrackFrame(frame.stamp, frame.ids[inside], frame.xy[inside], frame.v[inside]))

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


def decode_string(data: bytes) -> str:
    """The text of a CDR std_msgs/String."""
    if len(data) < 8 or data[:2] not in (b"\x00\x01", b"\x00\x00"):
        raise CdrError("not a CDR std_msgs/String")
    (n,) = struct.unpack_from("<I" if data[1] == 1 else ">I", data, 4)
    if n == 0 or 8 + n > len(data):
        raise CdrError(f"std_msgs/String of {n} bytes in a message of {len(data)}")
    return bytes(data[8:8 + n - 1]).decode("utf-8")


def _layout_of(recording) -> dict:
    world = recording.first(topics.SIM_WORLD)
    if world is None:
        raise RecordingError(f"{recording.path} has no {topics.SIM_WORLD} message: the layout of the run is unknown")
    return json.loads(decode_string(world.data))


def builder_from_recording(path: str | Path, *, hil: bool | None = None,
                           layout: dict | None = None) -> tuple[RunRecordBuilder, dict[str, str]]:
    """The RunRecordBuilder fed with every scored message of a recording, in log-time order (arrival order
    for the project's recordings), and the evaluation metadata the recording carries (may be empty).

    One pass over the file, chunk by chunk: memory holds the decoded record, never the raw messages. The
    layout comes from ``layout``, else from the recorded /sim/world; ``hil`` (hardware-in-the-loop stamps)
    from ``hil``, else from the evaluation metadata, else from the recording: no /clock means wall-clock
    stamps.
    """
    from mobility_twin.recording import Recording

    with Recording(path) as rec:
        meta = rec.metadata.get(EVAL_METADATA, {})
        if hil is None:
            hil = meta["hil"] == "true" if "hil" in meta else topics.CLOCK not in rec.topics
        builder = RunRecordBuilder(layout if layout is not None else _layout_of(rec), hil=hil)
        for msg in rec.messages(builder.topics):
            builder.add(msg.topic, msg.data)
    return builder, meta


def record_from_recording(path: str | Path, *, hil: bool | None = None,
                          layout: dict | None = None) -> tuple[RunRecord, dict[str, str]]:
    """The RunRecord of a recorded run and the evaluation metadata the recording carries (may be empty);
    see :func:`builder_from_recording`."""
    builder, meta = builder_from_recording(path, hil=hil, layout=layout)
    return builder.record, meta

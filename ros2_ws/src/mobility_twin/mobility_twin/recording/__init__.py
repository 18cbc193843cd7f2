"""Recordings: MCAP files of a running stack that rosbag2 and Foxglove read, and their playback schedule.

ROS-free: messages are CDR bytes (what DDS carries and what MCAP stores). Definitions, type hashes and
QoS metadata come from rosbags; :func:`repair` rewrites a recording cut short. The recorder node
(``nodes/recorder.py``) and ``mtwin play`` are the ROS side.
"""

from mobility_twin.recording.definitions import message_definition, type_hash
from mobility_twin.recording.errors import DefinitionError, RecordingError
from mobility_twin.recording.qos import OfferedQos, parse_qos, serialize_qos
from mobility_twin.recording.reader import RecordedMessage, Recording, TopicInfo
from mobility_twin.recording.repair import RepairReport, repair
from mobility_twin.recording.selection import TopicSelection
from mobility_twin.recording.writer import RecordingSummary, RecordingWriter, header_stamp_ns

__all__ = [
    "DefinitionError",
    "OfferedQos",
    "RecordedMessage",
    "Recording",
    "RecordingError",
    "RecordingSummary",
    "RecordingWriter",
    "RepairReport",
    "TopicInfo",
    "TopicSelection",
    "header_stamp_ns",
    "message_definition",
    "parse_qos",
    "repair",
    "serialize_qos",
    "type_hash",
]

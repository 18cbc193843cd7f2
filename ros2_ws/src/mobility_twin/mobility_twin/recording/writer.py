"""Writing serialized messages to an MCAP file the way rosbag2 does, so `ros2 bag` and Foxglove read it.

Profile ``ros2``; one schema per message type, named ``pkg/msg/Type``, encoding ``ros2msg``, holding the
complete definition (:mod:`.definitions`); one channel per topic, message encoding ``cdr``, with the
``offered_qos_profiles`` and ``topic_type_hash`` metadata rosbag2 writes; messages are the CDR bytes as
received (nothing is re-serialised). Log time is when the message was received and publish time the
header stamp when the message starts with a ``std_msgs/Header`` (else the log time), both in ns.
Closing writes the summary (schemas, channels, statistics with per-channel counts, chunk indexes), a
``rosbag2`` metadata record (the bag metadata rosbag2's MCAP plugin reads back: format version 8, whose
integer QoS policies every rosbag2 since Humble reads) and a ``mobility_twin`` metadata record.
Definitions, type hashes and QoS YAML come from rosbags (:mod:`.definitions`, :mod:`.qos`).

What a crash (``kill -9``) of the writing process can lose is bounded by ``flush_interval_s``: messages
wait in memory until their chunk is written, and the chunk in progress is written and the file flushed
to the operating system once its oldest message has waited that long (at the next ``write``, or at the
next :meth:`RecordingWriter.flush_if_due` a timer calls). Such a file has no summary; the project's
reader reads it up to where it ends, and ``mtwin recording repair`` (:mod:`.repair`) rewrites it whole.
ROS-free.
"""

from __future__ import annotations

import json
import os
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from mcap.writer import CompressionType
from mcap.writer import Writer as McapWriter
from rosbags.rosbag2.metadata import Metadata as Rosbag2Metadata

from mobility_twin.recording.definitions import (
    full_type_name,
    message_definition,
    starts_with_header,
    type_hash,
)
from mobility_twin.recording.errors import RecordingError
from mobility_twin.recording.qos import OfferedQos, serialize_qos

LIBRARY = "mobility_twin recorder"
METADATA_NAME = "mobility_twin"  # our metadata record (rosbag2 keeps its own under "rosbag2")

_COMPRESSION = {"zstd": CompressionType.ZSTD, "lz4": CompressionType.LZ4, "none": CompressionType.NONE}


def header_stamp_ns(data: bytes) -> int | None:
    """``header.stamp`` of a CDR message whose first field is a std_msgs/Header, in ns (None if negative)."""
    if len(data) < 12:
        return None
    sec, nanosec = struct.unpack_from("<iI" if data[1] == 1 else ">iI", data, 4)
    return sec * 1_000_000_000 + nanosec if sec >= 0 else None


@dataclass
class TopicStats:
    type: str
    count: int = 0
    bytes: int = 0
    first_ns: int = 0
    last_ns: int = 0


@dataclass
class _Channel:
    id: int
    stats: TopicStats
    stamped: bool
    qos: str
    sequence: int = 0


@dataclass(frozen=True)
class ChannelRecord:
    """What the ``rosbag2`` metadata record says of one topic."""

    topic: str
    type: str
    offered_qos: str  # offered_qos_profiles YAML (rosbag2 version 8)
    type_hash: str
    count: int
    first_ns: int = 0
    last_ns: int = 0


def rosbag2_metadata(file_name: str, channels: list[ChannelRecord], ros_distro: str = "") -> str:
    """The ``serialized_metadata`` of rosbag2's metadata record: its BagMetadata (version 8) as YAML, in the
    shape of ``rosbags.rosbag2.metadata.Metadata`` (what rosbags' own writer puts in that record)."""
    seen = [c for c in channels if c.count]
    start = min((c.first_ns for c in seen), default=0)
    end = max((c.last_ns for c in seen), default=0)
    count = sum(c.count for c in seen)
    metadata: Rosbag2Metadata = {
        "version": 8, "storage_identifier": "mcap", "relative_file_paths": [file_name],
        "starting_time": {"nanoseconds_since_epoch": start}, "duration": {"nanoseconds": end - start},
        "message_count": count, "compression_format": "", "compression_mode": "",
        "topics_with_message_count": [{
            "topic_metadata": {"name": c.topic, "type": c.type, "serialization_format": "cdr",
                               "offered_qos_profiles": c.offered_qos, "type_description_hash": c.type_hash},
            "message_count": c.count} for c in channels],
        "files": [{"path": file_name, "starting_time": {"nanoseconds_since_epoch": start},
                   "duration": {"nanoseconds": end - start}, "message_count": count}],
        "custom_data": {}, "ros_distro": ros_distro,
    }
    return yaml.safe_dump(dict(metadata), sort_keys=False)


@dataclass
class RecordingSummary:
    path: Path
    topics: dict[str, TopicStats] = field(default_factory=dict)

    @property
    def message_count(self) -> int:
        return sum(t.count for t in self.topics.values())

    @property
    def duration_s(self) -> float:
        seen = [t for t in self.topics.values() if t.count]
        return (max(t.last_ns for t in seen) - min(t.first_ns for t in seen)) * 1e-9 if seen else 0.0


class RecordingWriter:
    """An MCAP file being written. ``add_topic`` before the first ``write`` of a topic; ``close`` at the end.

    Args:
        path: the ``.mcap`` file (its folder is created).
        compression: chunk compression, ``"zstd"`` (default), ``"lz4"`` or ``"none"``.
        chunk_size: bytes of messages per chunk (default 1 MiB).
        flush_interval_s: write the chunk in progress and flush the file once its oldest message has waited
            this long (s): what a crash can lose. None (default): chunks are written when full.
    """

    def __init__(self, path: str | Path, *, compression: str = "zstd", chunk_size: int = 1 << 20,
                 flush_interval_s: float | None = None) -> None:
        if compression not in _COMPRESSION:
            raise RecordingError(f"compression {compression!r}: expected one of {', '.join(_COMPRESSION)}")
        if chunk_size < 1:
            raise RecordingError(f"chunk size {chunk_size} bytes: must be positive")
        if flush_interval_s is not None and not flush_interval_s > 0:
            raise RecordingError(f"flush interval {flush_interval_s} s: must be positive (or None: when full)")
        self.flush_interval_s = flush_interval_s
        self._unflushed_since: float | None = None  # monotonic time of the oldest message not yet written
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._stream = self.path.open("wb")
        except OSError as err:
            raise RecordingError(f"cannot write a recording at {self.path}: {err.strerror}") from None
        self._mcap = McapWriter(self._stream, chunk_size=chunk_size, compression=_COMPRESSION[compression])
        self._mcap.start(profile="ros2", library=LIBRARY)
        self._stream.flush()  # a valid (empty) MCAP file on disk from the start
        self._schemas: dict[str, int] = {}
        self._channels: dict[str, _Channel] = {}
        self.started_ns = time.time_ns()
        self.closed = False

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def has_topic(self, topic: str) -> bool:
        return topic in self._channels

    def add_topic(self, topic: str, type_name: str, *, offered_qos: list[OfferedQos] | tuple[OfferedQos, ...] = (),
                  definition: str | None = None) -> None:
        """Declare ``topic`` of ``type_name`` (``pkg/msg/Type``). The definition is looked up on
        AMENT_PREFIX_PATH unless given. Declaring a topic twice keeps the first declaration."""
        if topic in self._channels:
            return
        type_name = full_type_name(type_name)
        if type_name not in self._schemas:
            text = message_definition(type_name) if definition is None else definition
            self._schemas[type_name] = self._mcap.register_schema(type_name, "ros2msg", text.encode())
        qos = serialize_qos(list(offered_qos))
        channel_id = self._mcap.register_channel(
            topic, "cdr", self._schemas[type_name], {"offered_qos_profiles": qos, "topic_type_hash": type_hash(type_name)})
        self._channels[topic] = _Channel(channel_id, TopicStats(type_name), starts_with_header(type_name), qos)

    def write(self, topic: str, data: bytes, log_time_ns: int, publish_time_ns: int | None = None) -> None:
        """Append one serialized message received at ``log_time_ns`` (UNIX ns)."""
        channel = self._channels.get(topic)
        if channel is None:
            raise RecordingError(f"{self.path}: topic {topic} was not added before its first message")
        if publish_time_ns is None:
            publish_time_ns = (header_stamp_ns(data) if channel.stamped else None) or log_time_ns
        channel.sequence += 1
        self._mcap.add_message(channel.id, log_time=log_time_ns, data=bytes(data), publish_time=publish_time_ns,
                               sequence=channel.sequence)
        if self._unflushed_since is None:
            self._unflushed_since = time.monotonic()
        s = channel.stats
        if not s.count:
            s.first_ns = log_time_ns
        s.count += 1
        s.bytes += len(data)
        s.last_ns = max(s.last_ns, log_time_ns)
        self.flush_if_due()

    def flush(self) -> None:
        """Write the chunk in progress and flush the file to the operating system: what a crash of this
        process can no longer lose."""
        self._mcap.flush()
        self._unflushed_since = None

    def flush_if_due(self) -> None:
        """:meth:`flush` when the oldest message not yet written has waited ``flush_interval_s``."""
        if (self.flush_interval_s is not None and self._unflushed_since is not None and not self.closed
                and time.monotonic() - self._unflushed_since >= self.flush_interval_s):
            self.flush()

    def add_metadata(self, name: str, data: dict[str, str]) -> None:
        """A named key-value record (values are strings)."""
        self._mcap.add_metadata(name, {str(k): str(v) for k, v in data.items()})

    def summary(self) -> RecordingSummary:
        return RecordingSummary(self.path, {t: c.stats for t, c in self._channels.items()})

    def rosbag2_metadata(self) -> str:
        """The ``serialized_metadata`` of rosbag2's metadata record (:func:`rosbag2_metadata`)."""
        return rosbag2_metadata(self.path.name, [
            ChannelRecord(topic, c.stats.type, c.qos, type_hash(c.stats.type), c.stats.count, c.stats.first_ns,
                          c.stats.last_ns) for topic, c in self._channels.items()], os.environ.get("ROS_DISTRO", ""))

    def close(self, metadata: dict[str, str] | None = None) -> RecordingSummary:
        """Write the ``rosbag2`` metadata record, the ``mobility_twin`` one (recording times, per-topic counts,
        plus ``metadata``) and the MCAP summary, and close the file. Closing twice does nothing."""
        summary = self.summary()
        if self.closed:
            return summary
        self.closed = True
        self.add_metadata("rosbag2", {"serialized_metadata": self.rosbag2_metadata()})
        topics = {t: {"type": s.type, "count": s.count, "bytes": s.bytes} for t, s in summary.topics.items()}
        self.add_metadata(METADATA_NAME, {"recorder": LIBRARY, "started_ns": str(self.started_ns),
                                          "closed_ns": str(time.time_ns()), "topics": json.dumps(topics),
                                          **(metadata or {})})
        self._mcap.finish()
        self._stream.close()
        return summary

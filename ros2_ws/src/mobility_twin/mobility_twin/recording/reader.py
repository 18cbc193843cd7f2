"""Reading an MCAP recording: its topics, types, counts and metadata, and its messages in log-time order.

Reads any ROS 2 MCAP file (ours, rosbag2's, Foxglove's) with the ``mcap`` library. A file whose writer
died before closing it has no summary: it is then read from the start up to where it ends, and
``complete`` is False. ROS-free: messages come back as CDR bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from mcap.exceptions import McapError
from mcap.reader import make_reader
from mcap.records import Channel, Message, Metadata, Schema
from mcap.stream_reader import StreamReader

from mobility_twin.recording.errors import RecordingError
from mobility_twin.recording.qos import OfferedQos, parse_qos


@dataclass(frozen=True)
class TopicInfo:
    name: str
    type: str  # pkg/msg/Type (the schema name)
    count: int
    offered_qos: tuple[OfferedQos, ...]
    message_encoding: str = "cdr"


@dataclass(frozen=True)
class RecordedMessage:
    topic: str
    type: str
    data: bytes
    log_time_ns: int
    publish_time_ns: int


class Recording:
    """An MCAP file opened for reading. Use as a context manager, or call ``close``.

    Attributes:
        topics: per topic name, its type, message count and the QoS its publishers offered.
        definitions: per type name, the schema text (the complete ``ros2msg`` definition).
        metadata: the file's metadata records by name.
        start_ns, end_ns: log times of the first and last message (0 when there is none).
        complete: False when the file was not closed properly (no summary; read up to its end).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self._stream = self.path.open("rb")
        except OSError as err:
            raise RecordingError(f"cannot read the recording {self.path}: {err.strerror}") from None
        try:
            self._reader = make_reader(self._stream)
            self.profile = self._reader.get_header().profile
        except (McapError, struct.error, ValueError) as err:
            self._stream.close()
            raise RecordingError(f"{self.path} is not an MCAP file: {err}") from None
        self.topics: dict[str, TopicInfo] = {}
        self.definitions: dict[str, str] = {}
        self.metadata: dict[str, dict[str, str]] = {}
        self.start_ns = self.end_ns = 0
        try:
            summary = self._reader.get_summary()
        except (McapError, struct.error, ValueError):
            summary = None
        self.complete = summary is not None and summary.statistics is not None
        if self.complete:
            self._from_summary(summary)
        else:
            self._scan()

    # ------------------------------------------------------------------------------------------- summary
    def _add_channels(self, schemas: dict[int, Schema], channels: dict[int, Channel], counts: dict[int, int]) -> None:
        for cid, ch in channels.items():
            schema = schemas.get(ch.schema_id)
            type_name = schema.name if schema else ""
            if schema is not None:
                self.definitions[type_name] = schema.data.decode(errors="replace")
            try:
                qos = tuple(parse_qos(ch.metadata.get("offered_qos_profiles", "")))
            except RecordingError:
                qos = ()
            self.topics[ch.topic] = TopicInfo(ch.topic, type_name, counts.get(cid, 0), qos, ch.message_encoding)

    def _from_summary(self, summary) -> None:
        stats = summary.statistics
        self._add_channels(summary.schemas, summary.channels, dict(stats.channel_message_counts))
        if stats.message_count:
            self.start_ns, self.end_ns = stats.message_start_time, stats.message_end_time
        for record in self._reader.iter_metadata():
            self.metadata[record.name] = dict(record.metadata)

    def _records(self) -> Iterator:
        """Every record from the start of the file, stopping quietly where a truncated file ends."""
        self._stream.seek(0)
        records = StreamReader(self._stream).records
        while True:
            try:
                yield next(records)
            except StopIteration:
                return
            except (McapError, struct.error, ValueError, EOFError):
                return

    def _walk(self, schemas: dict[int, Schema], channels: dict[int, Channel]) -> Iterator:
        """The records other than schemas and channels, which go into ``schemas`` and ``channels`` (by
        id) as they come, so that each message finds its channel and schema there."""
        for record in self._records():
            if isinstance(record, Schema):
                schemas[record.id] = record
            elif isinstance(record, Channel):
                channels[record.id] = record
            else:
                yield record

    def _scan(self) -> None:
        schemas: dict[int, Schema] = {}
        channels: dict[int, Channel] = {}
        counts: dict[int, int] = {}
        for record in self._walk(schemas, channels):
            if isinstance(record, Message):
                counts[record.channel_id] = counts.get(record.channel_id, 0) + 1
                t = record.log_time
                self.start_ns = t if not self.start_ns else min(self.start_ns, t)
                self.end_ns = max(self.end_ns, t)
            elif isinstance(record, Metadata):
                self.metadata[record.name] = dict(record.metadata)
        self._add_channels(schemas, channels, counts)

    # ------------------------------------------------------------------------------------------- messages
    @property
    def message_count(self) -> int:
        return sum(t.count for t in self.topics.values())

    @property
    def duration_s(self) -> float:
        return (self.end_ns - self.start_ns) * 1e-9

    def select(self, selection: Callable[[str], bool] | Iterable[str] | None) -> list[str]:
        """Topic names of the recording picked by ``selection`` (a predicate, names, or None for all)."""
        if selection is None:
            return sorted(self.topics)
        if callable(selection):
            return sorted(t for t in self.topics if selection(t))
        wanted = set(selection)
        return sorted(t for t in self.topics if t in wanted)

    def messages(self, selection: Callable[[str], bool] | Iterable[str] | None = None, *,
                 start_ns: int | None = None, end_ns: int | None = None) -> Iterator[RecordedMessage]:
        """Messages of the selected topics in log-time order (file order for equal times), optionally only
        those logged in ``[start_ns, end_ns)``."""
        topics = self.select(selection)
        if not topics:
            return
        if self.complete:
            try:
                for schema, channel, message in self._reader.iter_messages(
                        topics=topics, log_time_order=True, starting_at=start_ns, ending_before=end_ns):
                    yield RecordedMessage(channel.topic, schema.name if schema else "", message.data,
                                          message.log_time, message.publish_time)
            except (McapError, struct.error) as err:
                raise RecordingError(f"{self.path}: cannot read its messages: {err}") from None
            return
        wanted = set(topics)
        channels: dict[int, Channel] = {}
        schemas: dict[int, Schema] = {}
        for record in self._walk(schemas, channels):
            if isinstance(record, Message):
                ch = channels.get(record.channel_id)
                if ch is None or ch.topic not in wanted:
                    continue
                if (start_ns is not None and record.log_time < start_ns) or (
                        end_ns is not None and record.log_time >= end_ns):
                    continue
                schema = schemas.get(ch.schema_id)
                yield RecordedMessage(ch.topic, schema.name if schema else "", record.data, record.log_time,
                                      record.publish_time)

    def first(self, topic: str) -> RecordedMessage | None:
        """The first message of ``topic``, or None."""
        return next(iter(self.messages([topic])), None)

    def close(self) -> None:
        self._stream.close()

    def __enter__(self) -> Recording:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def describe(self) -> str:
        """A ``ros2 bag info``-like text."""
        size = self.path.stat().st_size if self.path.exists() else 0
        lines = [f"Files:             {self.path}",
                 f"Bag size:          {size / 1e6:.1f} MB",
                 "Storage id:        mcap" + ("" if self.complete else "  (not closed properly: no summary)"),
                 f"Duration:          {self.duration_s:.3f} s",
                 f"Start:             {self.start_ns * 1e-9:.3f}",
                 f"End:               {self.end_ns * 1e-9:.3f}",
                 f"Messages:          {self.message_count}",
                 "Topic information:"]
        width = max((len(t) for t in self.topics), default=0)
        for name, info in sorted(self.topics.items()):
            lines.append(f"  {name:<{width}}  {info.type}  {info.count} messages")
        return "\n".join(lines)

"""Rewriting an MCAP recording that was cut short (writer killed, disk full) into a whole file.

A recording whose writer died has no summary, so the ``mcap`` library's indexed reader refuses it. The
repair reads the file record by record from the start, keeps every schema, channel, metadata record and
every complete message (those of whole chunks, and the complete messages at the start of a chunk that
was cut off, as far as its compression lets them be recovered), and writes them into a new file with a
summary (statistics, chunk and message indexes), the channels' metadata as they were, and a ``rosbag2``
metadata record rebuilt from what was kept when the file had none. A file that was closed properly is
rewritten the same way (nothing is lost). ROS-free.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import lz4.frame
import zstandard
from mcap.opcode import Opcode
from mcap.writer import CompressionType
from mcap.writer import Writer as McapWriter

from mobility_twin.recording.errors import RecordingError
from mobility_twin.recording.writer import LIBRARY, ChannelRecord, rosbag2_metadata

MAGIC = b"\x89MCAP0\r\n"
REPAIR_METADATA = "mobility_twin.repair"


@dataclass
class RepairReport:
    """What a repair kept and where the readable part of the source ended."""

    source: Path
    output: Path
    messages: int = 0
    chunks: int = 0  # whole chunks read
    partial_chunk_messages: int = 0  # complete messages recovered from a chunk cut off
    complete_source: bool = False  # the source had its footer (it was closed properly)
    truncated_at: int | None = None  # byte offset where the readable records ended, when cut short
    skipped: list[str] = field(default_factory=list)  # what could not be kept, and why
    topics: dict[str, int] = field(default_factory=dict)  # messages kept per topic

    def describe(self) -> str:
        state = "closed properly" if self.complete_source else (
            f"cut short at byte {self.truncated_at}" if self.truncated_at is not None else "without a summary")
        lines = [f"{self.source}: {state}",
                 f"wrote {self.output}: {self.messages} messages on {len(self.topics)} topics "
                 f"({self.chunks} whole chunks, {self.partial_chunk_messages} messages from a chunk cut off)"]
        lines += [f"  not kept: {why}" for why in self.skipped]
        return "\n".join(lines)


class _Bytes:
    """Little-endian fields from a bytes buffer; IndexError-free: a short read raises _Short."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise _Short
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def u16(self) -> int:
        return struct.unpack("<H", self.take(2))[0]

    def u32(self) -> int:
        return struct.unpack("<I", self.take(4))[0]

    def u64(self) -> int:
        return struct.unpack("<Q", self.take(8))[0]

    def string(self) -> str:
        return self.take(self.u32()).decode("utf-8", errors="replace")

    def blob(self) -> bytes:
        return self.take(self.u32())

    def string_map(self) -> dict[str, str]:
        body = _Bytes(self.blob())
        out = {}
        while body.pos < len(body.data):
            key = body.string()
            out[key] = body.string()
        return out

    @property
    def left(self) -> int:
        return len(self.data) - self.pos


class _Short(Exception):
    """A record that ends before its fields do."""


@dataclass
class _Out:
    """The repaired file being written: ids of the source mapped to the ids of the output."""

    writer: McapWriter
    schemas: dict[int, int] = field(default_factory=dict)
    schema_names: dict[int, str] = field(default_factory=dict)
    channels: dict[int, int] = field(default_factory=dict)
    channel_info: dict[int, tuple[str, str, dict[str, str]]] = field(default_factory=dict)  # topic, type, metadata
    pending: dict[int, tuple[int, str, str, dict[str, str]]] = field(default_factory=dict)  # channel before schema
    counts: dict[int, list[int]] = field(default_factory=dict)  # source channel -> [count, first_ns, last_ns]
    metadata_names: list[str] = field(default_factory=list)


def _schema(out: _Out, rec: _Bytes) -> None:
    sid = rec.u16()
    name, encoding, data = rec.string(), rec.string(), rec.blob()
    if sid not in out.schemas:
        out.schemas[sid] = out.writer.register_schema(name, encoding, data)
        out.schema_names[sid] = name
        for cid, (schema_id, topic, encoding_, metadata) in list(out.pending.items()):
            if schema_id == sid:
                del out.pending[cid]
                _register_channel(out, cid, schema_id, topic, encoding_, metadata)


def _register_channel(out: _Out, cid: int, sid: int, topic: str, encoding: str, metadata: dict[str, str]) -> None:
    out.channels[cid] = out.writer.register_channel(topic, encoding, out.schemas.get(sid, 0), metadata)
    out.channel_info[cid] = (topic, out.schema_names.get(sid, ""), metadata)
    out.counts.setdefault(cid, [0, 0, 0])


def _channel(out: _Out, rec: _Bytes) -> None:
    cid, sid = rec.u16(), rec.u16()
    topic, encoding, metadata = rec.string(), rec.string(), rec.string_map()
    if cid in out.channels or cid in out.pending:
        return
    if sid and sid not in out.schemas:
        out.pending[cid] = (sid, topic, encoding, metadata)  # the spec puts schemas first; be lenient
        return
    _register_channel(out, cid, sid, topic, encoding, metadata)


def _message(out: _Out, rec: _Bytes, report: RepairReport) -> bool:
    cid, sequence, log_time, publish_time = rec.u16(), rec.u32(), rec.u64(), rec.u64()
    data = rec.data[rec.pos:]
    if cid not in out.channels:
        report.skipped.append(f"a message on channel {cid}, which the file never defines")
        return False
    out.writer.add_message(out.channels[cid], log_time=log_time, data=data, publish_time=publish_time,
                           sequence=sequence)
    stats = out.counts[cid]
    stats[1] = log_time if not stats[0] else min(stats[1], log_time)
    stats[2] = max(stats[2], log_time)
    stats[0] += 1
    report.messages += 1
    topic = out.channel_info[cid][0]
    report.topics[topic] = report.topics.get(topic, 0) + 1
    return True


def _inner_records(out: _Out, data: bytes, report: RepairReport) -> int:
    """The records of a chunk's (decompressed) data; stops at the first one that is cut off. Returns the
    number of messages kept."""
    buf = _Bytes(data)
    kept = 0
    while buf.left:
        try:
            opcode = buf.take(1)[0]
            body = _Bytes(buf.take(buf.u64()))
            if opcode == Opcode.SCHEMA:
                _schema(out, body)
            elif opcode == Opcode.CHANNEL:
                _channel(out, body)
            elif opcode == Opcode.MESSAGE:
                kept += _message(out, body, report)
        except _Short:
            break
    return kept


def _decompress_prefix(compression: str, data: bytes) -> bytes:
    """As much of the start of a compressed chunk as can be recovered from its first bytes."""
    if compression == "":
        return data
    try:
        if compression == "zstd":
            return zstandard.ZstdDecompressor().decompressobj().decompress(data)
        if compression == "lz4":
            return lz4.frame.LZ4FrameDecompressor().decompress(data)
    except (zstandard.ZstdError, RuntimeError, ValueError):
        return b""
    return b""


def _chunk(out: _Out, rec: _Bytes, report: RepairReport, *, cut: bool) -> None:
    """A chunk record; ``cut``: the file ends inside it (keep the complete messages at its start)."""
    rec.u64(), rec.u64()  # message start and end times
    size, crc = rec.u64(), rec.u32()
    compression = rec.string()
    length = rec.u64()
    data = rec.data[rec.pos:rec.pos + length]
    if compression not in ("", "zstd", "lz4"):
        report.skipped.append(f"a chunk compressed with {compression!r}, which cannot be read here")
        return
    if cut:
        report.partial_chunk_messages += _inner_records(out, _decompress_prefix(compression, data), report)
        return
    try:
        if compression == "zstd":
            raw = zstandard.ZstdDecompressor().decompress(data, max_output_size=size)
        elif compression == "lz4":
            raw = lz4.frame.decompress(data)
        else:
            raw = data
    except (zstandard.ZstdError, RuntimeError, ValueError) as err:
        report.skipped.append(f"a chunk that does not decompress ({err}): its complete messages kept")
        report.partial_chunk_messages += _inner_records(out, _decompress_prefix(compression, data), report)
        return
    if crc and zlib.crc32(raw) != crc:
        report.skipped.append("a chunk whose CRC does not match: its complete messages kept")
    report.chunks += 1
    _inner_records(out, raw, report)


def _read_records(src: BinaryIO, size: int, out: _Out, report: RepairReport) -> None:
    src.seek(len(MAGIC))
    while True:
        offset = src.tell()
        head = src.read(9)
        if len(head) < 9:
            report.truncated_at = offset if len(head) else None
            return
        opcode, length = head[0], struct.unpack("<Q", head[1:])[0]
        available = size - offset - 9
        cut = length > available
        if cut and opcode != Opcode.CHUNK:
            report.truncated_at = offset
            return
        body = src.read(min(length, available))
        rec = _Bytes(body)
        try:
            if opcode == Opcode.SCHEMA:
                _schema(out, rec)
            elif opcode == Opcode.CHANNEL:
                _channel(out, rec)
            elif opcode == Opcode.MESSAGE:
                _message(out, rec, report)
            elif opcode == Opcode.CHUNK:
                _chunk(out, rec, report, cut=cut)
            elif opcode == Opcode.METADATA:
                name, data = rec.string(), rec.string_map()
                if name != REPAIR_METADATA:
                    out.writer.add_metadata(name, data)
                    out.metadata_names.append(name)
            elif opcode == Opcode.ATTACHMENT:
                log_time, create_time, name, media_type = rec.u64(), rec.u64(), rec.string(), rec.string()
                out.writer.add_attachment(create_time, log_time, name, media_type, rec.take(rec.u64()))
            elif opcode == Opcode.DATA_END:
                return  # the summary section follows: it is rebuilt
            elif opcode == Opcode.FOOTER:
                return
        except _Short:
            report.skipped.append(f"a record (opcode {opcode:#04x}) at byte {offset} whose fields are cut off")
        if cut:
            report.truncated_at = offset
            return


def repair(source: str | Path, output: str | Path | None = None) -> RepairReport:
    """Rewrite ``source`` into ``output`` (default ``<stem>.repaired.mcap`` beside it; may be ``source``
    itself, replaced once the new file is whole) with every complete message and a summary."""
    source = Path(source)
    output = Path(output) if output is not None else source.with_name(f"{source.stem}.repaired{source.suffix}")
    try:
        src = source.open("rb")
    except OSError as err:
        raise RecordingError(f"cannot read the recording {source}: {err.strerror}") from None
    report = RepairReport(source, output)
    with src:
        size = os.fstat(src.fileno()).st_size
        if src.read(len(MAGIC)) != MAGIC:
            raise RecordingError(f"{source} is not an MCAP file (no MCAP magic at its start)")
        src.seek(max(len(MAGIC), size - len(MAGIC)))
        report.complete_source = size >= 2 * len(MAGIC) + 9 and src.read(len(MAGIC)) == MAGIC
        tmp = output.with_name(f".{output.name}.repairing")
        try:
            output.parent.mkdir(parents=True, exist_ok=True)
            stream = tmp.open("wb")
        except OSError as err:
            raise RecordingError(f"cannot write {output}: {err.strerror}") from None
        try:
            with stream:
                writer = McapWriter(stream, compression=CompressionType.ZSTD)
                writer.start(profile=_profile(src), library=f"{LIBRARY} (repaired)")
                out = _Out(writer)
                _read_records(src, size, out, report)
                for topic, _type, _meta in out.channel_info.values():
                    report.topics.setdefault(topic, 0)
                if "rosbag2" not in out.metadata_names:
                    writer.add_metadata("rosbag2", {"serialized_metadata": rosbag2_metadata(output.name, [
                        ChannelRecord(topic, type_name, meta.get("offered_qos_profiles", ""),
                                      meta.get("topic_type_hash", ""), *out.counts[cid])
                        for cid, (topic, type_name, meta) in out.channel_info.items()])})
                writer.add_metadata(REPAIR_METADATA, {
                    "source": str(source), "complete_source": str(report.complete_source).lower(),
                    "truncated_at": "" if report.truncated_at is None else str(report.truncated_at),
                    "messages": str(report.messages), "partial_chunk_messages": str(report.partial_chunk_messages),
                    "topics": json.dumps(report.topics), "skipped": json.dumps(report.skipped)})
                writer.finish()
            tmp.replace(output)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    return report


def _profile(src: BinaryIO) -> str:
    """The profile of the source's header record ("" when unreadable)."""
    here = src.tell()
    try:
        src.seek(len(MAGIC))
        head = src.read(9)
        if len(head) == 9 and head[0] == Opcode.HEADER:
            rec = _Bytes(src.read(struct.unpack("<Q", head[1:])[0]))
            return rec.string()
    except _Short:
        pass
    finally:
        src.seek(here)
    return ""

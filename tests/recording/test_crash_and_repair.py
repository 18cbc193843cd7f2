"""What a crash of the writer leaves (bounded by the flush interval), and `mtwin recording repair`."""

import os
import random
import time

import pytest
from mcap.reader import make_reader

from mobility_twin.recording import Recording, RecordingError, RecordingWriter
from mobility_twin.recording.repair import repair
from tests.conftest import run_mtwin

pytestmark = pytest.mark.ros  # schemas from the installed workspace

STRING = "std_msgs/msg/String"


def _string(i: int, size: int = 0) -> bytes:
    """A CDR std_msgs/String holding ``i`` (padded to ``size`` bytes with incompressible pseudo-random bytes)."""
    text = f"{i:06d}".encode() + random.Random(i).randbytes(max(0, size - 6))
    n = len(text) + 1
    return b"\x00\x01\x00\x00" + n.to_bytes(4, "little") + text + b"\x00"


def _value(data: bytes) -> int:
    return int(data[8:14])


def _indexed(path) -> list[int]:
    """What the mcap library's indexed reader (summary, chunk indexes) reads, in log-time order."""
    with open(path, "rb") as f:
        reader = make_reader(f)
        summary = reader.get_summary()
        assert summary is not None and summary.statistics is not None, "no summary"
        values = [_value(m.data) for _s, _c, m in reader.iter_messages(log_time_order=True)]
        assert summary.statistics.message_count == len(values)
    return values


def _snapshot(src, dst) -> None:
    """The file as it is on disk now (what a kill -9 of the writer would leave)."""
    dst.write_bytes(src.read_bytes())


def test_a_crash_loses_at_most_the_flush_interval(tmp_path):
    path = tmp_path / "live.mcap"
    w = RecordingWriter(path, flush_interval_s=0.3)  # chunks of 1 MiB: never full here
    w.add_topic("/n", STRING)
    for i in range(10):
        w.write("/n", _string(i), 1000 + i)
    _snapshot(path, tmp_path / "early.mcap")
    time.sleep(0.35)
    w.flush_if_due()  # what the recorder's timer does
    _snapshot(path, tmp_path / "flushed.mcap")
    w.write("/n", _string(10), 1010)  # not yet due
    _snapshot(path, tmp_path / "crashed.mcap")
    w.close()
    with Recording(tmp_path / "early.mcap") as rec:
        assert rec.message_count == 0  # within the interval: still in memory
    with Recording(tmp_path / "crashed.mcap") as rec:
        assert not rec.complete
        assert [_value(m.data) for m in rec.messages()] == list(range(10))  # all but the last, unflushed one
    assert _indexed(path) == list(range(11))


def test_without_a_flush_interval_a_crash_loses_the_whole_chunk_in_progress(tmp_path):
    path = tmp_path / "live.mcap"
    w = RecordingWriter(path)
    w.add_topic("/n", STRING)
    for i in range(10):
        w.write("/n", _string(i), 1000 + i)
    time.sleep(0.1)
    w.flush_if_due()
    _snapshot(path, tmp_path / "crashed.mcap")
    w.close()
    with Recording(tmp_path / "crashed.mcap") as rec:
        assert rec.message_count == 0


def test_bad_writer_options_are_errors():
    with pytest.raises(RecordingError, match="flush interval 0 s"):
        RecordingWriter("/tmp/never.mcap", flush_interval_s=0)
    with pytest.raises(RecordingError, match="chunk size 0 bytes"):
        RecordingWriter("/tmp/never.mcap", chunk_size=0)


def _crashed_recording(path, *, n: int, chunk_size: int, compression: str = "zstd", size: int = 0) -> list[int]:
    """A recording of ``n`` messages flushed chunk by chunk, then left without its summary (the writer
    died). Returns the byte offsets at which each chunk starts."""
    w = RecordingWriter(path, chunk_size=chunk_size, compression=compression)
    w.add_topic("/n", STRING)
    w.add_topic("/empty", "std_msgs/msg/Header")  # a channel without messages is kept too
    w.add_metadata("run", {"scenario": "hand_made"})
    for i in range(n):
        w.write("/n", _string(i, size), 1000 + i)
    w.flush()
    data = path.read_bytes()  # never closed: no summary, no footer
    w.close()
    path.write_bytes(data)
    with Recording(path) as rec:
        assert not rec.complete
    offsets, pos = [], 8
    while pos + 9 <= len(data):  # walk the records by their lengths
        if data[pos] == 0x06:
            offsets.append(pos)
        pos += 9 + int.from_bytes(data[pos + 1:pos + 9], "little")
    return offsets


def test_repair_makes_a_crashed_recording_readable_by_the_indexed_reader_with_every_message(tmp_path):
    path = tmp_path / "crashed.mcap"
    _crashed_recording(path, n=50, chunk_size=200)
    with pytest.raises(Exception):  # noqa: B017  (what the issue saw: the indexed reader refuses it)
        _indexed(path)
    report = repair(path)
    out = tmp_path / "crashed.repaired.mcap"
    assert report.output == out and report.messages == 50 and not report.complete_source
    assert _indexed(out) == list(range(50))
    with Recording(out) as rec:
        assert rec.complete and rec.topics["/n"].count == 50 and "/empty" in rec.topics
        assert rec.metadata["run"] == {"scenario": "hand_made"}
        assert rec.metadata["mobility_twin.repair"]["messages"] == "50"
        assert rec.topics["/n"].type == STRING and rec.definitions[STRING].startswith("string data")
        import yaml

        meta = yaml.safe_load(rec.metadata["rosbag2"]["serialized_metadata"])  # rebuilt: the source had none
        assert meta["message_count"] == 50 and meta["starting_time"] == {"nanoseconds_since_epoch": 1000}
        assert meta["topics_with_message_count"][0]["topic_metadata"]["type_description_hash"].startswith("RIHS01_")


@pytest.mark.parametrize("compression", ["none", "zstd", "lz4"])
def test_repair_keeps_the_complete_messages_of_a_chunk_cut_off(tmp_path, compression):
    path = tmp_path / "cut.mcap"
    # one big chunk of 400 messages of 5 kB (several zstd/lz4 blocks), cut 60 % of the way through it
    (start,) = _crashed_recording(path, n=400, chunk_size=4 << 20, compression=compression, size=5000)
    data = path.read_bytes()
    cut = start + int(0.6 * (len(data) - start))
    path.write_bytes(data[:cut])
    report = repair(path, tmp_path / "out.mcap")
    kept = _indexed(tmp_path / "out.mcap")
    assert report.truncated_at == start and report.chunks == 0
    assert kept == list(range(len(kept)))  # a prefix, in order, nothing invented
    assert report.partial_chunk_messages == len(kept)
    assert 150 <= len(kept) < 400, len(kept)  # the complete messages before the cut (about 60 %)


def test_repair_of_a_whole_recording_keeps_everything_and_can_replace_it(tmp_path):
    path = tmp_path / "whole.mcap"
    with RecordingWriter(path, chunk_size=300) as w:
        w.add_topic("/n", STRING)
        for i in range(30):
            w.write("/n", _string(i), 1000 + i)
    before = Recording(path)
    rosbag2 = before.metadata["rosbag2"]
    before.close()
    report = repair(path, path)  # in place
    assert report.complete_source and report.messages == 30 and report.chunks > 1
    assert _indexed(path) == list(range(30))
    with Recording(path) as rec:
        assert rec.metadata["rosbag2"] == rosbag2  # kept as it was
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # no temporary file left


def test_mtwin_recording_repair_and_info(tmp_path):
    path = tmp_path / "crashed.mcap"
    _crashed_recording(path, n=20, chunk_size=100)
    info = run_mtwin("recording", "info", str(path))
    assert info.returncode == 0 and "not closed properly" in info.stdout and "repair" in info.stdout
    fixed = run_mtwin("recording", "repair", str(path), "-o", str(tmp_path / "fixed.mcap"))
    assert fixed.returncode == 0, fixed.stderr
    assert "wrote" in fixed.stdout and "20 messages on 2 topics" in fixed.stdout
    assert _indexed(tmp_path / "fixed.mcap") == list(range(20))
    (tmp_path / "text.mcap").write_text("not a recording")
    bad = run_mtwin("recording", "repair", str(tmp_path / "text.mcap"))
    assert bad.returncode == 2 and "is not an MCAP file" in bad.stderr
    missing = run_mtwin("recording", "repair", str(tmp_path / "missing.mcap"))
    assert missing.returncode == 2 and "cannot read the recording" in missing.stderr
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]  # no temporary file left behind


def test_a_restarted_recorder_never_overwrites_a_recording(tmp_path):
    from mobility_twin.nodes.recorder import unused_path

    first = tmp_path / "run.mcap"
    assert unused_path(first) == first
    first.write_bytes(b"cut short")
    assert unused_path(first) == tmp_path / "run.1.mcap"
    (tmp_path / "run.1.mcap").write_bytes(b"")
    assert unused_path(first) == tmp_path / "run.2.mcap"

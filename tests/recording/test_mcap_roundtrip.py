"""Every custom interface written to MCAP with our writer reads back equal, with the mcap-ros2 decoder (what
Foxglove does with the schema) and with rclpy deserialisation (what `ros2 bag play` publishes)."""

import json
from pathlib import Path

import pytest

from mobility_twin.recording import (
    OfferedQos,
    Recording,
    RecordingError,
    RecordingWriter,
    parse_qos,
    serialize_qos,
)
from mobility_twin.recording.qos import BEST_EFFORT, TRANSIENT_LOCAL

pytestmark = pytest.mark.ros

MSG_DIR = Path(__file__).resolve().parents[2] / "ros2_ws" / "src" / "mobility_twin_msgs" / "msg"
CUSTOM = sorted(p.stem for p in MSG_DIR.glob("*.msg"))
SEQS = (0, 3, 250)


def plain(value):
    """A message (rclpy or mcap-ros2 dynamic) as nested dicts and lists."""
    if hasattr(value, "get_fields_and_field_types"):
        return {k: plain(getattr(value, k)) for k in value.get_fields_and_field_types()}
    if hasattr(value, "__slots__") and not isinstance(value, str | bytes):
        return {k: plain(getattr(value, k)) for k in value.__slots__ if not k.startswith("_")}
    if isinstance(value, bytes):  # uint8[]: bytes from mcap-ros2, array('B') from rclpy
        return list(value)
    if isinstance(value, list | tuple) or hasattr(value, "tolist"):
        items = value.tolist() if hasattr(value, "tolist") else value
        return [plain(v) for v in items]
    return value


def _write_samples(path: Path) -> None:
    from rclpy.serialization import serialize_message

    from mobility_twin.ros.interface_samples import SAMPLES

    with RecordingWriter(path) as writer:
        for name in CUSTOM:
            writer.add_topic(f"/test/{name}", f"mobility_twin_msgs/msg/{name}")
            for i, seq in enumerate(SEQS):
                writer.write(f"/test/{name}", serialize_message(SAMPLES[name].build(seq)), 1_000_000_000 + i)


def test_every_custom_interface_reads_back_equal_with_mcap_ros2_and_rclpy(tmp_path):
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory
    from rclpy.serialization import deserialize_message

    from mobility_twin.ros.interface_samples import SAMPLES

    path = tmp_path / "all.mcap"
    _write_samples(path)
    seen: dict[str, list] = {}
    with path.open("rb") as f:
        reader = make_reader(f, decoder_factories=[DecoderFactory()])
        assert reader.get_header().profile == "ros2"
        for schema, channel, message, decoded in reader.iter_decoded_messages():
            name = channel.topic.removeprefix("/test/")
            assert (schema.name, schema.encoding, channel.message_encoding) == (
                f"mobility_twin_msgs/msg/{name}", "ros2msg", "cdr")
            original = SAMPLES[name].build(SEQS[len(seen.setdefault(name, []))])
            assert plain(decoded) == plain(original)
            assert deserialize_message(message.data, SAMPLES[name].type) == original
            seen[name].append(message.log_time)
    assert sorted(seen) == CUSTOM
    assert all(len(v) == len(SEQS) for v in seen.values())


def test_summary_counts_types_and_stamps_of_a_written_file(tmp_path):
    path = tmp_path / "all.mcap"
    _write_samples(path)
    with Recording(path) as rec:
        assert rec.complete
        assert {t: (i.type, i.count) for t, i in rec.topics.items()} == {
            f"/test/{n}": (f"mobility_twin_msgs/msg/{n}", len(SEQS)) for n in CUSTOM}
        assert (rec.start_ns, rec.end_ns) == (1_000_000_000, 1_000_000_002)
        stamped = [m for m in rec.messages(["/test/TrackedObjectArray"])]
        assert [m.publish_time_ns for m in stamped] == [(1_202_000_000 + s) * 10**9 + (s * 1_000_003) % 10**9
                                                        for s in SEQS]  # header stamps
        plain_msgs = list(rec.messages(["/test/LoadForecast"]))
        assert [m.publish_time_ns for m in plain_msgs] == [m.log_time_ns for m in plain_msgs]  # no header
        counts = json.loads(rec.metadata["mobility_twin"]["topics"])
        assert counts["/test/RelationGraph"]["count"] == len(SEQS)


def test_messages_come_in_log_time_order_with_file_order_for_ties(tmp_path):
    path = tmp_path / "order.mcap"
    with RecordingWriter(path, chunk_size=64) as w:
        w.add_topic("/a", "std_msgs/msg/String")
        w.add_topic("/b", "std_msgs/msg/String")
        for i, (topic, t) in enumerate([("/a", 5), ("/b", 5), ("/a", 3), ("/b", 7), ("/a", 7)]):
            w.write(topic, bytes([0, 1, 0, 0, 2, 0, 0, 0, 48 + i, 0]), t)
    with Recording(path) as rec:
        got = [(m.topic, m.log_time_ns, m.data[8]) for m in rec.messages()]
    assert got == [("/a", 3, 50), ("/a", 5, 48), ("/b", 5, 49), ("/b", 7, 51), ("/a", 7, 52)]


def test_a_recording_cut_short_is_read_up_to_where_it_ends(tmp_path):
    from rclpy.serialization import serialize_message

    from mobility_twin.ros.interface_samples import SAMPLES

    path = tmp_path / "cut.mcap"
    with RecordingWriter(path, chunk_size=1) as w:  # one chunk per message
        w.add_topic("/objects", "mobility_twin_msgs/msg/TrackedObjectArray")
        for seq in range(10):
            w.write("/objects", serialize_message(SAMPLES["TrackedObjectArray"].build(seq)), 1000 + seq)
    with Recording(path) as whole:
        sixth_chunk = whole._reader.get_summary().chunk_indexes[5].chunk_start_offset
    cut = tmp_path / "cut_short.mcap"
    cut.write_bytes(path.read_bytes()[: sixth_chunk + 40])  # the writer died while writing the sixth chunk
    with Recording(cut) as rec:
        assert not rec.complete
        n = rec.topics["/objects"].count
        assert n == 5
        assert [m.log_time_ns for m in rec.messages()] == list(range(1000, 1005))


def test_offered_qos_round_trips_in_rosbag2_integer_form_and_reads_named_form():
    offers = [OfferedQos(reliability=BEST_EFFORT, depth=5), OfferedQos(durability=TRANSIENT_LOCAL, depth=1,
                                                                       deadline_ns=2_500_000_000)]
    text = serialize_qos(offers)
    import yaml

    first, second = yaml.safe_load(text)
    assert first["reliability"] == 2 and second["durability"] == 1  # rosbag2 version 8: integer policies
    assert second["deadline"] == {"sec": 2, "nsec": 500_000_000}
    assert parse_qos(text) == offers
    named = ("- history: keep_last\n  depth: 1\n  reliability: reliable\n  durability: transient_local\n"
             "  deadline: {sec: 0, nsec: 0}\n  lifespan: {sec: 0, nsec: 0}\n  liveliness: automatic\n"
             "  liveliness_lease_duration: {sec: 0, nsec: 0}\n  avoid_ros_namespace_conventions: false\n")
    (qos,) = parse_qos(named)
    assert qos.reliable and qos.latched and qos.depth == 1
    assert serialize_qos([]) == "" and parse_qos("") == []
    with pytest.raises(RecordingError, match="offered_qos_profiles"):
        parse_qos("- reliability: sometimes\n")


def test_channel_metadata_carries_the_offered_qos_and_the_type_hash(tmp_path):
    from mcap.reader import make_reader

    path = tmp_path / "qos.mcap"
    with RecordingWriter(path) as w:
        w.add_topic("/infrastructure/layout", "mobility_twin_msgs/msg/Layout",
                    offered_qos=[OfferedQos(durability=TRANSIENT_LOCAL)])
    with path.open("rb") as f:
        (channel,) = make_reader(f).get_summary().channels.values()
    assert parse_qos(channel.metadata["offered_qos_profiles"])[0].latched
    assert channel.metadata["topic_type_hash"].startswith("RIHS01_")
    with Recording(path) as rec:
        assert rec.topics["/infrastructure/layout"].offered_qos[0].latched
        assert rec.topics["/infrastructure/layout"].count == 0


def test_writing_errors_name_the_file_or_topic(tmp_path):
    with pytest.raises(RecordingError, match="compression 'brotli'"):
        RecordingWriter(tmp_path / "x.mcap", compression="brotli")
    with RecordingWriter(tmp_path / "x.mcap") as w, pytest.raises(RecordingError, match="/never/added"):
        w.write("/never/added", b"\x00\x01\x00\x00", 1)
    (tmp_path / "not.mcap").write_text("hello")
    with pytest.raises(RecordingError, match=r"not\.mcap is not an MCAP file"):
        Recording(tmp_path / "not.mcap")
    with pytest.raises(RecordingError, match="cannot read the recording"):
        Recording(tmp_path / "missing.mcap")


def test_rosbag2_metadata_record_declares_version_8_with_every_field_rosbag2_reads(tmp_path):
    import yaml

    path = tmp_path / "all.mcap"
    _write_samples(path)
    with Recording(path) as rec:
        meta = yaml.safe_load(rec.metadata["rosbag2"]["serialized_metadata"])
    assert meta["version"] == 8 and meta["storage_identifier"] == "mcap"
    for key in ("duration", "starting_time", "message_count", "topics_with_message_count", "compression_format",
                "compression_mode", "relative_file_paths", "files", "custom_data", "ros_distro"):
        assert key in meta, key
    assert meta["message_count"] == len(CUSTOM) * len(SEQS)
    assert meta["starting_time"] == {"nanoseconds_since_epoch": 1_000_000_000}
    assert meta["duration"] == {"nanoseconds": 2}
    topics = {t["topic_metadata"]["name"]: t for t in meta["topics_with_message_count"]}
    assert topics["/test/RelationGraph"]["message_count"] == len(SEQS)
    assert topics["/test/RelationGraph"]["topic_metadata"]["type_description_hash"].startswith("RIHS01_")
    assert meta["files"][0]["path"] == "all.mcap"


def test_rosbags_reads_our_file_as_a_rosbag2_mcap_bag(tmp_path):
    """rosbags (a rosbag2 reader/writer): topics, types, QoS, counts, and every message decoded from the
    file's own definitions equal to what was written."""
    import yaml
    from rclpy.serialization import serialize_message
    from rosbags.rosbag2 import Reader
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    from mobility_twin.recording.definitions import type_hash
    from mobility_twin.ros.interface_samples import SAMPLES

    path = tmp_path / "bag.mcap"
    with RecordingWriter(path) as w:
        w.add_topic("/twin/global/objects", "mobility_twin_msgs/msg/TrackedObjectArray",
                    offered_qos=[OfferedQos(durability=TRANSIENT_LOCAL, depth=1)])
        w.add_topic("/placement/migrations", "mobility_twin_msgs/msg/MigrationEvent")
        for seq in SEQS:
            w.write("/twin/global/objects", serialize_message(SAMPLES["TrackedObjectArray"].build(seq)), 10 + seq)
            w.write("/placement/migrations", serialize_message(SAMPLES["MigrationEvent"].build(seq)), 10 + seq)
    store = get_typestore(Stores.EMPTY)
    with Reader(path) as bag:
        assert bag.message_count == 2 * len(SEQS)
        conns = {c.topic: c for c in bag.connections}
        for conn in conns.values():
            store.register(get_types_from_msg(conn.msgdef.data, conn.msgtype))
        objects = conns["/twin/global/objects"]
        assert objects.msgtype == "mobility_twin_msgs/msg/TrackedObjectArray" and objects.msgcount == len(SEQS)
        (qos,) = objects.ext.offered_qos_profiles
        assert (qos.durability.name, qos.depth) == ("TRANSIENT_LOCAL", 1)
        got = [(c.topic, store.deserialize_cdr(raw, c.msgtype)) for c, _t, raw in bag.messages()]
    migrations = [m for topic, m in got if topic == "/placement/migrations"]
    assert [(m.twin_id, m.to_host) for m in migrations] == [(f"twin_{s}", "cloud") for s in SEQS]
    arrays = [m for topic, m in got if topic == "/twin/global/objects"]
    for seq, msg in zip(SEQS, arrays, strict=True):
        original = SAMPLES["TrackedObjectArray"].build(seq)
        assert msg.twin_id == original.twin_id and len(msg.objects) == len(original.objects)
        assert [o.track_id for o in msg.objects] == [o.track_id for o in original.objects]
        assert list(msg.objects[0].pose.covariance) == list(original.objects[0].pose.covariance)
    with Recording(path) as rec:
        meta = yaml.safe_load(rec.metadata["rosbag2"]["serialized_metadata"])
    hashes = {t["topic_metadata"]["name"]: t["topic_metadata"]["type_description_hash"]
              for t in meta["topics_with_message_count"]}
    assert hashes["/twin/global/objects"] == type_hash("mobility_twin_msgs/msg/TrackedObjectArray")

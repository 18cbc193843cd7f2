"""The fast CDR codecs agree with rclpy: rclpy reads what they write as the same message, and they read
what rclpy writes. (Byte equality is checked too, except in alignment padding: Fast CDR leaves padding
bytes uninitialised, the codecs write zeros.)"""

import math

import numpy as np
import pytest

pytestmark = pytest.mark.ros


def _random_tracks(rng, n):
    from mobility_twin_msgs.msg import SourceFrame, TrackedObject, TrackedObjectArray

    msg = TrackedObjectArray(twin_id="local/site_" + "x" * int(rng.integers(0, 5)))
    msg.header.stamp.sec, msg.header.stamp.nanosec = 1_202_000_000 + int(rng.integers(0, 99)), 123_456_789
    msg.header.frame_id = "map"
    for i in range(n):
        o = TrackedObject(track_id=int(rng.integers(0, 2**40)), object_class=int(rng.integers(0, 4)),
                          state=int(rng.integers(0, 3)), existence_probability=float(np.float32(rng.random())))
        o.pose.pose.position.x, o.pose.pose.position.y = rng.normal(0, 500, 2)
        o.pose.pose.orientation.z, o.pose.pose.orientation.w = math.sin(i), math.cos(i)
        o.pose.covariance = rng.normal(0, 1, 36).tolist()
        o.twist.twist.linear.x, o.twist.twist.linear.y = rng.normal(0, 10, 2)
        o.twist.covariance = rng.normal(0, 1, 36).tolist()
        o.dimensions.x, o.dimensions.y, o.dimensions.z = 4.5, 1.8, 1.5 + i
        o.last_measurement.sec, o.last_measurement.nanosec = 1_202_000_000, int(rng.integers(0, 10**9))
        o.age_of_information = float(np.float32(rng.random()))
        o.state_covariance = rng.normal(0, 1, 16).tolist()
        o.sources = ["rsu_" + "0" * int(rng.integers(0, 4)) for _ in range(int(rng.integers(0, 4)))]
        o.site_id = "site" * int(rng.integers(0, 3))
        o.vehicle_id = str(int(rng.integers(0, 10**int(rng.integers(1, 7)))))
        msg.objects.append(o)
    for k in range(int(rng.integers(0, 3))):
        msg.provenance.append(SourceFrame(source_id=f"cav_{k}" * (k + 1), stages=["sensor", "perception"][: k + 1],
                                          stage_wall_time=[1.7e9 + 0.25 * j for j in range(k + 1)]))
    return msg


def _same_except_padding(ours: bytes, theirs: bytes, msg_type) -> None:
    from rclpy.serialization import deserialize_message

    assert len(ours) == len(theirs)
    assert deserialize_message(ours, msg_type) == deserialize_message(theirs, msg_type)
    differing = [i for i, (a, b) in enumerate(zip(ours, theirs, strict=True)) if a != b]
    assert all(ours[i] == 0 for i in differing), "a non-padding byte differs"


def _random_detections(rng, n):
    from mobility_twin_msgs.msg import DetectedObject, DetectedObjectArray, SourceFrame

    msg = DetectedObjectArray(source_id="rsu_0" + "1" * int(rng.integers(0, 4)), source_type=1,
                              sensor_range=float(np.float32(80.5)))
    msg.header.frame_id = "map"
    msg.header.stamp.sec = 1_202_000_001
    msg.sensor_pose.position.x, msg.sensor_pose.position.y, msg.sensor_pose.position.z = 10.0, -20.0, 6.0
    msg.sensor_pose.orientation.z, msg.sensor_pose.orientation.w = math.sin(0.35), math.cos(0.35)
    for _ in range(n):
        d = DetectedObject(object_class=1, confidence=float(np.float32(rng.random())), has_twist=bool(rng.random() < .5),
                           num_points=int(rng.integers(0, 500)), range=float(np.float32(rng.random() * 80)))
        d.pose.pose.position.x, d.pose.pose.position.y = rng.normal(0, 100, 2)
        d.pose.covariance = rng.normal(0, 1, 36).tolist()
        d.twist.twist.linear.x = float(rng.normal())
        d.dimensions.x = 4.0
        d.self_report_id = "cav_" * int(rng.integers(0, 3))
        msg.objects.append(d)
    msg.provenance = SourceFrame(source_id=msg.source_id, stages=["sensor", "perception"],
                                 stage_wall_time=[1.7e9, 1.7e9 + 0.01])
    msg.provenance.sensor_stamp = msg.header.stamp
    if rng.random() < 0.5:  # what a LiDAR saw (8 bearing bins x 3 range cells, packed bits; a range per bin)
        msg.visibility_bins, msg.visibility_cell_m = 8, 0.5
        msg.visibility_clear = rng.integers(0, 256, 3).astype(np.uint8).tolist()
        msg.visibility_blocked = np.where(rng.random(8) < 0.3, np.inf, rng.random(8) * 80).astype(np.float32).tolist()
    return msg


@pytest.mark.parametrize("seed", range(6))
def test_track_codec_is_byte_identical_to_rclpy(seed):
    from rclpy.serialization import serialize_message

    from mobility_twin.ros.cdr import decode_tracks, encode_tracks
    from mobility_twin_msgs.msg import TrackedObjectArray

    rng = np.random.default_rng(seed)
    msg = _random_tracks(rng, int(rng.integers(0, 40)))
    data = serialize_message(msg)
    table = decode_tracks(data)
    _same_except_padding(encode_tracks(table), data, TrackedObjectArray)
    assert table.twin_id == msg.twin_id and len(table) == len(msg.objects)
    for rec, o, sources in zip(table.records, msg.objects, table.sources, strict=True):
        assert rec["track_id"] == o.track_id and rec["px"] == o.pose.pose.position.x
        assert rec["pose_cov"].tolist() == list(o.pose.covariance) and rec["height"] == o.dimensions.z
        assert rec["state_cov"].tolist() == list(o.state_covariance)
        assert sources == list(o.sources)
    assert [p.source_id for p in table.provenance] == [p.source_id for p in msg.provenance]


@pytest.mark.parametrize("seed", range(6))
def test_detection_codec_is_byte_identical_to_rclpy(seed):
    from rclpy.serialization import deserialize_message, serialize_message

    from mobility_twin.ros.cdr import decode_detections, encode_detections
    from mobility_twin_msgs.msg import DetectedObjectArray

    rng = np.random.default_rng(100 + seed)
    msg = _random_detections(rng, int(rng.integers(0, 30)))
    data = serialize_message(msg)
    table = decode_detections(data)
    _same_except_padding(encode_detections(table), data, DetectedObjectArray)
    assert deserialize_message(encode_detections(table), DetectedObjectArray) == msg
    assert table.sensor_pose[3] == pytest.approx(0.7)
    assert [r["num_points"] for r in table.records] == [d.num_points for d in msg.objects]


def test_truncated_or_foreign_bytes_are_clear_errors():
    from rclpy.serialization import serialize_message

    from mobility_twin.ros.cdr import CdrError, decode_tracks

    data = serialize_message(_random_tracks(np.random.default_rng(1), 5))
    with pytest.raises(CdrError, match="truncated"):
        decode_tracks(data[: len(data) // 2])
    with pytest.raises(CdrError, match="encapsulation"):
        decode_tracks(b"\x00\x00\x00\x00" + data[4:])


def test_every_cut_of_a_message_is_a_clear_error_never_a_short_table():
    """The element loop reads without bounds checks and falls back to the checked one on bytes it cannot read:
    a message cut anywhere in its elements, or claiming more strings than it holds, is a CdrError."""
    import struct

    from rclpy.serialization import serialize_message

    from mobility_twin.ros.cdr import CdrError, decode_tracks

    msg = _random_tracks(np.random.default_rng(2), 4)
    msg.objects[1].sources = ["rsu_01", "srv_03/v2x"]
    data = serialize_message(msg)
    whole = decode_tracks(data)
    first = 4 + 8 + 4  # header stamp and the frame id's length: every later cut falls inside what is read
    for cut in range(first, len(data) - 4):  # (the last 4 bytes: the provenance count)
        with pytest.raises(CdrError, match=r"truncated|claims"):
            decode_tracks(data[:cut])
    # the second track's source count claims a million strings
    at = data.index(struct.pack("<I", 2) + struct.pack("<I", 7) + b"rsu_01\x00")
    forged = data[:at] + struct.pack("<I", 1_000_000) + data[at + 4:]
    with pytest.raises(CdrError, match="claims 1000000 strings"):
        decode_tracks(forged)
    assert len(whole) == 4 and whole.sources[1] == ["rsu_01", "srv_03/v2x"]


def test_long_strings_are_decoded_but_not_kept_across_messages():
    """The decoder keeps short strings (ids) from one message to the next; a long one is decoded, not kept, so a
    stream of messages of long strings cannot fill memory."""
    from rclpy.serialization import serialize_message

    from mobility_twin.ros import cdr

    msg = _random_tracks(np.random.default_rng(3), 2)
    msg.objects[0].vehicle_id = "v" * 5000
    msg.objects[1].vehicle_id = "taxi_4711"
    table = cdr.decode_tracks(serialize_message(msg))
    assert table.vehicle_id == ["v" * 5000, "taxi_4711"]
    assert b"taxi_4711" in cdr._TEXTS and b"v" * 5000 not in cdr._TEXTS


def test_cloud_codec_agrees_with_rclpy_and_reads_foreign_layouts():
    from rclpy.serialization import deserialize_message, serialize_message
    from sensor_msgs.msg import PointCloud2, PointField

    from mobility_twin.ros.cdr import decode_cloud_xyz, encode_cloud
    from mobility_twin.ros.convert import make_cloud, read_xyz

    rng = np.random.default_rng(3)
    pts = rng.normal(0, 30, (500, 3)).astype(np.float32)
    inten = rng.random(500).astype(np.float32)
    ring = rng.integers(0, 32, 500).astype(np.uint16)
    ours = encode_cloud(pts, inten, ring, "rsu_00/lidar", 1_202_000_000_250_000_000)
    theirs = make_cloud(pts, inten, ring, "rsu_00/lidar", 1_202_000_000.25)
    assert deserialize_message(ours, PointCloud2) == theirs
    view = decode_cloud_xyz(serialize_message(theirs))
    assert view.frame_id == "rsu_00/lidar" and view.stamp_ns == 1_202_000_000_250_000_000
    assert np.array_equal(view.xyz, pts.astype(float))
    # another driver's layout: float64 x, y, z after an intensity field, 32-byte points
    n = 7
    data = np.zeros(n, dtype=np.dtype({"names": ["i", "x", "y", "z"], "formats": ["<f4", "<f8", "<f8", "<f8"],
                                       "offsets": [0, 8, 16, 24], "itemsize": 32}))
    data["x"], data["y"], data["z"] = np.arange(n), -np.arange(n), 0.5
    msg = PointCloud2(height=1, width=n, point_step=32, row_step=32 * n, data=data.tobytes(), is_dense=True,
                      fields=[PointField(name="intensity", offset=0, datatype=7, count=1),
                              PointField(name="x", offset=8, datatype=8, count=1),
                              PointField(name="y", offset=16, datatype=8, count=1),
                              PointField(name="z", offset=24, datatype=8, count=1)])
    got = decode_cloud_xyz(serialize_message(msg)).xyz
    assert np.array_equal(got, read_xyz(msg)) and got[3].tolist() == [3.0, -3.0, 0.5]


def test_cloud_without_xyz_is_a_clear_error():
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import PointCloud2, PointField

    from mobility_twin.ros.cdr import CdrError, decode_cloud_xyz

    msg = PointCloud2(height=1, width=1, point_step=4, row_step=4, data=b"\x00" * 4,
                      fields=[PointField(name="intensity", offset=0, datatype=7, count=1)])
    with pytest.raises(CdrError, match="no field"):
        decode_cloud_xyz(serialize_message(msg))


def test_cloud_whose_fields_overrun_the_point_step_is_a_clear_error():
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import PointCloud2, PointField

    from mobility_twin.ros.cdr import CdrError, decode_cloud_xyz

    fields = [PointField(name=n, offset=4 * k, datatype=PointField.FLOAT32, count=1) for k, n in enumerate("xyz")]
    msg = PointCloud2(height=1, width=3, fields=fields, point_step=4, row_step=12, data=bytes(12), is_dense=True)
    with pytest.raises(CdrError, match=r"field y at offset 4 does not fit in a point step of 4 bytes"):
        decode_cloud_xyz(serialize_message(msg))

"""Message <-> numpy conversions shared by the nodes. Needs the message classes, not a running node."""

from __future__ import annotations

import math

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Quaternion
from sensor_msgs.msg import PointCloud2, PointField
from std_msgs.msg import Header

# x, y, z, intensity (float32) and ring (uint16), padded to 20 bytes per point
CLOUD_DTYPE = np.dtype(
    {"names": ["x", "y", "z", "intensity", "ring"], "formats": ["<f4", "<f4", "<f4", "<f4", "<u2"],
     "offsets": [0, 4, 8, 12, 16], "itemsize": 20}
)
_FIELD_TYPES = {PointField.FLOAT32: "<f4", PointField.FLOAT64: "<f8", PointField.UINT16: "<u2",
                PointField.UINT8: "u1", PointField.INT8: "i1", PointField.INT16: "<i2", PointField.INT32: "<i4",
                PointField.UINT32: "<u4"}


class CloudError(ValueError):
    """A PointCloud2 that cannot be read as x, y, z points."""


def to_time(seconds: float) -> Time:
    sec = math.floor(seconds)
    return Time(sec=int(sec), nanosec=min(999_999_999, round((seconds - sec) * 1e9)))


def from_time(stamp: Time) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def yaw_quaternion(yaw: float) -> Quaternion:
    return Quaternion(x=0.0, y=0.0, z=math.sin(yaw / 2.0), w=math.cos(yaw / 2.0))


def quaternion_yaw(q: Quaternion) -> float:
    return math.atan2(2.0 * (q.w * q.z + q.x * q.y), 1.0 - 2.0 * (q.y * q.y + q.z * q.z))


def make_cloud(points: np.ndarray, intensity: np.ndarray, ring: np.ndarray, frame_id: str, stamp: float) -> PointCloud2:
    """A dense, unorganised PointCloud2 (x, y, z, intensity, ring) from (N, 3) points in ``frame_id``."""
    data = np.zeros(len(points), dtype=CLOUD_DTYPE)
    data["x"], data["y"], data["z"] = points[:, 0], points[:, 1], points[:, 2]
    data["intensity"] = intensity
    data["ring"] = ring
    msg = PointCloud2()
    msg.header = Header(stamp=to_time(stamp), frame_id=frame_id)
    msg.height = 1
    msg.width = len(points)
    msg.fields = [
        PointField(name="x", offset=0, datatype=PointField.FLOAT32, count=1),
        PointField(name="y", offset=4, datatype=PointField.FLOAT32, count=1),
        PointField(name="z", offset=8, datatype=PointField.FLOAT32, count=1),
        PointField(name="intensity", offset=12, datatype=PointField.FLOAT32, count=1),
        PointField(name="ring", offset=16, datatype=PointField.UINT16, count=1),
    ]
    msg.is_bigendian = False
    msg.point_step = CLOUD_DTYPE.itemsize
    msg.row_step = msg.point_step * msg.width
    msg.is_dense = True
    msg.data = data.tobytes()
    return msg


def read_xyz(msg: PointCloud2) -> np.ndarray:
    """(N, 3) float64 x, y, z of any PointCloud2 with float x, y, z fields (NaN/inf points included)."""
    if msg.is_bigendian:
        raise CloudError("big-endian point clouds are not supported")
    fields = {f.name: f for f in msg.fields}
    missing = [n for n in ("x", "y", "z") if n not in fields]
    if missing:
        raise CloudError(f"point cloud has no field(s) {', '.join(missing)} (fields: {', '.join(fields) or 'none'})")
    n = msg.width * msg.height
    if n == 0:
        return np.zeros((0, 3))
    if len(msg.data) < n * msg.point_step:
        raise CloudError(f"point cloud data holds {len(msg.data)} bytes, fewer than {n} points x {msg.point_step}")
    names, formats, offsets = [], [], []
    for name in ("x", "y", "z"):
        f = fields[name]
        if f.datatype not in (PointField.FLOAT32, PointField.FLOAT64):
            raise CloudError(f"field {name} has datatype {f.datatype}; x, y, z must be float32 or float64")
        names.append(name)
        formats.append(_FIELD_TYPES[f.datatype])
        offsets.append(f.offset)
    dtype = np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": msg.point_step})
    raw = np.frombuffer(msg.data, dtype=dtype, count=n)  # bytes or array('B'): no copy
    return np.stack([raw["x"], raw["y"], raw["z"]], axis=1).astype(np.float64)

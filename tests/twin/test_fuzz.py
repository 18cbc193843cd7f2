"""Fuzz: every topic the perception nodes and the twins subscribe to, driven with random and adversarial
messages from another process on the domain, next to a valid stream. The nodes must stay up and publish
only finite, plausible values, and the valid vehicle must still be tracked."""

from __future__ import annotations

import math
import random
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml

from tests.ros_helpers import Collector, stop
from tests.twin.test_tracker import frame

pytestmark = pytest.mark.ros

SQUARE = [[-200.0, -200.0], [200.0, -200.0], [200.0, 200.0], [-200.0, 200.0]]
SQUARE_G = [[200.0, -200.0], [600.0, -200.0], [600.0, 200.0], [200.0, 200.0]]
LAYOUT = {"name": "fuzz", "area": [[-200.0, -200.0], [600.0, -200.0], [600.0, 200.0], [-200.0, 200.0]],
          "sites": [{"id": "site_f", "polygon": SQUARE}, {"id": "site_g", "polygon": SQUARE_G}],
          "rsus": [{"id": "rsu_f", "x": 0.0, "y": 0.0, "z": 6.0, "site": "site_f"}],
          "cavs": [{"id": "cav_f", "lidar_height_m": 1.9}],
          "edge_servers": [{"id": "edge_f", "x": 0.0, "y": 0.0, "coverage_radius_m": 300.0, "cpu_hz": 3e9,
                            "site": "site_f"}]}
NASTY = [math.nan, math.inf, -math.inf, 1e308, -1e308, 3e8, 0.0, -0.0, 1e-320]


def _start(executable: str, params: list[str], log) -> subprocess.Popen:
    from mobility_twin.launch_runner.ament import package_prefix

    exe = package_prefix("mobility_twin") / "lib" / "mobility_twin" / executable
    args = [arg for p in params for arg in ("-r" if p.startswith("__ns:=") else "-p", p)]
    return subprocess.Popen([sys.executable, str(exe), "--ros-args", *args], stdout=log, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)


class Fuzzer:
    """Seeded generator of bad messages: random bytes, truncations, flipped bytes of valid messages, and
    valid encodings carrying non-finite, huge, future or foreign values."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def raw(self) -> bytes:
        head = self.rng.choice([b"\x00\x01\x00\x00", b"\x00\x00\x00\x00", b"\x01\x00", b""])
        return head + bytes(self.rng.getrandbits(8) for _ in range(self.rng.randint(0, 2000)))

    def mangled(self, valid: bytes) -> bytes:
        data = bytearray(valid)
        kind = self.rng.randrange(3)
        if kind == 0 and len(data) > 8:  # truncated
            return bytes(data[: self.rng.randint(4, len(data) - 1)])
        for _ in range(self.rng.randint(1, 20)):  # flipped bytes (lengths, counts, floats)
            if data:
                data[self.rng.randrange(len(data))] = self.rng.getrandbits(8)
        return bytes(data)

    def nasty(self) -> float:
        return self.rng.choice(NASTY)

    def detections(self, source: str, now: float) -> bytes:
        from mobility_twin.ros.cdr import encode_detections
        from mobility_twin.ros.tables import detections_to_table

        f = frame(source, now, [(10.0, 5.0), (20.0, -5.0)], sensor=(0.0, 0.0))
        field = self.rng.choice(["xy", "cov", "dims", "velocity", "confidence", "stamp", "sensor"])
        if field == "stamp":
            f = f.__class__(**{**f.__dict__, "stamp": now + self.rng.choice([1e6, -1e6, 3600.0])})
        elif field == "sensor":
            f = f.__class__(**{**f.__dict__, "sensor_xy": (self.nasty(), 0.0)})
        else:
            arr = getattr(f, field).astype(float).copy()
            arr.flat[self.rng.randrange(arr.size)] = self.nasty()
            f = f.__class__(**{**f.__dict__, field: arr})
        with np.errstate(over="ignore", invalid="ignore"):  # a huge value becomes inf in the float32 fields: meant
            return encode_detections(detections_to_table(f))

    def tracks(self, twin_id: str, now: float) -> bytes:
        from mobility_twin.ros.cdr import encode_tracks
        from mobility_twin.tracking import TrackSet, object_array

        n = 3
        x = np.array([[10.0, 5.0, 1.0, 0.0]] * n)
        P = np.tile(np.eye(4), (n, 1, 1))
        x.flat[self.rng.randrange(x.size)] = self.nasty()
        P.flat[self.rng.randrange(P.size)] = self.nasty()
        t = TrackSet(ids=np.arange(1, n + 1), x=x, P=P, dims=np.ones((n, 3)), box_yaw=np.zeros(n),
                     object_class=np.ones(n, dtype=np.int64), status=np.ones(n, dtype=np.int64),
                     hits=np.ones(n, dtype=np.int64), misses=np.zeros(n, dtype=np.int64), born=np.zeros(n),
                     last_update=np.full(n, now + self.rng.choice([0.0, 1e6])), existence=np.ones(n),
                     sources=object_array([frozenset({"rsu_f"})] * n), vehicle_id=object_array([""] * n))
        from mobility_twin.ros.tables import tracks_to_table

        stamp = now + self.rng.choice([0.0, 0.0, 1e6, -1e6])
        return encode_tracks(tracks_to_table(t, stamp, twin_id))

    def cloud(self, frame_id: str, now: float) -> bytes:
        from rclpy.serialization import serialize_message
        from sensor_msgs.msg import PointCloud2, PointField

        n = self.rng.randint(0, 50)
        step = self.rng.choice([4, 12, 16, 0])
        fields = [PointField(name=c, offset=4 * k, datatype=PointField.FLOAT32, count=1) for k, c in enumerate("xyz")]
        with np.errstate(over="ignore", invalid="ignore"):
            pts = np.array([[self.nasty() if self.rng.random() < 0.3 else self.rng.uniform(-50, 50) for _ in range(3)]
                            for _ in range(n)], dtype=np.float32).reshape(-1, 3)
        msg = PointCloud2(height=1, width=n, fields=fields, point_step=step, row_step=step * n,
                          data=pts.tobytes()[: step * n] if step else b"", is_dense=False)
        msg.header.frame_id = frame_id
        msg.header.stamp.sec = int(now)
        return serialize_message(msg)


def _finite_and_plausible(msg) -> bool:
    for o in msg.objects:
        p = o.pose.pose.position
        v = o.twist.twist.linear
        values = [p.x, p.y, v.x, v.y, *o.pose.covariance, *o.state_covariance, o.existence_probability]
        if not all(math.isfinite(x) for x in values) or abs(p.x) > 1e4 or abs(p.y) > 1e4 or math.hypot(v.x, v.y) > 100:
            return False
    return True


def test_every_subscribed_topic_survives_random_and_adversarial_messages(tmp_path):
    from nav_msgs.msg import Odometry
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import PointCloud2

    from mobility_twin.ros.cdr import encode_detections
    from mobility_twin.ros.tables import detections_to_table
    from mobility_twin_msgs.msg import (
        DetectedObjectArray,
        EdgeServerState,
        EdgeServerStateArray,
        TrackedObjectArray,
        TwinStateArray,
    )

    layout = tmp_path / "layout.yaml"
    layout.write_text(yaml.safe_dump({"layout": LAYOUT}))
    logs = {name: (tmp_path / f"{name}.log").open("w") for name in ("local", "global", "rsu", "cav")}
    procs = {
        "local": _start("local_twin", ["site_id:=site_f", f"layout_file:={layout}"], logs["local"]),
        "global": _start("global_twin", [f"layout_file:={layout}"], logs["global"]),
        "rsu": _start("rsu_perception", ["sensor_id:=rsu_f", "extrinsic:=0.0,0.0,6.0,0.0",
                                         "__ns:=/rsu/rsu_f"], logs["rsu"]),
        "cav": _start("cav_perception", ["sensor_id:=cav_f", "lidar_height_m:=1.9", "__ns:=/cav/cav_f"], logs["cav"]),
    }
    fz = Fuzzer(seed=2026)
    outputs = {"/twin/local/site_f/objects": TrackedObjectArray, "/twin/global/objects": TrackedObjectArray,
               "/rsu/rsu_f/detections": DetectedObjectArray, "/cav/cav_f/detections": DetectedObjectArray}
    try:
        with Collector(outputs) as c:
            pubs = {
                "/rsu/rsu_f/detections": c.node.create_publisher(DetectedObjectArray, "/rsu/rsu_f/detections", 10),
                "/cav/cav_f/detections": c.node.create_publisher(DetectedObjectArray, "/cav/cav_f/detections", 10),
                "/edge/edge_f/v2x": c.node.create_publisher(DetectedObjectArray, "/edge/edge_f/v2x", 10),
                "/infrastructure/edge_servers/reports": c.node.create_publisher(
                    EdgeServerStateArray, "/infrastructure/edge_servers/reports", 10),
                # the global twin's inputs from the second site (the test's collector listens to site_f's twin)
                "/twin/local/site_g/objects": c.node.create_publisher(TrackedObjectArray, "/twin/local/site_g/objects", 10),
                "/twin/local/site_g/state": c.node.create_publisher(TwinStateArray, "/twin/local/site_g/state", 10),
                "/twin/local/site_g/edge_servers": c.node.create_publisher(
                    EdgeServerStateArray, "/twin/local/site_g/edge_servers", 10),
                "/rsu/rsu_f/points": c.node.create_publisher(PointCloud2, "/rsu/rsu_f/points", 10),
                "/cav/cav_f/points": c.node.create_publisher(PointCloud2, "/cav/cav_f/points", 10),
                "/cav/cav_f/odom": c.node.create_publisher(Odometry, "/cav/cav_f/odom", 10),
            }
            c.spin(3.0)  # discovery
            end = time.monotonic() + 20.0
            k = 0
            while time.monotonic() < end:
                now = time.time()
                good = frame("rsu_f", now, [(30.0 + 0.5 * k * 0.1, 12.0)], sensor=(0.0, 0.0))
                pubs["/rsu/rsu_f/detections"].publish(encode_detections(detections_to_table(good)))
                for topic, pub in pubs.items():
                    kind = fz.rng.randrange(3)
                    if kind == 0:
                        data = fz.raw()
                    elif topic.endswith(("detections", "v2x")):
                        source = {"/edge/edge_f/v2x": "edge_f/v2x"}.get(topic, topic.split("/")[2])
                        data = fz.detections(source, now) if kind == 1 else fz.mangled(
                            encode_detections(detections_to_table(good)))
                    elif topic.endswith("objects"):
                        twin = fz.rng.choice(["local/site_g", "local/site_f", ""])
                        data = fz.tracks(twin, now) if kind == 1 else fz.mangled(fz.tracks("local/site_g", now))
                    elif topic.endswith("points"):
                        data = fz.cloud(topic.split("/")[2] + "/lidar", now)
                    elif topic.endswith("odom"):
                        o = Odometry()
                        o.header.stamp.sec = int(now)
                        o.pose.pose.position.x = fz.nasty()
                        o.twist.twist.linear.x = fz.nasty()
                        data = serialize_message(o)
                    else:
                        s = EdgeServerState(server_id=fz.rng.choice(["edge_f", "edge_x", ""]), load=fz.nasty(),
                                            vehicles_served=fz.rng.randrange(2**32))
                        s.position.x = fz.nasty()
                        msg = EdgeServerStateArray(servers=[s])
                        msg.header.stamp.sec = int(now + fz.rng.choice([0, 10**6]))
                        data = serialize_message(msg)
                    pub.publish(data)
                k += 1
                c.spin(0.05)
            alive = {name: p.poll() is None for name, p in procs.items()}
            assert all(alive.values()), f"alive: {alive}\n" + "\n".join(
                f"--- {n}\n{(tmp_path / f'{n}.log').read_text()[-3000:]}" for n in procs)
            for topic in ("/twin/local/site_f/objects", "/twin/global/objects"):
                msgs = c.messages[topic]
                assert msgs, f"nothing on {topic}"
                bad = [o for m in msgs for o in m.objects if not _finite_and_plausible(type(m)(objects=[o]))]
                assert not bad, f"a non-finite or implausible value on {topic}: {bad[:1]}"
                tracked = [o for o in msgs[-1].objects if abs(o.pose.pose.position.y - 12.0) < 2.0]
                assert tracked, f"the valid vehicle is not tracked on {topic}"
    finally:
        for p in procs.values():
            stop(p)
    refused = (tmp_path / "local.log").read_text()
    assert "refused" in refused and "stamp_in_future" in refused

"""The processes `mtwin bench chaos` runs inside a host of the stack (a network namespace): the collector and
the injector of bad inputs.

    python -m mobility_twin_bench.chaos_agent collect --layout L.yaml --spool run.mcap
    python -m mobility_twin_bench.chaos_agent inject --spec '{"case": "nan_detection", ...}'

``collect`` spools the scored topics and the recorder's other default topics into an MCAP file (the
evaluation's :class:`~mobility_twin.evaluation.live.RunCollector`: to disk as they arrive, nothing kept in
memory) and prints one JSON line a second (``{"t", "received", "global_tracks"}``) so that the benchmark
knows when the stack is up; SIGINT/SIGTERM close the file. ``inject`` publishes one bad-input case
(:func:`build_message`), ``repeat`` times, once the target subscribes, and prints what it sent as JSON.

The messages are built here, ROS-free but for the PointCloud2 class: :func:`build_message` returns
``(message type, CDR bytes or message)`` for a case specification, so tests can check them without DDS.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time

import numpy as np

#: every bad-input case of issue 15: what it sends, which node must refuse it, and the reason it counts
CASES = {
    "bad_point_step_cloud": ("PointCloud2 whose point_step (4) is smaller than its x/y/z offsets", "rsu_perception",
                             "unreadable"),
    "nan_detection": ("detection with a NaN position", "local_twin", "not_finite"),
    "local_track_nan": ("local-twin track with a NaN position", "global_twin", "not_finite"),
    "local_track_inf": ("local-twin track with an infinite position", "global_twin", "not_finite"),
    "local_future_stamp": ("local-twin message stamped 10^6 s in the future", "global_twin", "stamp_in_future"),
    "future_detection": ("detection frame stamped 10^6 s in the future", "local_twin", "stamp_in_future"),
    "v2x_3e8_mps": ("V2X self-report at 3e8 m/s", "local_twin", "implausible_speed"),
    "foreign_twin_id": ("TrackedObjectArray on one site's topic claiming another site's twin_id", "global_twin",
                        "twin_id_mismatch"),
    "foreign_rsu_source": ("detections on one RSU's topic claiming another RSU's source id", "local_twin",
                           "source_id_mismatch"),
}


def _position(value) -> float:
    """A coordinate of a spec: a number (NaN and infinities included), or the strings "nan", "inf", "-inf"."""
    return float(value)


def build_message(spec: dict, now: float):
    """``(message class, payload)`` of one bad input at wall time ``now`` (s): the payload is CDR bytes (the
    stack's fast codecs) or, for the cloud, a message object. ``spec`` keys: ``kind`` (cloud, detections,
    tracks), ``topic`` and the fields of that kind (see the benchmark's schedule)."""
    from mobility_twin.ros.cdr import (
        DetectionTable,
        Provenance,
        TrackTable,
        encode_detections,
        encode_tracks,
        seconds_to_ns,
    )
    from mobility_twin_msgs.msg import DetectedObjectArray, TrackedObjectArray

    stamp = now + float(spec.get("stamp_offset_s", 0.0))
    ns = seconds_to_ns(stamp)
    kind = spec["kind"]
    if kind == "cloud":
        from sensor_msgs.msg import PointCloud2, PointField

        n = int(spec.get("points", 100))
        msg = PointCloud2(height=1, width=n, is_bigendian=False, point_step=4, row_step=4 * n, is_dense=True,
                          data=bytes(4 * n),
                          fields=[PointField(name=c, offset=4 * k, datatype=PointField.FLOAT32, count=1)
                                  for k, c in enumerate("xyz")])
        msg.header.frame_id = spec["frame_id"]
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(ns, 1_000_000_000)
        return PointCloud2, msg
    xy = np.array([[_position(v) for v in p] for p in spec["positions"]], dtype=float).reshape(-1, 2)
    n = len(xy)
    vx, vy = (float(v) for v in spec.get("velocity", (0.0, 0.0)))
    if kind == "detections":
        rec = DetectionTable.allocate(n)
        rec["px"], rec["py"], rec["pz"] = xy[:, 0], xy[:, 1], 0.75
        rec["pose_cov"][:, 0] = rec["pose_cov"][:, 7] = 0.04
        rec["vx"], rec["vy"] = vx, vy
        rec["twist_cov"][:, 0] = rec["twist_cov"][:, 7] = 0.09
        rec["has_twist"] = int(bool(vx or vy))
        rec["length"], rec["width"], rec["height"] = 4.5, 1.8, 1.5
        rec["confidence"], rec["num_points"], rec["object_class"] = 0.9, 50, 1
        source = spec["source_id"]
        ids = [spec.get("self_report_id", "")] * n
        pose = tuple(float(v) for v in spec["sensor_pose"])
        table = DetectionTable(ns, "map", source, int(spec.get("source_type", 0)), pose, float(spec.get("range", 80.0)),
                               rec, ids, Provenance(source, ns, ()))
        return DetectedObjectArray, encode_detections(table)
    if kind == "tracks":
        rec = TrackTable.allocate(n)
        rec["track_id"] = np.arange(n) + int(spec.get("first_track_id", 900_000))
        rec["object_class"], rec["state"], rec["existence"] = 1, 1, 0.95
        rec["px"], rec["py"] = xy[:, 0], xy[:, 1]
        rec["pose_cov"][:, 0] = rec["pose_cov"][:, 7] = 0.25
        rec["vx"], rec["vy"] = vx, vy
        rec["twist_cov"][:, 0] = rec["twist_cov"][:, 7] = 1.0
        rec["state_cov"][:] = np.diag([0.25, 0.25, 1.0, 1.0]).reshape(-1)
        rec["length"], rec["width"], rec["height"] = 4.5, 1.8, 1.5
        rec["lm_sec"], rec["lm_nanosec"] = divmod(ns, 1_000_000_000)
        table = TrackTable(ns, "map", spec["twin_id"], rec, [[f"chaos/{spec['case']}"]] * n, [spec.get("site_id", "")] * n,
                           [""] * n, [])
        return TrackedObjectArray, encode_tracks(table)
    raise ValueError(f"unknown bad-input kind {kind!r}")


def _qos_for(topic: str):
    from mobility_twin.ros.qos import SENSOR_STREAM, TWIN_STATE

    return SENSOR_STREAM if topic.endswith("/points") else TWIN_STATE


def _target_matched(node, pub, topic: str, target: str) -> bool:
    """Whether the node ``target`` (its full name; "" = any) subscribes to ``topic`` and every subscription
    discovered on the topic is matched with ``pub`` (messages are volatile: one sent before the target
    matched never reaches it)."""
    infos = node.get_subscriptions_info_by_topic(topic)
    names = {f"{i.node_namespace.rstrip('/')}/{i.node_name}" for i in infos}
    return bool(infos) and (not target or target in names) and pub.get_subscription_count() >= len(infos)


def inject(spec: dict, *, repeat: int = 3, period_s: float = 0.3, match_timeout_s: float = 15.0) -> dict:
    """Publish the case ``spec`` ``repeat`` times once its target node (``spec["target_node"]``, its full
    name) subscribes and is matched; what was sent."""
    import rclpy

    rclpy.init(args=[])
    node = rclpy.create_node(f"chaos_injector_{int(time.time() * 1000) % 100000}")
    try:
        msg_type, _ = build_message(spec, time.time())
        pub = node.create_publisher(msg_type, spec["topic"], _qos_for(spec["topic"]))
        target = spec.get("target_node", "")
        end = time.monotonic() + match_timeout_s
        while not _target_matched(node, pub, spec["topic"], target) and time.monotonic() < end:
            rclpy.spin_once(node, timeout_sec=0.05)
        matched = pub.get_subscription_count()
        target_matched = _target_matched(node, pub, spec["topic"], target)
        sent = []
        for _ in range(repeat):
            now = time.time()
            pub.publish(build_message(spec, now)[1])
            sent.append(now)
            rclpy.spin_once(node, timeout_sec=period_s)
        deadline = time.monotonic() + 1.0  # let the reliable writer deliver
        while time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.05)
        return {"case": spec["case"], "topic": spec["topic"], "subscribers": matched, "target": target,
                "target_matched": target_matched, "sent": sent}
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


def collect(layout_path: str, spool: str, duration_s: float) -> int:
    """Spool the run into ``spool`` until SIGINT/SIGTERM or ``duration_s``; one progress line a second."""
    from mobility_twin.evaluation.live import RunCollector
    from mobility_twin.ros import topics
    from mobility_twin.ros.cdr import CdrError, decode_tracks
    from mobility_twin.ros.qos import TWIN_STATE
    from mobility_twin_core.layout_io import load_layout
    from mobility_twin_msgs.msg import TrackedObjectArray

    stop = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.append(True))
    collector = RunCollector(load_layout(layout_path), spool, record_others=True)
    last: list[bytes] = [b""]
    collector.node.create_subscription(TrackedObjectArray, topics.GLOBAL_OBJECTS,
                                       lambda data: last.__setitem__(0, data), TWIN_STATE, raw=True)
    end = time.monotonic() + duration_s
    try:
        while not stop and time.monotonic() < end:
            collector.spin(1.0)
            n = -1
            if last[0]:
                try:
                    n = len(decode_tracks(last[0]))
                except CdrError:
                    n = -1
            print(json.dumps({"t": time.time(), "received": dict(collector.received), "global_tracks": n}), flush=True)
    finally:
        collector.close({"run": "mtwin bench chaos"})
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mobility_twin_bench.chaos_agent", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="what", required=True)
    c = sub.add_parser("collect")
    c.add_argument("--layout", required=True)
    c.add_argument("--spool", required=True)
    c.add_argument("--duration", type=float, default=3600.0)
    i = sub.add_parser("inject")
    i.add_argument("--spec", required=True, help="the case as JSON")
    i.add_argument("--repeat", type=int, default=3)
    args = p.parse_args(argv)
    if args.what == "collect":
        return collect(args.layout, args.spool, args.duration)
    spec = json.loads(args.spec)
    if spec.get("case") not in CASES:
        print(f"unknown case {spec.get('case')!r}: one of {', '.join(CASES)}", file=sys.stderr)
        return 2
    print(json.dumps(inject(spec, repeat=args.repeat)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

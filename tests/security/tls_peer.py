"""A process standing for a local twin (``pub``) or the global twin (``sub``) in the TLS host tests.

``pub`` publishes TrackedObjectArray on a local twin's topic, every message claiming ``twin_id`` of that
site and carrying its sender's label in ``objects[0].vehicle_id``; it prints ``{"sent": N}``. ``sub`` counts,
per label, what arrives on the topic for ``--duration`` seconds and writes ``{"counts": ..., "first_s": ...}``
to ``--out``. Its transport is whatever FASTDDS_DEFAULT_PROFILES_FILE says (TLS profile or not), or, with
MTWIN_TLS_HOST_DIR set, a profile of that host claimed as the nodes' entry point does.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["pub", "sub"])
    parser.add_argument("--topic", default="/twin/local/site_x/objects")
    parser.add_argument("--label", default="peer")
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)

    from mobility_twin.security import use_host_profile

    use_host_profile()  # with MTWIN_TLS_HOST_DIR set: a TLS profile with a port of its own, as a node's entry point does
    import rclpy

    from mobility_twin.ros.qos import TWIN_STATE
    from mobility_twin_msgs.msg import TrackedObject, TrackedObjectArray

    rclpy.init(args=[])
    node = rclpy.create_node(f"tls_{args.mode}_{args.label}".replace("-", "_"))
    start = time.monotonic()
    try:
        if args.mode == "pub":
            pub = node.create_publisher(TrackedObjectArray, args.topic, TWIN_STATE)
            sent = 0
            while sent < args.count:
                msg = TrackedObjectArray()
                msg.header.stamp = node.get_clock().now().to_msg()
                msg.header.frame_id = "map"
                msg.twin_id = "local/site_x"
                obj = TrackedObject()
                obj.track_id = sent
                obj.state = TrackedObject.STATE_CONFIRMED
                obj.existence_probability = 1.0
                obj.vehicle_id = args.label
                obj.sources = [args.label]
                msg.objects = [obj]
                pub.publish(msg)
                sent += 1
                rclpy.spin_once(node, timeout_sec=max(0.0, start + sent / args.rate - time.monotonic()))
            print(json.dumps({"sent": sent}), flush=True)
        else:
            counts: dict[str, int] = {}
            first: dict[str, float] = {}

            def record(msg: TrackedObjectArray) -> None:
                label = msg.objects[0].vehicle_id if msg.objects else "?"
                counts[label] = counts.get(label, 0) + 1
                first.setdefault(label, round(time.monotonic() - start, 2))

            node.create_subscription(TrackedObjectArray, args.topic, record, TWIN_STATE)
            while time.monotonic() - start < args.duration:
                rclpy.spin_once(node, timeout_sec=0.1)
            result = json.dumps({"counts": counts, "first_s": first})
            if args.out:
                args.out.write_text(result + "\n")
            print(result, flush=True)
    except KeyboardInterrupt:
        return 130
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())

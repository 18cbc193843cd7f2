"""`mtwin topic list | hz | echo`: look at the live ROS graph (the `ros2 topic` of this install)."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time

from mobility_twin.cli import add_verb, help_without_verb


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("topic", help="list topics, measure their rate and latency, print messages",
                       description="Inspect the live ROS graph (what `ros2 topic` does on a full install).")
    verbs = p.add_subparsers(dest="verb", metavar="VERB")
    lst = add_verb(verbs, "list", run_list, help="topics and their types",
                   description="List the topics seen on the graph.")
    lst.add_argument("--wait", type=float, default=2.0, metavar="S", help="discovery time (default 2 s)")
    hz = add_verb(
        verbs, "hz", run_hz, help="message rate, and latency (now - header.stamp) for stamped messages",
        description="Count messages for --duration seconds; report the rate, and for messages with a header the "
        "latency from header.stamp to arrival (meaningful when stamps are wall-clock time, e.g. replay --hil).",
    )
    hz.add_argument("topic")
    hz.add_argument("--type", help="message type, e.g. sensor_msgs/msg/PointCloud2 (default: from the graph)")
    hz.add_argument("--duration", type=float, default=5.0, metavar="S")
    hz.add_argument("--json", action="store_true", help="print the result as JSON")
    echo = add_verb(verbs, "echo", run_echo, help="print messages", description="Print messages of a topic.")
    echo.add_argument("topic")
    echo.add_argument("--type", help="message type (default: from the graph)")
    echo.add_argument("--count", type=int, default=1, help="messages to print (default 1)")
    echo.add_argument("--timeout", type=float, default=10.0, metavar="S")

    help_without_verb(p)


def _message_class(type_name: str):
    parts = type_name.split("/")
    if len(parts) == 2:
        parts = [parts[0], "msg", parts[1]]
    if len(parts) != 3:
        raise SystemExit(f"message type {type_name!r}: expected package/msg/Type")
    try:
        return getattr(importlib.import_module(f"{parts[0]}.{parts[1]}"), parts[2])
    except (ImportError, AttributeError):
        raise SystemExit(f"message type {type_name!r} is not installed here") from None


class _Graph:
    def __init__(self) -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        rclpy.init(args=[])
        self.node = rclpy.create_node(f"mtwin_topic_{int(time.time() * 1000) % 100000}")
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)

    def spin(self, seconds: float, until=None) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end and not (until and until()):
            self.executor.spin_once(timeout_sec=0.05)

    def type_of(self, topic: str, given: str | None, wait: float = 5.0):
        if given:
            return _message_class(given)
        end = time.monotonic() + wait
        while time.monotonic() < end:
            types = dict(self.node.get_topic_names_and_types())
            if topic in types:
                return _message_class(types[topic][0])
            self.spin(0.2)
        raise SystemExit(f"topic {topic} not seen on the graph within {wait:g} s (give --type to wait for it)")

    def subscribe(self, topic: str, msg_type, callback):
        from rclpy.qos import QoSProfile, ReliabilityPolicy

        # best effort matches both reliable and best-effort publishers
        self.node.create_subscription(msg_type, topic, callback, QoSProfile(depth=50,
                                      reliability=ReliabilityPolicy.BEST_EFFORT))

    def close(self) -> None:
        import rclpy

        self.node.destroy_node()
        rclpy.try_shutdown()


def run_list(args: argparse.Namespace) -> int:
    g = _Graph()
    try:
        g.spin(args.wait)
        for name, types in sorted(g.node.get_topic_names_and_types()):
            print(f"{name} [{', '.join(types)}]")
    finally:
        g.close()
    return 0


def run_hz(args: argparse.Namespace) -> int:
    g = _Graph()
    try:
        msg_type = g.type_of(args.topic, args.type)
        arrivals: list[float] = []
        latencies: list[float] = []

        def on_msg(msg) -> None:
            now = time.time()
            arrivals.append(now)
            header = getattr(msg, "header", None)
            if header is not None:
                latencies.append(now - (header.stamp.sec + header.stamp.nanosec * 1e-9))

        g.subscribe(args.topic, msg_type, on_msg)
        g.spin(args.duration)
    finally:
        g.close()
    result = {"topic": args.topic, "messages": len(arrivals), "duration_s": args.duration}
    if len(arrivals) >= 2:
        result["rate_hz"] = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])
    if latencies:
        lat = sorted(latencies)
        result["latency_ms"] = {"p50": 1000 * lat[len(lat) // 2], "p99": 1000 * lat[min(len(lat) - 1,
                                int(0.99 * len(lat)))], "max": 1000 * lat[-1]}
    if args.json:
        print(json.dumps(result))
    else:
        rate = f"{result['rate_hz']:.2f} Hz" if "rate_hz" in result else "n/a"
        print(f"{args.topic}: {len(arrivals)} messages in {args.duration:g} s, rate {rate}")
        if latencies:
            lat = result["latency_ms"]
            print(f"  latency from header.stamp: p50 {lat['p50']:.1f} ms, p99 {lat['p99']:.1f} ms, "
                  f"max {lat['max']:.1f} ms")
    return 0 if arrivals else 1


def run_echo(args: argparse.Namespace) -> int:
    g = _Graph()
    got: list = []
    try:
        msg_type = g.type_of(args.topic, args.type, wait=args.timeout)
        g.subscribe(args.topic, msg_type, got.append)
        g.spin(args.timeout, until=lambda: len(got) >= args.count)
    finally:
        g.close()
    for msg in got[: args.count]:
        print(msg)
        print("---")
    if not got:
        print(f"no message on {args.topic} within {args.timeout:g} s", file=sys.stderr)
        return 1
    return 0

"""`mtwin snapshot`: a PNG picture of the twin (map, coverage, tracks with trails, servers, links).

``--live`` listens to the running stack for ``--duration`` seconds (the trails are the tracks' history
over that time) and renders what it saw with :func:`mobility_twin.viz.snapshot.render`; ``--recording``
draws the twin of an MCAP recording as it was ``--at`` seconds into it (default: at its end), with the
trails of the ``--duration`` seconds before.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size {text!r}: expected WIDTHxHEIGHT in pixels, e.g. 1800x1000") from None
    return w, h


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "snapshot", help="render the twin to a PNG (live topics or a recording)",
        description="Render a picture of the twin: the map, site and RSU coverage, tracks as boxes with their "
        "trails and ids, edge servers with their load, offloading links, migrations (and the ground truth, faintly, "
        "with --ground-truth). Uses ROS_DOMAIN_ID like every node.",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--live", action="store_true", help="listen to the running stack's topics")
    source.add_argument("--recording", type=Path, metavar="FILE.mcap", help="draw the twin of a recording")
    p.add_argument("--duration", type=float, default=5.0, metavar="S",
                   help="with --live: listen this long; the trails cover this time (default 5); with --recording: "
                   "the trails cover the S seconds before --at")
    p.add_argument("--at", type=float, default=None, metavar="S",
                   help="with --recording: the moment to draw, S seconds into the recording (default: its end)")
    p.add_argument("--out", type=Path, default=Path("twin_snapshot.png"), metavar="FILE.png",
                   help="output PNG (default twin_snapshot.png)")
    p.add_argument("--objects", default="", metavar="TOPIC",
                   help="TrackedObjectArray to draw (default /twin/global/objects; a local twin's works too)")
    p.add_argument("--ground-truth", action="store_true", help="also draw /sim/ground_truth (simulation)")
    p.add_argument("--network", default="", help="with --recording: the road network the CAVs' guided routes are "
                   "drawn on (a SUMO world's, e.g. beijing_cbd; default: no routes)")
    p.add_argument("--size", type=_size, default=(1800, 1000), metavar="WxH", help="image size (default 1800x1000)")
    p.add_argument("--title", default="", help="title (default: scenario, time and counts)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.duration <= 0:
        print("mtwin snapshot: --duration must be positive", file=sys.stderr)
        return 2
    from mobility_twin.viz.snapshot import SnapshotError, render

    if args.recording is not None:
        from mobility_twin.recording import RecordingError
        from mobility_twin.ros import topics
        from mobility_twin.ros.entry import ConfigurationError
        from mobility_twin.viz.builder import BuilderConfig, SceneBuilder
        from mobility_twin.viz.live import LiveTopics
        from mobility_twin.viz.recorded import feed_from_recording

        builder = SceneBuilder(BuilderConfig(trail_s=max(args.duration, 1.0)))
        names = LiveTopics(objects=args.objects or topics.GLOBAL_OBJECTS,
                           ground_truth=topics.GROUND_TRUTH if args.ground_truth else "", network=args.network)
        try:
            feed_from_recording(builder, args.recording, names, at_s=args.at, window_s=args.duration)
        except (RecordingError, ConfigurationError) as err:
            print(f"mtwin snapshot: {err}", file=sys.stderr)
            return 2
    else:
        builder = collect_live(args.duration, objects=args.objects, ground_truth=args.ground_truth)
    scene = builder.scene(title=args.title)
    try:
        path = render(scene, args.out, size_px=args.size)
    except SnapshotError as err:
        print(f"mtwin snapshot: {err}", file=sys.stderr)
        return 2
    tracks = 0 if scene.tracks is None else len(scene.tracks)
    print(f"mtwin snapshot: {path} ({tracks} tracks, {len(scene.servers)} servers, {len(scene.links)} links, "
          f"{builder.messages} messages in {args.duration:g} s)")
    if not builder.messages and args.live:
        print("mtwin snapshot: nothing was received: is the stack running on this ROS_DOMAIN_ID?", file=sys.stderr)
        return 1
    return 0


def collect_live(duration_s: float, *, objects: str = "", ground_truth: bool = False):
    """Listen to the live topics for ``duration_s`` and return the fed SceneBuilder."""
    import rclpy
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor

    from mobility_twin.ros import topics
    from mobility_twin.viz.builder import BuilderConfig, SceneBuilder
    from mobility_twin.viz.live import LiveScene, LiveTopics

    names = LiveTopics(objects=objects or topics.GLOBAL_OBJECTS,
                       ground_truth=topics.GROUND_TRUTH if ground_truth else "")
    builder = SceneBuilder(BuilderConfig(trail_s=max(duration_s, 1.0)))
    context = Context()
    rclpy.init(args=[], context=context)
    try:
        node = rclpy.create_node("mtwin_snapshot", context=context)
        LiveScene(node, builder, names)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        end = time.monotonic() + duration_s
        while time.monotonic() < end and context.ok():
            executor.spin_once(timeout_sec=0.05)
        node.destroy_node()
    finally:
        context.try_shutdown()
    return builder

"""`mtwin play FILE`: publish an MCAP recording back onto its topics (the `ros2 bag play` of this install).

Messages go out as recorded (raw CDR bytes: no message is rebuilt, custom types cost nothing), paced by
their log times scaled by --rate (0: as fast as possible), on the topics picked by --topics/--exclude
(names or regular expressions matched against the whole name), with each topic's QoS: its kind's
profile (sensor streams best effort, the layout latched, ...) with the reliability and durability its
publishers offered when it was recorded. --clock publishes /clock from the recording's log times (and
leaves out a recorded /clock), for nodes run with use_sim_time.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from mobility_twin.cli import command_error


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("play", help="publish an MCAP recording back onto its topics (rate, loop, topic selection)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", type=Path, help="the .mcap recording")
    p.add_argument("--rate", type=float, default=1.0, help="speed factor; 0 = as fast as possible (default 1)")
    p.add_argument("--loop", action="store_true", help="start again at the end, until Ctrl-C")
    p.add_argument("--topics", nargs="+", default=[], metavar="TOPIC",
                   help="play only these topics (names or regular expressions; default: all)")
    p.add_argument("--exclude", nargs="+", default=[], metavar="TOPIC", help="do not play these topics")
    p.add_argument("--clock", nargs="?", type=float, const=40.0, default=0.0, metavar="HZ",
                   help="publish /clock from the recording's log times at HZ (default 40 Hz)")
    p.add_argument("--start", type=float, default=0.0, metavar="S", help="start S seconds into the recording")
    p.add_argument("--delay", type=float, default=1.0, metavar="S",
                   help="wait S seconds after creating the publishers, for subscribers to match (default 1)")
    p.add_argument("--wait-for-subscribers", nargs="?", type=float, const=30.0, default=0.0, metavar="S",
                   help="before playing, wait (at most S s, default 30) until every played topic has a subscriber")
    p.add_argument("--info", action="store_true", help="print what the recording holds and exit")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    p.set_defaults(func=run)


class _Progress:
    def __init__(self, total_s: float, quiet: bool) -> None:
        self.total_s = total_s
        self.quiet = quiet
        self.tty = sys.stderr.isatty()
        self.last = 0.0

    def show(self, position_s: float, count: int, loop: int, *, force: bool = False) -> None:
        now = time.monotonic()
        if self.quiet or (not force and now - self.last < (0.25 if self.tty else 5.0)):
            return
        self.last = now
        pct = 100.0 * position_s / self.total_s if self.total_s > 0 else 100.0
        text = f"[play] {position_s:7.1f} / {self.total_s:.1f} s ({pct:3.0f}%)  {count} messages" + (
            f"  loop {loop + 1}" if loop else "")
        print(("\r" + text) if self.tty else text, end="" if self.tty else "\n", file=sys.stderr, flush=True)

    def done(self) -> None:
        if self.tty and not self.quiet:
            print(file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from mobility_twin.recording import Recording, RecordingError, TopicSelection

    try:
        recording = Recording(args.file)
    except RecordingError as err:
        return command_error("play", err)
    with recording:
        if args.info:
            print(recording.describe())
            return 0
        try:
            selection = TopicSelection(tuple(args.topics), tuple(args.exclude) + (("/clock",) if args.clock else ()))
        except RecordingError as err:
            return command_error("play", err)
        chosen = recording.select(selection)
        if not chosen:
            print(f"mtwin play: no topic of {args.file} is selected (it has: {', '.join(sorted(recording.topics))})",
                  file=sys.stderr)
            return 2
        return _play(recording, chosen, args)


def _play(recording, chosen: list[str], args: argparse.Namespace) -> int:
    import rclpy
    from rclpy.signals import SignalHandlerOptions
    from rosgraph_msgs.msg import Clock

    from mobility_twin.recording.playback import PlaybackClock
    from mobility_twin.ros.qos import CLOCK
    from mobility_twin.ros.recorder import message_class, publisher_qos

    rclpy.init(args=[], signal_handler_options=SignalHandlerOptions.NO)  # Ctrl-C: KeyboardInterrupt, handled here
    node = rclpy.create_node(f"mtwin_play_{int(time.time() * 1000) % 100000}")
    publishers = {}
    for topic in chosen:
        info = recording.topics[topic]
        try:
            publishers[topic] = node.create_publisher(message_class(info.type), topic,
                                                      publisher_qos(topic, info.offered_qos))
        except LookupError as err:
            print(f"mtwin play: skipping {topic}: {err}", file=sys.stderr)
    clock_pub = node.create_publisher(Clock, "/clock", CLOCK) if args.clock else None
    first_ns = recording.start_ns + round(args.start * 1e9)
    total_s = max(0.0, (recording.end_ns - first_ns) * 1e-9)
    progress = _Progress(total_s, args.quiet)
    count = loop = 0
    print(f"mtwin play: {args.file}: {len(publishers)} topics, {total_s:.1f} s at rate {args.rate:g}"
          + (", looping" if args.loop else ""), file=sys.stderr, flush=True)
    try:
        time.sleep(max(0.0, args.delay))
        if args.wait_for_subscribers > 0:
            _wait_for_subscribers(publishers, args.wait_for_subscribers)
        while True:
            clock = PlaybackClock(first_ns, time.monotonic(), args.rate)
            next_tick = clock.started
            for msg in recording.messages(list(publishers), start_ns=first_ns):
                due = clock.due(msg.log_time_ns)
                while True:
                    now = time.monotonic()
                    if clock_pub is not None and args.rate > 0 and now >= next_tick:
                        _publish_clock(clock_pub, Clock, clock.position_ns(now))
                        next_tick = now + 1.0 / args.clock
                    if now >= due:
                        break
                    time.sleep(min(due - now, 0.05, max(0.0, next_tick - now) if clock_pub else 0.05))
                    progress.show((clock.position_ns(time.monotonic()) - first_ns) * 1e-9, count, loop)
                if clock_pub is not None and args.rate == 0:
                    _publish_clock(clock_pub, Clock, msg.log_time_ns)
                publishers[msg.topic].publish(msg.data)
                count += 1
                if args.rate == 0:
                    progress.show((msg.log_time_ns - first_ns) * 1e-9, count, loop)
            progress.show(total_s, count, loop, force=True)
            if not args.loop:
                break
            loop += 1
        _wait_for_acks(publishers.values())
    except KeyboardInterrupt:
        progress.done()
        print(f"mtwin play: interrupted after {count} messages", file=sys.stderr)
        return 130
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    progress.done()
    print(f"mtwin play: published {count} messages", file=sys.stderr)
    return 0


def _publish_clock(pub, clock_type, ns: int) -> None:
    msg = clock_type()
    msg.clock.sec, msg.clock.nanosec = divmod(ns, 1_000_000_000)
    pub.publish(msg)


def _wait_for_acks(publishers, timeout_s: float = 5.0) -> None:
    """Until every reliable subscriber has acknowledged what we published (at most ``timeout_s`` in all): a
    writer destroyed before that takes unacknowledged messages with it, and a lost sample is repaired only
    after the writer's next heartbeat (seconds)."""
    from rclpy.duration import Duration

    end = time.monotonic() + timeout_s
    late = [p.topic_name for p in publishers
            if not p.wait_for_all_acked(Duration(nanoseconds=max(0, round((end - time.monotonic()) * 1e9))))]
    if late:
        print(f"mtwin play: not acknowledged within {timeout_s:g} s on {', '.join(late)}", file=sys.stderr)


def _wait_for_subscribers(publishers: dict, timeout_s: float, settle_s: float = 1.0) -> None:
    """Until every publisher has a subscriber, then a settling time more.

    Our writer sees a subscriber's reader before that reader has matched our writer, and a reliable volatile
    reader drops what comes from a writer it has not matched yet (a first message lost). The other side's
    discovery is as slow as ours was, so the settling time is at least as long as our own wait for the match
    (a loaded machine is slow on both sides), and never less than ``settle_s``."""
    started = time.monotonic()
    end = started + timeout_s
    while time.monotonic() < end:
        waiting = sorted(t for t, p in publishers.items() if p.get_subscription_count() == 0)
        if not waiting:
            time.sleep(max(settle_s, time.monotonic() - started))
            return
        time.sleep(0.05)
    print(f"mtwin play: no subscriber after {timeout_s:g} s on {', '.join(waiting)}: playing anyway", file=sys.stderr)

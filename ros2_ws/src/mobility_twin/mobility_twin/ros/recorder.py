"""Recording a live ROS graph into a RecordingWriter: topic discovery, raw subscriptions, QoS per topic.

A :class:`TopicRecorder` attaches to any node (the recorder node's own, or the evaluator's): every
``discovery_period_s`` it looks at the graph and subscribes, raw, to each selected topic that has a
publisher, with a QoS that matches what the publishers offer (as rosbag2 does: reliable only if every
publisher is reliable, so best-effort clouds are received; transient local only if every publisher is,
so the latched layout on /infrastructure/layout is received even when it was published before the
recorder started).
Topics that appear later are picked up at the next look. Messages are written as received.

Log times come from the node's clock: wall time, or sim time under ``use_sim_time`` (as rosbag2 records
with --use-sim-time). Messages that arrive before the first /clock (the latched layout, typically) are
held and logged at the first sim time seen, so that a recording never starts at time 0.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable

from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

from mobility_twin.recording import OfferedQos, RecordingError, RecordingWriter, TopicSelection
from mobility_twin.ros.qos import keep_last


def message_class(type_name: str):
    """The rclpy message class of ``pkg/msg/Type``; LookupError when it is not installed here."""
    parts = type_name.split("/")
    if len(parts) == 2:
        parts = [parts[0], "msg", parts[1]]
    try:
        return getattr(importlib.import_module(f"{parts[0]}.{parts[1]}"), parts[2])
    except (ImportError, AttributeError, IndexError):
        raise LookupError(f"message type {type_name!r} is not installed here") from None


def _ns(duration) -> int:
    return int(getattr(duration, "nanoseconds", 0) or 0)


def offered_qos(node: Node, topic: str) -> list[OfferedQos]:
    """What each publisher of ``topic`` offers, as seen on the graph."""
    out = []
    for info in node.get_publishers_info_by_topic(topic):
        q = info.qos_profile
        out.append(OfferedQos(history=int(q.history), depth=int(q.depth), reliability=int(q.reliability),
                              durability=int(q.durability), deadline_ns=_ns(q.deadline), lifespan_ns=_ns(q.lifespan),
                              liveliness=int(q.liveliness), liveliness_lease_ns=_ns(q.liveliness_lease_duration),
                              avoid_ros_namespace_conventions=bool(q.avoid_ros_namespace_conventions)))
    return out


def subscription_qos(offers: list[OfferedQos], depth: int = 100) -> QoSProfile:
    """A subscription QoS compatible with every offer: reliable / transient local only when all offer it."""
    reliable = bool(offers) and all(o.reliable for o in offers)
    latched = bool(offers) and all(o.latched for o in offers)
    return keep_last(depth, reliable=reliable, latched=latched)


def publisher_qos(topic: str, offers: list[OfferedQos] | tuple[OfferedQos, ...] = ()) -> QoSProfile:
    """The QoS to play ``topic`` back with: the named profile of its kind (sensor stream, twin state,
    events, latched, clock), with the reliability and durability the recorded publishers offered. A topic
    every recorded publisher offered transient local (the layout, or the /sim/world of older recordings)
    plays latched, keeping as many messages for late joiners as the deepest of them did."""
    from mobility_twin.ros import qos, topics

    if topic == topics.CLOCK:
        base = qos.CLOCK
    elif topic == topics.LAYOUT or (offers and all(o.latched for o in offers)):
        base = qos.LATCHED
    elif topic.endswith(("/points", "/odom")):
        base = qos.SENSOR_STREAM
    elif topic in (topics.OFFLOAD_DECISIONS, topics.MIGRATIONS):
        base = qos.EVENTS
    else:
        base = qos.TWIN_STATE
    profile = QoSProfile(history=base.history, depth=base.depth, reliability=base.reliability,
                         durability=base.durability)
    if offers and all(o.latched for o in offers):
        profile.depth = max(1, *(o.depth for o in offers))
    if offers:
        profile.reliability = ReliabilityPolicy.RELIABLE if all(o.reliable for o in offers) else \
            ReliabilityPolicy.BEST_EFFORT
        profile.durability = DurabilityPolicy.TRANSIENT_LOCAL if all(o.latched for o in offers) else \
            DurabilityPolicy.VOLATILE
    return profile


class TopicRecorder:
    """Records the selected topics of the graph ``node`` sees into ``writer``.

    Args:
        node: the node whose graph view, timer and subscriptions are used.
        writer: the open recording.
        selection: which topics (default: :meth:`TopicSelection.default`).
        skip: topics recorded by someone else through :meth:`write` (not subscribed here).
        discovery_period_s: how often to look for new topics (s).
        depth: queue depth of the subscriptions.
        use_node_clock: log times from the node's clock (sim time under ``use_sim_time``), else wall clock.
        discover: look for the selected topics on the graph; False: record only what :meth:`write` is given.
    """

    def __init__(self, node: Node, writer: RecordingWriter, selection: TopicSelection | None = None, *,
                 skip: set[str] | frozenset[str] = frozenset(), discovery_period_s: float = 0.5, depth: int = 100,
                 use_node_clock: bool = True, on_new_topic: Callable[[str, str], None] | None = None,
                 discover: bool = True) -> None:
        self.node = node
        self.writer = writer
        self.selection = selection or TopicSelection.default()
        self.skip = set(skip)
        self.depth = depth
        self.use_node_clock = use_node_clock
        self.on_new_topic = on_new_topic
        self.subscriptions: dict[str, object] = {}
        self.ignored: dict[str, str] = {}  # topic -> why it is not recorded
        self._last_ns = 0
        self._early: list[tuple[str, bytes]] = []  # received before the node's clock started (sim time)
        self.closed = False
        self.timer = None
        if discover:
            self.discover()
            self.timer = node.create_timer(discovery_period_s, self.discover,
                                           clock=Clock(clock_type=ClockType.STEADY_TIME))

    def now_ns(self) -> int:
        """Receive time: the node's clock (or wall clock), never going backwards within a recording."""
        t = self.node.get_clock().now().nanoseconds if self.use_node_clock else time.time_ns()
        self._last_ns = max(self._last_ns, t)
        return self._last_ns

    def discover(self) -> None:
        if self.closed:
            return
        for topic, types in self.node.get_topic_names_and_types():
            if topic in self.subscriptions or topic in self.skip or topic in self.ignored or not self.selection(topic):
                continue
            if len(types) != 1:
                self._ignore(topic, f"{len(types)} types on the graph ({', '.join(types)})")
                continue
            offers = offered_qos(self.node, topic)
            if not offers:
                continue  # only subscribers so far: wait for a publisher to know its QoS
            try:
                msg_type = message_class(types[0])
                self.writer.add_topic(topic, types[0], offered_qos=offers)
            except (LookupError, RecordingError) as err:
                self._ignore(topic, str(err))
                continue
            self.subscriptions[topic] = self.node.create_subscription(
                msg_type, topic, lambda data, t=topic: self._on_message(t, data), subscription_qos(offers, self.depth),
                raw=True)
            if self.on_new_topic:
                self.on_new_topic(topic, types[0])

    def _ignore(self, topic: str, why: str) -> None:
        self.ignored[topic] = why
        self.node.get_logger().warning(f"not recording {topic}: {why}")

    def _log(self, topic: str, data: bytes) -> None:
        t = self.now_ns()
        if t == 0:  # sim time before the first /clock
            self._early.append((topic, data))
            return
        for early in self._early:
            self.writer.write(*early, t)
        self._early.clear()
        self.writer.write(topic, data, t)

    def _on_message(self, topic: str, data: bytes) -> None:
        if not self.closed:
            self._log(topic, data)

    def write(self, topic: str, type_name: str, data: bytes) -> None:
        """Record a message received by another subscription of the node (a topic in ``skip``)."""
        if self.closed:
            return
        if not self.writer.has_topic(topic):
            self.writer.add_topic(topic, type_name, offered_qos=offered_qos(self.node, topic))
        self._log(topic, data)

    def close(self) -> None:
        """Stop recording (the writer stays open: its owner closes it)."""
        if self.closed:
            return
        self.closed = True
        for early in self._early:  # the clock never started: wall time
            self.writer.write(*early, time.time_ns())
        self._early.clear()
        if self.timer is not None:
            self.node.destroy_timer(self.timer)
        for sub in self.subscriptions.values():
            self.node.destroy_subscription(sub)

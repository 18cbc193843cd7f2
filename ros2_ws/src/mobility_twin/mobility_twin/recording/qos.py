"""Offered QoS profiles as rosbag2 stores them per MCAP channel (``offered_qos_profiles`` metadata).

rosbag2 keeps, for every recorded topic, the QoS each publisher offered, so that playback offers the
same (a latched topic replays latched, a best-effort stream best effort). The YAML is written and read
by rosbags (``rosbags.rosbag2.metadata``): written with the integer policy values of rosbag2's metadata
version 8, the version our files declare in their ``rosbag2`` metadata record; read in that form or with
the names of version 9 and later (``reliable``, ``transient_local``, ...). A policy rosbags cannot place
is an error here. ROS-free: policies are rmw's enum values.
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml
from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime
from rosbags.rosbag2.errors import ReaderError
from rosbags.rosbag2.metadata import dump_qos_v8
from rosbags.rosbag2.metadata import parse_qos as _rosbags_parse_qos

from mobility_twin.recording.errors import RecordingError

# rmw enum values (rmw/types.h)
SYSTEM_DEFAULT, KEEP_LAST, KEEP_ALL, UNKNOWN = 0, 1, 2, 3
RELIABLE, BEST_EFFORT = 1, 2
TRANSIENT_LOCAL, VOLATILE = 1, 2
AUTOMATIC, MANUAL_BY_TOPIC = 1, 3


@dataclass(frozen=True)
class OfferedQos:
    """One publisher's QoS. Durations in ns (0: the rmw default)."""

    history: int = KEEP_LAST
    depth: int = 10
    reliability: int = RELIABLE
    durability: int = VOLATILE
    deadline_ns: int = 0
    lifespan_ns: int = 0
    liveliness: int = AUTOMATIC
    liveliness_lease_ns: int = 0
    avoid_ros_namespace_conventions: bool = False

    @property
    def reliable(self) -> bool:
        return self.reliability == RELIABLE

    @property
    def latched(self) -> bool:
        return self.durability == TRANSIENT_LOCAL


def _time(ns: int) -> QosTime:
    sec, nsec = divmod(max(0, int(ns)), 1_000_000_000)
    return QosTime(sec, nsec)


def _ns(value: QosTime) -> int:
    return int(value.sec) * 1_000_000_000 + int(value.nsec)


def to_rosbags(p: OfferedQos) -> Qos:
    """The rosbags form of an offered profile."""
    return Qos(QosHistory(p.history), p.depth, QosReliability(p.reliability), QosDurability(p.durability),
               _time(p.deadline_ns), _time(p.lifespan_ns), QosLiveliness(p.liveliness),
               _time(p.liveliness_lease_ns), bool(p.avoid_ros_namespace_conventions))


def from_rosbags(q: Qos) -> OfferedQos:
    return OfferedQos(history=q.history.value, depth=int(q.depth), reliability=q.reliability.value,
                      durability=q.durability.value, deadline_ns=_ns(q.deadline), lifespan_ns=_ns(q.lifespan),
                      liveliness=q.liveliness.value, liveliness_lease_ns=_ns(q.liveliness_lease_duration),
                      avoid_ros_namespace_conventions=bool(q.avoid_ros_namespace_conventions))


def serialize_qos(profiles: list[OfferedQos] | tuple[OfferedQos, ...]) -> str:
    """The ``offered_qos_profiles`` YAML of a channel, rosbag2 version 8 ("" for none, as rosbag2 writes it)."""
    try:
        return dump_qos_v8([to_rosbags(p) for p in profiles])
    except ValueError as err:  # a policy value rmw does not have
        raise RecordingError(f"offered QoS cannot be written: {err}") from None


_POLICIES = {"history": QosHistory, "reliability": QosReliability, "durability": QosDurability,
             "liveliness": QosLiveliness}


def _check_policies(items) -> None:
    """Every policy an rmw value (int) or name, as rosbag2 writes them (rosbags reads anything else as
    'unknown': here it is an error)."""
    if not isinstance(items, list):
        raise TypeError(f"expected a list of profiles, got {type(items).__name__}")
    for item in items:
        for name, enum in _POLICIES.items():
            value = item[name]
            known = value in {m.value for m in enum} if isinstance(value, int) and not isinstance(value, bool) \
                else str(value).upper() in enum.__members__
            if not known:
                raise ValueError(f"{name}: {value!r} is not a {name} policy")


def parse_qos(text: str) -> list[OfferedQos]:
    """The profiles of an ``offered_qos_profiles`` YAML (integer or named policies)."""
    if not text or not text.strip():
        return []
    try:
        items = yaml.safe_load(text)
        _check_policies(items)
        parsed = _rosbags_parse_qos(items)
    except (yaml.YAMLError, ReaderError, AttributeError, KeyError, TypeError, ValueError) as err:
        raise RecordingError(f"offered_qos_profiles not understood: {err}: {text[:200]!r}") from None
    return [from_rosbags(q) for q in parsed]

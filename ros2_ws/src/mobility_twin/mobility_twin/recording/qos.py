"""Offered QoS profiles as rosbag2 stores them per MCAP channel (``offered_qos_profiles`` metadata).

rosbag2 keeps, for every recorded topic, the QoS each publisher offered, so that playback offers the
same (a latched topic replays latched, a best-effort stream best effort). The YAML here uses the integer
policy values of rosbag2's metadata version 8, the version our files declare in their ``rosbag2``
metadata record (rosbag2 reads the policies as integers or as names according to that version); the
parser also takes the names of version 9 and later (``reliable``, ``transient_local``, ...). ROS-free:
policies are rmw's enum values.
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from mobility_twin.recording.errors import RecordingError

# rmw enum values (rmw/types.h)
SYSTEM_DEFAULT, KEEP_LAST, KEEP_ALL, UNKNOWN = 0, 1, 2, 3
RELIABLE, BEST_EFFORT = 1, 2
TRANSIENT_LOCAL, VOLATILE = 1, 2
AUTOMATIC, MANUAL_BY_TOPIC = 1, 3

_NAMES = {
    "history": {"system_default": 0, "keep_last": 1, "keep_all": 2, "unknown": 3},
    "reliability": {"system_default": 0, "reliable": 1, "best_effort": 2, "unknown": 3, "best_available": 4},
    "durability": {"system_default": 0, "transient_local": 1, "volatile": 2, "unknown": 3, "best_available": 4},
    "liveliness": {"system_default": 0, "automatic": 1, "manual_by_topic": 3, "unknown": 4, "best_available": 5},
}


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


def _duration(ns: int) -> dict:
    sec, nsec = divmod(max(0, int(ns)), 1_000_000_000)
    return {"sec": sec, "nsec": nsec}


def serialize_qos(profiles: list[OfferedQos] | tuple[OfferedQos, ...]) -> str:
    """The ``offered_qos_profiles`` YAML of a channel ("" for none, as rosbag2 writes it)."""
    if not profiles:
        return ""
    return yaml.safe_dump([{
        "history": p.history, "depth": p.depth, "reliability": p.reliability, "durability": p.durability,
        "deadline": _duration(p.deadline_ns), "lifespan": _duration(p.lifespan_ns), "liveliness": p.liveliness,
        "liveliness_lease_duration": _duration(p.liveliness_lease_ns),
        "avoid_ros_namespace_conventions": p.avoid_ros_namespace_conventions,
    } for p in profiles], sort_keys=False)


def _policy(kind: str, value) -> int:
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, int):
        return value
    return _NAMES[kind][str(value).lower()]


def _ns(value) -> int:
    if not value:
        return 0
    return int(value.get("sec", 0)) * 1_000_000_000 + int(value.get("nsec", 0))


def parse_qos(text: str) -> list[OfferedQos]:
    """The profiles of an ``offered_qos_profiles`` YAML (integer or named policies)."""
    if not text or not text.strip():
        return []
    try:
        items = yaml.safe_load(text)
        return [OfferedQos(
            history=_policy("history", item.get("history", KEEP_LAST)), depth=int(item.get("depth", 0)),
            reliability=_policy("reliability", item.get("reliability", RELIABLE)),
            durability=_policy("durability", item.get("durability", VOLATILE)),
            deadline_ns=_ns(item.get("deadline")), lifespan_ns=_ns(item.get("lifespan")),
            liveliness=_policy("liveliness", item.get("liveliness", AUTOMATIC)),
            liveliness_lease_ns=_ns(item.get("liveliness_lease_duration")),
            avoid_ros_namespace_conventions=bool(item.get("avoid_ros_namespace_conventions", False)),
        ) for item in items or []]
    except (yaml.YAMLError, AttributeError, KeyError, TypeError, ValueError) as err:
        raise RecordingError(f"offered_qos_profiles not understood: {err}: {text[:200]!r}") from None

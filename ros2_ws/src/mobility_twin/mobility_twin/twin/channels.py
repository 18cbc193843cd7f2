"""Input channels of a local twin: which topics carry detections, from whom, and how far to trust them.

Sensors are declared in YAML (``config/input_channels.yaml``), not in code, as Autoware's tracker declares
its input channels: adding a sensor type is adding an entry. Each channel names

* ``topic``: a pattern with ``{id}`` replaced by each member's id (``/rsu/{id}/detections``);
* ``members``: whose topics the twin subscribes to: the site's ``rsus``, ``edge_servers`` (from the
  layout), every ``cavs`` of the layout, or an explicit ``ids`` list;
* ``source_id``: the pattern of the source id a frame on that topic must carry (default ``{id}``): a frame
  claiming another source is refused and counted, so a topic cannot speak for another sensor;
* ``entity_kind``: what the member is in the twin (``rsu``, ``cav``, ``edge_server``, ``vehicle``);
* ``may_spawn_tracks``: whether its detections may start tracks (false: they only update existing ones);
* ``moving``: the sensor moves (a vehicle): its frames are fused only while it is inside the site's area
  plus ``area_margin_m``;
* ``position_sigma_m``: a floor on the standard deviation of its positions (m; 0 keeps the covariance the
  detections carry);
* ``systematic_share``: the share of its position covariance that is the same error in every frame of the
  same vehicle (a LiDAR box completed from the faces the sensor sees; a GNSS receiver's slowly varying error):
  the twin's tracks carry it on in the covariance they publish instead of averaging it away (0: white noise).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mobility_twin_core import EntityKind, LayoutError
from mobility_twin_core.layout_io import read_section

MEMBERS = ("rsus", "cavs", "edge_servers", "ids")
KINDS = {"rsu": EntityKind.RSU, "cav": EntityKind.CAV, "edge_server": EntityKind.EDGE_SERVER,
         "vehicle": EntityKind.VEHICLE}
_KEYS = {"topic", "members", "ids", "source_id", "entity_kind", "may_spawn_tracks", "moving", "position_sigma_m",
         "systematic_share"}


class ChannelError(LayoutError):
    """An input-channel file that cannot be used (the message names the channel and key)."""


@dataclass(frozen=True)
class InputChannel:
    name: str
    topic: str
    members: str
    entity_kind: EntityKind
    ids: tuple[str, ...] = ()
    source_id: str = "{id}"
    may_spawn_tracks: bool = True
    moving: bool = False
    position_sigma_m: float = 0.0
    systematic_share: float = 0.0

    def topic_of(self, member: str) -> str:
        return self.topic.format(id=member)

    def source_of(self, member: str) -> str:
        return self.source_id.format(id=member)


def channels_from_dict(data: dict, *, source: str = "input_channels") -> tuple[InputChannel, ...]:
    if not isinstance(data, dict) or not data:
        raise ChannelError(f"{source}: expected a mapping of channel name -> settings")
    out = []
    for name, entry in data.items():
        where = f"{source}.{name}"
        if not isinstance(entry, dict):
            raise ChannelError(f"{where}: expected a mapping")
        unknown = set(entry) - _KEYS
        if unknown:
            raise ChannelError(f"{where}: unknown key(s) {sorted(unknown)} (known: {sorted(_KEYS)})")
        topic = entry.get("topic")
        if not isinstance(topic, str) or "{id}" not in topic:
            raise ChannelError(f"{where}.topic: expected a topic pattern with {{id}}, got {topic!r}")
        members = entry.get("members", "ids" if "ids" in entry else None)
        if members not in MEMBERS:
            raise ChannelError(f"{where}.members: expected one of {list(MEMBERS)}, got {members!r}")
        ids = entry.get("ids", [])
        if members == "ids" and (not isinstance(ids, list) or not ids or not all(isinstance(i, str) and i for i in ids)):
            raise ChannelError(f"{where}.ids: expected a non-empty list of ids")
        kind = entry.get("entity_kind")
        if kind not in KINDS:
            raise ChannelError(f"{where}.entity_kind: expected one of {sorted(KINDS)}, got {kind!r}")
        source_id = entry.get("source_id", "{id}")
        if not isinstance(source_id, str) or "{id}" not in source_id:
            raise ChannelError(f"{where}.source_id: expected a pattern with {{id}}, got {source_id!r}")
        flags = {}
        for key in ("may_spawn_tracks", "moving"):
            value = entry.get(key, key == "may_spawn_tracks")
            if not isinstance(value, bool):
                raise ChannelError(f"{where}.{key}: expected true or false, got {value!r}")
            flags[key] = value
        sigma = entry.get("position_sigma_m", 0.0)
        if isinstance(sigma, bool) or not isinstance(sigma, int | float) or not 0.0 <= float(sigma) < 1e3:
            raise ChannelError(f"{where}.position_sigma_m: expected a number in [0, 1000), got {sigma!r}")
        share = entry.get("systematic_share", 0.0)
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0.0 <= float(share) <= 1.0:
            raise ChannelError(f"{where}.systematic_share: expected a number in [0, 1], got {share!r}")
        out.append(InputChannel(str(name), topic, members, KINDS[kind], tuple(ids), source_id,
                                flags["may_spawn_tracks"], flags["moving"], float(sigma), float(share)))
    topics = [c.topic for c in out]
    if len(set(topics)) != len(topics):
        raise ChannelError(f"{source}: two channels share a topic pattern ({topics})")
    return tuple(out)


def load_channels(path: str | Path) -> tuple[InputChannel, ...]:
    """The channels of an input-channel file (YAML with a top-level ``input_channels:`` mapping)."""
    section, source = read_section(path, "input_channels", "input-channel file", ChannelError)
    return channels_from_dict(section, source=source)


def default_channels_file() -> Path:
    """The shipped ``config/input_channels.yaml`` of the mobility_twin package (installed or in the source tree)."""
    try:
        from ament_index_python.packages import get_package_share_directory

        path = Path(get_package_share_directory("mobility_twin")) / "config" / "input_channels.yaml"
        if path.exists():
            return path
    except (ImportError, LookupError, ValueError):
        pass
    return Path(__file__).resolve().parents[2] / "config" / "input_channels.yaml"


def default_channels() -> tuple[InputChannel, ...]:
    return load_channels(default_channels_file())

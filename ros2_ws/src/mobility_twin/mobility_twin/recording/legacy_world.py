"""Older recordings: the layout they carry as JSON in a ``std_msgs/String`` on ``/sim/world``.

Until the simulator published the ``Layout`` message on ``/infrastructure/layout``, the layout of a run
travelled as the JSON of the simulator's world description. Recordings made then are read through
:func:`layout_from_world_json` into the twin model's :class:`~mobility_twin_core.Layout`, so they score
and draw exactly as before; nothing publishes or records that topic any more. ROS-free.
"""

from __future__ import annotations

import json
import math
import struct

from mobility_twin.recording.errors import RecordingError
from mobility_twin_core import Cav, Cloud, EdgeServer, Layout, LayoutError, Rsu, Site

#: The topic older recordings carry their layout on (JSON in a std_msgs/String, latched).
LEGACY_WORLD_TOPIC = "/sim/world"


def decode_string(data: bytes) -> str:
    """The text of a CDR ``std_msgs/String``; :class:`RecordingError` when the bytes are not one."""
    if len(data) < 8 or data[:2] not in (b"\x00\x01", b"\x00\x00"):
        raise RecordingError("not a CDR std_msgs/String")
    (n,) = struct.unpack_from("<I" if data[1] == 1 else ">I", data, 4)
    if n == 0 or 8 + n > len(data):
        raise RecordingError(f"std_msgs/String of {n} bytes in a message of {len(data)}")
    return bytes(data[8:8 + n - 1]).decode("utf-8", errors="replace")


def _pairs(points) -> tuple[tuple[float, float], ...]:
    return tuple((float(p[0]), float(p[1])) for p in points)


def layout_from_world_json(text: str, *, source: str = LEGACY_WORLD_TOPIC) -> Layout:
    """The validated :class:`Layout` of the JSON an older simulator published on ``/sim/world``.

    Keys read: ``scenario`` (the name), ``origin`` ([longitude, latitude]), ``area``, ``rsus`` (``id``,
    ``x``, ``y``, ``z``, ``site``, ``range``), ``cavs`` (``id``, ``lidar_height``, ``range``),
    ``edge_servers`` (``id``, ``x``, ``y``, ``radius``, ``cpu_hz``, ``site``), ``sites`` (``id``,
    ``polygon``), ``cloud`` (``x``, ``y``, ``cpu_hz``). Anything missing or malformed is a
    :class:`RecordingError` naming ``source`` and the problem.
    """
    try:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise TypeError(f"expected a JSON object, got {type(data).__name__}")
        cloud = data.get("cloud") or {}
        origin = data.get("origin") or (math.nan, math.nan)  # the simulator wrote [longitude, latitude]
        return Layout(
            rsus=tuple(Rsu(str(r["id"]), float(r["x"]), float(r["y"]), float(r.get("z", 6.0)), float(r.get("yaw", 0.0)),
                           str(r.get("site", "")), float(r.get("range", 80.0))) for r in data.get("rsus", ())),
            cavs=tuple(Cav(str(c["id"]), float(c.get("lidar_height", math.nan)), float(c.get("range", 60.0)))
                       for c in data.get("cavs", ())),
            servers=tuple(EdgeServer(str(e["id"]), float(e["x"]), float(e["y"]), float(e["radius"]),
                                     float(e["cpu_hz"]), str(e.get("site", ""))) for e in data.get("edge_servers", ())),
            sites=tuple(Site(str(s["id"]), _pairs(s["polygon"])) for s in data.get("sites", ())),
            cloud=Cloud(float(cloud.get("x", 0.0)), float(cloud.get("y", 0.0)), float(cloud.get("cpu_hz", 3.5e9))),
            area=_pairs(data.get("area", ())),
            origin=(float(origin[1]), float(origin[0])),
            name=str(data.get("scenario", "")),
        ).validated()
    except json.JSONDecodeError as err:
        raise RecordingError(f"{source}: the layout is not JSON ({err})") from None
    except KeyError as err:
        raise RecordingError(f"{source}: the layout has no {err.args[0]!r} in one of its entries") from None
    except (TypeError, ValueError, IndexError, LayoutError) as err:
        raise RecordingError(f"{source}: the layout cannot be read: {err}") from None

"""Complete message definitions, as rosbag2 stores them in MCAP schemas (encoding ``ros2msg``).

A complete definition is the type's own ``.msg`` text followed, for every type it uses (recursively,
each once), by a line of 80 ``=``, a line ``MSG: <pkg>/<Type>`` and that type's ``.msg`` text: what
rosbag2's ``LocalMessageDefinitionSource`` writes (same dependency parsing, same order: depth first,
sorted by name), so tools that decode a bag from its schemas (Foxglove, mcap-ros2-support, rosbags)
decode ours. The ``.msg`` files come from ``share/<pkg>/msg/`` of the packages on AMENT_PREFIX_PATH,
the custom ones of mobility_twin_msgs included. ROS-free.
"""

from __future__ import annotations

import json
import re
from functools import cache

from mobility_twin.launch_runner.ament import package_share
from mobility_twin.recording.errors import DefinitionError

SEPARATOR = "=" * 80

# A field's type at the start of a line ("geometry_msgs/Pose" in "geometry_msgs/Pose[] poses"), as rosbag2
# matches it; comment lines start with '#' and never match.
_FIELD_TYPE = re.compile(r"(?:^|\n)\s*([a-zA-Z0-9_/]+)(?:\[[^\]]*\])?\s+")
_PRIMITIVES = frozenset({"bool", "byte", "char", "float32", "float64", "int8", "uint8", "int16", "uint16", "int32",
                         "uint32", "int64", "uint64", "string", "wstring"})
_NAME = re.compile(r"^([A-Za-z][A-Za-z0-9_]*)(?:/([A-Za-z][A-Za-z0-9_]*))?/([A-Za-z][A-Za-z0-9_]*)$")


def split_type(type_name: str) -> tuple[str, str, str]:
    """``pkg/msg/Type`` or ``pkg/Type`` -> (pkg, "msg", Type)."""
    match = _NAME.match(type_name)
    if not match:
        raise DefinitionError(f"message type {type_name!r}: expected package/msg/Type")
    package, namespace, name = match.groups()
    return package, namespace or "msg", name


def full_type_name(type_name: str) -> str:
    """The ``pkg/msg/Type`` form of ``pkg/Type`` or ``pkg/msg/Type``."""
    return "/".join(split_type(type_name))


@cache
def msg_text(type_name: str) -> str:
    """The text of the installed ``.msg`` file of ``type_name``."""
    package, namespace, name = split_type(type_name)
    try:
        path = package_share(package) / namespace / f"{name}.msg"
    except LookupError as err:
        raise DefinitionError(f"no definition for {type_name}: {err}") from None
    try:
        return path.read_text()
    except OSError as err:
        raise DefinitionError(f"no definition for {type_name}: cannot read {path}: {err.strerror}") from None


def dependencies(text: str, package: str) -> list[str]:
    """Types used by the fields of a ``.msg`` text (as written, ``pkg/Type``; bare names in ``package``),
    sorted by name."""
    found = set()
    for match in _FIELD_TYPE.finditer(text):
        name = match.group(1)
        if name in _PRIMITIVES:
            continue
        found.add(name if "/" in name else f"{package}/{name}")
    return sorted(found)


@cache
def message_definition(type_name: str) -> str:
    """The complete ``ros2msg`` definition of ``type_name`` (``pkg/msg/Type``), dependencies included."""
    seen: set[str] = set()

    def expand(name: str, depth: int) -> str:
        if depth > 50:
            raise DefinitionError(f"definition of {type_name} nests deeper than 50 types")
        package = split_type(name)[0]
        text = msg_text(name)
        out = text
        for dep in dependencies(text, package):
            if dep not in seen:
                seen.add(dep)
                out += f"\n{SEPARATOR}\nMSG: {dep}\n" + expand(dep, depth + 1)
        return out

    return expand(full_type_name(type_name), 0)


@cache
def type_hash(type_name: str) -> str:
    """The RIHS01 type description hash of ``type_name`` (from the ``.json`` beside the ``.msg``), or ""."""
    package, namespace, name = split_type(type_name)
    try:
        data = json.loads((package_share(package) / namespace / f"{name}.json").read_text())
    except (LookupError, OSError, ValueError):
        return ""
    full = f"{package}/{namespace}/{name}"
    return next((h.get("hash_string", "") for h in data.get("type_hashes", []) if h.get("type_name") == full), "")


def starts_with_header(type_name: str) -> bool:
    """True when the first field of the message is a ``std_msgs/Header`` (its stamp is then the first 8
    bytes of the CDR payload)."""
    try:
        package = split_type(type_name)[0]
        text = msg_text(full_type_name(type_name))
    except DefinitionError:
        return False
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            first = line.split()[0]
            return (first if "/" in first else f"{package}/{first}") in ("std_msgs/Header", "std_msgs/msg/Header")
    return False

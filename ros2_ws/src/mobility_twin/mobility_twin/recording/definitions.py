"""Message definitions and type hashes of recorded types, from rosbags' type system.

The interfaces installed here (``share/<pkg>/msg/<Type>.msg``, or ``.idl``, of the packages on
AMENT_PREFIX_PATH, the custom ones of mobility_twin_msgs included) are parsed by rosbags
(:func:`rosbags.typesys.get_types_from_msg`) into one :class:`rosbags.typesys.store.Typestore`, types
added as they are first needed together with everything they use. From that store come:

* the complete ``ros2msg`` definition an MCAP schema holds (:meth:`Typestore.generate_msgdef`: the type's
  fields, then for each type it uses a line of 80 ``=``, ``MSG: pkg/Type`` and that type's fields): what
  rosbags writes into the bags it makes and what Foxglove, mcap-ros2-support and rosbag2 decode;
* the RIHS01 type description hash (:meth:`Typestore.hash_rihs01`) that rosbag2 stores per topic
  (``topic_type_hash``, ``type_description_hash``); the tests check it against the hash rosidl generated
  into the installed ``.json`` files.

ROS-free (rosbags is pure Python); only the installed interface files are read.
"""

from __future__ import annotations

import re
import threading
from functools import cache

from rosbags.interfaces import Nodetype
from rosbags.typesys import TypesysError, get_types_from_idl, get_types_from_msg
from rosbags.typesys.store import Typestore

from mobility_twin.launch_runner.ament import package_share
from mobility_twin.recording.errors import DefinitionError

SEPARATOR = "=" * 80
HEADER = "std_msgs/msg/Header"

_NAME = re.compile(r"^([A-Za-z][A-Za-z0-9_]*)(?:/([A-Za-z][A-Za-z0-9_]*))?/([A-Za-z][A-Za-z0-9_]*)$")
_store = Typestore()  # empty: every type comes from the installed interface files
_lock = threading.Lock()


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


def _parse_installed(type_name: str) -> dict:
    """rosbags' parse of the installed interface file of ``type_name`` (``pkg/msg/Type``)."""
    package, namespace, name = split_type(type_name)
    try:
        folder = package_share(package) / namespace
    except LookupError as err:
        raise DefinitionError(f"no definition for {type_name}: {err}") from None
    msg, idl = folder / f"{name}.msg", folder / f"{name}.idl"
    try:
        if msg.is_file():
            return get_types_from_msg(msg.read_text(), type_name)
        if idl.is_file():
            return get_types_from_idl(idl.read_text())
    except OSError as err:
        raise DefinitionError(f"no definition for {type_name}: cannot read {msg}: {err.strerror}") from None
    except TypesysError as err:
        raise DefinitionError(f"definition of {type_name} ({msg}) not understood: {err}") from None
    raise DefinitionError(f"no definition for {type_name}: neither {msg} nor {idl} exists")


def _nested(fields) -> list[str]:
    """Names of the message types used by rosbags field descriptions, in field order."""
    out = []
    for _name, (kind, arg) in fields:
        if kind == Nodetype.NAME:
            out.append(arg)
        elif kind in (Nodetype.ARRAY, Nodetype.SEQUENCE) and arg[0][0] == Nodetype.NAME:
            out.append(arg[0][1])
    return out


def _ensure(type_name: str) -> str:
    """Register ``type_name`` and every type it uses in the store; return its full name."""
    full = full_type_name(type_name)
    with _lock:
        if full in _store.fielddefs:
            return full
        found: dict = {}
        pending = [full]
        while pending:
            name = pending.pop()
            if name in found or name in _store.fielddefs:
                continue
            parsed = _parse_installed(name)
            if name not in parsed:
                raise DefinitionError(f"the interface file of {name} does not define it (it defines "
                                      f"{', '.join(sorted(parsed)) or 'nothing'})")
            found.update(parsed)
            pending += _nested(parsed[name][1])
        try:
            _store.register(found)
        except TypesysError as err:
            raise DefinitionError(f"definition of {full} not understood: {err}") from None
    return full


@cache
def message_definition(type_name: str) -> str:
    """The complete ``ros2msg`` definition of ``type_name`` (``pkg/msg/Type``), dependencies included."""
    full = _ensure(type_name)
    with _lock:
        return _store.generate_msgdef(full, ros_version=2)[0]


@cache
def type_hash(type_name: str) -> str:
    """The RIHS01 type description hash of ``type_name`` (``RIHS01_<sha256>``)."""
    full = _ensure(type_name)
    with _lock:
        return _store.hash_rihs01(full)


def dependencies(type_name: str) -> list[str]:
    """Every message type ``type_name`` uses, directly or not (``pkg/msg/Type``), sorted by name."""
    full = _ensure(type_name)
    seen: set[str] = set()
    pending = [full]
    while pending:
        for name in _nested(_store.fielddefs[pending.pop()][1]):
            if name not in seen:
                seen.add(name)
                pending.append(name)
    return sorted(seen)


def starts_with_header(type_name: str) -> bool:
    """True when the first field of the message is a ``std_msgs/Header`` (its stamp is then the first 8
    bytes of the CDR payload)."""
    try:
        fields = _store.fielddefs[_ensure(type_name)][1]
    except DefinitionError:
        return False
    return bool(fields) and fields[0][1] == (Nodetype.NAME, HEADER)

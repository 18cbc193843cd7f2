"""The CDR byte layout of an interface's elements, derived from its rosidl definition.

The fast codecs (:mod:`mobility_twin.ros.cdr`) read and write arrays of elements (``TrackedObject``,
``DetectedObject``) as numpy records. The record layout is not typed by hand: :func:`element_layout` walks
the generated message class's ``SLOT_TYPES`` (rosidl_parser's type system, the same one the C and Python
type supports are generated from) field by field, recursing into nested messages, and places each
primitive where XCDR1 puts it (aligned to its own size, counted from an 8-byte-aligned element start)
until the first field of variable size. The fields after that must all be strings or sequences of
strings (what the element loops know how to read), in that order.

Changing a ``.msg`` file therefore changes the codec with it; the tests check the result byte for byte
against ``rclpy.serialization``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import numpy as np
from rosidl_parser.definition import (
    AbstractNestedType,
    AbstractString,
    Array,
    BasicType,
    NamespacedType,
    UnboundedSequence,
)

#: rosidl primitive type -> (numpy format, size in bytes)
_PRIMITIVES = {
    "boolean": ("u1", 1), "octet": ("u1", 1), "uint8": ("u1", 1), "int8": ("i1", 1), "char": ("u1", 1),
    "uint16": ("<u2", 2), "int16": ("<i2", 2), "uint32": ("<u4", 4), "int32": ("<i4", 4),
    "uint64": ("<u8", 8), "int64": ("<i8", 8), "float": ("<f4", 4), "double": ("<f8", 8),
}

#: Kinds of the variable fields after the fixed prefix.
STRING, STRINGS = 0, 1


@dataclass(frozen=True)
class ElementLayout:
    """``fixed``: the record dtype of the fixed-size prefix; ``tail``: (field name, STRING | STRINGS) of the
    variable fields after it, in order."""

    fixed: np.dtype
    tail: tuple[tuple[str, int], ...]

    @property
    def tail_kinds(self) -> tuple[int, ...]:
        return tuple(kind for _, kind in self.tail)


def _message_class(t: NamespacedType):
    return getattr(importlib.import_module(".".join(t.namespaces)), t.name)


def _fields(msg_class):
    return zip(msg_class.get_fields_and_field_types(), msg_class.SLOT_TYPES, strict=True)


def _walk(msg_class, prefix: str, offset: int, out: list) -> tuple[int, list]:
    """Append (dotted name, format, shape, offset) of the fixed fields; return the end offset and the rest
    (dotted name, slot type) once a variable-size field is met (empty when the message is fixed-size)."""
    fields = list(_fields(msg_class))
    for k, (name, slot) in enumerate(fields):
        dotted = f"{prefix}{name}"
        if isinstance(slot, BasicType):
            fmt, size = _PRIMITIVES[slot.typename]
            offset += -offset % size
            out.append((dotted, fmt, (), offset))
            offset += size
        elif isinstance(slot, Array) and isinstance(slot.value_type, BasicType):
            fmt, size = _PRIMITIVES[slot.value_type.typename]
            offset += -offset % size
            out.append((dotted, fmt, (slot.size,), offset))
            offset += size * slot.size
        elif isinstance(slot, NamespacedType):
            offset, rest = _walk(_message_class(slot), f"{dotted}.", offset, out)
            if rest:
                return offset, rest + [(f"{prefix}{n}", s) for n, s in fields[k + 1:]]
        else:
            return offset, [(f"{prefix}{n}", s) for n, s in fields[k:]]
    return offset, []


def element_layout(msg_class, aliases: dict[str, str] | None = None) -> ElementLayout:
    """The :class:`ElementLayout` of one element of ``msg_class``; ``aliases`` renames dotted field names
    (``pose.pose.position.x``) to the short names the codec code uses (``px``)."""
    aliases = aliases or {}
    fixed: list = []
    end, rest = _walk(msg_class, "", 0, fixed)
    if not fixed or fixed[0][3] != 0 or np.dtype(fixed[0][1]).itemsize != 8:
        raise TypeError(f"{msg_class.__name__}: the first field must be 8 bytes wide so that every element of an "
                        "array starts 8-byte aligned (put the widest fields first)")
    tail = []
    for name, slot in rest:
        if isinstance(slot, AbstractString):
            tail.append((aliases.get(name, name), STRING))
        elif isinstance(slot, UnboundedSequence) and isinstance(slot.value_type, AbstractString):
            tail.append((aliases.get(name, name), STRINGS))
        elif isinstance(slot, AbstractNestedType | NamespacedType | BasicType):
            raise TypeError(f"{msg_class.__name__}.{name}: after the first variable-size field only strings and "
                            "string sequences are supported by the element codec")
    dtype = np.dtype({
        "names": [aliases.get(n, n) for n, *_ in fixed],
        "formats": [(f, s) if s else f for _, f, s, _ in fixed],
        "offsets": [o for *_, o in fixed],
        "itemsize": end,
    })
    return ElementLayout(dtype, tuple(tail))


#: Short names of the nested pose and twist fields shared by tracks and detections.
POSE_TWIST_ALIASES = {
    "pose.pose.position.x": "px", "pose.pose.position.y": "py", "pose.pose.position.z": "pz",
    "pose.pose.orientation.x": "qx", "pose.pose.orientation.y": "qy", "pose.pose.orientation.z": "qz",
    "pose.pose.orientation.w": "qw", "pose.covariance": "pose_cov",
    "twist.twist.linear.x": "vx", "twist.twist.linear.y": "vy", "twist.twist.linear.z": "vz",
    "twist.twist.angular.x": "wx", "twist.twist.angular.y": "wy", "twist.twist.angular.z": "wz",
    "twist.covariance": "twist_cov",
    "dimensions.x": "length", "dimensions.y": "width", "dimensions.z": "height",
}

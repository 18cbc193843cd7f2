"""Declare a node's ROS parameters from a frozen dataclass, and read them back as one config object.

Each dataclass field becomes one parameter: its default is the field default, its description the
field's ``metadata["help"]``. Values are converted to the field's type (so ``rate_hz: 10`` in YAML
works for a float field), and a value that does not convert is an error naming the parameter. A list
field (``tuple[str, ...]``, ``tuple[float, ...]``) takes a YAML list or a comma-separated string (launch
arguments are strings, and an empty list has no type in ROS parameter files).
"""

from __future__ import annotations

import dataclasses
import typing
from typing import TypeVar

from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node

T = TypeVar("T")


def field(default, help: str):
    """A dataclass field with a parameter description."""
    if isinstance(default, list | tuple):
        value = tuple(default)
        return dataclasses.field(default=value, metadata={"help": help})
    return dataclasses.field(default=default, metadata={"help": help})


def _convert(name: str, value, annotation):
    origin = typing.get_origin(annotation)
    try:
        if origin is tuple:
            (inner, *_rest) = typing.get_args(annotation)
            if isinstance(value, str):
                value = [v.strip() for v in value.replace("[", "").replace("]", "").split(",") if v.strip()]
            return tuple(inner(v) for v in (value or ()))
        if annotation is bool:
            if isinstance(value, str):
                if value.lower() not in ("true", "false"):
                    raise ValueError(value)
                return value.lower() == "true"
            return bool(value)
        return annotation(value)
    except (TypeError, ValueError):
        raise ValueError(f"parameter {name!r}: cannot use {value!r} as {annotation}") from None


def declare_config(node: Node, cls: type[T], prefix: str = "") -> T:
    """Declare every field of ``cls`` as a parameter of ``node`` and return the config built from them."""
    hints = typing.get_type_hints(cls)
    values = {}
    for f in dataclasses.fields(cls):
        name = prefix + f.name
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        ros_default = ",".join(str(v) for v in default) if isinstance(default, tuple) else default
        descriptor = ParameterDescriptor(description=f.metadata.get("help", ""), dynamic_typing=True)
        value = node.declare_parameter(name, ros_default, descriptor).value
        values[f.name] = _convert(name, value, hints[f.name])
    return cls(**values)

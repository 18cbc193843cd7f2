"""A node's ROS parameters, declared from a frozen dataclass and read back as one config object, honestly.

Each dataclass field (made with :func:`field`) becomes one parameter with its description, its allowed
range or choices, and whether it may change at run time:

* a parameter read once (the default) is declared **read-only**: ``ros2 param set`` is refused instead of
  succeeding and changing nothing;
* a ``dynamic=True`` parameter can be set at run time: :func:`bind_dynamic` installs a set-callback that
  converts and validates the new value (type, range, choices) and refuses it with the reason, or applies
  it by replacing the node's config and calling the node back.

Values are converted to the field's type (``rate_hz: 10`` in YAML works for a float field, ``"true"``
from a launch argument for a bool), and a value that does not convert or is out of range stops the node
at start with an error naming the parameter and the file to fix (:class:`ParameterError`). A list field
(``tuple[str, ...]``, ``tuple[float, ...]``) takes a YAML list or a comma-separated string (launch
arguments are strings, and an empty list has no type in ROS parameter files).
"""

from __future__ import annotations

import dataclasses
import math
import re
import typing
from collections.abc import Callable
from typing import TypeVar

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.exceptions import InvalidParameterValueException
from rclpy.node import Node

from mobility_twin.ros.entry import ConfigurationError

T = TypeVar("T")


class ParameterError(ConfigurationError):
    """A parameter value the node cannot run with (the message names the parameter and where to set it)."""


def field(default, help: str, *, low: float | None = None, high: float | None = None,
          choices: tuple | None = None, dynamic: bool = False):
    """A dataclass field that is a parameter: ``help`` describes it (with units); ``low``/``high`` bound a
    number (inclusive), ``choices`` list the allowed values; ``dynamic`` makes it settable at run time."""
    meta = {"help": help, "low": low, "high": high, "choices": choices, "dynamic": dynamic}
    if isinstance(default, list | tuple):
        return dataclasses.field(default=tuple(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


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
            if not isinstance(value, bool):
                raise ValueError(value)
            return value
        if annotation in (int, float) and isinstance(value, bool):
            raise ValueError(value)
        if annotation is int and isinstance(value, float) and not value.is_integer():
            raise ValueError(value)
        return annotation(value)
    except (TypeError, ValueError):
        raise ParameterError(f"parameter {name!r}: cannot use {value!r} as {getattr(annotation, '__name__', annotation)}") \
            from None


def _check(name: str, value, meta) -> None:
    items = value if isinstance(value, tuple) else (value,)
    for v in items:
        if isinstance(v, float) and not math.isfinite(v) and (meta["low"] is not None or meta["high"] is not None):
            raise ParameterError(f"parameter {name!r}: {v!r} is not a finite number")
        if meta["low"] is not None and isinstance(v, int | float) and v < meta["low"]:
            raise ParameterError(f"parameter {name!r}: {v!r} is below its minimum {meta['low']!r}")
        if meta["high"] is not None and isinstance(v, int | float) and v > meta["high"]:
            raise ParameterError(f"parameter {name!r}: {v!r} is above its maximum {meta['high']!r}")
        if meta["choices"] is not None and v not in meta["choices"]:
            raise ParameterError(f"parameter {name!r}: {v!r} is not one of {list(meta['choices'])}")


def _descriptor(f: dataclasses.Field, annotation) -> ParameterDescriptor:
    meta = f.metadata
    constraints = []
    if meta.get("low") is not None or meta.get("high") is not None:
        constraints.append(f"range [{meta.get('low', '-inf')}, {meta.get('high', 'inf')}]")
    if meta.get("choices") is not None:
        constraints.append("one of " + ", ".join(str(c) for c in meta["choices"]))
    d = ParameterDescriptor(description=meta.get("help", ""), additional_constraints="; ".join(constraints),
                            read_only=not meta.get("dynamic", False), dynamic_typing=True)
    low, high = meta.get("low"), meta.get("high")
    if low is not None and high is not None and annotation is float:
        d.floating_point_range = [FloatingPointRange(from_value=float(low), to_value=float(high), step=0.0)]
    elif low is not None and high is not None and annotation is int:
        d.integer_range = [IntegerRange(from_value=int(low), to_value=int(high), step=0)]
    return d


def _where(node: Node, cls) -> str:
    source = getattr(cls, "CONFIG_FILE", "")
    return f" (set it in {source} or as a launch argument)" if source else ""


def declare_config(node: Node, cls: type[T], prefix: str = "") -> T:
    """Declare every field of ``cls`` as a parameter of ``node`` and return the config built from them.

    Raises :class:`ParameterError` naming the parameter (and ``cls.CONFIG_FILE``) for a bad value."""
    hints = typing.get_type_hints(cls)
    values = {}
    for f in dataclasses.fields(cls):
        name = prefix + f.name
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        ros_default = ",".join(str(v) for v in default) if isinstance(default, tuple) else default
        try:
            value = node.declare_parameter(name, ros_default, _descriptor(f, hints[f.name])).value
        except InvalidParameterValueException as err:  # rclpy checked the descriptor's range
            meta, found = f.metadata, re.search(r"value \((.*?)\)", str(err))
            raise ParameterError(f"parameter {name!r}: {found.group(1) if found else 'the value'} is outside its range "
                                 f"[{meta.get('low')}, {meta.get('high')}]{_where(node, cls)}") from None
        try:
            values[f.name] = _convert(name, value, hints[f.name])
            _check(name, values[f.name], {"low": None, "high": None, "choices": None, **f.metadata})
        except ParameterError as err:
            raise ParameterError(f"{err}{_where(node, cls)}") from None
    config = cls(**values)
    check = getattr(config, "check", None)
    if check is not None:
        try:
            check()
        except ValueError as err:
            raise ParameterError(f"{err}{_where(node, cls)}") from None
    return config


def dynamic_fields(cls) -> list[str]:
    return [f.name for f in dataclasses.fields(cls) if f.metadata.get("dynamic")]


def bind_dynamic(node: Node, attribute: str = "config", on_change: Callable[[object], None] | None = None,
                 prefix: str = "") -> None:
    """Let the dynamic fields of ``node.<attribute>`` be set at run time: a set-callback converts and
    validates each new value, refuses the whole request with the reason when one is bad, else replaces the
    config (``dataclasses.replace``) and calls ``on_change(new_config)``. Read-only parameters are refused
    by rclpy itself before this callback runs."""
    config = getattr(node, attribute)
    cls = type(config)
    hints = typing.get_type_hints(cls)
    fields = {prefix + f.name: f for f in dataclasses.fields(cls) if f.metadata.get("dynamic")}

    def on_set(params) -> SetParametersResult:
        changes = {}
        for p in params:
            f = fields.get(p.name)
            if f is None:
                continue
            try:
                value = _convert(p.name, p.value, hints[f.name])
                _check(p.name, value, {"low": None, "high": None, "choices": None, **f.metadata})
            except ParameterError as err:
                return SetParametersResult(successful=False, reason=str(err))
            changes[f.name] = value
        if not changes:
            return SetParametersResult(successful=True)
        new = dataclasses.replace(getattr(node, attribute), **changes)
        check = getattr(new, "check", None)
        try:
            if check is not None:
                check()
            if on_change is not None:
                on_change(new)
        except ValueError as err:
            return SetParametersResult(successful=False, reason=str(err))
        setattr(node, attribute, new)
        node.get_logger().info("parameters set: " + ", ".join(f"{k}={v!r}" for k, v in changes.items()))
        return SetParametersResult(successful=True)

    if fields:
        node.add_on_set_parameters_callback(on_set)

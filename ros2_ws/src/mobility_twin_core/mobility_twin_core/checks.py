"""Checks of configuration values shared by the libraries' config dataclasses: one wording for every package."""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import Any


def check_positive(name: str, value: float, error: type[Exception] = ValueError) -> None:
    """``error`` naming ``name`` unless ``value`` is a finite number > 0."""
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        raise error(f"{name} must be a finite number > 0, got {value!r}")


def check_non_negative(name: str, value: float, error: type[Exception] = ValueError) -> None:
    """``error`` naming ``name`` unless ``value`` is a finite number >= 0."""
    if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
        raise error(f"{name} must be a finite number >= 0, got {value!r}")


def check_int_at_least(name: str, value: int, low: int, error: type[Exception] = ValueError) -> None:
    """``error`` naming ``name`` unless ``value`` is an int >= ``low``."""
    if not (isinstance(value, int) and value >= low):
        raise error(f"{name} must be an int >= {low}, got {value!r}")


def check_fraction(name: str, value: float, error: type[Exception] = ValueError) -> None:
    """``error`` naming ``name`` unless ``value`` is in [0, 1]."""
    if not 0 <= value <= 1:
        raise error(f"{name} must be in [0, 1], got {value!r}")


def check_greater(name: str, value: float, low: float, error: type[Exception] = ValueError) -> None:
    """``error`` naming ``name`` unless ``value > low`` (NaN is not; no type or finiteness check)."""
    if not value > low:
        raise error(f"{name} must be > {low}, got {value!r}")


def check_at_least(name: str, value: float, low: float, error: type[Exception] = ValueError) -> None:
    """``error`` naming ``name`` unless ``value >= low`` (NaN is not; no type or finiteness check)."""
    if not value >= low:
        raise error(f"{name} must be >= {low}, got {value!r}")


def check_one_of(name: str, value, choices: tuple, error: type[Exception] = ValueError) -> None:
    """``error`` naming ``name`` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise error(f"{name} must be one of {choices}, got {value!r}")


# ---------------------------------------------------------------------------------------------- declared ranges
# A config dataclass declares a field's range where it declares the field (``lr: float = positive(3e-3)``)
# and validates all of them with ``check_fields(self)`` in its ``__post_init__``: each field's check runs, in
# the order of the fields, with the field's name, so the error names the key as the checks above do.


def checked(default, check: Callable[..., None], /, **options) -> Any:
    """A dataclass field of ``default`` that :func:`check_fields` validates with
    ``check(name, value, **options)`` (a package's own check, or one of the above)."""
    return dataclasses.field(default=default, metadata={"check": functools.partial(check, **options)})


def positive(default: float, error: type[Exception] = ValueError) -> Any:
    """A field that must be a finite number > 0 (:func:`check_positive`)."""
    return checked(default, check_positive, error=error)


def non_negative(default: float, error: type[Exception] = ValueError) -> Any:
    """A field that must be a finite number >= 0 (:func:`check_non_negative`)."""
    return checked(default, check_non_negative, error=error)


def int_at_least(default: int, low: int, error: type[Exception] = ValueError) -> Any:
    """A field that must be an int >= ``low`` (:func:`check_int_at_least`)."""
    return checked(default, check_int_at_least, low=low, error=error)


def fraction(default: float, error: type[Exception] = ValueError) -> Any:
    """A field that must be in [0, 1] (:func:`check_fraction`)."""
    return checked(default, check_fraction, error=error)


def one_of(default, choices: tuple, error: type[Exception] = ValueError) -> Any:
    """A field that must be one of ``choices`` (:func:`check_one_of`)."""
    return checked(default, check_one_of, choices=choices, error=error)


def check_fields(config) -> None:
    """Run the check every field of the dataclass instance ``config`` declares (:func:`checked`), in field order."""
    for f in dataclasses.fields(config):
        check = f.metadata.get("check")
        if check is not None:
            check(f.name, getattr(config, f.name))


def with_changes(config, error: type[Exception] = ValueError, /, **changes):
    """A copy of the config dataclass instance ``config`` with top-level fields or ``section__field`` entries
    changed (``section`` a field that is itself a dataclass); ``error`` naming a key that is not a field."""
    top, nested = {}, {}
    names = {f.name for f in dataclasses.fields(config)}
    for key, value in changes.items():
        section, _, name = key.partition("__")
        if section not in names:
            raise error(f"{type(config).__name__} has no field {section!r} (from {key!r})")
        if name:
            nested.setdefault(section, {})[name] = value
        else:
            top[section] = value
    for section, values in nested.items():
        top[section] = dataclasses.replace(getattr(config, section), **values)
    return dataclasses.replace(config, **top)

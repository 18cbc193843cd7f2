"""Checks of configuration values shared by the libraries' config dataclasses: one wording for every package."""

from __future__ import annotations

import math


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

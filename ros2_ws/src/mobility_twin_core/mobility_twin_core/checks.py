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

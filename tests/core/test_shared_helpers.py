"""The small shared helpers of mobility_twin_core: config checks and name registries."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import pytest

from mobility_twin_core.checks import (
    check_at_least,
    check_fields,
    check_fraction,
    check_greater,
    check_int_at_least,
    check_non_negative,
    check_one_of,
    check_positive,
    checked,
    fraction,
    int_at_least,
    non_negative,
    one_of,
    positive,
)
from mobility_twin_core.registry import Registry


class ConfigError(ValueError):
    pass


@pytest.mark.parametrize(("check", "good", "bad", "message"), [
    (check_positive, [1e-9, 3, 2.5], [0, -1.0, math.inf, math.nan, "1", None], "x must be a finite number > 0"),
    (check_non_negative, [0, 0.0, 7], [-1e-9, math.inf, math.nan, "0"], "x must be a finite number >= 0"),
    (check_fraction, [0, 0.5, 1], [-0.1, 1.1, math.nan], r"x must be in \[0, 1\]"),
])
def test_checks_accept_what_they_say_and_name_the_value_otherwise(check, good, bad, message):
    for value in good:
        check("x", value)
    for value in bad:
        with pytest.raises(ValueError, match=message):
            check("x", value)
        with pytest.raises(ConfigError, match=message):  # the package's own error class
            check("x", value, ConfigError)


def test_int_at_least_wants_an_int_at_or_above_its_bound():
    check_int_at_least("n", 4, 4)
    for value in (3, 4.0, "5", None):
        with pytest.raises(ValueError, match=r"n must be an int >= 4, got "):
            check_int_at_least("n", value, 4)


def test_greater_and_at_least_compare_only():
    check_greater("x", 1e-9, 0)
    check_at_least("x", 0, 0)
    for check, value, message in [(check_greater, 0, "x must be > 0, got 0"), (check_greater, math.nan, "x must be > 0"),
                                  (check_at_least, -0.5, "x must be >= 0, got -0.5"),
                                  (check_at_least, math.nan, "x must be >= 0")]:
        with pytest.raises(ValueError, match=message):
            check("x", value, 0)


def test_one_of_names_the_choices():
    check_one_of("mode", "a", ("a", "b"))
    with pytest.raises(ConfigError, match=r"mode must be one of \('a', 'b'\), got 'c'"):
        check_one_of("mode", "c", ("a", "b"), ConfigError)


def _even(name, value, *, error=ValueError):
    if value % 2:
        raise error(f"{name} must be even, got {value!r}")


@dataclass(frozen=True)
class _Declared:
    rate: float = positive(2.0)
    margin: float = non_negative(0.0, ConfigError)
    count: int = int_at_least(3, low=1)
    share: float = fraction(0.5)
    mode: str = one_of("a", ("a", "b"))
    pairs: int = checked(4, _even)
    free: int = -1

    def __post_init__(self) -> None:
        check_fields(self)


def test_declared_ranges_are_checked_with_the_field_name_and_keep_the_defaults():
    assert _Declared() == _Declared(2.0, 0.0, 3, 0.5, "a", 4, -1)
    assert [f.default for f in fields(_Declared)] == [2.0, 0.0, 3, 0.5, "a", 4, -1]
    for bad, error, message in [({"rate": 0}, ValueError, "rate must be a finite number > 0, got 0"),
                                ({"margin": -1}, ConfigError, "margin must be a finite number >= 0, got -1"),
                                ({"count": 0}, ValueError, "count must be an int >= 1, got 0"),
                                ({"share": 2}, ValueError, r"share must be in \[0, 1\], got 2"),
                                ({"mode": "c"}, ValueError, r"mode must be one of \('a', 'b'\), got 'c'"),
                                ({"pairs": 3}, ValueError, "pairs must be even, got 3")]:
        with pytest.raises(error, match=message):
            _Declared(**bad)
    with pytest.raises(ValueError, match="rate"):  # the first bad field in the order of the fields
        _Declared(rate=-1, count=0)


def test_a_registry_is_a_dict_filled_by_its_decorator():
    table = Registry()

    @table.register("twice")
    def twice(x):
        return 2 * x

    assert twice(3) == 6  # the decorated factory is returned unchanged
    assert dict(table) == {"twice": twice} and "twice" in table and sorted(table) == ["twice"]

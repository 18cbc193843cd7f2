"""The small shared helpers of mobility_twin_core: config checks and name registries."""

from __future__ import annotations

import math

import pytest

from mobility_twin_core.checks import check_fraction, check_int_at_least, check_non_negative, check_positive
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


def test_a_registry_is_a_dict_filled_by_its_decorator():
    table = Registry()

    @table.register("twice")
    def twice(x):
        return 2 * x

    assert twice(3) == 6  # the decorated factory is returned unchanged
    assert dict(table) == {"twice": twice} and "twice" in table and sorted(table) == ["twice"]

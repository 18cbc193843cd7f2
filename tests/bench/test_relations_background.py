"""The relations bench's second process (continual learning runs there while the models train): its value
comes back, its error is raised here, and a process that dies without an answer is reported."""

import math
import os

import pytest

from mobility_twin_bench.relations import _Background


def test_the_value_comes_back():
    assert _Background(math.factorial, 5).result() == 120


def test_its_error_is_raised_with_its_traceback():
    with pytest.raises(RuntimeError, match="ValueError: math domain error"):
        _Background(math.sqrt, -1.0).result()


def test_a_process_that_dies_without_an_answer_is_reported():
    with pytest.raises(RuntimeError, match="ended without a result \\(exit code 3\\)"):
        _Background(os._exit, 3).result()

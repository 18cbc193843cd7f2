"""The node processes' heap setting: keep freed memory for reuse, sized by MTWIN_KEEP_FREED_MB."""

import ctypes.util

import pytest

from mobility_twin_core.allocator import DEFAULT_KEEP_MB, ENV, keep_freed_memory, keep_freed_memory_from_env

GLIBC = ctypes.util.find_library("c") is not None


@pytest.mark.skipif(not GLIBC, reason="needs a C library with mallopt")
def test_the_size_comes_from_the_environment_and_zero_leaves_the_defaults():
    assert keep_freed_memory_from_env({}) == DEFAULT_KEEP_MB
    assert keep_freed_memory_from_env({ENV: " 64 "}) == 64
    assert keep_freed_memory_from_env({ENV: "0"}) == 0


@pytest.mark.parametrize("bad", ["lots", "-5", "1.5"])
def test_a_bad_size_is_refused_naming_the_variable(bad):
    with pytest.raises(ValueError, match=ENV):
        keep_freed_memory_from_env({ENV: bad})
    with pytest.raises(ValueError, match="keep_mb"):
        keep_freed_memory(0)

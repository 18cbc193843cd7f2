"""Keep freed memory in the process: the heap setting of the stack's long-running model nodes.

A model that builds a graph and runs a network every slot allocates and frees the same large tensors (a
few MB each) again and again. glibc's defaults give freed memory at the top of the heap back to the
system (and serve the largest blocks with their own mappings), so every slot pays the page faults of
fresh memory again: on the relation GNN's 1,000-node twin that is about a third of a live prediction.
:func:`keep_freed_memory` tells glibc to keep what it frees for reuse instead (``mallopt``: a higher mmap
threshold, trim threshold and top pad), the same as the ``MALLOC_*`` environment variables would.

It changes only how freed memory is reused, never a result; the process keeps up to ``keep_mb`` of freed
memory. On a C library without ``mallopt`` (not glibc) it does nothing and says so.
"""

from __future__ import annotations

import ctypes
import ctypes.util

#: mallopt parameters (glibc's malloc.h)
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3


def keep_freed_memory(keep_mb: int = 512) -> bool:
    """Keep up to ``keep_mb`` of freed heap memory for reuse, and serve blocks below half of it from the
    heap. Returns whether the C library took the settings."""
    if keep_mb <= 0:
        raise ValueError(f"keep_mb must be positive, got {keep_mb}")
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    size = keep_mb * 1024 * 1024
    return all(mallopt(param, value) == 1 for param, value in
               ((M_MMAP_THRESHOLD, size // 2), (M_TRIM_THRESHOLD, size), (M_TOP_PAD, size // 8)))

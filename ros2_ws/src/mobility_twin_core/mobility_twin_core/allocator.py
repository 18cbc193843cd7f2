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


#: environment variable: megabytes of freed memory a node process keeps (0: the C library's defaults)
ENV = "MTWIN_KEEP_FREED_MB"
DEFAULT_KEEP_MB = 512


def keep_freed_memory_from_env(environ=None) -> int:
    """:func:`keep_freed_memory` with the size of :data:`ENV` (default :data:`DEFAULT_KEEP_MB`; 0 leaves the
    C library's defaults). Returns the megabytes kept (0 when not applied). A value that is not a whole
    number of megabytes >= 0 raises ValueError naming the variable."""
    import os

    raw = (os.environ if environ is None else environ).get(ENV, "").strip()
    try:
        keep_mb = int(raw) if raw else DEFAULT_KEEP_MB
    except ValueError:
        keep_mb = -1
    if keep_mb < 0:
        raise ValueError(f"{ENV}={raw!r}: megabytes of freed memory to keep, a whole number >= 0 (0: the C "
                         f"library's defaults)")
    return keep_mb if keep_mb and keep_freed_memory(keep_mb) else 0

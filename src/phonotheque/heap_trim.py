"""Returning the C heap's free pages to the system while DuckDB works.

DuckDB allocates its buffers through jemalloc, within its memory limit, but many of its
other allocations (and Python's) go through the C library's ``malloc``. glibc keeps
what is freed there for reuse, fragmented between its arenas, and gives back only the
top of each heap, so that memory stays in the process's RSS, above DuckDB's limit.
Measured (docs/scale.md, session 15): a 35 M-recording ``phono ingest mbdump`` at the
default 3 GiB limit held up to 530 MiB free in glibc's heap at its peak RSS of 4.3 GiB;
at 10 M, 130–180 MiB.

:func:`start` runs one daemon thread per process that calls glibc's ``malloc_trim(0)``
every :data:`INTERVAL` seconds: it returns the free pages inside the heaps too, not only
the top, and takes each arena's lock as ``malloc`` does, so it is safe beside DuckDB's
threads. On a C library without ``malloc_trim`` (musl, macOS) it does nothing. No
library does this: the call is one function of the C library, reached with ctypes.
"""

from __future__ import annotations

import ctypes
import threading
import time
from collections.abc import Callable

#: Seconds between two trims. A trim walks the free chunks of every arena (measured on
#: ~290 MiB freed in 1 KiB blocks: 33 ms to return them, then 2.8 ms a trim while they
#: stay free), so once a second costs well under 1 % of a core.
INTERVAL = 1.0

_lock = threading.Lock()
_started = False


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        trim = ctypes.CDLL(None).malloc_trim  # the C library the process runs on
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim  # type: ignore[no-any-return]


def start() -> bool:
    """Start the process's trimming thread (once; later calls do nothing). Returns whether
    the C library trims at all."""
    global _started
    with _lock:
        if _started:
            return True
        trim = _malloc_trim()
        if trim is None:
            return False
        _started = True
    threading.Thread(target=_run, args=(trim,), name="heap-trim", daemon=True).start()
    return True


def _run(trim: Callable[[int], int]) -> None:
    while True:
        time.sleep(INTERVAL)
        trim(0)

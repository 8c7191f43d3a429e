"""Process memory settings for the web server.

glibc's malloc gives each thread that allocates its own arena (up to 8 per core), and every arena
keeps freed memory of its own. A worker runs a few threads (SQLite's pooled connections, asyncio's
executor), so arenas added about 8 MB of resident memory per worker in the benchmark
(tests/bench/RESULTS.md). Two arenas is the usual setting for Python web servers
(``MALLOC_ARENA_MAX=2``); an explicit ``MALLOC_ARENA_MAX`` in the environment wins.

Python's cyclic garbage collector: a full (oldest-generation) collection walks every tracked
object, and a started worker holds several hundred thousand of them (modules, classes, compiled
templates) that live as long as the process. ``freeze_startup_objects`` moves them out of the
collector's sight once startup is done (``gc.freeze``), so an occasional full collection walks
only what requests made since: it stopped showing up as tens of milliseconds in the portal pages'
p99 (tests/bench/RESULTS.md).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os

M_ARENA_MAX = -8  # from glibc's <malloc.h>
ARENAS = 2


def limit_malloc_arenas(arenas: int = ARENAS) -> bool:
    """Cap glibc's malloc arenas for the threads started from now on; False where there is no
    glibc (musl, macOS) or the environment already decides."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_ARENA_MAX, arenas))


def freeze_startup_objects() -> int:
    """Collect once, then exclude every object alive now from later collections; returns how
    many were frozen (0 when done before: once per process, whatever number of apps it starts,
    as in the tests). Called at the end of the app's startup."""
    if gc.get_freeze_count():
        return 0
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()

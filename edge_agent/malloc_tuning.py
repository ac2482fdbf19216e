"""glibc malloc settings for a process that handles many full-resolution frames in many threads.

By default glibc gives each thread that allocates its own heap arena (up to 8 per core) and keeps
what is freed in them: with 8 cameras (a capture thread, a gate loop each, the worker, the
runtimes' threads) freed 6 MB frames piled up in a dozen arenas. tune_malloc() caps the arenas at
ARENA_MAX (as MALLOC_ARENA_MAX does) before any thread starts, and release_free_memory()
(malloc_trim(0)) gives the free pages inside the heaps back to the system: the worker calls it
after each job, the supervisor every half second. (Mapping every frame from the system instead,
a fixed M_MMAP_THRESHOLD, also bounds memory but costs a page fault per 4 KB of every frame: a
quarter of a core more with 8 cameras, benchmarks/capacity.py.) An operator's MALLOC_ARENA_MAX
wins; on a libc without mallopt / malloc_trim both do nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

M_ARENA_MAX = -8  # glibc's mallopt parameter number (malloc.h)
ARENA_MAX = 2

_libc: ctypes.CDLL | None | bool = None


def _c() -> ctypes.CDLL | None:
    global _libc
    if _libc is None:
        name = ctypes.util.find_library("c")
        try:
            _libc = ctypes.CDLL(name) if name else False
        except OSError:
            _libc = False
    return _libc or None


def tune_malloc() -> dict[str, int]:
    """Cap the malloc arenas (unless MALLOC_ARENA_MAX is set); returns what was applied."""
    libc = _c()
    if libc is None or not hasattr(libc, "mallopt") or "MALLOC_ARENA_MAX" in os.environ:
        return {}
    return {"MALLOC_ARENA_MAX": ARENA_MAX} if libc.mallopt(ctypes.c_int(M_ARENA_MAX), ctypes.c_int(ARENA_MAX)) == 1 else {}


def release_free_memory() -> None:
    """Give the free pages inside malloc's heaps back to the system (glibc malloc_trim(0)). Cheap:
    it walks the free lists."""
    libc = _c()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(ctypes.c_size_t(0))

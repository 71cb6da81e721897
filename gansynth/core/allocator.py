"""Keep freed memory in the process for the next tensor of the same size.

glibc serves every allocation above its mmap threshold (128 KiB at first, adapting up to 32 MiB) with a
fresh mapping and unmaps it at free, so a 64 MiB activation map comes back as untouched pages on every
call and the first pass over it pays a page fault per 4 KiB. Rendering and training allocate the same
large maps batch after batch, so that cost recurs without end. Raising the mmap and trim thresholds keeps
such blocks on the heap, where the next allocation of that size reuses them (BENCHMARKS.md,
``render_levers`` and ``train_allocator``: up to 1.8x a training step at 128x1024). The price: freed
memory is not handed back until the process ends, and the heap's layout adds a little (a warm paper-size
render peaks ~130 MiB higher, flat from batch to batch)."""

from __future__ import annotations

import ctypes
import ctypes.util

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters (malloc.h)
M_MMAP_THRESHOLD = -3
M_MMAP_MAX = -4
KEEP_BELOW = 1 << 30  # blocks up to 1 GiB come from the heap and stay there when freed


def reuse_freed_memory() -> bool:
    """Tell glibc's malloc to keep freed blocks for reuse; False where malloc is not glibc's (with jemalloc
    or tcmalloc preloaded the call succeeds and changes nothing: they keep freed memory themselves).

    Older glibc refuses an mmap threshold above 32 MiB; there no block is mmapped at all instead. Threads
    other than the main one allocate from arenas of at most 64 MiB, which still map larger blocks apart."""
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError, TypeError):  # no C library found, or not glibc (musl, macOS, Windows)
        return False
    kept = mallopt(M_MMAP_THRESHOLD, KEEP_BELOW) or mallopt(M_MMAP_MAX, 0)
    return bool(kept) and bool(mallopt(M_TRIM_THRESHOLD, KEEP_BELOW))

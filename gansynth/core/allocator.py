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
KEEP_BELOW = 1 << 30  # blocks up to 1 GiB come from the heap and stay there when freed


def reuse_freed_memory() -> bool:
    """Tell glibc's malloc to keep freed blocks up to 1 GiB for reuse; False where there is no glibc."""
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError, TypeError):  # no C library found, or not glibc (musl, macOS, Windows)
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, KEEP_BELOW)) and bool(mallopt(M_TRIM_THRESHOLD, KEEP_BELOW))

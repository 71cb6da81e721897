"""What a benchmark ran on, recorded in every results file: a number means little without it."""

from __future__ import annotations

import platform
import sys
from pathlib import Path

import torch

from gansynth.core.precision import bf16_units


def cpu_model() -> str:
    """The CPU's marketing name from /proc/cpuinfo (platform.processor() is often empty)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_record(device: str, threads: int) -> dict:
    """device, device_name, threads, torch version (and the CPU's bf16 units), as run_all.py reads them."""
    cuda = device.startswith("cuda")
    record = dict(device=device, device_name=torch.cuda.get_device_name(device) if cuda else cpu_model(),
                  threads=threads, torch=torch.__version__)
    return record if cuda else dict(record, bf16_units=bf16_units())


def apply_freed_memory(mode: str) -> str:
    """Switch this process to `mode` ("reused": freed blocks kept, as the commands do; "returned": glibc's
    default) and return the mode it really runs in: "returned" where malloc is not glibc's."""
    from gansynth.core.allocator import reuse_freed_memory

    if mode == "reused" and not reuse_freed_memory():
        print("note: malloc is not glibc's, freed memory stays as it manages it (recorded as 'returned')",
              file=sys.stderr)
        return "returned"
    return mode

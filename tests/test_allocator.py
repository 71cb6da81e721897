"""reuse_freed_memory: once warm, a loop of equal-sized tensors runs without page faults and without growing."""

import json
import platform
import subprocess
import sys

import pytest

CHILD = """
import json, resource, sys, torch
from gansynth.core.allocator import reuse_freed_memory
supported = sys.argv[1] == "reuse" and reuse_freed_memory()
x = torch.ones(8, 32, 128, 256)  # 32 MiB, one activation map of a rendering batch
step = lambda: float((x * 2 + 1).sum())  # two maps of x's size, freed at the end of the step
for _ in range(10):  # warm: the heap settles on its blocks within a few steps
    step()
usage = resource.getrusage(resource.RUSAGE_SELF)
for _ in range(20):
    step()
print(json.dumps([supported, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - usage.ru_minflt,
                  resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - usage.ru_maxrss]))
"""


def _run(mode: str) -> tuple[bool, int, int]:
    """(reuse switched on, page faults, peak RSS growth in KiB) over 20 warm steps in a fresh process, so this
    one keeps glibc's default."""
    out = subprocess.run([sys.executable, "-c", CHILD, mode], capture_output=True, text=True, check=True)
    return tuple(json.loads(out.stdout))


def test_warm_loop_reuses_freed_maps_without_faults_or_growth():
    supported, reused, growth = _run("reuse")
    if not supported:
        assert platform.libc_ver()[0] != "glibc", "glibc is here but refused to keep freed memory"
        pytest.skip("malloc is not glibc's: nothing to switch")
    _, default, _ = _run("default")
    assert default >= 40  # 40 fresh 32 MiB mappings: 8,192 faults each with 4 KiB pages, 16 with huge ones
    assert reused < default / 20  # none, or now and then one map placed anew while the heap settles
    assert growth < 40 << 10  # KiB: at most that one map over 20 steps, not one per step

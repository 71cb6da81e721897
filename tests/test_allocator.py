"""reuse_freed_memory: once warm, a loop of equal-sized tensors runs without page faults and without growing."""

import json
import subprocess
import sys

import pytest

from gansynth.core.allocator import reuse_freed_memory

CHILD = """
import json, resource, sys, torch
from gansynth.core.allocator import reuse_freed_memory
if sys.argv[1] == "reuse":
    assert reuse_freed_memory()
x = torch.ones(8, 32, 128, 256)  # 32 MiB, one activation map of a rendering batch
step = lambda: float((x * 2 + 1).sum())  # two maps of x's size, freed at the end of the step
for _ in range(10):  # warm: the heap settles on its blocks within a few steps
    step()
usage = resource.getrusage(resource.RUSAGE_SELF)
for _ in range(20):
    step()
print(json.dumps([resource.getrusage(resource.RUSAGE_SELF).ru_minflt - usage.ru_minflt,
                  resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - usage.ru_maxrss]))
"""


def _faults_and_growth(mode: str) -> tuple[int, int]:
    """(page faults, peak RSS growth in KiB) over 20 warm steps in a fresh process."""
    out = subprocess.run([sys.executable, "-c", CHILD, mode], capture_output=True, text=True, check=True)
    return tuple(json.loads(out.stdout))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_warm_loop_reuses_freed_maps_without_faults_or_growth():
    if not reuse_freed_memory():
        pytest.skip("no glibc malloc here")
    (default, _), (reused, growth) = _faults_and_growth("default"), _faults_and_growth("reuse")
    assert default >= 40  # 40 fresh 32 MiB mappings: 8,192 faults each with 4 KiB pages, 16 with huge ones
    assert reused < default / 20  # none, or now and then one map placed anew while the heap settles
    assert growth < 40 << 10  # KiB: at most that one map over 20 steps, not one per step

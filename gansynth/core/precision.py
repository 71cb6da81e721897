"""Which precision trains fastest here: bf16 only where the hardware multiplies it natively.

``bf16-mixed`` runs the convolutions in bf16. A GPU with bf16 units, or a CPU with AMX tiles or AVX512-BF16
dot products, does that ~2-5x faster than fp32; a CPU without them (seen here: a 2.8 GHz Xeon with AVX512F
only) converts every operand and runs the same conv 2.4x slower than fp32, which halves the images a
wall-clock budget trains. ``trainer.precision=bf16-auto`` picks ``bf16-mixed`` where it pays and
``32-true`` elsewhere (README, Benchmarks)."""

from __future__ import annotations

from pathlib import Path

import torch

AUTO = "bf16-auto"


def bf16_units() -> str:
    """Which bf16 matrix instructions the CPU offers: AMX tiles, AVX512-BF16 dot products, or none."""
    try:
        flags = next((line.split(":", 1)[1].split() for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("flags")), [])
    except OSError:
        flags = []
    return "AMX" if "amx_bf16" in flags else "AVX512-BF16" if "avx512_bf16" in flags else "none"


def trainer_precision(requested: str | int, accelerator: str) -> str | int:
    """``requested`` as Lightning takes it; ``bf16-auto`` becomes ``bf16-mixed`` on hardware with native bf16,
    ``32-true`` elsewhere."""
    if requested != AUTO:
        return requested
    if accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available()):
        fast = torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
    else:
        fast = bf16_units() != "none"
    return "bf16-mixed" if fast else "32-true"

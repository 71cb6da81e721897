"""`trainer.precision=bf16-auto`: bf16 where the hardware multiplies it natively, fp32 where it is emulated."""
from __future__ import annotations

import pytest
import torch

from gansynth.core import precision
from gansynth.core.precision import trainer_precision


@pytest.mark.parametrize("units, chosen", [("AMX", "bf16-mixed"), ("AVX512-BF16", "bf16-mixed"), ("none", "32-true")])
def test_auto_on_a_cpu_takes_bf16_only_with_bf16_units(monkeypatch, units, chosen):
    monkeypatch.setattr(precision, "bf16_units", lambda: units)
    assert trainer_precision("bf16-auto", "cpu") == chosen


@pytest.mark.parametrize("native, chosen", [(True, "bf16-mixed"), (False, "32-true")])
def test_auto_on_a_gpu_asks_the_gpu(monkeypatch, native, chosen):
    monkeypatch.setattr(precision, "bf16_units", lambda: "AMX")  # the host CPU does not decide for the GPU
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: native and not including_emulation)
    assert trainer_precision("bf16-auto", "gpu") == chosen


@pytest.mark.parametrize("requested", ["32-true", "bf16-mixed", "16-mixed", 32])
def test_a_named_precision_is_kept(monkeypatch, requested):
    monkeypatch.setattr(precision, "bf16_units", lambda: "none")
    assert trainer_precision(requested, "cpu") == requested

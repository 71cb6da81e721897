"""The critic's augmentations: each transform does exactly what its docstring says, on every note."""
from __future__ import annotations

import pytest
import torch

from gansynth.core.augment import CUTOUT, GAIN_RANGE, MAX_SHIFT, SILENCE, augment, check_policy


def images(batch: int = 64, channels: int = 4, frames: int = 32, bins: int = 256) -> torch.Tensor:
    return torch.rand(batch, channels, frames, bins, generator=torch.Generator().manual_seed(1)) * 1.8 - 0.9


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_gain_offsets_each_notes_magnitude_channels_by_one_amount_and_leaves_if_alone():
    x = images()
    y = augment(x, ("gain",), seeded())
    offset = y[:, 0::2] - x[:, 0::2]
    per_note = offset.flatten(1)
    assert torch.allclose(per_note, per_note[:, :1].expand_as(per_note), atol=1e-6)
    assert per_note[:, 0].abs().max() <= GAIN_RANGE
    assert per_note[:, 0].std() > GAIN_RANGE / 4  # the amounts differ from note to note
    assert torch.equal(y[:, 1::2], x[:, 1::2])


def test_shift_delays_each_note_by_whole_frames_and_pads_with_silence():
    x = images()
    y = augment(x, ("shift",), seeded())
    delays = set()
    for note, shifted in zip(x, y):
        delay = next(d for d in range(int(32 * MAX_SHIFT) + 1) if torch.equal(shifted[:, d:], note[:, :32 - d]))
        assert torch.all(shifted[0::2, :delay] == SILENCE) and torch.all(shifted[1::2, :delay] == 0)
        delays.add(delay)
    assert delays == set(range(int(32 * MAX_SHIFT) + 1))


def test_shift_is_identity_when_a_stage_has_too_few_frames():
    x = images(frames=4, bins=32)
    assert torch.equal(augment(x, ("shift",), seeded()), x)


def test_cutout_zeroes_one_rectangle_per_note_in_every_channel():
    x = images()
    y = augment(x, ("cutout",), seeded())
    zeroed = y == 0
    assert torch.equal(zeroed, zeroed[:, :1].expand_as(zeroed))  # the same cells in every channel
    h, w = int(32 * CUTOUT), int(256 * CUTOUT)
    for mask in zeroed[:, 0]:
        rows, cols = mask.any(1).nonzero().flatten(), mask.any(0).nonzero().flatten()
        assert (len(rows), len(cols), int(mask.sum())) == (h, w, h * w)
        assert rows.diff().eq(1).all() and cols.diff().eq(1).all()
    assert torch.equal(y[~zeroed], x[~zeroed])


def test_augment_is_differentiable_and_repeats_with_its_seed():
    x = images(batch=8).requires_grad_(True)
    policy = ("gain", "shift", "cutout")
    y = augment(x, policy, seeded(3))
    assert torch.equal(y, augment(x, policy, seeded(3)))
    assert not torch.equal(y, augment(x, policy, seeded(4)))
    y.sum().backward()
    assert 0.5 < x.grad.mean() < 1.0  # cut and delayed cells pass no gradient, the rest pass 1


def test_unknown_augmentation_is_named():
    with pytest.raises(ValueError, match="unknown augmentation 'reverb'"):
        check_policy(["gain", "reverb"])

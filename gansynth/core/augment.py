"""Differentiable augmentation of the critic's input (DiffAugment, Zhao et al. 2020; ADA, Karras et al.
2020), for datasets of a few hundred notes that a critic otherwise memorises.

The same random transforms are applied to real notes, generated notes and the penalty's interpolates,
always inside the critic, so G is never shown an augmented target and the transforms cannot leak into
its output. Every transform is one a real note could plausibly undergo, on normalised mel-IF images
``[B, 2·ch, T, F]`` whose even channels are log-magnitude and odd channels instantaneous frequency:

- ``gain``: the whole note louder or softer (an offset on the log-magnitude channels);
- ``shift``: the note starts up to an eighth of the clip later, padded with the silence value;
- ``cutout``: a random time × frequency rectangle (a quarter of each axis) is zeroed in every channel.
"""
from __future__ import annotations

import torch

GAIN_RANGE = 0.05      # ± in normalised log-magnitude units: ±6.6 dB with the codecs' fixed normaliser (0.066 per neper)
MAX_SHIFT = 1 / 8      # of the frames
CUTOUT = 1 / 4         # of each axis
SILENCE = -1.0         # the normalised image's floor


def gain(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    offset = (torch.rand(x.shape[0], 1, 1, 1, device=x.device, generator=generator) * 2 - 1) * GAIN_RANGE
    is_magnitude = torch.zeros(x.shape[1], 1, 1, device=x.device)
    is_magnitude[0::2] = 1.0
    return x + offset.to(x.dtype) * is_magnitude.to(x.dtype)


def shift(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Delay each note by 0..MAX_SHIFT of its frames; magnitude enters at silence, IF at zero."""
    frames = x.shape[2]
    most = int(frames * MAX_SHIFT)
    if most == 0:
        return x
    delay = torch.randint(0, most + 1, (x.shape[0],), device=x.device, generator=generator)
    index = torch.arange(frames, device=x.device)[None, :] - delay[:, None]  # [B, T]
    gathered = x.gather(2, index.clamp(min=0)[:, None, :, None].expand(-1, x.shape[1], -1, x.shape[3]))
    pad = torch.zeros(x.shape[1], 1, 1, device=x.device, dtype=x.dtype)
    pad[0::2] = SILENCE
    return torch.where((index < 0)[:, None, :, None], pad, gathered)


def cutout(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    batch, _, frames, bins = x.shape
    keep = torch.ones(batch, 1, frames, bins, device=x.device, dtype=x.dtype)
    h, w = max(1, int(frames * CUTOUT)), max(1, int(bins * CUTOUT))
    top = torch.randint(0, frames - h + 1, (batch,), device=x.device, generator=generator)
    left = torch.randint(0, bins - w + 1, (batch,), device=x.device, generator=generator)
    rows = torch.arange(frames, device=x.device)[None, :]
    cols = torch.arange(bins, device=x.device)[None, :]
    in_rows = (rows >= top[:, None]) & (rows < top[:, None] + h)  # [B, T]
    in_cols = (cols >= left[:, None]) & (cols < left[:, None] + w)  # [B, F]
    keep[(in_rows[:, :, None] & in_cols[:, None, :])[:, None]] = 0.0
    return x * keep


TRANSFORMS = {"gain": gain, "shift": shift, "cutout": cutout}


def check_policy(policy) -> tuple[str, ...]:
    unknown = [name for name in policy if name not in TRANSFORMS]
    if unknown:
        raise ValueError(f"unknown augmentation {unknown[0]!r}; choose from {sorted(TRANSFORMS)}")
    return tuple(policy)


def augment(x: torch.Tensor, policy: tuple[str, ...], generator: torch.Generator) -> torch.Tensor:
    """``x`` through every transform of ``policy`` in order, each with fresh per-note randomness."""
    for name in policy:
        x = TRANSFORMS[name](x, generator)
    return x

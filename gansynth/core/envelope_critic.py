"""A critic of the envelope alone: each note's level curve, frame by frame.

On the third dataset (vibraphone, cello, clarinet) two thirds of the generated notes' distance to the
nearest real note is in the temporal envelope: the real notes rise within 6 frames to a level that stays
within ~1 dB, where G's notes peak early, dip by 5-10 dB and wobble (README, Findings). The main critic
gets each frame's level as an input channel, but spreads it over 256 columns and pools it away with the
rest of the image. This critic sees nothing else: the curve of each frame's level (log of its summed
power, as ``with_frame_levels`` takes it) and each frame's place in the clip, so a dip or a slow attack
is all it can look at. Notes judged together (a pair of one instrument, or a pack) are stacked along
channels, so it also sees whether one latent keeps its envelope at two pitches. Nothing is fitted to data.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from gansynth.core.layers import EqualizedConv2d, EqualizedLinear
from gansynth.core.networks import frame_levels

WIDTH = 32        # channels of every conv
POOLED = 16       # frames the features are averaged to before the score
LEAKY_SLOPE = 0.2


class EnvelopeCritic(nn.Module):
    """Normalised images [B, C, h, w] -> [B / notes_per_score] scores of their frame-level curves.

    Per score: the curves of ``notes_per_score`` consecutive notes (each audio channel's) and the frame
    positions -> conv 3 -> conv 3 (along time) -> average to POOLED frames -> linear."""

    def __init__(self, audio_channels: int, magnitude_scale: float, notes_per_score: int = 1):
        super().__init__()
        self.magnitude_scale = magnitude_scale
        self.notes_per_score = notes_per_score
        self.convs = nn.Sequential(
            EqualizedConv2d(notes_per_score * audio_channels + 1, WIDTH, (3, 1), slope=LEAKY_SLOPE, padding=(1, 0)),
            nn.LeakyReLU(LEAKY_SLOPE),
            EqualizedConv2d(WIDTH, WIDTH, (3, 1), slope=LEAKY_SLOPE, padding=(1, 0)),
            nn.LeakyReLU(LEAKY_SLOPE),
        )
        self.score = EqualizedLinear(WIDTH * POOLED, 1, slope=1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        levels = frame_levels(x, self.magnitude_scale)  # [B, ch, h, 1]
        batch, channels, frames, _ = levels.shape
        curves = levels.reshape(batch // self.notes_per_score, self.notes_per_score * channels, frames, 1)
        positions = torch.linspace(-1.0, 1.0, frames, device=x.device, dtype=curves.dtype)
        curves = torch.cat([curves, positions[None, None, :, None].expand(curves.shape[0], 1, frames, 1)], dim=1)
        features = F.adaptive_avg_pool2d(self.convs(curves), (POOLED, 1))  # [B / n, WIDTH, POOLED, 1]
        return self.score(features.flatten(1)).squeeze(1)

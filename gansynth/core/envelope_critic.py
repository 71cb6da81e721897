"""A critic of the envelope alone: each note's level curve, frame by frame, in dB.

On the third dataset (vibraphone, cello, clarinet) two thirds of the generated notes' distance to the
nearest real note is in the temporal envelope: the real notes rise within 6 frames to a level that stays
within ~1 dB, where G's notes wobble by several dB from frame to frame (docs/RESULTS.md). The main critic
cannot weigh that: it is held to a gradient norm of 1 in normalised pixel units, where 1 dB of level is
0.015 of a 2-wide range, so an envelope that is 3 dB off moves its score by next to nothing. This critic
sees nothing but the curve of each frame's level (log of its summed power, as ``with_frame_levels`` takes
it) in dB, and each frame's place in the clip, and takes its own gradient penalty in those units: its
score moves by up to one unit per dB (times its weight), whatever the rest of the image does. Notes
judged together (a pair of one instrument, or a pack) are stacked along channels, so it also sees whether
one latent keeps its envelope at two pitches. With ``bands`` > 1 it reads one curve per band of adjacent mel
columns (lowest first), all below the note's loudest band-frame, so it also judges how the spectrum's tilt moves
in time: a bass's upper harmonics dying at the release, a sax's brightening onset, which move a single
level curve by next to nothing (docs/RESULTS.md). With ``instrument_classes`` K > 0 it is also told each
note's instrument (a projection, as in the main critic): without it, a harpsichord's decay is one envelope
among the data's, which G may draw from any latent category. Nothing is fitted to data.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from gansynth.core.double_backward import LeakyReLU
from gansynth.core.layers import EqualizedConv2d, EqualizedLinear
from gansynth.core.networks import frame_levels, projected_scores

WIDTH = 32        # channels of every conv
POOLED = 16       # frames the features are averaged to before the score
LEAKY_SLOPE = 0.2


class EnvelopeCritic(nn.Module):
    """Level curves [B, ch * bands, h, 1] in dB (`curves`) -> [B / notes_per_score] scores.

    Per score: the curves of ``notes_per_score`` consecutive notes and the frame positions -> conv 3 ->
    conv 3 (along time) -> average to POOLED frames -> linear, plus with ``instrument_classes`` the logit of
    the group's instrument (its notes share one)."""

    def __init__(self, audio_channels: int, magnitude_scale: float, units_per_db: float, notes_per_score: int = 1,
                 bands: int = 1, instrument_classes: int = 0):
        super().__init__()
        self.bands = bands
        self.magnitude_scale = magnitude_scale
        self.units_per_db = units_per_db
        self.notes_per_score = notes_per_score
        self.convs = nn.Sequential(
            EqualizedConv2d(notes_per_score * audio_channels * bands + 1, WIDTH, (3, 1), slope=LEAKY_SLOPE, padding=(1, 0)),
            LeakyReLU(LEAKY_SLOPE),
            EqualizedConv2d(WIDTH, WIDTH, (3, 1), slope=LEAKY_SLOPE, padding=(1, 0)),
            LeakyReLU(LEAKY_SLOPE),
        )
        self.score = EqualizedLinear(WIDTH * POOLED, 1 + instrument_classes, slope=1.0)

    def curves(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised images [B, 2 ch, h, w] -> each frame's level in dB per band [B, ch * bands, h, 1]."""
        return frame_levels(x, self.magnitude_scale, self.bands) / self.units_per_db

    def forward(self, curves: torch.Tensor, instruments: torch.Tensor | None = None) -> torch.Tensor:
        """[B / notes_per_score] scores; ``instruments`` [B] given exactly with ``instrument_classes``."""
        batch, channels, frames, _ = curves.shape
        curves = curves.reshape(batch, -1, self.bands * frames, 1)  # [B, audio ch, bands * h, 1]
        curves = curves - curves.amax(2, keepdim=True)  # dB below each note's loudest band-frame: loudness is not timbre
        curves = curves.reshape(batch // self.notes_per_score, self.notes_per_score * channels, frames, 1)
        positions = torch.linspace(-1.0, 1.0, frames, device=curves.device, dtype=curves.dtype)
        curves = torch.cat([curves, positions[None, None, :, None].expand(curves.shape[0], 1, frames, 1)], dim=1)
        features = F.adaptive_avg_pool2d(self.convs(curves), (POOLED, 1))  # [B / n, WIDTH, POOLED, 1]
        return projected_scores(self.score(features.flatten(1)), instruments, self.notes_per_score, "EnvelopeCritic")

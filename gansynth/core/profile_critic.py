"""A critic of the harmonic profile alone: each note's level at its harmonics, frame by frame, in dB.

The envelope critic closed the envelope's part of the third dataset's gap; trained on to 60,000 images
the rest stays, and 54-68 % of what is left of the distance to the nearest real note is in the harmonic
profile (docs/RESULTS.md). The pair critic reads the harmonics, but inside the main critic's gradient
penalty, in normalised units where 1 dB is 0.015: a profile a few dB off costs G next to nothing. This
critic sees each note's magnitudes read at its harmonics k f0 and half-way between (the pair critic's
grid, ``HarmonicReader``: frames x 2K steps) in dB below the note's loudest step, and takes its own
gradient penalty in dB, as the envelope critic does. Steps above the image's top column read as the
note's quietest pixel. Notes judged together (a pair of one instrument) are stacked along channels.
Nothing is fitted to data.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from gansynth.core.double_backward import LeakyReLU
from gansynth.core.layers import EqualizedConv2d, EqualizedLinear
from gansynth.core.networks import NetworkError, projected_scores
from gansynth.core.pair_critic import HarmonicReader
from gansynth.core.pitch import PitchVocab
from gansynth.core.spectral import SpecgramCodec

HARMONICS = 16    # harmonics 1..16 and half-way between, as the shipped pair critic reads
WIDTH = 32        # channels of every conv
POOLED = (4, 4)   # (frames, harmonic steps) the features are averaged to before the score
LEAKY_SLOPE = 0.2


class HarmonicProfileCritic(nn.Module):
    """Harmonic grids [B, ch, h, 2K] in dB (`view`) -> [B / notes_per_score] scores, or with ``outputs`` > 1
    [B / notes_per_score, outputs] (the instrument classifier of ``model.instrument_balance`` is this
    network with one logit per instrument: the grid is what tells instruments apart at any pitch).

    Per score: the grids of ``notes_per_score`` consecutive notes stacked along channels -> conv 3x3 ->
    conv 3x3 -> average to POOLED -> linear, plus with ``instrument_classes`` K > 0 the logit of the group's
    instrument (a projection, as in the main critic: a harpsichord's missing 5th judged against the harpsichord)."""

    def __init__(self, codec: SpecgramCodec, vocab: PitchVocab, widths: list[int], units_per_db: float,
                 notes_per_score: int = 1, outputs: int = 1, instrument_classes: int = 0):
        super().__init__()
        if instrument_classes and outputs != 1:
            raise NetworkError("HarmonicProfileCritic: a classifier (outputs > 1) is told no instruments")
        self.instrument_classes = instrument_classes
        self.reader = HarmonicReader(codec, vocab, widths, HARMONICS)
        self.units_per_db = units_per_db
        self.notes_per_score = notes_per_score
        channels = notes_per_score * codec.audio_channels
        self.convs = nn.Sequential(
            EqualizedConv2d(channels, WIDTH, 3, slope=LEAKY_SLOPE, padding=1), LeakyReLU(LEAKY_SLOPE),
            EqualizedConv2d(WIDTH, WIDTH, 3, slope=LEAKY_SLOPE, padding=1), LeakyReLU(LEAKY_SLOPE),
        )
        self.score = EqualizedLinear(WIDTH * POOLED[0] * POOLED[1], outputs + instrument_classes, slope=1.0)

    def view(self, x: torch.Tensor, pitches: torch.Tensor) -> torch.Tensor:
        """Normalised images [B, 2 ch, h, w] at pitches [B] -> magnitudes at the harmonic steps in dB
        [B, ch, h, 2K]; a step outside the image reads the note's quietest pixel."""
        grid, inside = self.reader(x, pitches)  # [B, ch, h, 2K], [B, 2K]
        quietest = x[:, 0::2].detach().float().amin((-2, -1), keepdim=True)  # [B, ch, 1, 1]
        return torch.where(inside[:, None, None, :], grid, quietest) / self.units_per_db

    def forward(self, grid: torch.Tensor, instruments: torch.Tensor | None = None) -> torch.Tensor:
        """[B / n] scores (``instruments`` [B] given exactly with ``instrument_classes``), or a classifier's logits."""
        batch, channels, frames, steps = grid.shape
        grid = grid - grid.amax((-2, -1), keepdim=True)  # dB below each note's loudest step: loudness is not timbre
        grid = grid.reshape(batch // self.notes_per_score, self.notes_per_score * channels, frames, steps)
        features = F.adaptive_avg_pool2d(self.convs(grid), POOLED)  # [B / n, WIDTH, 4, 4]
        scores = self.score(features.flatten(1))
        if self.instrument_classes or instruments is not None:
            return projected_scores(scores, instruments, self.notes_per_score, "HarmonicProfileCritic")
        return scores.squeeze(1) if scores.shape[1] == 1 else scores

"""A critic of two notes at two pitches, read at their own harmonics: does a latent stay one instrument?

The main critic judges notes one at a time, so a G whose latent plays a trumpet at MIDI 48 and a guitar
at MIDI 71 passes it; that drift is what keeps the instrument mix unfair at the ends of the keyboard
(docs/RESULTS.md). This critic scores pairs: real pairs are one instrument at two pitches
(``data.instrument_pairs``), fake pairs are one latent at the same two pitches. Each note's log-magnitude
is first read at its harmonics k·f0, k = 1..K, and half-way between them (the noise of a breath or a bow),
by linear interpolation between image columns. That puts the two notes of a pair on one grid (frames ×
harmonic number), where one spectrum played at two pitches reads the same and two instruments differ
(tests/test_pair_critic.py). Nothing here is fitted to data: the grid comes from the codec's frequency
axis and the pitch.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from gansynth.core.harmonics import column_frequencies
from gansynth.core.double_backward import LeakyReLU
from gansynth.core.layers import EqualizedConv2d, EqualizedLinear
from gansynth.core.networks import projected_scores
from gansynth.core.pitch import PitchVocab, midi_to_hz
from gansynth.core.spectral import SpecgramCodec

WIDTH = 32           # channels of every conv
POOLED = (4, 4)      # (frames, harmonics) the features are averaged to before the score
LEAKY_SLOPE = 0.2


def harmonic_sampling(codec: SpecgramCodec, vocab: PitchVocab, width: int, harmonics: int) -> torch.Tensor:
    """[P, width, 2K]: per pitch, the weights that read an image row of ``width`` columns at 1, 1.5, 2, ...,
    K + 0.5 times the pitch's f0 (linear between the two columns whose centres bracket the frequency; a
    frequency outside the columns' range reads 0)."""
    hz = column_frequencies(codec).reshape(width, -1).mean(1)  # [w] centre of each stage column
    f0 = midi_to_hz(torch.arange(vocab.low, vocab.high + 1, dtype=torch.float64))  # [P]
    target = f0[:, None] * (1.0 + 0.5 * torch.arange(2 * harmonics, dtype=torch.float64))  # [P, 2K]
    above = torch.searchsorted(hz, target)  # first column centre >= k f0
    inside = (above > 0) & (above < width)
    low = (above - 1).clamp(0, width - 2)
    frac = ((target - hz[low]) / (hz[low + 1] - hz[low])).clamp(0.0, 1.0)
    weights = torch.zeros(f0.shape[0], 2 * harmonics, width, dtype=torch.float64)
    weights.scatter_add_(2, low[..., None], ((1.0 - frac) * inside)[..., None])
    weights.scatter_add_(2, low[..., None] + 1, (frac * inside)[..., None])
    return weights.transpose(1, 2).float()


class HarmonicReader(nn.Module):
    """Normalised images [B, 2 ch, h, w] at pitches [B] -> (each magnitude channel read at the pitch's
    harmonic steps [B, ch, h, 2K] in fp32, which steps lie inside the image [B, 2K]), at any stage width of
    ``widths``. Its tables are rebuilt from the codec, never saved."""

    def __init__(self, codec: SpecgramCodec, vocab: PitchVocab, widths: list[int], harmonics: int):
        super().__init__()
        for width in widths:
            self.register_buffer(f"sampling_{width}", harmonic_sampling(codec, vocab, width, harmonics),
                                 persistent=False)

    def forward(self, x: torch.Tensor, pitches: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        sampling = getattr(self, f"sampling_{x.shape[-1]}")[pitches]  # [B, w, 2K]
        return torch.einsum("bchw,bwk->bchk", x[:, 0::2].float(), sampling), sampling.sum(1) > 0


class HarmonicPairCritic(nn.Module):
    """Normalised images [B, C, h, w] of B/2 pairs (notes 2i and 2i+1) and their pitches -> [B/2] scores.

    Per note: magnitude channels read at the 2K harmonic steps, plus one channel saying which steps lie
    inside the image; the pair's two grids are stacked along channels, then conv 3x3 -> conv 3x3 -> average to
    POOLED -> linear. With ``instrument_classes`` K > 0 the score also gets the logit of the pair's instrument
    (a projection, as in the main critic), so the harmonic levels are judged against that instrument's."""

    def __init__(self, codec: SpecgramCodec, vocab: PitchVocab, widths: list[int], harmonics: int,
                 instrument_classes: int = 0):
        super().__init__()
        self.reader = HarmonicReader(codec, vocab, widths, harmonics)
        magnitudes = codec.audio_channels
        self.convs = nn.Sequential(
            EqualizedConv2d(2 * (magnitudes + 1), WIDTH, 3, slope=LEAKY_SLOPE, padding=1), LeakyReLU(LEAKY_SLOPE),
            EqualizedConv2d(WIDTH, WIDTH, 3, slope=LEAKY_SLOPE, padding=1), LeakyReLU(LEAKY_SLOPE),
        )
        self.score = EqualizedLinear(WIDTH * POOLED[0] * POOLED[1], 1 + instrument_classes, slope=1.0)

    def harmonic_grid(self, x: torch.Tensor, pitches: torch.Tensor) -> torch.Tensor:
        """[B, C, h, w] -> [B, C/2 + 1, h, 2K]: every magnitude channel at the pitch's harmonic steps, and
        the steps' inside-the-image mask."""
        grid, inside = self.reader(x, pitches)
        inside = inside.float()[:, None, None, :].expand(-1, 1, x.shape[2], -1)  # [B, 1, h, 2K]
        return torch.cat([grid, inside], dim=1)

    def forward(self, x: torch.Tensor, pitches: torch.Tensor, instruments: torch.Tensor | None = None) -> torch.Tensor:
        """[B/2] scores; ``instruments`` [B] (given exactly with ``instrument_classes``; a pair's notes share one)."""
        grid = self.harmonic_grid(x, pitches)
        pairs = grid.reshape(grid.shape[0] // 2, 2 * grid.shape[1], *grid.shape[2:])  # [B/2, 2(C/2+1), h, 2K]
        features = F.adaptive_avg_pool2d(self.convs(pairs), POOLED)
        return projected_scores(self.score(features.flatten(1)), instruments, 2, "HarmonicPairCritic")

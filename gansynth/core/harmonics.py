"""Harmonic coordinates: where the asked-for pitch's harmonics fall on the image, as input channels for G.

A convolutional generator is blind to absolute frequency: to draw the harmonic comb of a pitch it has to
build, from a 2x16 start, a pattern whose period changes with the label, and on a CPU budget it never
does (every template-free variant stayed at the pitch-accuracy floor). These channels give each
frequency column what physics already knows about it for a pitch f0 — nothing is fitted to the data:

- cos, sin of 2 pi f / f0: the column's position in the comb (1 on a harmonic, -1 half-way between);
- cos, sin of the phase advance per hop of the nearest harmonic, 2 pi h f0 hop / sr: what a steady
  harmonic's instantaneous frequency reads in the columns it dominates;
- log2(f / f0) / 4: which harmonic, for the roll-off that distinguishes instruments;
- optionally (``subharmonic_combs``), cos, sin of 2 pi f / (m f0) for each m: a comb of every m-th harmonic.
  The first pair reads the same on every harmonic, so an amplitude that alternates with the harmonic
  number (a clarinet's weak even harmonics, m = 2; a vibraphone bar's partials at 4 and 10 f0, even and
  1 more than a multiple of 3) is out of a conv's easy reach without it (docs/RESULTS.md).

G still has to learn every amplitude, envelope, noise and the IF away from steady harmonics: its
timbre. Coarse stages get the same channels at their own column centres (no averaging of the comb).

`comb_if` goes one step further for the phase: the IF image the codec itself gives an ideal harmonic comb
of the pitch (every harmonic below Nyquist at equal level, so nothing about any instrument). On a note's
spectral peaks real IF sits within a few hundredths of it, and with it real magnitudes decode almost
perfectly; G's IF, 0.14 away, smears the harmonics. Given as an input alone G does not copy it; the loss
`model.loss.harmonic_phase` pulls G's IF toward it (docs/RESULTS.md).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from gansynth.core.networks import pool_to
from gansynth.core.pitch import PitchVocab, midi_to_hz
from gansynth.core.spectral import SpecgramCodec

NUM_CHANNELS = 5  # without subharmonic combs; each comb adds 2


def column_frequencies(codec: SpecgramCodec) -> torch.Tensor:
    """Centre frequency in Hz of every image column [F]: the linear bin's frequency, or each mel band's
    weighted centre (its triangle's centre of mass on the linear bins)."""
    linear_hz = torch.arange(1, codec.n_bins + 1, dtype=torch.float64) * codec.sample_rate / codec.n_fft  # [F]
    if not codec.mel:
        return linear_hz
    weights = codec.linear_to_mel.double()  # [linear, mel]
    mass = weights.sum(0)
    centre = (weights * linear_hz[:, None]).sum(0) / mass.clamp_min(1e-12)
    return torch.where(mass > 0, centre, linear_hz)  # an empty band keeps its own column's frequency


def harmonic_coordinates(codec: SpecgramCodec, vocab: PitchVocab, width: int,
                         subharmonic_combs: Sequence[int] = ()) -> torch.Tensor:
    """Channels [P, NUM_CHANNELS + 2 len(subharmonic_combs), width] for every pitch of ``vocab`` at a stage
    ``width`` columns wide."""
    hz = column_frequencies(codec)
    hz = hz.reshape(width, -1).mean(1)  # [w] centre of the columns each stage column covers
    f0 = midi_to_hz(torch.arange(vocab.low, vocab.high + 1, dtype=torch.float64))[:, None]  # [P, 1]
    ratio = hz[None, :] / f0  # [P, w]
    harmonic = ratio.round().clamp_min(1.0)
    advance = 2 * math.pi * harmonic * f0 * codec.hop_length / codec.sample_rate
    channels = [torch.cos(2 * math.pi * ratio), torch.sin(2 * math.pi * ratio),
                torch.cos(advance), torch.sin(advance), torch.log2(ratio) / 4.0]
    for m in subharmonic_combs:
        channels += [torch.cos(2 * math.pi * ratio / m), torch.sin(2 * math.pi * ratio / m)]
    return torch.stack(channels, dim=1).float()  # [P, 5, w]


def harmonic_profile_weights(codec: SpecgramCodec, vocab: PitchVocab, width: int, harmonics: int) -> torch.Tensor:
    """[P, H, width]: how much each column of a stage ``width`` columns wide takes of harmonic h's level (G's
    ``harmonic_profile``): 1 on the harmonic, falling linearly to 0 on its neighbours (h - 1, h + 1), so
    between two harmonics the level is interpolated and below the fundamental or above harmonic H it fades out.
    Data-free, like the coordinates."""
    hz = column_frequencies(codec).reshape(width, -1).mean(1)  # [w]
    f0 = midi_to_hz(torch.arange(vocab.low, vocab.high + 1, dtype=torch.float64))[:, None, None]  # [P, 1, 1]
    h = torch.arange(1, harmonics + 1, dtype=torch.float64)[None, :, None]  # [1, H, 1]
    return (1.0 - (hz[None, None, :] / f0 - h).abs()).clamp_min(0.0).float()


def comb_wave(codec: SpecgramCodec, f0_hz: float) -> torch.Tensor:
    """[n_samples] every harmonic of ``f0_hz`` below Nyquist, equal level, cosine phase, peak 0.5."""
    t = torch.arange(codec.n_samples, dtype=torch.float64) / codec.sample_rate
    harmonics = torch.arange(1, math.ceil(codec.sample_rate / 2 / f0_hz), dtype=torch.float64)  # [H]
    wave = torch.cos(2 * math.pi * f0_hz * harmonics[:, None] * t[None, :]).sum(0)
    return (0.5 * wave / wave.abs().max()).float()


def comb_if(codec: SpecgramCodec, vocab: PitchVocab, shapes: list[tuple[int, int]]) -> list[torch.Tensor]:
    """The codec's raw IF image of each pitch's harmonic comb, average-pooled to every (h, w) of
    ``shapes`` as the reals are: one [P, 1, h, w] tensor per shape."""
    f0 = midi_to_hz(torch.arange(vocab.low, vocab.high + 1, dtype=torch.float64)).tolist()
    waves = torch.stack([comb_wave(codec, hz) for hz in f0])[:, None].expand(-1, codec.audio_channels, -1)
    image = codec.encode(waves)[:, 1:2]  # [P, 1, T, F]: the first audio channel's IF
    return [pool_to(image, shape) for shape in shapes]

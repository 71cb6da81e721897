"""The pair critic's harmonic grid: a note read at its own harmonic steps, so that one spectrum played at
two pitches gives one grid, and two spectra at one pitch do not."""
from __future__ import annotations

import math

import pytest
import torch

from gansynth.core.networks import NetworkError
from gansynth.core.pair_critic import HarmonicPairCritic, harmonic_sampling
from gansynth.core.pitch import PitchVocab, midi_to_hz
from gansynth.core.spectral import SpecgramCodec

HARMONICS = 8
VOCAB = PitchVocab(24, 84)


@pytest.fixture(scope="module")
def codec() -> SpecgramCodec:
    """The tiny experiment's geometry, mono: image [2, 32, 256] on the independent mel matrix."""
    return SpecgramCodec(audio_length=0.25, channel_mode="mono", n_fft=512, hop_length=128, n_frames=32,
                         mel_matrix="independent")


def tone(codec: SpecgramCodec, midi: int, amplitudes: list[float]) -> torch.Tensor:
    """[1, 1, n] harmonic k at amplitudes[k - 1], cosine phase, below Nyquist only."""
    t = torch.arange(codec.n_samples, dtype=torch.float64) / codec.sample_rate
    f0 = float(midi_to_hz(torch.tensor(float(midi))))
    wave = sum(a * torch.cos(2 * math.pi * k * f0 * t) for k, a in enumerate(amplitudes, 1)
               if k * f0 < codec.sample_rate / 2)
    return (0.5 * wave / wave.abs().max()).float()[None, None]


def grid_of(codec: SpecgramCodec, critic: HarmonicPairCritic, midi: int, amplitudes: list[float]) -> torch.Tensor:
    """[h, 2K] the magnitude grid of a tone, without the mask channel."""
    image = codec.normalize(codec.encode(tone(codec, midi, amplitudes)))
    return critic.harmonic_grid(image, torch.tensor([VOCAB.index(midi)]))[0, 0]


def test_the_grid_reads_a_harmonic_note_loud_on_its_harmonics_and_quiet_between(codec):
    critic = HarmonicPairCritic(codec, VOCAB, [256], HARMONICS)
    grid = grid_of(codec, critic, 57, [1.0] * HARMONICS)[4:28]  # the note's steady frames
    on, between = grid[:, 0::2].mean(), grid[:, 1::2].mean()
    assert on - between > 0.3, (on, between)  # normalised log-magnitude, about 12 dB


def test_steps_above_the_top_column_read_nothing_and_are_masked(codec):
    sampling = harmonic_sampling(codec, VOCAB, 256, 16)  # [61, 256, 32]
    high = sampling[VOCAB.index(84)]  # C6, 1047 Hz: steps 1 .. 16.5 f0 reach 17 kHz, Nyquist is 8 kHz
    inside = high.sum(0) > 0
    assert inside[:10].all() and not inside[-10:].any()
    torch.testing.assert_close(high.sum(0)[inside], torch.ones(int(inside.sum()), dtype=torch.float32))
    critic = HarmonicPairCritic(codec, VOCAB, [256], 16)
    mask = critic.harmonic_grid(torch.zeros(1, 2, 32, 256), torch.tensor([VOCAB.index(84)]))[0, 1]
    assert torch.equal(mask[0] > 0, inside)


def test_one_spectrum_at_two_pitches_gives_one_grid_and_another_spectrum_does_not(codec):
    """A bright 1/k spectrum at MIDI 50 and 62 reads alike on the grid's harmonic steps, a hollow
    odd-harmonic spectrum at MIDI 50 does not; on the image itself the octave apart differs more than the
    two spectra (the control: what the grid buys). Between the harmonics the low note reads louder: the
    window's main lobe is wider than half its harmonic spacing."""
    critic = HarmonicPairCritic(codec, VOCAB, [256], HARMONICS)
    bright = [1.0 / k for k in range(1, HARMONICS + 1)]
    hollow = [1.0 if k % 2 else 0.02 for k in range(1, HARMONICS + 1)]
    on_grid = {name: grid_of(codec, critic, midi, spectrum)[4:28, 0::2]
               for name, midi, spectrum in (("low", 50, bright), ("high", 62, bright), ("other", 50, hollow))}
    same, different = (on_grid["low"] - on_grid["high"]).abs().mean(), (on_grid["low"] - on_grid["other"]).abs().mean()
    assert same < 0.5 * different, (same, different)
    images = {name: codec.normalize(codec.encode(tone(codec, midi, spectrum)))[0, 0, 4:28]
              for name, midi, spectrum in (("low", 50, bright), ("high", 62, bright), ("other", 50, hollow))}
    assert (images["low"] - images["high"]).abs().mean() > (images["low"] - images["other"]).abs().mean()


def test_the_critic_scores_each_pair_once_at_every_stage_width(codec):
    critic = HarmonicPairCritic(codec, VOCAB, [64, 256], HARMONICS)
    pitches = torch.tensor([10, 20, 30, 40])
    for width in (64, 256):
        assert critic(torch.randn(4, 2, 8, width), pitches).shape == (2,)


def test_told_the_instrument_the_critic_scores_a_pair_by_the_instrument_it_claims(codec):
    torch.manual_seed(0)
    critic = HarmonicPairCritic(codec, VOCAB, [256], HARMONICS, instrument_classes=3)
    x, pitches = torch.randn(4, 2, 8, 256), torch.tensor([10, 20, 30, 40])
    with torch.no_grad():
        as_0, as_2 = critic(x, pitches, torch.tensor([0, 0, 1, 1])), critic(x, pitches, torch.tensor([2, 2, 1, 1]))
    assert (as_0[0] - as_2[0]).abs() > 1e-3 and as_0[1] == as_2[1]  # only the first pair claims another
    with pytest.raises(NetworkError, match="instruments are given exactly when instrument_classes > 0"):
        critic(x, pitches)

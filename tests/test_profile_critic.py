"""The profile critic reads each note at its harmonic steps in dB: a louder note keeps its score, one
harmonic a few dB down moves it, and steps above the image read as the note's quietest pixel."""
from __future__ import annotations

import math

import pytest
import torch

from gansynth.core.networks import NetworkError
from gansynth.core.pitch import PitchVocab
from gansynth.core.profile_critic import HARMONICS, HarmonicProfileCritic
from gansynth.core.spectral import SpecgramCodec

VOCAB = PitchVocab(24, 84)
CODEC = SpecgramCodec(audio_length=0.25, channel_mode="mono", n_fft=512, hop_length=128, n_frames=32,
                      mel_matrix="independent")  # the tiny experiment's geometry, mono
UNITS_PER_DB = float(CODEC.channel_scale[0]) * math.log(10.0) / 10.0


def critic_of(notes_per_score: int = 1) -> HarmonicProfileCritic:
    torch.manual_seed(0)
    return HarmonicProfileCritic(CODEC, VOCAB, [256], UNITS_PER_DB, notes_per_score=notes_per_score)


def images(batch: int = 4) -> torch.Tensor:
    """[B, 2, 32, 256] normalised [logmag, IF] of random content."""
    return torch.randn(batch, 2, 32, 256, generator=torch.Generator().manual_seed(0)) * 0.3


def pitches(batch: int = 4, midi: int = 57) -> torch.Tensor:
    return torch.full((batch,), VOCAB.index(midi))


def score(critic: HarmonicProfileCritic, x: torch.Tensor, midi: int = 57) -> torch.Tensor:
    return critic(critic.view(x, pitches(x.shape[0], midi)))


def columns_read_by(critic: HarmonicProfileCritic, midi: int, step: int) -> torch.Tensor:
    """Indices of the image columns the grid's ``step`` (0: f0, 1: 1.5 f0, ...) reads at ``midi``."""
    return critic.reader.sampling_256[VOCAB.index(midi), :, step].nonzero().flatten()


def test_the_grid_is_in_db_and_a_louder_note_keeps_the_score():
    critic, x = critic_of(), images()
    louder_f0 = x.clone()
    louder_f0[:, 0, :, columns_read_by(critic, 57, 0)] += 10 * UNITS_PER_DB
    difference = critic.view(louder_f0, pitches()) - critic.view(x, pitches())  # [B, 1, h, 2K]
    torch.testing.assert_close(difference[..., 0], torch.full((4, 1, 32), 10.0), rtol=0, atol=1e-3)
    assert difference[..., 2:].abs().max() < 1e-3  # harmonics 2 and up read other columns
    torch.testing.assert_close(score(critic, x + 6 * UNITS_PER_DB), score(critic, x), rtol=0, atol=1e-4)


def test_one_harmonic_a_few_db_down_changes_the_score():
    critic, x = critic_of(), images()
    hollow = x.clone()
    hollow[:, 0, :, columns_read_by(critic, 57, 2)] -= 3 * UNITS_PER_DB  # the second harmonic 3 dB down
    assert (score(critic, hollow) - score(critic, x)).abs().min() > 1e-3


def test_steps_above_the_top_column_read_the_notes_quietest_pixel():
    critic, x = critic_of(), images()
    grid = critic.view(x, pitches(midi=84))  # C6, 1047 Hz: steps 1 .. 7.5 f0 (the first 14) lie below Nyquist
    quietest = x[:, 0].amin((-2, -1))[:, None, None, None] / UNITS_PER_DB  # [B, 1, 1, 1]
    torch.testing.assert_close(grid[..., 14:], quietest.expand(-1, 1, 32, 2 * HARMONICS - 14))
    assert (grid[..., :14] > quietest + 1).all()


def test_notes_judged_together_share_one_score_per_group():
    x = images(batch=6)
    assert score(critic_of(notes_per_score=2), x).shape == (3,)
    assert score(critic_of(), x).shape == (6,)


def test_told_instruments_add_each_pairs_instrument_logit_and_a_classifier_is_told_none():
    """Pairs, 3 instruments: telling a pair another instrument moves its score by the difference of the two
    instruments' logits and nothing else (the first pair told 2 then 0, the second 1 both times); a told critic
    needs the instruments; a classifier (several outputs) cannot be told them."""
    torch.manual_seed(0)
    critic = HarmonicProfileCritic(CODEC, VOCAB, [256], UNITS_PER_DB, notes_per_score=2, instrument_classes=3)
    grid = critic.view(images(), pitches())
    first, second = critic(grid, torch.tensor([2, 2, 1, 1])), critic(grid, torch.tensor([0, 0, 1, 1]))
    assert first.shape == (2,) and abs(first[0] - second[0]) > 1e-3 and first[1] == second[1]
    with pytest.raises(NetworkError, match="instruments are given exactly when instrument_classes > 0"):
        critic(grid)
    with pytest.raises(NetworkError, match="a classifier"):
        HarmonicProfileCritic(CODEC, VOCAB, [256], UNITS_PER_DB, outputs=3, instrument_classes=3)

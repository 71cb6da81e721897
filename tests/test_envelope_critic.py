"""The envelope critic sees each frame's level in dB and nothing else: moving power between columns of a
frame, or making the note louder, leaves its score alone; a dip of one frame moves it."""
from __future__ import annotations

import math

import pytest
import torch

from gansynth.core.envelope_critic import EnvelopeCritic
from gansynth.core.networks import NetworkError

SCALE = 0.2  # normalised units per neper of mel power
UNITS_PER_DB = SCALE * math.log(10.0) / 10.0


def critic_of(channels: int = 1, notes_per_score: int = 1, bands: int = 1, instruments: int = 0) -> EnvelopeCritic:
    return EnvelopeCritic(audio_channels=channels, magnitude_scale=SCALE, units_per_db=UNITS_PER_DB,
                          notes_per_score=notes_per_score, bands=bands, instrument_classes=instruments)


def score(critic: EnvelopeCritic, x: torch.Tensor) -> torch.Tensor:
    return critic(critic.curves(x))


def images(batch: int = 4, channels: int = 1, frames: int = 32, columns: int = 64) -> torch.Tensor:
    """[B, 2 ch, h, w] normalised [logmag, IF] pairs of random content."""
    return torch.randn(batch, 2 * channels, frames, columns, generator=torch.Generator().manual_seed(0)) * 0.3


def test_the_curve_is_each_frame_level_in_db():
    """Every column of a frame 10 dB up: that frame's summed power, and its curve, 10 dB up."""
    critic, x = critic_of(), images()
    louder = x.clone()
    louder[:, 0, 5] += 10 * UNITS_PER_DB
    difference = critic.curves(louder) - critic.curves(x)  # [B, 1, h, 1]
    torch.testing.assert_close(difference[:, 0, 5, 0], torch.full((4,), 10.0), rtol=0, atol=1e-4)
    assert difference[:, 0, :5].abs().max() < 1e-4


def test_reshuffling_the_columns_of_every_frame_or_a_louder_note_keeps_the_score():
    critic = critic_of()
    x = images()
    shuffled = x.clone()
    for frame in range(x.shape[2]):  # each frame its own permutation: the spectrum changes, its power does not
        order = torch.randperm(x.shape[3], generator=torch.Generator().manual_seed(frame))
        shuffled[:, :, frame] = x[:, :, frame, order]
    assert not torch.allclose(x, shuffled)
    torch.testing.assert_close(score(critic, shuffled), score(critic, x), rtol=0, atol=1e-4)
    torch.testing.assert_close(score(critic, x + 6 * UNITS_PER_DB), score(critic, x), rtol=0, atol=1e-4)


def test_a_dip_in_one_frame_changes_the_score():
    critic, x = critic_of(), images()
    dipped = x.clone()
    dipped[:, 0, 10] -= 10 * UNITS_PER_DB  # the frame's power 10 dB down
    assert (score(critic, dipped) - score(critic, x)).abs().min() > 1e-3


def test_notes_judged_together_share_one_score_per_group():
    x = images(batch=6, channels=2, frames=8)
    assert score(critic_of(channels=2, notes_per_score=2), x).shape == (3,)
    assert score(critic_of(channels=2), x).shape == (6,)
    assert score(critic_of(channels=2), images(batch=6, channels=2, frames=2)).shape == (6,)


def test_band_curves_are_each_band_level_in_db():
    """Stereo, 4 bands of 16 columns: the upper half of band 2 of the right channel 10 dB up in frame 5 moves that
    one curve (channel 1 * 4 + 2) by 10 log10((1 + 10) / 2) dB there and no other curve anywhere."""
    critic, x = critic_of(channels=2, bands=4), torch.zeros(4, 4, 32, 64)  # every column at one level
    louder = x.clone()
    louder[:, 2, 5, 40:48] += 10 * UNITS_PER_DB  # magnitude channel of audio channel 1, columns 40..47 of 32..47
    difference = critic.curves(louder) - critic.curves(x)  # [B, 8, h, 1]
    assert difference.shape == (4, 8, 32, 1)
    moved = difference[:, 6, 5, 0]
    torch.testing.assert_close(moved, torch.full((4,), 10 * math.log10(5.5)), rtol=0, atol=1e-4)
    difference[:, 6, 5] = 0
    assert difference.abs().max() < 1e-4


def test_bands_see_the_spectrum_tilt_move_in_time_where_one_level_does_not():
    """Power moved from the top band to the bottom one in the last frames (a release that darkens the note): the
    single-level critic scores it as before, the 4-band critic does not; moving power within a band, neither."""
    x = images()
    darker = x.clone()
    top, bottom = x[:, 0, 24:, 48:].clone(), x[:, 0, 24:, :16].clone()
    darker[:, 0, 24:, 48:], darker[:, 0, 24:, :16] = bottom, top  # swap whole bands: each frame's power kept
    within = x.clone()
    within[:, 0, :, :16] = x[:, 0, :, :16].flip(-1)
    one, four = critic_of(), critic_of(bands=4)
    torch.testing.assert_close(score(one, darker), score(one, x), rtol=0, atol=1e-4)
    assert (score(four, darker) - score(four, x)).abs().min() > 1e-3
    torch.testing.assert_close(score(four, within), score(four, x), rtol=0, atol=1e-4)


def test_told_instruments_add_the_logit_of_each_groups_instrument():
    """Pairs of notes, 3 instruments: each pair's score is the untold score plus its instrument's logit (the score
    head's row 1 + k), read from the pair's first note; a critic with instruments refuses to score without them,
    one without refuses them."""
    critic = critic_of(notes_per_score=2, instruments=3)
    curves = critic.curves(images(batch=6))

    def head_row(row: int) -> torch.Tensor:
        """The pair scores of an untold critic with the same convs whose head is ``critic``'s row ``row``."""
        plain = critic_of(notes_per_score=2)
        plain.convs.load_state_dict(critic.convs.state_dict())
        plain.score.weight.data, plain.score.bias.data = critic.score.weight[row:row + 1], critic.score.bias[row:row + 1]
        return plain(curves)

    pairs = torch.tensor([2, 2, 0, 0, 1, 1])
    logits = torch.stack([head_row(1 + k) for k in range(3)], dim=1)  # [3 pairs, 3 instruments]
    torch.testing.assert_close(critic(curves, pairs), head_row(0) + logits[torch.arange(3), pairs[0::2]])
    assert (logits[:, 0] - logits[:, 2]).abs().min() > 1e-3  # telling another instrument moves the score
    with pytest.raises(NetworkError, match="instruments are given exactly when instrument_classes > 0"):
        critic(curves)
    with pytest.raises(NetworkError, match="instruments are given exactly when instrument_classes > 0"):
        critic_of(notes_per_score=2)(curves, pairs)

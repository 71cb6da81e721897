"""The envelope critic sees each frame's level and nothing else: moving power between columns of a frame
leaves its score alone, a dip of one frame moves it."""
from __future__ import annotations

import torch

from gansynth.core.envelope_critic import EnvelopeCritic

SCALE = 0.2  # a normalised log-magnitude slope like the codec's


def images(batch: int = 4, channels: int = 1, frames: int = 32, columns: int = 64) -> torch.Tensor:
    """[B, 2 ch, h, w] normalised [logmag, IF] pairs of random content."""
    return torch.randn(batch, 2 * channels, frames, columns, generator=torch.Generator().manual_seed(0)) * 0.3


def test_reshuffling_the_columns_of_every_frame_keeps_the_score():
    critic = EnvelopeCritic(audio_channels=1, magnitude_scale=SCALE)
    x = images()
    shuffled = x.clone()
    for frame in range(x.shape[2]):  # each frame its own permutation: the spectrum changes, its power does not
        shuffled[:, :, frame] = x[:, :, frame, torch.randperm(x.shape[3], generator=torch.Generator().manual_seed(frame))]
    assert not torch.allclose(x, shuffled)
    torch.testing.assert_close(critic(shuffled), critic(x), rtol=0, atol=1e-5)


def test_a_dip_in_one_frame_changes_the_score():
    critic = EnvelopeCritic(audio_channels=1, magnitude_scale=SCALE)
    x = images()
    dipped = x.clone()
    dipped[:, 0, 10] -= SCALE * 2.3  # the frame's power 10 dB down
    assert (critic(dipped) - critic(x)).abs().min() > 1e-4


def test_notes_judged_together_share_one_score_per_group():
    x = images(batch=6, channels=2, frames=8)
    assert EnvelopeCritic(audio_channels=2, magnitude_scale=SCALE, notes_per_score=2)(x).shape == (3,)
    assert EnvelopeCritic(audio_channels=2, magnitude_scale=SCALE)(x).shape == (6,)
    assert EnvelopeCritic(audio_channels=2, magnitude_scale=SCALE)(images(batch=6, channels=2, frames=2)).shape == (6,)

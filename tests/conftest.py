"""Shared fixtures: a tiny codec geometry and a small folder of synthetic notes with known pitches."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from gansynth.commands import cli
from gansynth.commands.make_dataset import make_dataset

torch.set_num_threads(2)  # the test machines have two cores shared between jobs

SYNTHETIC_PROGRAMS = (0, 1)
SYNTHETIC_PITCHES = range(58, 62)


@pytest.fixture
def tiny_codec() -> dict:
    """SpecgramCodec kwargs: 0.28 s mono at 16 kHz -> image [2, 32, 256] (no left padding)."""
    return dict(sample_rate=16000, audio_length=0.28, channel_mode="mono", n_fft=512, hop_length=128, n_frames=32)


@pytest.fixture(scope="session")
def synthetic_notes(tmp_path_factory) -> Path:
    """8 mono 16 kHz notes, 0.28 s, named synth_PPP-MMM-100.wav: programs 0-1 x MIDI 58-61.

    Shared by the whole session: copy it before changing anything inside.
    """
    folder = tmp_path_factory.mktemp("synthetic_notes")
    make_dataset(
        folder, synthetic=True, programs=SYNTHETIC_PROGRAMS, pitch_low=SYNTHETIC_PITCHES[0],
        pitch_high=SYNTHETIC_PITCHES[-1], velocities=(100,), note_length=0.2, clip_length=0.28,
        sample_rate=16000, channels=1, progress=False,
    )
    return folder


@pytest.fixture
def console(monkeypatch):
    """Run a console script (``console("make_dataset", "out=x")``) in this process, as installed: its
    command line checked, then Hydra's job (a new Python would import torch again)."""
    def run(command: str, *argv: str):
        monkeypatch.setattr(sys, "argv", [f"gansynth-{command.replace('_', '-')}", *argv])
        getattr(cli, command)()
    return run

"""Render notes with a trained Synth: latents, note shapes (envelope, velocity, sustain) and the mix.

Fixes to the originals' rendering (facts 7): a note sounds for its MIDI duration (+ an optional
release tail) capped by the clip length (or looped past it with `sustain=loop`), not always the whole clip; the mix buffer is sized in
samples so no note can overrun it; every normalisation uses the absolute peak; timbre drift
works for pieces shorter than one anchor interval; and generation needs only the checkpoint.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from gansynth.core.audio import peak_normalize
from gansynth.core.envelope import check_envelope_params, envelope
from gansynth.core.midi import Note
from gansynth.core.synth import RenderError, Synth
from gansynth.inference.sustain import SUSTAIN_MODES, sustained

VELOCITY_CURVES: dict[str, Callable[[int], float]] = {
    "linear": lambda v: v / 127.0,
    "quadratic": lambda v: (v / 127.0) ** 2,
    "constant": lambda v: 1.0,
}


def is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# ----------------------------------------------------------------------------------------------
# Latents


def random_anchors(count: int, latent_dim: int, seed: int) -> np.ndarray:
    """count N(0, I) latents [count, latent_dim] float32, reproducible from the seed alone."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(count, latent_dim, generator=generator).numpy()


def load_anchors(path: str | os.PathLike, latent_dim: int) -> np.ndarray:
    """A saved `.npy` of one latent [latent] / [1, latent] or of anchors [K, latent]."""
    path = Path(path)
    if not path.is_file():
        raise RenderError(f"{path}: latents file not found")
    try:
        anchors = np.load(path, allow_pickle=False)
    except Exception as exc:  # numpy raises ValueError/OSError/EOFError for a non-npy file
        raise RenderError(f"{path}: not a readable .npy latents file ({type(exc).__name__})") from None
    if anchors.ndim == 1:
        anchors = anchors[None]
    if anchors.ndim != 2 or anchors.shape[0] == 0 or anchors.shape[1] != latent_dim:
        raise RenderError(f"{path}: latents must be shaped [{latent_dim}] or [K, {latent_dim}], "
                          f"got {tuple(np.shape(anchors))}")
    if not np.issubdtype(anchors.dtype, np.floating) or not np.isfinite(anchors).all():
        raise RenderError(f"{path}: latents must be finite floating-point numbers")
    return anchors.astype(np.float32)


def slerp(p0: np.ndarray, p1: np.ndarray, t: float) -> np.ndarray:
    """Spherical interpolation between two latents; linear when they are (anti)parallel."""
    cos = float(np.dot(p0, p1) / (np.linalg.norm(p0) * np.linalg.norm(p1) + 1e-12))
    omega = math.acos(min(max(cos, -1.0), 1.0))
    if math.sin(omega) < 1e-6:
        return (1.0 - t) * p0 + t * p1
    return (math.sin((1.0 - t) * omega) * p0 + math.sin(t * omega) * p1) / math.sin(omega)


def interpolate_anchors(anchors: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Latents [N, latent] along anchors [K, latent] spread evenly over positions in [0, 1]."""
    if len(anchors) == 1:
        return np.repeat(anchors, len(positions), axis=0)
    scaled = np.clip(positions, 0.0, 1.0) * (len(anchors) - 1)
    left = np.minimum(np.floor(scaled).astype(int), len(anchors) - 2)
    return np.stack([slerp(anchors[i], anchors[i + 1], float(s - i)) for i, s in zip(left, scaled)]
                    ).astype(np.float32)


# ----------------------------------------------------------------------------------------------
# Rendering


@dataclass(frozen=True)
class NoteShape:
    """How a generated clip becomes a sounding note: envelope, tail, velocity, per-note level."""

    attack_percent: float = 1.0
    attack_slope: float = 0.5
    release_percent: float = 25.0
    release_slope: float = 0.5
    release_tail: float = 0.0
    velocity_curve: str = "linear"
    normalize_notes: bool = True
    sustain: str = "none"  # none: a note stops at the clip's end; loop: the clip's steady part repeats

    def __post_init__(self) -> None:
        check_envelope_params(self.attack_percent, self.attack_slope, self.release_percent, self.release_slope)
        if self.sustain not in SUSTAIN_MODES:
            raise RenderError(f"sustain {self.sustain!r} is not one of {', '.join(SUSTAIN_MODES)}")
        if not is_number(self.release_tail) or self.release_tail < 0:
            raise RenderError(f"release_tail must be >= 0 seconds, got {self.release_tail}")
        if self.velocity_curve not in VELOCITY_CURVES:
            raise RenderError(f"velocity_curve {self.velocity_curve!r} is not one of {', '.join(VELOCITY_CURVES)}")


def sounding_samples(note: Note, shape: NoteShape, sample_rate: int, clip_samples: int) -> int:
    """MIDI duration + release tail in samples, at least 1; at most the generated clip unless it loops."""
    wanted = max(1, round((note.duration + shape.release_tail) * sample_rate))
    return wanted if shape.sustain == "loop" else min(wanted, clip_samples)


def render_midi(synth: Synth, notes: Sequence[Note], latents: np.ndarray, shape: NoteShape = NoteShape(),
                peak_db: float | None = -1.0) -> np.ndarray:
    """Mix notes [N] with per-note latents [N, latent] into audio [ch, n] ending at the last sounding
    sample, in memory (`stream_mix` for pieces that should not be)."""
    return peak_normalize(np.concatenate(list(stream_mix(synth, notes, latents, shape)), axis=1), peak_db)


MIX_BLOCK_SECONDS = 4.0  # the finished part of the mix is handed out once it is this long


def stream_mix(synth: Synth, notes: Sequence[Note], latents: np.ndarray,
               shape: NoteShape = NoteShape()) -> Iterator[np.ndarray]:
    """The raw mix of notes [N] with per-note latents [N, latent] as consecutive blocks [ch, n].

    Notes are mixed in onset order. Each distinct (pitch, latent) is generated once, `batch_size` at a
    time in order of first use, when the mix reaches it, and dropped after its last use; everything
    before the current onset is final and is handed out. Memory holds the clips still to be used and
    the notes still sounding, not the piece: a 30-minute MIDI file needs no more than a 2-minute one.
    """
    if len(notes) == 0:
        raise RenderError("render_midi: no notes to render")
    if latents.shape != (len(notes), synth.latent_dim):
        raise RenderError(f"render_midi: need latents [{len(notes)}, {synth.latent_dim}], got {latents.shape}")
    sr, clip_samples = synth.sample_rate, synth.n_samples
    onsets = [round(n.start * sr) for n in notes]
    lengths = [sounding_samples(n, shape, sr, clip_samples) for n in notes]
    order = sorted(range(len(notes)), key=onsets.__getitem__)
    uses: dict[tuple[int, bytes], list[int]] = {}
    for i in order:
        uses.setdefault((notes[i].pitch, latents[i].tobytes()), []).append(i)
    jobs = list(uses.values())  # in order of first use
    job_of = {i: job for job, users in enumerate(jobs) for i in users}
    clips: dict[int, np.ndarray] = {}  # job -> its prepared clip, until its last use
    left = [len(users) for users in jobs]
    pending = np.zeros((synth.channels, 0), dtype=np.float32)  # the mix from sample `origin` on
    origin, block = 0, round(MIX_BLOCK_SECONDS * sr)
    for i in order:
        job = job_of[i]
        if job not in clips:  # the first job not generated yet: generate it and the next ones
            batch = range(job, min(job + synth.batch_size, len(jobs)))
            z = torch.from_numpy(np.stack([latents[jobs[j][0]] for j in batch]))  # [b, latent]
            generated = synth.generate([notes[jobs[j][0]].pitch for j in batch], z).numpy()  # [b, ch, n]
            for j, clip in zip(batch, generated):
                clips[j] = prepare_clip(clip, max(lengths[u] for u in jobs[j]), sr, shape)  # [ch, longest use]
        start, n = onsets[i] - origin, lengths[i]
        if start + n > pending.shape[1]:
            pending = np.pad(pending, ((0, 0), (0, start + n - pending.shape[1])))
        if start >= block:  # no later note starts before this one: the mix up to here is final
            yield pending[:, :start]
            pending, origin, start = pending[:, start:].copy(), onsets[i], 0
        pending[:, start:start + n] += clips[job][:, :n] * note_gain(n, notes[i].velocity, shape)
        left[job] -= 1
        if not left[job]:
            del clips[job]
    yield pending


def prepare_clip(clip: np.ndarray, n_samples: int, sample_rate: int, shape: NoteShape) -> np.ndarray:
    """A generated clip [ch, m] as every note of its (pitch, latent) starts from: peak 1 with
    normalize_notes, then cut or (sustain=loop) looped to n_samples."""
    if shape.normalize_notes:
        clip = peak_normalize(clip, 0.0)
    return sustained(clip, n_samples, sample_rate) if shape.sustain == "loop" else clip[:, :n_samples]


def note_gain(n_samples: int, velocity: int, shape: NoteShape) -> np.ndarray:
    """Gain [n_samples] of one note: its attack/release envelope times its velocity's level."""
    fades = envelope(n_samples, shape.attack_percent, shape.attack_slope, shape.release_percent, shape.release_slope)
    return fades * VELOCITY_CURVES[shape.velocity_curve](velocity)


def note_sequence(pitches: Sequence[int], note_seconds: float, gap_seconds: float,
                  velocity: int = 127) -> list[Note]:
    """One note per pitch, back to back with a gap, for auditioning single notes."""
    step = note_seconds + gap_seconds
    return [Note(i * step, i * step + note_seconds, int(p), velocity, 0, 0) for i, p in enumerate(pitches)]


def render_notes(synth: Synth, pitches: Sequence[int], latents: np.ndarray, shape: NoteShape = NoteShape(),
                 peak_db: float | None = -1.0, separate: bool = False, note_seconds: float | None = None,
                 gap_seconds: float = 0.25) -> list[np.ndarray]:
    """Single notes: one [ch, n] array per pitch (separate) or one sequence [ch, n] in a list."""
    length = note_seconds if note_seconds is not None else synth.n_samples / synth.sample_rate
    notes = note_sequence(pitches, length, gap_seconds)
    if not separate:
        return [render_midi(synth, notes, latents, shape, peak_db)]
    return [render_midi(synth, [replace(note, start=0.0, end=length)], latents[i:i + 1], shape, peak_db)
            for i, note in enumerate(notes)]


def render_interpolation(synth: Synth, pitches: Sequence[int], anchors: np.ndarray,
                         shape: NoteShape = NoteShape(), peak_db: float | None = -1.0,
                         note_seconds: float | None = None, gap_seconds: float = 0.25) -> np.ndarray:
    """A sequence of notes whose timbre slerps through anchors [K >= 2, latent] from first to last note."""
    if len(anchors) < 2:
        raise RenderError("render_interpolation: need at least 2 anchor latents")
    positions = np.linspace(0.0, 1.0, len(pitches))
    latents = interpolate_anchors(anchors, positions)
    return render_notes(synth, pitches, latents, shape, peak_db, separate=False,
                        note_seconds=note_seconds, gap_seconds=gap_seconds)[0]

"""Notes longer than the model's clip: the clip's steady part, looped with crossfades.

The generator makes clips of one fixed length, so a held MIDI note used to stop at the clip's end.
With ``sustain=loop`` the steady part of the clip (from the end of the attack to the start of the
decay) repeats until the note (and its release) is over. Every repetition is joined by a short
linear crossfade between two windows chosen where the waveform is most alike, so a join is no larger
a step than the note's own sample-to-sample motion and the level does not pump.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.signal import correlate

from gansynth.core.errors import GANSynthError

SUSTAIN_MODES = ("none", "loop")
CROSSFADE_SECONDS = 0.01   # long enough to hide a join, short against a 0.25 s clip
MIN_LOOP_SECONDS = 0.03    # shorter repeats buzz at their own rate
STEADY_DB = -6.0           # the steady part: frames within this of the loudest frame
FRAME_SECONDS = 0.005
LOOP_END_CANDIDATES = 16


class SustainError(GANSynthError):
    """A clip too short to hold a loop, or a sustain setting that does not exist."""


@dataclass(frozen=True)
class Loop:
    """The repeated part [start, end) of a clip; the last `crossfade` samples before end are blended
    with the `crossfade` samples before start, so that playback continues at start without a step."""

    start: int
    end: int
    crossfade: int
    difference: float  # squared difference of the two blended windows over their energy (0 = identical)

    @property
    def period(self) -> int:
        return self.end - self.start


def steady_span(clip: np.ndarray, sample_rate: int) -> tuple[int, int]:
    """[first, last) samples of the frames within STEADY_DB of the loudest frame of clip [ch, n]."""
    frame = max(1, round(FRAME_SECONDS * sample_rate))
    power = np.square(clip, dtype=np.float64).sum(0)  # [n]
    frames = power[: len(power) // frame * frame].reshape(-1, frame).mean(1)  # [n_frames]
    if frames.size == 0 or frames.max() <= 0.0:
        return 0, clip.shape[1]
    loud = np.flatnonzero(frames >= frames.max() * 10.0 ** (STEADY_DB / 10.0))
    return int(loud[0]) * frame, int(loud[-1] + 1) * frame


def find_loop(clip: np.ndarray, sample_rate: int) -> Loop:
    """The loop of clip [ch, n] with the most alike crossfade windows inside its steady part.

    Loop ends are tried at evenly spaced points of the steady part's second half; for each, every
    start at least MIN_LOOP_SECONDS earlier is scored at once by cross-correlation.
    """
    n = clip.shape[1]
    fade = max(1, min(round(CROSSFADE_SECONDS * sample_rate), n // 8))
    shortest = max(2 * fade, round(MIN_LOOP_SECONDS * sample_rate))
    low, high = steady_span(clip, sample_rate)
    low = max(low, fade)
    if high - low < shortest:
        low, high = fade, n  # no steady part long enough: loop within the whole clip
    if high - low < shortest:
        raise SustainError(f"a clip of {n} samples is too short to loop ({fade + shortest} needed)")
    x = clip.astype(np.float64)
    energy = np.concatenate([[0.0], np.cumsum(np.square(x).sum(0))])  # energy[i] = sum of x[:, :i]^2
    best = None
    for end in np.unique(np.linspace(max(low + shortest, (low + high) // 2), high, LOOP_END_CANDIDATES).astype(int)):
        target = x[:, end - fade:end]  # [ch, fade]
        starts = np.arange(low, end - shortest + 1)  # windows x[:, s - fade:s]
        window_energy = energy[starts] - energy[starts - fade]
        cross = sum(correlate(x[c, low - fade:end - shortest], target[c], mode="valid")
                    for c in range(len(x)))  # [len(starts)]
        target_energy = float(np.square(target).sum())
        difference = (target_energy + window_energy - 2.0 * cross) / (target_energy + window_energy + 1e-20)
        i = int(np.argmin(difference))
        if best is None or difference[i] < best.difference:
            best = Loop(int(starts[i]), int(end), fade, float(max(difference[i], 0.0)))
    return best


def loop_to(clip: np.ndarray, n_samples: int, loop: Loop) -> np.ndarray:
    """clip [ch, n] played up to loop.end, then its loop repeated, cut to n_samples: [ch, n_samples]."""
    if n_samples <= loop.end:
        return clip[:, :n_samples]
    start, end, fade = loop.start, loop.end, loop.crossfade
    weight = ((np.arange(fade) + 0.5) / fade).astype(np.float32)  # rises from ~0 to ~1
    join = clip[:, end - fade:end] * (1.0 - weight) + clip[:, start - fade:start] * weight  # [ch, fade]
    cycle = np.concatenate([clip[:, start:end - fade], join], axis=1)  # [ch, period]
    repeats = math.ceil((n_samples - end) / loop.period)
    head = np.concatenate([clip[:, :end - fade], join], axis=1)  # [ch, end]
    return np.concatenate([head, np.tile(cycle, (1, repeats))], axis=1)[:, :n_samples]


def sustained(clip: np.ndarray, n_samples: int, sample_rate: int) -> np.ndarray:
    """clip [ch, n] cut or looped to exactly n_samples."""
    if n_samples <= clip.shape[1]:
        return clip[:, :n_samples]
    return loop_to(clip, n_samples, find_loop(clip, sample_rate))

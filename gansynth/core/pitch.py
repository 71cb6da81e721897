"""Pitch vocabulary, MIDI/Hz conversion and a model-free YIN f0 estimator.

The estimator is what labels unlabelled audio and what scores generated notes, so it must not
depend on any learned model: a wrong pitch from the scorer would look like a wrong pitch from the GAN.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch

from gansynth.core.errors import GANSynthError

YIN_THRESHOLD = 0.15
# A clip counts as pitched only when most of its sounding frames are periodic: a noise-like clip
# has the odd frame whose difference function dips below the threshold, and the median of those few
# frames is a pitch no listener (nor a neural tracker) hears.
MIN_VOICED_FRACTION = 0.5
SILENCE_RMS = 1e-4
QUIET_FRAME_DB = -40.0
MAX_ELEMENTS_PER_CHUNK = 1 << 23  # bounds the FFT buffers when a long batch is scored at once

Pitch = TypeVar("Pitch", float, np.ndarray, torch.Tensor)


class PitchError(GANSynthError):
    """A pitch, pitch range or waveform that the pitch tools cannot use."""


@dataclass(frozen=True)
class PitchVocab:
    """Inclusive MIDI range [low, high] mapped to contiguous class indices 0..size-1."""

    low: int = 24
    high: int = 84

    def __post_init__(self) -> None:
        for name in ("low", "high"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise PitchError(f"PitchVocab: {name} must be an integer MIDI note, got {value!r}")
            if not 0 <= value <= 127:
                raise PitchError(f"PitchVocab: {name}={value} is outside MIDI range 0..127")
        if self.low > self.high:
            raise PitchError(f"PitchVocab: low={self.low} is above high={self.high}")

    @property
    def size(self) -> int:
        return self.high - self.low + 1

    def contains(self, midi: int) -> bool:
        return self.low <= midi <= self.high

    def index(self, midi: int) -> int:
        if not self.contains(midi):
            raise PitchError(f"MIDI pitch {midi} is outside the vocabulary {self.low}..{self.high}")
        return int(midi) - self.low

    def midi(self, index: int) -> int:
        if not 0 <= index < self.size:
            raise PitchError(f"pitch index {index} is outside 0..{self.size - 1}")
        return self.low + int(index)

    def check_counts(self, counts: Sequence[float]) -> None:
        """A training pitch histogram (hparams pitch.counts) needs one count per pitch and a positive sum."""
        if len(counts) != self.size or sum(counts) <= 0:
            raise PitchError(f"pitch.counts must have {self.size} entries with a positive sum, "
                             f"got {len(counts)} summing to {sum(counts):g}")

    def to_dict(self) -> dict[str, int]:
        return {"low": int(self.low), "high": int(self.high)}

    @classmethod
    def from_dict(cls, d: dict) -> PitchVocab:
        return cls(low=int(d["low"]), high=int(d["high"]))


def midi_to_hz(midi: Pitch) -> Pitch:
    """Equal temperament with A4 = 440 Hz = MIDI 69; floats, arrays and tensors alike."""
    return 440.0 * 2.0 ** ((midi - 69.0) / 12.0)


def hz_to_midi(hz: Pitch) -> Pitch:
    """Fractional MIDI number of a frequency; NaN stays NaN so unvoiced clips propagate."""
    if isinstance(hz, torch.Tensor):
        return 69.0 + 12.0 * torch.log2(hz / 440.0)
    if isinstance(hz, np.ndarray):
        return 69.0 + 12.0 * np.log2(hz / 440.0)
    return 69.0 + 12.0 * math.log2(hz / 440.0) if hz > 0 else float("nan")


def _frames(wave: torch.Tensor, frame_length: int, hop: int) -> torch.Tensor:
    """[B, n] -> [B, n_frames, frame_length], zero-padding clips shorter than one frame."""
    n = wave.shape[-1]
    if n < frame_length:
        wave = torch.nn.functional.pad(wave, (0, frame_length - n))
    return wave.unfold(-1, frame_length, hop)


@dataclass(frozen=True)
class _YinGeometry:
    """Frame sizes for one (sample_rate, fmin, fmax): the window covers one period of fmin."""

    sample_rate: int
    window: int
    max_lag: int
    min_lag: int

    @classmethod
    def create(cls, sample_rate: int, fmin: float, fmax: float) -> _YinGeometry:
        window = math.ceil(sample_rate / fmin)
        # One lag beyond the fmin period so that a period right at fmin can still be a local minimum.
        return cls(sample_rate, window, window + 1, max(2, math.floor(sample_rate / fmax)))

    @property
    def frame_length(self) -> int:
        return self.window + self.max_lag

    @property
    def hop(self) -> int:
        return max(1, self.window // 2)

    @property
    def n_fft(self) -> int:
        # Lags up to max_lag never index past the frame, so a transform of the frame length has no wrap-around.
        return 1 << math.ceil(math.log2(self.frame_length))

    def elements_per_clip(self, n_samples: int) -> int:
        n_frames = max(1, n_samples - self.frame_length) // self.hop + 1
        return n_frames * self.n_fft


def _cumulative_mean_normalized_difference(
    frames: torch.Tensor, geometry: _YinGeometry
) -> tuple[torch.Tensor, torch.Tensor]:
    """YIN steps 2-3 via FFT; returns (raw difference d, normalised d') both [B, F, max_lag + 1].

    d(tau) = sum_{j<W} (x_j - x_{j+tau})^2 = E(0) + E(tau) - 2 r(tau), where E(tau) is the energy of
    the window starting at tau and r the cross-correlation of the first window with the frame.
    """
    window, max_lag, n_fft = geometry.window, geometry.max_lag, geometry.n_fft
    head = frames[..., :window]
    cross = torch.fft.irfft(
        torch.fft.rfft(frames, n_fft).mul_(torch.fft.rfft(head, n_fft).conj()), n_fft
    )[..., : max_lag + 1]  # [B, F, max_lag + 1]
    energy_cumsum = torch.nn.functional.pad(frames.square().cumsum(-1), (1, 0))  # [B, F, L + 1]
    window_energy = energy_cumsum[..., window : window + max_lag + 1] - energy_cumsum[..., : max_lag + 1]
    difference = (window_energy[..., :1] + window_energy - 2.0 * cross).clamp_min_(0.0)
    lags = torch.arange(max_lag + 1, dtype=frames.dtype, device=frames.device)
    running_mean = difference[..., 1:].cumsum(-1) / lags[1:]
    normalized = torch.ones_like(difference)
    normalized[..., 1:] = difference[..., 1:] / running_mean.clamp_min(torch.finfo(frames.dtype).tiny)
    return difference, normalized


def _first_dip(normalized: torch.Tensor, min_lag: int) -> tuple[torch.Tensor, torch.Tensor]:
    """YIN step 4: the first lag whose d' falls below the threshold, walked down to its local minimum.

    Taking the first dip rather than the global minimum avoids the sub-octave error (a period of 2T
    dips about as deep as T). Returns (lag [B, F] long, voiced [B, F] bool).
    """
    search = normalized[..., min_lag:]  # [B, F, L']
    below = search < YIN_THRESHOLD
    voiced = below.any(-1)
    start = below.int().argmax(-1)  # first True
    # Walk forward while d' keeps falling: the first lag after start where d' rises is the minimum.
    rising = torch.nn.functional.pad(search[..., 1:] > search[..., :-1], (0, 1), value=True)
    positions = torch.arange(search.shape[-1], device=search.device)
    after_start = positions >= start.unsqueeze(-1)
    minimum = (rising & after_start).int().argmax(-1)
    return minimum + min_lag, voiced


def _parabolic_lag(difference: torch.Tensor, lag: torch.Tensor) -> torch.Tensor:
    """YIN step 5: sub-sample period from a parabola through the raw difference around each lag."""
    last = difference.shape[-1] - 1
    centre = lag.clamp(1, last - 1)
    left, mid, right = (difference.gather(-1, (centre + k).unsqueeze(-1)).squeeze(-1) for k in (-1, 0, 1))
    curvature = left - 2.0 * mid + right
    safe = curvature.abs() > torch.finfo(difference.dtype).eps * (left.abs() + right.abs() + 1.0)
    shift = torch.where(safe, 0.5 * (left - right) / torch.where(safe, curvature, 1.0), 0.0)
    return centre.to(difference.dtype) + shift.clamp(-1.0, 1.0)


def _estimate_chunk(wave: torch.Tensor, geometry: _YinGeometry) -> torch.Tensor:
    """[B, n] -> f0 Hz [B]: frame-wise YIN, then the median of the voiced, non-quiet frames."""
    frames = _frames(wave, geometry.frame_length, geometry.hop)  # [B, F, L]
    frames = frames - frames.mean(-1, keepdim=True)
    rms = frames[..., : geometry.window].square().mean(-1).sqrt()  # [B, F]
    loudest = rms.amax(-1, keepdim=True)
    loud = (rms > SILENCE_RMS) & (rms >= loudest * 10.0 ** (QUIET_FRAME_DB / 20.0))

    difference, normalized = _cumulative_mean_normalized_difference(frames, geometry)
    lag, voiced = _first_dip(normalized, geometry.min_lag)
    f0 = geometry.sample_rate / _parabolic_lag(difference, lag)  # [B, F]
    periodic = (voiced & loud).sum(-1) >= MIN_VOICED_FRACTION * loud.sum(-1).clamp_min(1)  # [B]
    f0 = torch.where(voiced & loud & periodic[:, None], f0, torch.nan)
    return f0.nanmedian(-1).values  # all-NaN rows (silent or aperiodic clips) stay NaN


def estimate_f0(
    wave: torch.Tensor | np.ndarray, sample_rate: int, fmin: float = 30.0, fmax: float = 2100.0
) -> torch.Tensor:
    """Fundamental frequency per clip in Hz (YIN, threshold 0.15); NaN for silent or unpitched clips.

    A clip is pitched when at least half of its sounding frames are periodic (their normalised
    difference dips below the threshold); its f0 is the median over those frames.

    wave: [n] or [B, n] (one channel per row). Returns a scalar tensor or [B] on the input's device.
    """
    wave = torch.as_tensor(wave)
    if wave.dim() not in (1, 2):
        raise PitchError(f"estimate_f0: wave must be [n] or [B, n], got shape {tuple(wave.shape)}")
    if not wave.is_floating_point():
        raise PitchError(f"estimate_f0: wave must be floating point, got {wave.dtype}")
    if wave.shape[-1] == 0:
        raise PitchError("estimate_f0: wave has no samples")
    if not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
        raise PitchError(f"estimate_f0: sample_rate must be a positive integer, got {sample_rate!r}")
    if not 0 < fmin < fmax < sample_rate / 4:
        raise PitchError(
            f"estimate_f0: need 0 < fmin < fmax < sample_rate/4, got fmin={fmin}, fmax={fmax}, sr={sample_rate}"
        )
    if not torch.isfinite(wave).all():
        raise PitchError("estimate_f0: wave contains NaN or infinite samples")

    geometry = _YinGeometry.create(int(sample_rate), fmin, fmax)
    batch = wave.reshape(-1, wave.shape[-1]).to(torch.float32)
    chunk = max(1, MAX_ELEMENTS_PER_CHUNK // geometry.elements_per_clip(batch.shape[-1]))
    f0 = torch.cat([_estimate_chunk(part, geometry) for part in batch.split(chunk)])
    return f0.reshape(wave.shape[:-1])

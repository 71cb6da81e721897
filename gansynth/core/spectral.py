"""The mel-IF representation: waves to log-magnitude + instantaneous-frequency images and back.

:class:`SpecgramCodec` owns the whole representation (geometry, mel matrices, normaliser) so a
checkpoint can rebuild it from :meth:`SpecgramCodec.to_dict` without the training data. The defaults
reproduce Magenta's GANSynth (periodic Hann STFT without centre padding, left zero padding, DC bin
dropped and Nyquist kept, the mel matrix its released code built, log mel power, IF of the mel-warped
unwrapped phase, normalised-transpose mel inverse, dual-window inverse STFT). Tensors put time on
dim -2 and frequency on dim -1.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gansynth.core.errors import GANSynthError

LOG_EPSILON = 1e-6
NSYNTH_NORM_SCALE = (0.0661371661726, 0.8)
NSYNTH_NORM_SHIFT = (0.113718730221, 0.0)
FITTED_NORM_MARGIN = 0.8
CHANNEL_MODES = {"mono": 1, "stereo": 2}
_HTK_MEL_BREAK_HZ = 700.0
_HTK_MEL_Q = 1127.0
_MIN_BAND_WIDTH_IN_BINS = 1.5
# How narrow mel bands are widened. "released": as Magenta's (and the fork's) released code ran,
# the widening cascading up through shared band edges; every original model trained on it.
# "independent": each band widened on its own, what that code meant to do; this project's
# matrix before the setting existed, so a saved codec without the setting means it.
MEL_MATRICES = ("released", "independent")
LEGACY_MEL_MATRIX = "independent"
# A mel matrix is a narrow band (every linear bin lies under at most two mel bands), so on a CPU its product is
# taken in blocks of this many columns, each against only the rows its nonzeros span; where that still does more
# than 1/8 of the dense product's work (256 bins: 1/4), the dense product is faster (benchmarks/bench_codec.py).
BAND_BLOCK_COLUMNS = 64
BAND_MAX_WORK = 1 / 8


class CodecError(GANSynthError):
    """A codec setting or an input that does not fit the codec's geometry."""


# ----------------------------------------------------------------------------------------- STFT


def dual_hann_window(n_fft: int, hop_length: int) -> torch.Tensor:
    """Synthesis window inverting a periodic-Hann STFT by overlap-add: ``w / sum_k w[n + k hop]^2``.

    This is TF's ``inverse_stft_window_fn``. Interior samples come back exactly; the first and last
    ``n_fft - hop`` samples, which fewer frames cover, fade instead of being divided by a tiny
    envelope (which would blow up on generated, inconsistent spectrograms).
    """
    window = torch.hann_window(n_fft, periodic=True, dtype=torch.float64)  # [n_fft]
    overlap_sum = (window**2).reshape(n_fft // hop_length, hop_length).sum(0)  # [hop]
    return (window / overlap_sum.repeat(n_fft // hop_length)).float()  # [n_fft]


def stft(wave: torch.Tensor, n_fft: int, hop_length: int) -> torch.Tensor:
    """Periodic-Hann STFT without padding, DC bin dropped: ``[..., n] -> complex [..., T, n_fft/2]``."""
    window = torch.hann_window(n_fft, periodic=True, dtype=wave.dtype, device=wave.device)
    flat = wave.reshape(-1, wave.shape[-1])  # [N, n]
    spec = torch.stft(flat, n_fft, hop_length, window=window, center=False,
                      return_complex=True)  # [N, n_fft/2 + 1, T]
    spec = spec.transpose(-1, -2)[..., 1:]  # [N, T, n_fft/2]
    return spec.reshape(*wave.shape[:-1], *spec.shape[-2:])


def istft(spec: torch.Tensor, n_fft: int, hop_length: int,
          synthesis_window: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`stft`, a zero DC bin put back: ``[..., T, n_fft/2] -> [..., hop (T-1) + n_fft]``; a
    spectrum that already has its DC bin (``[..., T, n_fft/2 + 1]``, :func:`polar_with_dc`) is taken as it is.

    ``hop_length`` divides ``n_fft`` (the codec checks it), so the overlap-add is ``n_fft / hop`` shifted
    sums of hop-long pieces: a few passes over the frames, where ``F.fold`` took 4x as long."""
    n_frames = spec.shape[-2]
    with_dc = spec if spec.shape[-1] == n_fft // 2 + 1 else F.pad(spec, (1, 0))  # [..., T, n_fft/2 + 1]
    frames = torch.fft.irfft(with_dc, n=n_fft) * synthesis_window  # [..., T, n_fft]
    overlap = n_fft // hop_length
    pieces = frames.unflatten(-1, (overlap, hop_length))  # [..., T, overlap, hop]
    wave = frames.new_zeros(*frames.shape[:-2], n_frames + overlap - 1, hop_length)  # hop-long blocks
    for k in range(overlap):  # piece k of frame t lands in block t + k
        wave[..., k:k + n_frames, :] += pieces[..., k, :]
    return wave.flatten(-2)


def polar_with_dc(magnitude: torch.Tensor, phase: torch.Tensor) -> torch.Tensor:
    """``magnitude * exp(i phase)`` ``[..., F]`` as a complex ``[..., F + 1]`` with a zero DC bin in front, for
    :func:`istft`: the cosines and sines written straight into one buffer, where ``torch.polar`` and then the
    pad, the decode's slowest step, took 3x as long (8 paper clips on 2 cores: 12.2 ms against 4.0,
    benchmarks/bench_codec.py). Under autograd (``out=`` writes cannot be differentiated) it is ``torch.polar``
    and the pad."""
    if torch.is_grad_enabled() and (magnitude.requires_grad or phase.requires_grad):
        return F.pad(torch.polar(magnitude, phase), (1, 0))
    pairs = magnitude.new_empty(*magnitude.shape[:-1], magnitude.shape[-1] + 1, 2)  # [..., F + 1, (re, im)]
    pairs[..., 0, :] = 0.0
    torch.mul(magnitude, torch.cos(phase), out=pairs[..., 1:, 0])
    torch.mul(magnitude, torch.sin(phase), out=pairs[..., 1:, 1])
    return torch.view_as_complex(pairs)


# ---------------------------------------------------------------------------------- phase and IF


def unwrap(phase: torch.Tensor, dim: int = -2) -> torch.Tensor:
    """numpy-style unwrap: remove 2 pi jumps between neighbours along ``dim``."""
    step = torch.diff(phase, dim=dim)
    wrapped_step = torch.remainder(step + math.pi, 2 * math.pi) - math.pi
    wrapped_step = torch.where((wrapped_step == -math.pi) & (step > 0), math.pi, wrapped_step)
    correction = torch.where(step.abs() < math.pi, 0.0, wrapped_step - step)
    correction = torch.cumsum(correction, dim=dim)
    first = torch.zeros_like(phase.narrow(dim, 0, 1))
    return phase + torch.cat([first, correction], dim=dim)


def instantaneous_frequency(phase: torch.Tensor, dim: int = -2) -> torch.Tensor:
    """Unwrapped phase step per frame over pi; the first frame keeps its raw phase over pi."""
    unwrapped = unwrap(phase, dim)
    first = torch.zeros_like(phase.narrow(dim, 0, 1))
    return torch.diff(unwrapped, dim=dim, prepend=first) / math.pi


def phase_from_if(inst_freq: torch.Tensor, dim: int = -2) -> torch.Tensor:
    """Inverse of :func:`instantaneous_frequency`: the unwrapped phase ``pi * cumsum(IF)``."""
    return math.pi * torch.cumsum(inst_freq, dim=dim)


# ----------------------------------------------------------------------------------------- mel


def hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    return _HTK_MEL_Q * np.log1p(np.asarray(hz, dtype=np.float64) / _HTK_MEL_BREAK_HZ)


def mel_to_hz(mel: np.ndarray | float) -> np.ndarray:
    return _HTK_MEL_BREAK_HZ * np.expm1(np.asarray(mel, dtype=np.float64) / _HTK_MEL_Q)


def mel_bands(n_bins: int, sample_rate: float,
              variant: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Edges (lower, centre, upper) in mel of ``n_bins`` HTK bands over 0..sr/2, and which were widened.

    Bands narrower than 1.5 linear bins in Hz are widened symmetrically in mel to that width, so low
    mel bands still catch a linear bin (Magenta's change to ``tf.signal``). ``variant`` says how (see
    :data:`MEL_MATRICES`).
    """
    _check_mel_matrix(variant)
    nyquist = sample_rate / 2.0
    edges_mel = np.linspace(0.0, hz_to_mel(nyquist), n_bins + 2)  # [n_bins + 2]
    min_width_hz = _MIN_BAND_WIDTH_IN_BINS * nyquist / n_bins
    if variant == "released":
        return _cascaded_bands(edges_mel, min_width_hz)
    lower_mel, centre_mel, upper_mel = edges_mel[:-2].copy(), edges_mel[1:-1], edges_mel[2:].copy()
    widened = mel_to_hz(upper_mel) - mel_to_hz(lower_mel) < min_width_hz  # [n_bins]
    half_width_mel = _half_width_mel(centre_mel, min_width_hz)
    lower_mel[widened] = centre_mel[widened] - half_width_mel[widened]
    upper_mel[widened] = centre_mel[widened] + half_width_mel[widened]
    return lower_mel, centre_mel, upper_mel, widened


def _cascaded_bands(edges_mel: np.ndarray,
                    min_width_hz: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The widening as Magenta's code ran it: band i is the edges (i, i+1, i+2) of one shared array,
    visited in order and rewritten in place, so widening band i also moves band i+1's centre and
    band i+2's lower edge, which then decides (and shapes) their own widening in turn."""
    edges = edges_mel.copy()
    n_bands = len(edges) - 2
    widened = np.zeros(n_bands, dtype=bool)
    for band in range(n_bands):
        lower, centre, upper = edges[band:band + 3]
        if mel_to_hz(upper) - mel_to_hz(lower) < min_width_hz:
            half_width = _half_width_mel(centre, min_width_hz)
            edges[band], edges[band + 2] = centre - half_width, centre + half_width
            widened[band] = True
    return edges[:-2], edges[1:-1], edges[2:], widened


def _half_width_mel(centre_mel: np.ndarray | float, min_width_hz: float) -> np.ndarray:
    """Half the mel width that makes a band centred at ``centre_mel`` exactly ``min_width_hz`` wide."""
    return _HTK_MEL_Q * np.arcsinh(0.5 * min_width_hz / (mel_to_hz(centre_mel) + _HTK_MEL_BREAK_HZ))


def mel_weight_matrix(n_bins: int, sample_rate: float, variant: str) -> np.ndarray:
    """Magenta's HTK mel matrix ``[n_bins linear, n_bins mel]`` in float64 (bands from :func:`mel_bands`).

    Linear row k sits at ``k sr / (2 (n_bins - 1))`` Hz and row 0 is zeroed; triangles are linear in Hz.
    """
    linear_hz = np.linspace(0.0, sample_rate / 2.0, n_bins)[1:, None]  # [n_bins - 1, 1]
    bands = mel_bands(n_bins, sample_rate, variant)[:3]
    lower_hz, centre_hz, upper_hz = (mel_to_hz(edge)[None] for edge in bands)
    rising = (linear_hz - lower_hz) / (centre_hz - lower_hz)  # [n_bins - 1, n_bins]
    falling = (upper_hz - linear_hz) / (upper_hz - centre_hz)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    return np.pad(weights, ((1, 0), (0, 0)))  # [n_bins, n_bins]


def mel_to_linear_matrix(mel_matrix: np.ndarray) -> np.ndarray:
    """Magenta's approximate inverse ``W = M^T diag(d)`` ``[mel, linear]``, not a pseudo-inverse.

    ``d_f = 1 / sum_g (M M^T)[g, f]`` makes a flat spectrum come back flat; where that sum is
    (near) zero (linear bins no band covers) it is kept as is, so those bins come back as zero.
    """
    mass = (mel_matrix @ mel_matrix.T).sum(axis=0)  # [linear]
    safe = np.abs(mass) > 1e-8
    scale = np.where(safe, 1.0 / np.where(safe, mass, 1.0), mass)
    return mel_matrix.T * scale[None, :]  # [mel, linear]


def band_blocks(matrix: np.ndarray) -> tuple[tuple[int, int, int, int], ...] | None:
    """(first row, row end, first column, column end) of every block of :data:`BAND_BLOCK_COLUMNS` columns of
    ``matrix`` and the rows its nonzeros span, or None where those blocks hold more than :data:`BAND_MAX_WORK` of
    the matrix (then the dense product is faster)."""
    rows, columns = matrix.shape
    blocks = []
    for start in range(0, columns, BAND_BLOCK_COLUMNS):
        end = min(start + BAND_BLOCK_COLUMNS, columns)
        used = np.flatnonzero(np.any(matrix[:, start:end] != 0, axis=1))
        first, last = (used[0], used[-1] + 1) if len(used) else (0, 1)  # an all-zero block: one row of zeros
        blocks.append((int(first), int(last), start, end))
    work = sum((last - first) * (end - start) for first, last, start, end in blocks)
    return tuple(blocks) if work <= BAND_MAX_WORK * rows * columns else None


def banded_matmul(x: torch.Tensor, matrix: torch.Tensor,
                  blocks: tuple[tuple[int, int, int, int], ...] | None) -> torch.Tensor:
    """``x @ matrix`` ([..., rows] -> [..., columns]); with ``blocks`` (:func:`band_blocks`) on a CPU, block by
    block over the rows each block's nonzeros span: the same sums without the zeros (paper geometry: 1/16 of
    the multiply-adds, each product ~3x faster on 2 cores; benchmarks/bench_codec.py times the codec both
    ways). GPUs keep the dense product, one kernel."""
    if blocks is None or x.device.type != "cpu":
        return x @ matrix
    return torch.cat([x[..., first:last] @ matrix[first:last, start:end] for first, last, start, end in blocks],
                     dim=-1)


# ---------------------------------------------------------------------------------------- codec


class SpecgramCodec(nn.Module):
    """Waves ``[B, ch, n]`` <-> images ``[B, 2 ch, T, F]`` ([logmag, IF] per audio channel)."""

    def __init__(self, sample_rate: int = 16000, audio_length: float = 4.0,
                 channel_mode: str = "mono", n_fft: int = 2048, hop_length: int = 512,
                 n_frames: int = 128, mel: bool = True, mel_matrix: str = "released",
                 norm_scale: tuple[float, float] = NSYNTH_NORM_SCALE,
                 norm_shift: tuple[float, float] = NSYNTH_NORM_SHIFT) -> None:
        super().__init__()
        _check_geometry(sample_rate, audio_length, channel_mode, n_fft, hop_length, n_frames)
        _check_mel_matrix(mel_matrix)
        norm_scale, norm_shift = _check_normalizer(norm_scale, norm_shift)
        self.sample_rate = int(sample_rate)
        self.audio_length = float(audio_length)
        self.channel_mode = channel_mode
        self.n_fft = int(n_fft)
        self.hop_length = int(hop_length)
        self.n_frames = int(n_frames)
        self.mel = bool(mel)
        self.mel_matrix = mel_matrix
        self.norm_scale = norm_scale
        self.norm_shift = norm_shift
        self.audio_channels = CHANNEL_MODES[channel_mode]
        self.n_bins = self.n_fft // 2
        self.n_samples = round(self.audio_length * self.sample_rate)
        self.max_samples = self.hop_length * (self.n_frames - 1) + self.n_fft
        if self.n_samples > self.max_samples:
            raise CodecError(
                f"audio_length {self.audio_length} s at {self.sample_rate} Hz is {self.n_samples} "
                f"samples, more than the {self.max_samples} that {self.n_frames} frames of n_fft "
                f"{self.n_fft} / hop {self.hop_length} cover (max "
                f"{self.max_samples / self.sample_rate:.3f} s)")
        self.pad = self.max_samples - self.n_samples
        self.image_shape = (2 * self.audio_channels, self.n_frames, self.n_bins)

        self.register_buffer("synthesis_window", dual_hann_window(self.n_fft, self.hop_length),
                             persistent=False)
        linear_to_mel = mel_weight_matrix(self.n_bins, self.sample_rate, mel_matrix) if self.mel else None
        self.register_buffer("linear_to_mel", _as_buffer(linear_to_mel), persistent=False)
        mel_to_linear = mel_to_linear_matrix(linear_to_mel) if self.mel else None
        self.register_buffer("mel_to_linear", _as_buffer(mel_to_linear), persistent=False)
        # The products' column blocks (`banded_matmul`); None: dense (no mel, or a band too wide to pay).
        self.to_mel_blocks = band_blocks(linear_to_mel) if self.mel else None
        self.to_linear_blocks = band_blocks(mel_to_linear) if self.mel else None
        # One (scale, shift) per image channel: the [logmag, IF] pair repeats per audio channel.
        self.register_buffer("channel_scale", _per_channel(norm_scale, self.audio_channels),
                             persistent=False)
        self.register_buffer("channel_shift", _per_channel(norm_shift, self.audio_channels),
                             persistent=False)

    # ------------------------------------------------------------------------------ conversions

    def encode(self, wave: torch.Tensor) -> torch.Tensor:
        """Wave ``[B, ch, n_samples]`` (or ``[ch, n_samples]``) to a raw image ``[B, 2 ch, T, F]``."""
        single = wave.dim() == 2
        batch = self._check_wave(wave[None] if single else wave)  # [B, ch, n]
        padded = F.pad(batch, (self.pad, 0))  # [B, ch, max_samples]
        spec = stft(padded, self.n_fft, self.hop_length)  # [B, ch, T, F] complex
        logmag = torch.log(spec.abs() + LOG_EPSILON)
        inst_freq = instantaneous_frequency(torch.angle(spec))
        if self.mel:
            to_mel = self.linear_to_mel.to(logmag.dtype)
            logmag = torch.log(banded_matmul(torch.exp(2.0 * logmag), to_mel, self.to_mel_blocks)
                               + LOG_EPSILON)  # log mel power
            inst_freq = instantaneous_frequency(banded_matmul(phase_from_if(inst_freq), to_mel, self.to_mel_blocks))
        image = torch.stack([logmag, inst_freq], dim=2).flatten(1, 2)  # [B, 2 ch, T, F]
        return image[0] if single else image

    def decode(self, image: torch.Tensor) -> torch.Tensor:
        """Raw image ``[B, 2 ch, T, F]`` (or ``[2 ch, T, F]``) to a wave ``[B, ch, n_samples]``."""
        single = image.dim() == 3
        batch = self._check_image(image[None] if single else image)
        pairs = batch.unflatten(1, (self.audio_channels, 2))  # [B, ch, 2, T, F]
        logmag, inst_freq = pairs[:, :, 0], pairs[:, :, 1]  # [B, ch, T, F] each
        phase = phase_from_if(inst_freq)  # [B, ch, T, F], unwrapped
        if self.mel:
            # Linear bins from mel ones: power and unwrapped phase through the same matrix. The phase is not
            # unwrapped again: that would only add multiples of 2 pi, which the polar form ignores.
            to_linear = self.mel_to_linear.to(logmag.dtype)
            magnitude = torch.sqrt(banded_matmul(torch.exp(logmag), to_linear, self.to_linear_blocks) + LOG_EPSILON)
            phase = banded_matmul(phase, to_linear, self.to_linear_blocks)
        else:
            magnitude = torch.exp(logmag)
        spec = polar_with_dc(magnitude, phase)  # [B, ch, T, F + 1]
        window = self.synthesis_window.to(magnitude.dtype)
        wave = istft(spec, self.n_fft, self.hop_length, window)[..., self.pad:]  # [B, ch, n]
        return wave[0] if single else wave

    def normalize(self, image: torch.Tensor) -> torch.Tensor:
        """Raw image ``[..., C, T, F]`` to [-1, 1]: ``clip(a x + b, -1, 1)`` per channel kind."""
        return (image * self.channel_scale + self.channel_shift).clamp(-1.0, 1.0)

    def normalize_if(self, raw_if: torch.Tensor) -> torch.Tensor:
        """A raw IF image ``[..., 1, T, F]`` alone (no magnitude beside it) to [-1, 1], as
        :meth:`normalize` maps every IF channel (all audio channels share the IF's scale)."""
        return (raw_if * self.channel_scale[1] + self.channel_shift[1]).clamp(-1.0, 1.0)

    def denormalize(self, image: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`normalize` inside [-1, 1]: ``(y - b) / a`` (no clipping)."""
        return (image - self.channel_shift) / self.channel_scale

    def with_fitted_normalizer(self, images: torch.Tensor) -> SpecgramCodec:
        """A copy whose normaliser maps the per-kind min/max of raw ``images`` to -0.8 / +0.8."""
        batch = self._check_image(images[None] if images.dim() == 3 else images)
        kinds = batch.unflatten(1, (self.audio_channels, 2)).transpose(0, 2)  # [2, ch, B, T, F]
        low = kinds.flatten(1).amin(dim=1).double()  # [2]
        high = kinds.flatten(1).amax(dim=1).double()  # [2]
        if bool((high <= low).any()) or not bool(torch.isfinite(high - low).all()):
            raise CodecError(f"cannot fit a normaliser: per-kind ranges are {low.tolist()} to "
                             f"{high.tolist()}; need finite, non-constant images")
        scale = 2 * FITTED_NORM_MARGIN / (high - low)
        shift = -FITTED_NORM_MARGIN * (high + low) / (high - low)
        fitted = {**self.to_dict(), "norm_scale": scale.tolist(), "norm_shift": shift.tolist()}
        return SpecgramCodec.from_dict(fitted).to(self.synthesis_window.device)

    # ------------------------------------------------------------------------------ persistence

    def to_dict(self) -> dict[str, Any]:
        """Everything needed to rebuild this codec, as JSON-safe primitives."""
        return {
            "sample_rate": self.sample_rate,
            "audio_length": self.audio_length,
            "channel_mode": self.channel_mode,
            "n_fft": self.n_fft,
            "hop_length": self.hop_length,
            "n_frames": self.n_frames,
            "mel": self.mel,
            "mel_matrix": self.mel_matrix,
            "norm_scale": list(self.norm_scale),
            "norm_shift": list(self.norm_shift),
        }

    @classmethod
    def from_dict(cls, settings: dict[str, Any]) -> SpecgramCodec:
        """Rebuild a codec; settings saved before ``mel_matrix`` existed get the matrix they used."""
        unknown = set(settings) - set(inspect.signature(cls).parameters)
        if unknown:
            raise CodecError(f"unknown codec settings: {', '.join(sorted(unknown))}")
        return cls(**{**settings, "mel_matrix": saved_mel_matrix(settings)})

    def extra_repr(self) -> str:
        return ", ".join(f"{key}={value}" for key, value in self.to_dict().items())

    # ------------------------------------------------------------------------------ validation

    def _check_wave(self, wave: torch.Tensor) -> torch.Tensor:
        expected = (self.audio_channels, self.n_samples)
        if wave.dim() != 3 or tuple(wave.shape[1:]) != expected:
            raise CodecError(f"expected a wave shaped [B, {expected[0]}, {expected[1]}] or "
                             f"[{expected[0]}, {expected[1]}], got {tuple(wave.shape)}")
        if not wave.is_floating_point():
            raise CodecError(f"expected a floating-point wave, got {wave.dtype}")
        return wave

    def _check_image(self, image: torch.Tensor) -> torch.Tensor:
        if image.dim() != 4 or tuple(image.shape[1:]) != self.image_shape:
            raise CodecError(f"expected an image shaped [B, {', '.join(map(str, self.image_shape))}]"
                             f" or [{', '.join(map(str, self.image_shape))}], got {tuple(image.shape)}")
        if not image.is_floating_point():
            raise CodecError(f"expected a floating-point image, got {image.dtype}")
        return image


def _check_geometry(sample_rate: int, audio_length: float, channel_mode: str, n_fft: int,
                    hop_length: int, n_frames: int) -> None:
    if channel_mode not in CHANNEL_MODES:
        raise CodecError(f"channel_mode must be one of {sorted(CHANNEL_MODES)}, got {channel_mode!r}")
    if int(sample_rate) != sample_rate or sample_rate <= 0:
        raise CodecError(f"sample_rate must be a positive integer, got {sample_rate}")
    if not audio_length > 0:
        raise CodecError(f"audio_length must be positive seconds, got {audio_length}")
    if int(n_fft) != n_fft or n_fft < 4 or n_fft & (n_fft - 1):
        raise CodecError(f"n_fft must be a power of two >= 4, got {n_fft}")
    if int(hop_length) != hop_length or hop_length <= 0 or n_fft % hop_length or hop_length > n_fft // 2:
        raise CodecError(f"hop_length must divide n_fft {n_fft} and be at most half of it, "
                         f"got {hop_length}")
    if int(n_frames) != n_frames or n_frames < 1:
        raise CodecError(f"n_frames must be a positive integer, got {n_frames}")


def _check_mel_matrix(variant: str) -> None:
    if variant not in MEL_MATRICES:
        raise CodecError(f"mel_matrix must be one of {', '.join(MEL_MATRICES)}, got {variant!r}")


def saved_mel_matrix(settings: Mapping[str, Any]) -> str:
    """The mel matrix a saved codec dict was built with (``LEGACY_MEL_MATRIX`` if it does not say)."""
    return settings.get("mel_matrix", LEGACY_MEL_MATRIX)


def _check_normalizer(scale: Any, shift: Any) -> tuple[tuple[float, float], tuple[float, float]]:
    try:
        scale, shift = tuple(float(v) for v in scale), tuple(float(v) for v in shift)
    except (TypeError, ValueError) as error:
        raise CodecError(f"norm_scale and norm_shift must be pairs of numbers, "
                         f"got {scale!r} and {shift!r}") from error
    if len(scale) != 2 or len(shift) != 2:
        raise CodecError(f"norm_scale and norm_shift need 2 values (logmag, IF), got {scale} and {shift}")
    if not all(math.isfinite(v) and v != 0 for v in scale) or not all(map(math.isfinite, shift)):
        raise CodecError(f"norm_scale must be finite and non-zero and norm_shift finite, "
                         f"got {scale} and {shift}")
    return scale, shift


def _as_buffer(matrix: np.ndarray | None) -> torch.Tensor | None:
    return None if matrix is None else torch.from_numpy(matrix).float()


def _per_channel(values: tuple[float, float], audio_channels: int) -> torch.Tensor:
    return torch.tensor(values * audio_channels, dtype=torch.float32)[:, None, None]  # [C, 1, 1]

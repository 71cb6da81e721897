"""Audio files in and out: read and check, convert channels, resample, write atomically.

Everything here works on numpy arrays shaped ``[channels, samples]`` in float32, scaled to [-1, 1].
Bad files fail early with an :class:`AudioError` whose one-line message starts with the file path,
so a dataset scan can list every bad file instead of crashing mid-training.
"""

from __future__ import annotations

import os
import re
import tempfile
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import soundfile as sf
import soxr
import torch

from gansynth.core.files import atomic_write
from gansynth.core.errors import GANSynthError

WRITE_SUBTYPES = ("PCM_16", "PCM_24", "FLOAT")
PCM_SUBTYPES = ("PCM_16", "PCM_24")
SILENT_PEAK = 1e-8  # below this a clip is treated as silence and left unscaled

# libsndfile accepts a WAV/AIFF whose data chunk is cut short and quietly reports and returns fewer
# frames; its header log then reads e.g. "data : 4000 (should be 2999)". Streamed writers leave 0 or
# 0xFFFFFFFF as a placeholder size, which is not truncation.
_SHORT_CHUNK = re.compile(r"^\s*(?:data|SSND)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
_PLACEHOLDER_SIZES = (0, 0xFFFFFFFF, 0x7FFFFFFF)


class AudioError(GANSynthError):
    """A file that cannot be read or written as requested; the message starts with its path."""


class Header(NamedTuple):
    """What a file's header says, read without decoding the audio."""

    frames: int
    sample_rate: int
    channels: int


@dataclass(frozen=True)
class WriteReport:
    """What :func:`write_audio` did: clipping is reported, never silent."""

    path: Path
    clipped_samples: int
    peak: float
    frames: int


def read_header(path: str | os.PathLike) -> Header:
    """The header of a file that holds all the audio it promises, checked without decoding it: a
    WAV/AIFF data chunk cut short shows in libsndfile's header log, and in any format the last frame
    must be readable (a cut FLAC or Ogg file fails there)."""
    path = Path(path)
    try:
        with sf.SoundFile(str(path)) as sound:
            header = Header(sound.frames, sound.samplerate, sound.channels)
            cut = _cut_data_chunk(sound.extra_info)
            if cut:
                raise AudioError(f"{path}: truncated or corrupt (the header promises {cut[0]} bytes of audio, "
                                 f"the file holds {cut[1]})")
            if header.frames > 0:
                try:
                    sound.seek(header.frames - 1)
                    sound.read(1)
                except sf.SoundFileError as error:
                    raise AudioError(f"{path}: truncated or corrupt (the header promises {header.frames} frames "
                                     f"but the last cannot be read: {_one_line(error)})") from None
    except (sf.SoundFileError, OSError) as error:
        raise AudioError(f"{path}: not a readable audio file ({_one_line(error)})") from None
    return header


def read_audio(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Read any file libsndfile understands as float32 ``[channels, samples]`` in [-1, 1], plus its rate."""
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: no such file")
    header = read_header(path)
    try:
        data, sample_rate = sf.read(str(path), dtype="float32", always_2d=True)  # [n, ch]
    except sf.SoundFileError as error:
        raise AudioError(f"{path}: not a readable audio file ({_one_line(error)})") from error
    if data.shape[0] < header.frames:
        raise AudioError(f"{path}: truncated or corrupt (header promises {header.frames} frames, "
                         f"file holds {data.shape[0]})")
    if data.shape[0] == 0:
        raise AudioError(f"{path}: contains zero samples")
    if not np.isfinite(data).all():
        bad = int(np.count_nonzero(~np.isfinite(data)))
        raise AudioError(f"{path}: {bad} samples are NaN or infinite")
    return np.ascontiguousarray(data.T), int(sample_rate)


def _cut_data_chunk(header_log: str) -> tuple[int, int] | None:
    """(bytes the data chunk declares, bytes the file holds) when a WAV/AIFF data chunk is cut short."""
    for declared, actual in _SHORT_CHUNK.findall(header_log):
        if int(declared) > int(actual) and int(declared) not in _PLACEHOLDER_SIZES:
            return int(declared), int(actual)
    return None


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())


def to_channels(x: np.ndarray, channels: int, downmix: bool = False,
                path: str | os.PathLike | None = None) -> np.ndarray:
    """Convert ``[c, n]`` to ``[channels, n]`` for ``channels`` in {1, 2}.

    Mono to stereo duplicates; stereo to mono is the mean of L and R. Three or more channels are refused
    unless ``downmix`` is set, because guessing a layout silently changes the sound. With ``downmix``:
    mono is the mean of all channels; stereo keeps channels 0 and 1 as L and R (front left/right in the
    usual WAV order) and mixes the mean of the remaining channels equally into both, halving each side
    so the result stays in [-1, 1].
    """
    where = f"{path}: " if path is not None else ""
    if channels not in (1, 2):
        raise AudioError(f"{where}can only convert to 1 or 2 channels, not {channels}")
    if x.ndim != 2 or x.shape[0] < 1:
        raise AudioError(f"{where}expected audio shaped [channels, samples], got {tuple(x.shape)}")
    have = x.shape[0]
    if have == channels:
        return x
    if have > 2 and not downmix:
        raise AudioError(f"{where}has {have} channels; pass downmix=True to mix them to {channels}")
    if channels == 1:
        return x.mean(axis=0, keepdims=True, dtype=np.float32)
    if have == 1:
        return np.repeat(x, 2, axis=0)
    rest = x[2:].mean(axis=0, dtype=np.float32)  # [n]
    return ((x[:2] + rest) * 0.5).astype(np.float32)  # [2, n]


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Resample ``[c, n]`` with soxr HQ; the same rate returns ``x`` itself."""
    if sr_in <= 0 or sr_out <= 0:
        raise AudioError(f"sample rates must be positive, got {sr_in} -> {sr_out}")
    if sr_in == sr_out:
        return x
    resampled = soxr.resample(np.ascontiguousarray(x.T), sr_in, sr_out, quality="HQ")  # [m, c]
    return np.ascontiguousarray(resampled.T, dtype=np.float32)


def load_clip(path: str | os.PathLike, sample_rate: int, channels: int,
              downmix: bool = False) -> np.ndarray:
    """Read a file and bring it to the wanted channel count and rate: ``[channels, n]`` float32."""
    data, file_rate = read_audio(path)
    data = to_channels(data, channels, downmix=downmix, path=path)
    return resample(data, file_rate, sample_rate)


def write_audio(path: str | os.PathLike, x: np.ndarray | torch.Tensor, sample_rate: int,
                subtype: str = "PCM_16") -> WriteReport:
    """Write ``[channels, n]`` (or ``[n]`` as mono) through `gansynth.core.files.atomic_write`.

    A crash mid-write therefore never leaves a half-written file, and an existing file is either
    replaced whole or left untouched. PCM subtypes clip to [-1, 1] and warn with the count.
    """
    path = Path(path)
    audio_format = _output_format(path, subtype, sample_rate)
    samples = _as_channels_first(x, path)
    peak = float(np.abs(samples).max()) if samples.size else 0.0
    samples, clipped = _clipped(samples, subtype)
    _warn_clipped(path, clipped, peak)
    with atomic_write(path) as handle:
        sf.write(handle, samples.T, sample_rate, subtype=subtype, format=audio_format)
    return WriteReport(path=path, clipped_samples=clipped, peak=peak, frames=samples.shape[1])


STREAM_FRAMES = 1 << 16  # frames per read of the second pass of `write_audio_stream`


def write_audio_stream(path: str | os.PathLike, blocks: Iterable[np.ndarray], sample_rate: int,
                       subtype: str = "PCM_16", peak_db: float | None = None) -> WriteReport:
    """`write_audio(path, peak_normalize(concatenated blocks, peak_db), ...)`, bit for bit, holding
    one block at a time: a long mix never has to fit in memory.

    The gain needs the peak of the whole signal, so the raw blocks ``[channels, n]`` first go to a
    float32 scratch file beside `path`; a second pass scales them and writes the file atomically.
    """
    path = Path(path)
    audio_format = _output_format(path, subtype, sample_rate)
    channels, frames, raw_peak = None, 0, 0.0
    with tempfile.TemporaryFile(dir=path.parent) as scratch:
        for block in blocks:
            block = np.asarray(block, dtype=np.float32)
            channels = channels or block.shape[0]
            if block.ndim != 2 or block.shape[0] != channels or not np.isfinite(block).all():
                raise AudioError(f"{path}: every block must be finite [{channels}, n], got {block.shape}")
            raw_peak = max(raw_peak, float(np.abs(block).max()) if block.size else 0.0)
            frames += block.shape[1]
            block.T.tofile(scratch)  # interleaved frames
        if not frames:
            raise AudioError(f"{path}: no samples to write")
        gain = peak_gain(raw_peak, peak_db)
        scratch.seek(0)
        peak, clipped = 0.0, 0
        with atomic_write(path) as handle, sf.SoundFile(handle, "w", sample_rate, channels, subtype,
                                                        format=audio_format) as sound:
            for _ in range(0, frames, STREAM_FRAMES):
                chunk = np.fromfile(scratch, np.float32, STREAM_FRAMES * channels).reshape(-1, channels)
                chunk = chunk if gain is None else chunk * gain
                peak = max(peak, float(np.abs(chunk).max()))
                chunk, count = _clipped(chunk, subtype)
                clipped += count
                sound.write(chunk)
    _warn_clipped(path, clipped, peak)
    return WriteReport(path=path, clipped_samples=clipped, peak=peak, frames=frames)


def _output_format(path: Path, subtype: str, sample_rate: int) -> str:
    """The file format named by the suffix, once subtype, rate and folder are known to work."""
    audio_format = path.suffix.lstrip(".").upper()
    if subtype not in WRITE_SUBTYPES:
        raise AudioError(f"{path}: subtype {subtype!r} is not one of {', '.join(WRITE_SUBTYPES)}")
    if audio_format not in sf.available_formats() or not sf.check_format(audio_format, subtype):
        raise AudioError(f"{path}: cannot write subtype {subtype} to a '{path.suffix}' file")
    if sample_rate <= 0:
        raise AudioError(f"{path}: sample rate must be positive, got {sample_rate}")
    if not path.parent.is_dir():
        raise AudioError(f"{path}: folder {path.parent} does not exist")
    return audio_format


def _clipped(samples: np.ndarray, subtype: str) -> tuple[np.ndarray, int]:
    """Samples as a PCM subtype stores them (clipped to [-1, 1]) and how many were clipped."""
    clipped = int(np.count_nonzero(np.abs(samples) > 1.0)) if subtype in PCM_SUBTYPES else 0
    return (np.clip(samples, -1.0, 1.0) if clipped else samples), clipped


def _warn_clipped(path: Path, clipped: int, peak: float) -> None:
    if clipped:
        warnings.warn(f"{path}: clipped {clipped} samples beyond [-1, 1] (peak {peak:.4g})", stacklevel=3)


def _as_channels_first(x: np.ndarray | torch.Tensor, path: Path) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    samples = np.asarray(x, dtype=np.float32)
    if samples.ndim == 1:
        samples = samples[None]  # [1, n]
    if samples.ndim != 2 or samples.shape[1] == 0:
        raise AudioError(f"{path}: expected audio shaped [channels, samples], got {tuple(samples.shape)}")
    if samples.shape[0] > samples.shape[1]:
        raise AudioError(f"{path}: {samples.shape[0]} channels x {samples.shape[1]} samples looks "
                         f"transposed; pass [channels, samples]")
    if not np.isfinite(samples).all():
        raise AudioError(f"{path}: refusing to write NaN or infinite samples")
    return samples


def peak_normalize(audio: np.ndarray, peak_db: float | None) -> np.ndarray:
    """Scale so the absolute peak sits at peak_db dBFS, keeping the array's float type; None or
    silence leaves audio unchanged. The project's one peak normaliser (mix, notes, datasets, samples)."""
    gain = peak_gain(float(np.abs(audio).max()) if audio.size else 0.0, peak_db)
    return audio if gain is None else audio * gain


def peak_gain(peak: float, peak_db: float | None) -> float | None:
    """The factor that brings an absolute peak to peak_db dBFS; None (leave as is) for None or silence."""
    if peak_db is None or peak < SILENT_PEAK:
        return None
    return 10.0 ** (peak_db / 20.0) / peak

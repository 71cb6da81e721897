"""Render notes with a trained generator: checkpoint loading, latents, envelopes and the mix.

Fixes to the originals' rendering (facts 7): a note sounds for its MIDI duration (+ an optional
release tail) capped by the clip length (or looped past it with `sustain=loop`), not always the whole clip; the mix buffer is sized in
samples so no note can overrun it; every normalisation uses the absolute peak; timbre drift
works for pieces shorter than one anchor interval; and generation needs only the checkpoint.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from hydra.utils import to_absolute_path
from omegaconf import DictConfig, OmegaConf

from gansynth.core.files import save_npy
from gansynth.core.audio import WRITE_SUBTYPES, write_audio
from gansynth.core.envelope import check_envelope_params, envelope
from gansynth.core.errors import GANSynthError
from gansynth.core.midi import FIT_MODES, FitReport, MidiError, Note, fit_to_vocab, read_notes
from gansynth.core.networks import Generator
from gansynth.core.pitch import PitchVocab
from gansynth.core.schedule import Schedule
from gansynth.core.spectral import SpecgramCodec
from gansynth.inference.sustain import SUSTAIN_MODES, sustained

EMA_PREFIX = "ema_generator."
REQUIRED_HPARAMS = ("codec", "network", "pitch")
PRECISIONS = ("fp32", "bf16")
INSTRUMENTS = ("seed", "slerp", "file")
MODES = ("midi", "notes", "interpolate")
SILENT_PEAK = 1e-8  # below this a clip is treated as silence and left unscaled

VELOCITY_CURVES: dict[str, Callable[[int], float]] = {
    "linear": lambda v: v / 127.0,
    "quadratic": lambda v: (v / 127.0) ** 2,
    "constant": lambda v: 1.0,
}


class CheckpointError(GANSynthError):
    """A checkpoint file that is missing, unreadable, not GANSynth's, or does not build a model."""


class RenderError(GANSynthError):
    """A generation setting or latents file that cannot be used."""


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# ----------------------------------------------------------------------------------------------
# The model


@dataclass
class Synth:
    """Everything generation needs, rebuilt from one checkpoint: EMA generator, codec, vocabulary."""

    generator: Generator
    codec: SpecgramCodec
    vocab: PitchVocab
    pitch_counts: list[int]
    blocks: int     # the trained stage: active blocks and the newest block's fade-in weight
    alpha: float
    latent_dim: int
    device: torch.device
    batch_size: int = 8
    precision: str = "fp32"

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise RenderError(f"precision {self.precision!r} is not one of {', '.join(PRECISIONS)}")
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise RenderError(f"batch_size must be a positive integer, got {self.batch_size!r}")

    @property
    def sample_rate(self) -> int:
        return int(self.codec.sample_rate)

    @property
    def channels(self) -> int:
        return int(self.codec.audio_channels)

    @property
    def n_samples(self) -> int:
        return int(self.codec.n_samples)

    @property
    def trained_pitches(self) -> list[int]:
        """MIDI pitches present in the training data; the classes of the others were never learned."""
        return [self.vocab.midi(i) for i, count in enumerate(self.pitch_counts) if count > 0]

    def describe_trained_pitches(self) -> str:
        """'25 trained pitches in MIDI 48..72', for messages."""
        pitches = self.trained_pitches
        return f"{len(pitches)} trained pitches in MIDI {pitches[0]}..{pitches[-1]}"

    @torch.inference_mode()
    def generate(self, pitches: Sequence[int], z: torch.Tensor) -> torch.Tensor:
        """Clips [N, ch, n_samples] float32 on the CPU for MIDI pitches [N] and latents z [N, latent]."""
        if len(pitches) != z.shape[0] or z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise RenderError(f"generate: need z shaped [{len(pitches)}, {self.latent_dim}], "
                              f"got {tuple(z.shape)}")
        out_of_range = [p for p in pitches if not self.vocab.contains(p)]
        if out_of_range:
            raise RenderError(f"generate: pitches {out_of_range} are outside the model's "
                              f"range {self.vocab.low}..{self.vocab.high}")
        index = torch.tensor([self.vocab.index(p) for p in pitches], dtype=torch.long)
        clips = []
        for begin in range(0, len(pitches), self.batch_size):
            z_batch = z[begin:begin + self.batch_size].to(self.device, torch.float32)  # [b, latent]
            p_batch = index[begin:begin + self.batch_size].to(self.device)  # [b]
            with self._autocast():
                image = self.generator(z_batch, p_batch, self.blocks, self.alpha)  # [b, C, h, w] in [-1, 1]
            # A checkpoint from before the last stage emits a smaller image: its blocky spectrogram
            # is what it means at full size (nearest-neighbour), as Magenta's full-size output.
            image = F.interpolate(image.float(), size=tuple(self.codec.image_shape[1:]), mode="nearest")
            wave = self.codec.decode(self.codec.denormalize(image))  # [b, ch, n]
            clips.append(wave.float().cpu())
        return torch.cat(clips)  # [N, ch, n]

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()


def _read_checkpoint(path: Path) -> tuple[dict, dict[str, torch.Tensor], Mapping]:
    """The checkpoint's hyperparameters and EMA weights (prefix stripped), or a one-line error."""
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises pickle, zip and runtime errors alike for a non-torch file
        raise CheckpointError(f"{path}: not a readable torch checkpoint ({type(exc).__name__})") from None
    hparams = blob.get("hyper_parameters") if isinstance(blob, dict) else None
    state = blob.get("state_dict") if isinstance(blob, dict) else None
    if not isinstance(hparams, Mapping) or not isinstance(state, Mapping):
        raise CheckpointError(f"{path}: not a GANSynth checkpoint (no hyper_parameters/state_dict)")
    missing = [key for key in REQUIRED_HPARAMS if key not in hparams]
    ema = {k[len(EMA_PREFIX):]: v for k, v in state.items() if k.startswith(EMA_PREFIX)}
    if missing or not ema:
        what = ", ".join([f"hyper_parameters.{k}" for k in missing] + ([] if ema else ["EMA weights"]))
        raise CheckpointError(f"{path}: not a GANSynth checkpoint (missing {what})")
    return dict(hparams), ema, state


def trained_stage(hparams: Mapping, state: Mapping, num_blocks: int) -> tuple[int, float]:
    """(blocks, alpha) the checkpoint had reached: from its images-seen counter and schedule, or
    the full network when the checkpoint has no schedule."""
    if "schedule" not in hparams or "images_seen" not in state:
        return num_blocks, 1.0
    return Schedule(**hparams["schedule"]).blocks_and_alpha(int(state["images_seen"]))


def load_checkpoint(path: str | os.PathLike, device: str = "cpu", batch_size: int = 8,
                    precision: str = "fp32", untrained_seed: int | None = None) -> Synth:
    """Build the EMA generator and codec from a checkpoint alone (no training data needed).

    With ``untrained_seed`` the generator keeps the checkpoint's architecture and stage but gets fresh
    initial weights: the "untrained G" control that every learning metric must fail.
    """
    path = Path(path)
    hparams, ema, state = _read_checkpoint(path)
    try:
        codec = SpecgramCodec.from_dict(dict(hparams["codec"]))
        network = dict(hparams["network"])
        pitch = dict(hparams["pitch"])
        vocab = PitchVocab(int(pitch["low"]), int(pitch["high"]))
        with torch.random.fork_rng():
            torch.manual_seed(0 if untrained_seed is None else untrained_seed)
            generator = Generator.for_codec(codec, vocab, **network)
        if untrained_seed is None:
            generator.load_state_dict(ema, strict=True)
        counts = [int(c) for c in pitch.get("counts", [1] * vocab.size)]
        vocab.check_counts(counts)
        blocks, alpha = trained_stage(hparams, state, int(network["num_blocks"]))
    except Exception as exc:  # any failure here means the stored config and weights do not fit together
        message = " ".join(str(exc).split())[:300]
        raise CheckpointError(f"{path}: incompatible checkpoint ({type(exc).__name__}: {message})") from None
    torch_device = torch.device(device)
    generator.to(torch_device).eval().requires_grad_(False)
    return Synth(generator=generator, codec=codec.to(torch_device), vocab=vocab, pitch_counts=counts,
                 blocks=blocks, alpha=alpha, latent_dim=int(network["latent_dim"]),
                 device=torch_device, batch_size=batch_size, precision=precision)


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
        if not _is_number(self.release_tail) or self.release_tail < 0:
            raise RenderError(f"release_tail must be >= 0 seconds, got {self.release_tail}")
        if self.velocity_curve not in VELOCITY_CURVES:
            raise RenderError(f"velocity_curve {self.velocity_curve!r} is not one of {', '.join(VELOCITY_CURVES)}")


def sounding_samples(note: Note, shape: NoteShape, sample_rate: int, clip_samples: int) -> int:
    """MIDI duration + release tail in samples, at least 1; at most the generated clip unless it loops."""
    wanted = max(1, round((note.duration + shape.release_tail) * sample_rate))
    return wanted if shape.sustain == "loop" else min(wanted, clip_samples)


def peak_normalize(audio: np.ndarray, peak_db: float | None) -> np.ndarray:
    """Scale so the absolute peak sits at peak_db dBFS; None or silence leaves audio unchanged."""
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    if peak_db is None or peak < SILENT_PEAK:
        return audio
    return audio * np.float32(10.0 ** (peak_db / 20.0) / peak)


def render_midi(synth: Synth, notes: Sequence[Note], latents: np.ndarray, shape: NoteShape = NoteShape(),
                peak_db: float | None = -1.0) -> np.ndarray:
    """Mix notes [N] with per-note latents [N, latent] into audio [ch, n] ending at the last sounding sample.

    Each distinct (pitch, latent) is generated once, `batch_size` at a time; a batch is mixed into
    the buffer and freed before the next, so memory stays flat however long the piece is.
    """
    if len(notes) == 0:
        raise RenderError("render_midi: no notes to render")
    if latents.shape != (len(notes), synth.latent_dim):
        raise RenderError(f"render_midi: need latents [{len(notes)}, {synth.latent_dim}], got {latents.shape}")
    sr, clip_samples = synth.sample_rate, synth.n_samples
    onsets = [round(n.start * sr) for n in notes]
    lengths = [sounding_samples(n, shape, sr, clip_samples) for n in notes]
    mix = np.zeros((synth.channels, max(o + n for o, n in zip(onsets, lengths))), dtype=np.float32)  # [ch, n]

    uses: dict[tuple[int, bytes], list[int]] = {}
    for i, note in enumerate(notes):
        uses.setdefault((note.pitch, latents[i].tobytes()), []).append(i)
    jobs = list(uses.values())
    for begin in range(0, len(jobs), synth.batch_size):
        batch = jobs[begin:begin + synth.batch_size]
        z = torch.from_numpy(np.stack([latents[users[0]] for users in batch]))  # [b, latent]
        clips = synth.generate([notes[users[0]].pitch for users in batch], z).numpy()  # [b, ch, n]
        for clip, users in zip(clips, batch):
            clip = prepare_clip(clip, max(lengths[i] for i in users), sr, shape)  # [ch, longest use]
            for i in users:
                n, start = lengths[i], onsets[i]
                mix[:, start:start + n] += clip[:, :n] * note_gain(n, notes[i].velocity, shape)
    return peak_normalize(mix, peak_db)


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


# ----------------------------------------------------------------------------------------------
# The generate command


@dataclass(frozen=True)
class GenerateConfig:
    """conf/generate.yaml as a typed, validated record (the same keys, the same defaults)."""

    ckpt_path: str | None = None
    midi_file: str | None = None
    output_dir: str = "generated"
    mode: str = "midi"
    pitches: list[int] = field(default_factory=lambda: [60, 64, 67])
    separate_files: bool = False
    note_seconds: float | None = None
    gap_seconds: float = 0.25
    attack_percent: float = 1.0
    attack_slope: float = 0.5
    release_percent: float = 25.0
    release_slope: float = 0.5
    release_tail: float = 0.0
    velocity_curve: str = "linear"
    normalize_notes: bool = True
    sustain: str = "none"
    out_of_range: str = "transpose"
    include_drums: bool = False
    instrument: str = "seed"
    seed: int = 0
    secs_per_instrument: float = 6.0
    latents_file: str | None = None
    peak_db: float | None = -1.0
    subtype: str = "PCM_24"
    batch_size: int = 8
    precision: str = "fp32"
    device: str = "cpu"

    @classmethod
    def from_mapping(cls, cfg: Mapping | DictConfig) -> GenerateConfig:
        values = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
        unknown = sorted(set(values) - {f.name for f in fields(cls)})
        if unknown:
            raise RenderError(f"generate: unknown setting(s) {', '.join(unknown)}")
        config = cls(**values)
        config.validate()
        return config

    def validate(self) -> None:
        """Every setting checked before the checkpoint is even opened."""
        for name in ("attack_percent", "attack_slope", "release_percent", "release_slope", "release_tail",
                     "gap_seconds", "secs_per_instrument", "note_seconds", "peak_db"):
            value = getattr(self, name)
            optional = name in ("note_seconds", "peak_db")
            if not (optional and value is None) and not _is_number(value):
                raise RenderError(f"generate: {name} must be a finite number, got {value!r}")
        choices = {"mode": MODES, "instrument": INSTRUMENTS, "out_of_range": FIT_MODES,
                   "precision": PRECISIONS, "subtype": WRITE_SUBTYPES}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise RenderError(f"generate: {name}={getattr(self, name)!r} is not one of {', '.join(allowed)}")
        if not self.ckpt_path:
            raise RenderError("generate: ckpt_path is required")
        if self.mode == "midi" and not self.midi_file:
            raise RenderError("generate: midi_file is required in mode=midi")
        if self.instrument == "file" and not self.latents_file:
            raise RenderError("generate: latents_file is required with instrument=file")
        if self.mode != "midi" and (not self.pitches or not all(isinstance(p, int) for p in self.pitches)):
            raise RenderError(f"generate: pitches must be a non-empty list of MIDI numbers, got {self.pitches}")
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise RenderError(f"generate: batch_size must be a positive integer, got {self.batch_size}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise RenderError(f"generate: seed must be an integer, got {self.seed!r}")
        if not self.secs_per_instrument > 0 or not self.gap_seconds >= 0:
            raise RenderError("generate: secs_per_instrument must be > 0 and gap_seconds >= 0")
        if self.note_seconds is not None and not self.note_seconds > 0:
            raise RenderError(f"generate: note_seconds must be > 0, got {self.note_seconds}")
        if self.peak_db is not None and not self.peak_db <= 0:
            raise RenderError(f"generate: peak_db must be <= 0 dBFS (or null), got {self.peak_db}")
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise RenderError(f"generate: device={self.device} requested but CUDA is not available")
        self.note_shape()

    def note_shape(self) -> NoteShape:
        return NoteShape(self.attack_percent, self.attack_slope, self.release_percent, self.release_slope,
                         self.release_tail, self.velocity_curve, self.normalize_notes, self.sustain)


@dataclass(frozen=True)
class GenerateReport:
    """What run_generate produced, for the printed summary and for tests."""

    files: list[Path]
    notes: int
    fit: FitReport
    seconds: float
    peak: float


def _absolute(path: str) -> Path:
    """Relative paths mean the launch folder, also under Hydra."""
    return Path(to_absolute_path(path))


def _anchors(cfg: GenerateConfig, synth: Synth, count: int) -> np.ndarray:
    """Timbre anchors [K, latent]: from the latents file, or `count` drawn from the seed."""
    if cfg.instrument == "file":
        return load_anchors(_absolute(cfg.latents_file), synth.latent_dim)
    return random_anchors(count, synth.latent_dim, cfg.seed)


def _fitted_notes(cfg: GenerateConfig, synth: Synth) -> tuple[list[Note], FitReport, str]:
    """The notes to play (fitted to the model's range) and the output file's stem."""
    if cfg.mode == "midi":
        midi_path = _absolute(cfg.midi_file)
        notes, source, stem = read_notes(midi_path, include_drums=cfg.include_drums), str(midi_path), midi_path.stem
    else:
        notes, source, stem = note_sequence(cfg.pitches, 1.0, 0.0), f"pitches {cfg.pitches}", cfg.mode
    fitted, report = fit_to_vocab(notes, synth.vocab, cfg.out_of_range, synth.trained_pitches)
    if not fitted:
        raise MidiError(f"{source}: no notes the model can play with out_of_range={cfg.out_of_range} "
                        f"(it knows {synth.describe_trained_pitches()})")
    return fitted, report, stem


def _render_outputs(cfg: GenerateConfig, synth: Synth, notes: list[Note], stem: str
                    ) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(file stem, audio [ch, n], latents to save) for every file the mode writes."""
    shape = cfg.note_shape()
    if cfg.mode == "interpolate":
        anchors = _anchors(cfg, synth, 2)
        audio = render_interpolation(synth, [n.pitch for n in notes], anchors, shape, cfg.peak_db,
                                     cfg.note_seconds, cfg.gap_seconds)
        return [(stem, audio, anchors)]
    if cfg.mode == "midi":
        end_time = max(n.end for n in notes)
        positions = np.array([n.start / end_time for n in notes])
    else:
        end_time = len(notes) * ((cfg.note_seconds or synth.n_samples / synth.sample_rate) + cfg.gap_seconds)
        positions = np.linspace(0.0, 1.0, len(notes))
    count = max(2, round(end_time / cfg.secs_per_instrument) + 1) if cfg.instrument == "slerp" else 1
    anchors = _anchors(cfg, synth, count)
    latents = interpolate_anchors(anchors, positions)  # [N, latent]
    if cfg.mode == "midi":
        return [(stem, render_midi(synth, notes, latents, shape, cfg.peak_db), anchors)]
    audios = render_notes(synth, [n.pitch for n in notes], latents, shape, cfg.peak_db,
                          cfg.separate_files, cfg.note_seconds, cfg.gap_seconds)
    if not cfg.separate_files:
        return [(stem, audios[0], anchors)]
    return [(f"{stem}_{i:02d}_{n.pitch}", audio, latents[i:i + 1])
            for i, (n, audio) in enumerate(zip(notes, audios))]


def run_generate(cfg: Mapping | DictConfig | GenerateConfig) -> GenerateReport:
    """The `generate` command: validate everything, render, write wav(s) + latents, print a summary."""
    cfg = cfg if isinstance(cfg, GenerateConfig) else GenerateConfig.from_mapping(cfg)
    synth = load_checkpoint(_absolute(cfg.ckpt_path), cfg.device, cfg.batch_size, cfg.precision)
    notes, fit, stem = _fitted_notes(cfg, synth)
    outputs = _render_outputs(cfg, synth, notes, stem)

    out_dir = _absolute(cfg.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files, peak, seconds = [], 0.0, 0.0
    for name, audio, used_latents in outputs:
        written = write_audio(out_dir / f"{name}.wav", audio, synth.sample_rate, cfg.subtype)
        save_npy(out_dir / f"{name}.latents.npy", used_latents)
        files.append(written.path)
        peak = max(peak, written.peak)
        seconds += audio.shape[1] / synth.sample_rate
    report = GenerateReport(files=files, notes=len(notes), fit=fit, seconds=seconds, peak=peak)
    print(f"rendered {report.notes} notes ({fit.transposed} transposed, {fit.skipped} skipped to fit the "
          f"{synth.describe_trained_pitches()}), "
          f"{seconds:.2f} s at {synth.sample_rate} Hz x {synth.channels} ch, "
          f"peak {20 * math.log10(max(peak, 1e-12)):.1f} dBFS -> {', '.join(str(f) for f in files)}")
    return report

"""The generate command: a MIDI file, single notes or a timbre interpolation rendered to wav.

Its settings are conf/generate.yaml, composed by Hydra; `check_settings` checks the values the
file's kinds cannot express before the checkpoint is opened.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from hydra.utils import to_absolute_path

from gansynth.core.audio import WRITE_SUBTYPES, write_audio_stream
from gansynth.core.files import save_npy
from gansynth.core.midi import FIT_MODES, FitReport, MidiError, Note, fit_to_vocab, read_notes
from gansynth.core.synth import PRECISIONS, RenderError, Synth
from gansynth.inference.checkpoint import load_checkpoint
from gansynth.inference.render import (NoteShape, interpolate_anchors, is_number, load_anchors, note_sequence,
                                       random_anchors, render_interpolation, render_notes, stream_mix)

INSTRUMENTS = ("seed", "slerp", "file")
MODES = ("midi", "notes", "interpolate")


def note_shape(cfg: Mapping) -> NoteShape:
    return NoteShape(cfg.attack_percent, cfg.attack_slope, cfg.release_percent, cfg.release_slope,
                     cfg.release_tail, cfg.velocity_curve, cfg.normalize_notes, cfg.sustain)


def check_settings(cfg: Mapping) -> None:
    """Every setting checked before the checkpoint is even opened."""
    for name in ("attack_percent", "attack_slope", "release_percent", "release_slope", "release_tail",
                 "gap_seconds", "secs_per_instrument", "note_seconds", "peak_db"):
        value = cfg[name]
        optional = name in ("note_seconds", "peak_db")
        if not (optional and value is None) and not is_number(value):
            raise RenderError(f"generate: {name} must be a finite number, got {value!r}")
    choices = {"mode": MODES, "instrument": INSTRUMENTS, "out_of_range": FIT_MODES,
               "precision": PRECISIONS, "subtype": WRITE_SUBTYPES}
    for name, allowed in choices.items():
        if cfg[name] not in allowed:
            raise RenderError(f"generate: {name}={cfg[name]!r} is not one of {', '.join(allowed)}")
    if not cfg.ckpt_path:
        raise RenderError("generate: ckpt_path is required")
    if cfg.mode == "midi" and not cfg.midi_file:
        raise RenderError("generate: midi_file is required in mode=midi")
    if cfg.instrument == "file" and not cfg.latents_file:
        raise RenderError("generate: latents_file is required with instrument=file")
    if cfg.mode != "midi" and (not cfg.pitches or not all(isinstance(p, int) for p in cfg.pitches)):
        raise RenderError(f"generate: pitches must be a non-empty list of MIDI numbers, got {cfg.pitches}")
    if isinstance(cfg.batch_size, bool) or not isinstance(cfg.batch_size, int) or cfg.batch_size < 1:
        raise RenderError(f"generate: batch_size must be a positive integer, got {cfg.batch_size}")
    if isinstance(cfg.seed, bool) or not isinstance(cfg.seed, int):
        raise RenderError(f"generate: seed must be an integer, got {cfg.seed!r}")
    if not isinstance(cfg.compile, bool):
        raise RenderError(f"generate: compile must be true or false, got {cfg.compile!r}")
    if not cfg.secs_per_instrument > 0 or not cfg.gap_seconds >= 0:
        raise RenderError("generate: secs_per_instrument must be > 0 and gap_seconds >= 0")
    if cfg.note_seconds is not None and not cfg.note_seconds > 0:
        raise RenderError(f"generate: note_seconds must be > 0, got {cfg.note_seconds}")
    if cfg.peak_db is not None and not cfg.peak_db <= 0:
        raise RenderError(f"generate: peak_db must be <= 0 dBFS (or null), got {cfg.peak_db}")
    if cfg.device.startswith("cuda") and not torch.cuda.is_available():
        raise RenderError(f"generate: device={cfg.device} requested but CUDA is not available")
    note_shape(cfg)


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


def _anchors(cfg: Mapping, synth: Synth, count: int) -> np.ndarray:
    """Timbre anchors [K, latent]: from the latents file, or `count` drawn from the seed; with `play_as`, each
    one moved to that instrument's latent category."""
    if cfg.instrument == "file":
        anchors = load_anchors(_absolute(cfg.latents_file), synth.latent_dim)
    else:
        anchors = random_anchors(count, synth.latent_dim, cfg.seed)
    return anchors if cfg.play_as is None else synth.as_instrument(anchors, cfg.play_as)


def _fitted_notes(cfg: Mapping, synth: Synth) -> tuple[list[Note], FitReport, str]:
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


def _render_outputs(cfg: Mapping, synth: Synth, notes: list[Note], stem: str
                    ) -> list[tuple[str, Iterable[np.ndarray], np.ndarray]]:
    """(file stem, raw audio as blocks [ch, n], latents to save) for every file the mode writes; a
    MIDI file's mix is streamed, so a long piece is never whole in memory."""
    shape = note_shape(cfg)
    if cfg.mode == "interpolate":
        anchors = _anchors(cfg, synth, 2)
        audio = render_interpolation(synth, [n.pitch for n in notes], anchors, shape, None,
                                     cfg.note_seconds, cfg.gap_seconds)
        return [(stem, [audio], anchors)]
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
        return [(stem, stream_mix(synth, notes, latents, shape), anchors)]
    audios = render_notes(synth, [n.pitch for n in notes], latents, shape, None,
                          cfg.separate_files, cfg.note_seconds, cfg.gap_seconds)
    if not cfg.separate_files:
        return [(stem, [audios[0]], anchors)]
    return [(f"{stem}_{i:02d}_{n.pitch}", [audio], latents[i:i + 1])
            for i, (n, audio) in enumerate(zip(notes, audios))]


def run_generate(cfg: Mapping) -> GenerateReport:
    """The `generate` command (cfg composed from conf/generate.yaml): check the settings, render, write
    wav(s) + latents, print a summary."""
    check_settings(cfg)
    synth = load_checkpoint(_absolute(cfg.ckpt_path), cfg.device, cfg.batch_size, cfg.precision,
                            compile=cfg.compile)
    if cfg.play_as is not None:  # checked before any note is rendered
        synth.instrument_category(cfg.play_as)
    notes, fit, stem = _fitted_notes(cfg, synth)
    outputs = _render_outputs(cfg, synth, notes, stem)

    out_dir = _absolute(cfg.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files, peak, seconds = [], 0.0, 0.0
    for name, blocks, used_latents in outputs:
        written = write_audio_stream(out_dir / f"{name}.wav", blocks, synth.sample_rate, cfg.subtype, cfg.peak_db)
        save_npy(out_dir / f"{name}.latents.npy", used_latents)
        files.append(written.path)
        peak = max(peak, written.peak)
        seconds += written.frames / synth.sample_rate
    report = GenerateReport(files=files, notes=len(notes), fit=fit, seconds=seconds, peak=peak)
    print(f"rendered {report.notes} notes ({fit.transposed} transposed, {fit.skipped} skipped to fit the "
          f"{synth.describe_trained_pitches()}), "
          f"{seconds:.2f} s at {synth.sample_rate} Hz x {synth.channels} ch, "
          f"peak {20 * math.log10(max(peak, 1e-12)):.1f} dBFS -> {', '.join(str(f) for f in files)}")
    return report

"""The `gansynth-export` command: a playable sample pack with an SFZ instrument per timbre.

A musician takes the model away as files a sampler plays: for each timbre (a seed, a saved latent or
a point between two latents) one folder with a wav per sampled pitch and velocity layer (the model's
rate and channels, peak-safe, faded at both ends so nothing clicks) and the `.sfz` that maps them; a
README at the top names the model, the timbres and the settings. Every setting, the checkpoint, the
latents files and the output folder are checked before the first note is rendered.

    gansynth-export ckpt_path=runs/x/checkpoints/last.ckpt output_dir=pack seeds=[0,1] pitch_step=3
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from hydra.utils import to_absolute_path
from omegaconf import DictConfig, OmegaConf

from gansynth.core.audio import WRITE_SUBTYPES, write_audio
from gansynth.core.errors import GANSynthError
from gansynth.core.files import atomic_write, save_npy, writable_folder
from gansynth.core.synth import PRECISIONS, Synth
from gansynth.inference.checkpoint import load_checkpoint
from gansynth.inference.render import (VELOCITY_CURVES, NoteShape, load_anchors, note_gain, prepare_clip,
                                       random_anchors, slerp)
from gansynth.inference.sfz import Region, key_ranges, sfz_text, velocity_ranges
from gansynth.inference.sustain import SUSTAIN_MODES


class ExportError(GANSynthError):
    """An export setting, timbre or pitch range that cannot make a sample pack."""


class Timbre(NamedTuple):
    name: str         # its folder and .sfz name
    source: str       # how it was chosen, for the README
    latent: np.ndarray  # [latent]


def check_settings(cfg: DictConfig) -> None:
    """Every setting whose meaning does not depend on the checkpoint, checked before it is opened."""
    def fail(message: str) -> None:
        raise ExportError(f"export: {message}")

    choices = {"sustain": SUSTAIN_MODES, "velocity_curve": tuple(VELOCITY_CURVES), "subtype": WRITE_SUBTYPES,
               "precision": PRECISIONS}
    for key, allowed in choices.items():
        if cfg[key] not in allowed:
            fail(f"{key}={cfg[key]!r} is not one of {', '.join(allowed)}")
    for key in ("pitch_low", "pitch_high"):
        if cfg[key] is not None and (isinstance(cfg[key], bool) or not isinstance(cfg[key], int)):
            fail(f"{key} must be a MIDI number or null, got {cfg[key]!r}")
    if not isinstance(cfg.compile, bool):
        fail(f"compile must be true or false, got {cfg.compile!r}")
    if cfg.pitch_step < 1:
        fail(f"pitch_step must be >= 1, got {cfg.pitch_step}")
    velocity_ranges(cfg.velocity_layers)
    if cfg.note_seconds is not None and not cfg.note_seconds > 0:
        fail(f"note_seconds must be > 0 (or null for the clip length), got {cfg.note_seconds}")
    for key in ("fade_seconds", "release_seconds"):
        if not math.isfinite(cfg[key]) or cfg[key] < 0:
            fail(f"{key} must be >= 0 seconds, got {cfg[key]}")
    if not cfg.peak_db <= 0:
        fail(f"peak_db must be <= 0 dBFS, got {cfg.peak_db}")
    if len(cfg.between) not in (0, 2):
        fail(f"between takes two latents files [a.npy, b.npy], got {len(cfg.between)}")
    if cfg.between and not all(0.0 <= t <= 1.0 for t in cfg.positions):
        fail(f"positions must lie in 0..1 (0 = the first latent, 1 = the second), got {list(cfg.positions)}")
    if not (cfg.seeds or cfg.latents_files or cfg.between):
        fail("no timbre: give seeds, latents_files or between")


def timbres(cfg: DictConfig, synth: Synth) -> list[Timbre]:
    """The timbres asked for, in order: seeds, latents files, points between two latents files; with
    `play_as`, each moved to that training instrument's latent category (its name gets `_as_<instrument>`)."""
    latent_dim = synth.latent_dim
    chosen = [Timbre(f"seed_{seed}", f"seed {seed}", random_anchors(1, latent_dim, seed)[0]) for seed in cfg.seeds]
    for file in cfg.latents_files:
        path = Path(to_absolute_path(file))
        chosen.append(Timbre(path.stem, f"latents file {path}", load_anchors(path, latent_dim)[0]))
    if cfg.between:
        first, second = (Path(to_absolute_path(file)) for file in cfg.between)
        a, b = (load_anchors(path, latent_dim)[0] for path in (first, second))
        chosen += [Timbre(f"{first.stem}_to_{second.stem}_{t:.2f}", f"{t:g} of the way from {first} to {second}",
                          slerp(a, b, t).astype(np.float32)) for t in cfg.positions]
    if cfg.play_as is not None:
        moved = synth.as_instrument(np.stack([t.latent for t in chosen]), cfg.play_as)
        chosen = [Timbre(f"{t.name}_as_{cfg.play_as}", f"{t.source}, played as {cfg.play_as}", latent)
                  for t, latent in zip(chosen, moved)]
    names = [t.name for t in chosen]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ExportError(f"export: two timbres would share the folder {repeated[0]}")
    return chosen


def sampled_pitches(synth: Synth, cfg: DictConfig) -> list[int]:
    """Every pitch_step-th trained pitch within pitch_low..pitch_high (null: the model's range)."""
    low = synth.vocab.low if cfg.pitch_low is None else cfg.pitch_low
    high = synth.vocab.high if cfg.pitch_high is None else cfg.pitch_high
    pitches = [p for p in synth.trained_pitches if low <= p <= high]
    if not pitches:
        raise ExportError(f"export: pitch_low..pitch_high = {low}..{high} holds no trained pitch "
                          f"(the model has {synth.describe_trained_pitches()})")
    return pitches[::cfg.pitch_step]


def note_shape(cfg: DictConfig, n_samples: int, sample_rate: int) -> NoteShape:
    """Linear fades of fade_seconds at both ends; the velocity curve sets each layer's level."""
    fade_percent = 100.0 * round(cfg.fade_seconds * sample_rate) / n_samples
    if fade_percent > 50.0:
        raise ExportError(f"export: fade_seconds={cfg.fade_seconds} is more than half of a {n_samples}-sample note")
    return NoteShape(attack_percent=fade_percent, release_percent=fade_percent, velocity_curve=cfg.velocity_curve,
                     sustain=cfg.sustain)


def export_timbre(synth: Synth, timbre: Timbre, pitches: list[int], cfg: DictConfig, folder: Path,
                  n_samples: int) -> Path:
    """Render and write one timbre's samples, latent and .sfz into folder; return the .sfz path."""
    shape = note_shape(cfg, n_samples, synth.sample_rate)
    keys, layers = key_ranges(pitches), velocity_ranges(cfg.velocity_layers)
    (folder / "samples").mkdir(parents=True, exist_ok=True)
    clips = synth.generate(pitches, torch.from_numpy(np.repeat(timbre.latent[None], len(pitches), 0))).numpy()
    peak = 10.0 ** (cfg.peak_db / 20.0)
    regions = []
    for pitch, (lokey, hikey), clip in zip(pitches, keys, clips):
        clip = prepare_clip(clip, n_samples, synth.sample_rate, shape)  # [ch, n], peak 1
        for lovel, hivel in layers:
            name = f"samples/{pitch:03d}_vel{hivel:03d}.wav"
            write_audio(folder / name, clip * note_gain(n_samples, hivel, shape) * peak, synth.sample_rate,
                        cfg.subtype)
            regions.append(Region(name, lokey, hikey, pitch, lovel, hivel))
    save_npy(folder / "latent.npy", timbre.latent)
    sfz = folder / f"{timbre.name}.sfz"
    with atomic_write(sfz, "w") as handle:
        handle.write(sfz_text(regions, cfg.release_seconds, f"GANSynth timbre {timbre.name}: {timbre.source}"))
    return sfz


def pack_readme(cfg: DictConfig, synth: Synth, chosen: list[Timbre], pitches: list[int], n_samples: int) -> str:
    """What a musician needs to know about the pack, and what reproduces it."""
    lines = [
        "GANSynth sample pack", "",
        f"Model: {to_absolute_path(cfg.ckpt_path)}",
        f"  {synth.sample_rate} Hz, {synth.channels} channel(s), clip {synth.n_samples / synth.sample_rate:g} s, "
        f"{synth.describe_trained_pitches()}",
        f"Samples: {n_samples / synth.sample_rate:g} s each, {cfg.subtype}, pitches {pitches} "
        f"x {cfg.velocity_layers} velocity layer(s); keys between samples play the nearest sample transposed.",
        "", "Timbres (one folder and one .sfz each; latent.npy reloads it with gansynth-generate "
        "instrument=file latents_file=...):",
        *(f"  {t.name}/{t.name}.sfz: {t.source}" for t in chosen),
        "", "Settings (conf/export.yaml):", OmegaConf.to_yaml(cfg, resolve=True).rstrip(),
    ]
    return "\n".join(lines) + "\n"


def run_export(cfg: DictConfig) -> list[Path]:
    """The command: check everything, then render and write the pack; return the .sfz files."""
    check_settings(cfg)
    synth = load_checkpoint(to_absolute_path(cfg.ckpt_path), cfg.device, cfg.batch_size, cfg.precision,
                            compile=cfg.compile)
    chosen = timbres(cfg, synth)
    pitches = sampled_pitches(synth, cfg)
    n_samples = synth.n_samples if cfg.note_seconds is None else round(cfg.note_seconds * synth.sample_rate)
    if n_samples > synth.n_samples and cfg.sustain != "loop":
        raise ExportError(f"export: note_seconds={cfg.note_seconds} is longer than the model's "
                          f"{synth.n_samples / synth.sample_rate:g} s clip; add sustain=loop")
    note_shape(cfg, n_samples, synth.sample_rate)
    out = writable_folder(to_absolute_path(cfg.output_dir))
    files = [export_timbre(synth, timbre, pitches, cfg, out / timbre.name, n_samples) for timbre in chosen]
    readme = out / "README.txt"
    with atomic_write(readme, "w") as handle:
        handle.write(pack_readme(cfg, synth, chosen, pitches, n_samples))
    print(f"exported {len(chosen)} timbre(s) x {len(pitches)} pitches x {cfg.velocity_layers} velocity layer(s) "
          f"({n_samples / synth.sample_rate:g} s, {synth.sample_rate} Hz, {synth.channels} ch) -> {readme}, "
          f"{', '.join(str(f) for f in files)}")
    return files

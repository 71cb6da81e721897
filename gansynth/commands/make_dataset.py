"""Render a folder of NSynth-style single notes: a demo and test dataset without downloads.

SoundFont notes are rendered in-process with tinysoundfont, which returns stereo float32 from a
binary wheel. pretty_midi's own `fluidsynth()` needs the system libfluidsynth and returns only the
left channel, so it cannot make stereo data. `synthetic=true` needs no SoundFont at all: harmonic
tones with an ADSR envelope, for unit tests.

File names follow NSynth (`{name}_{program:03d}-{pitch:03d}-{velocity:03d}.wav`), so the `nsynth`
label source reads them back.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pretty_midi
from hydra.utils import to_absolute_path
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from gansynth.commands.cli import compose_config
from gansynth.core.audio import peak_normalize, write_audio
from gansynth.core.errors import GANSynthError
from gansynth.core.pitch import midi_to_hz

PEAK_DBFS = -3.0
SUBTYPES = ("PCM_16", "PCM_24", "FLOAT")
FLUSH_SECONDS = 0.05  # tinysoundfont's "all sound off" fades voices out over a few ms


class MakeDatasetError(GANSynthError):
    """Arguments that cannot produce a dataset (bad ranges, missing SoundFont, missing preset)."""


def bundled_soundfont() -> Path:
    """The General MIDI TimGM6mb.sf2 that pretty_midi ships inside its package folder."""
    return Path(pretty_midi.__file__).parent / "TimGM6mb.sf2"


def pan_gains(pan: float) -> tuple[float, float]:
    """Constant-power (left, right) gains for pan in [-1, 1]; both are 1 at the centre."""
    angle = (pan + 1.0) * math.pi / 4.0
    return math.sqrt(2.0) * math.cos(angle), math.sqrt(2.0) * math.sin(angle)


def program_pans(n_programs: int, spread: float) -> np.ndarray:
    """One fixed position per program, evenly over [-spread, spread]."""
    return np.linspace(-spread, spread, n_programs) if n_programs > 1 else np.zeros(1)


def note_file_name(program: int, pitch: int, velocity: int, synthetic: bool) -> str:
    if synthetic:
        name = "synth"
    else:
        name = re.sub(r"[^a-z0-9]+", "_", pretty_midi.program_to_instrument_name(program).lower()).strip("_")
    return f"{name}_{program:03d}-{pitch:03d}-{velocity:03d}.wav"


@dataclass(frozen=True)
class HarmonicRecipe:
    """A synthetic timbre: harmonic roll-off, even-harmonic weight and ADSR times (seconds)."""

    rolloff: float
    even_weight: float
    attack: float
    decay: float
    sustain: float
    release: float

    @classmethod
    def for_program(cls, program: int, seed: int) -> HarmonicRecipe:
        rng = np.random.default_rng([seed, program])
        return cls(
            rolloff=rng.uniform(0.8, 2.5),
            even_weight=rng.uniform(0.2, 1.0),
            attack=rng.uniform(0.005, 0.03),
            decay=rng.uniform(0.05, 0.15),
            sustain=rng.uniform(0.3, 0.8),
            release=rng.uniform(0.03, 0.08),
        )


def adsr(n_clip: int, n_hold: int, sample_rate: int, recipe: HarmonicRecipe) -> np.ndarray:
    """Envelope [n_clip]: attack to 1, decay to sustain while held, release to 0 after n_hold."""
    t = np.arange(n_clip) / sample_rate
    attack = np.clip(t / recipe.attack, 0.0, 1.0)
    decay = recipe.sustain + (1.0 - recipe.sustain) * np.exp(-np.maximum(t - recipe.attack, 0.0) / recipe.decay)
    held = attack * np.where(t < recipe.attack, 1.0, decay)
    level_at_release = held[n_hold - 1] if n_hold > 0 else 0.0
    release = level_at_release * np.clip(1.0 - (t - n_hold / sample_rate) / recipe.release, 0.0, 1.0)
    return np.where(np.arange(n_clip) < n_hold, held, release)


def synthesize_note(
    pitch: int, velocity: int, n_clip: int, n_hold: int, sample_rate: int, recipe: HarmonicRecipe,
    rng: np.random.Generator,
) -> np.ndarray:
    """Mono harmonic tone [n_clip]; softer velocities roll off faster (darker)."""
    f0 = float(midi_to_hz(float(pitch)))
    harmonics = np.arange(1, math.ceil(sample_rate / 2 / f0))  # [K], all strictly below Nyquist
    rolloff = recipe.rolloff + (127 - velocity) / 127.0
    amplitudes = harmonics ** -rolloff * np.where(harmonics % 2 == 0, recipe.even_weight, 1.0)
    phases = rng.uniform(0.0, 2.0 * np.pi, harmonics.size)
    t = np.arange(n_clip) / sample_rate
    tone = (amplitudes[:, None] * np.sin(2 * np.pi * f0 * harmonics[:, None] * t + phases[:, None])).sum(0)
    return tone * adsr(n_clip, n_hold, sample_rate, recipe)


class SoundFontRenderer:
    """One loaded SoundFont rendering held notes as stereo float32 [2, n]."""

    def __init__(self, soundfont: Path, sample_rate: int):
        try:
            import tinysoundfont
        except ImportError:
            raise MakeDatasetError("SoundFont notes need tinysoundfont, an optional extra: "
                                   "pip install --no-deps tinysoundfont==0.3.7 (or synthetic=true)") from None

        self.sample_rate = sample_rate
        self.synth = tinysoundfont.Synth(samplerate=sample_rate)
        try:
            self.sfid = self.synth.sfload(str(soundfont))
        except RuntimeError as err:
            raise MakeDatasetError(f"{soundfont}: cannot load SoundFont ({err})") from None

    def check_program(self, soundfont: Path, program: int) -> None:
        if self.synth.sfpreset_name(self.sfid, 0, program) is None:
            raise MakeDatasetError(f"{soundfont}: has no preset for program {program} in bank 0")

    def render(self, program: int, pitch: int, velocity: int, n_clip: int, n_hold: int) -> np.ndarray:
        self.synth.program_select(0, self.sfid, 0, program)
        self.synth.noteon(0, pitch, velocity)
        held = self._generate(n_hold)
        self.synth.noteoff(0, pitch)
        tail = self._generate(n_clip - n_hold)
        self.synth.sounds_off(0)
        self._generate(int(FLUSH_SECONDS * self.sample_rate))  # discard the fade so the next note starts silent
        return np.concatenate([held, tail], axis=1)

    def _generate(self, n: int) -> np.ndarray:
        if n <= 0:
            return np.zeros((2, 0), np.float32)
        interleaved = np.frombuffer(self.synth.generate(n), dtype=np.float32)  # [n * 2]
        return interleaved.reshape(n, 2).T  # [2, n]


def _check_range(name: str, values: Sequence[int], low: int, high: int) -> None:
    bad = [v for v in values if not low <= v <= high]
    if bad or not values:
        raise MakeDatasetError(f"{name} must be non-empty integers in {low}..{high}, got {list(values)}")


def make_dataset(out: str | Path, **settings) -> list[Path]:
    """Write one file per (program, pitch, velocity) into out; returns the paths in that order.

    ``settings`` are keys of conf/make_dataset.yaml; the others keep that file's values, so the command
    and Python callers share one set of defaults, written once."""
    defaults = OmegaConf.to_container(compose_config("make_dataset"))
    del defaults["out"]
    return _write_notes(Path(out), **{**defaults, **settings})


def _write_notes(
    out: Path, *, soundfont: str | Path | None, programs: Sequence[int], pitch_low: int, pitch_high: int,
    velocities: Sequence[int], note_length: float, clip_length: float, sample_rate: int, channels: int,
    pan_spread: float, synthetic: bool, seed: int, subtype: str, progress: bool,
) -> list[Path]:
    _check_range("programs", programs, 0, 127)
    _check_range("velocities", velocities, 1, 127)
    _check_range("pitch range", [pitch_low, pitch_high], 0, 127)
    if pitch_low > pitch_high:
        raise MakeDatasetError(f"pitch_low={pitch_low} is above pitch_high={pitch_high}")
    if note_length <= 0 or clip_length <= 0:
        raise MakeDatasetError(f"note_length={note_length} and clip_length={clip_length} must be positive")
    if channels not in (1, 2):
        raise MakeDatasetError(f"channels must be 1 or 2, got {channels}")
    if not 0.0 <= pan_spread <= 1.0:
        raise MakeDatasetError(f"pan_spread must be in [0, 1], got {pan_spread}")
    if subtype not in SUBTYPES:
        raise MakeDatasetError(f"subtype must be one of {SUBTYPES}, got {subtype!r}")
    if sample_rate <= 0:
        raise MakeDatasetError(f"sample_rate must be positive, got {sample_rate}")

    renderer = None
    if not synthetic:
        soundfont = Path(soundfont) if soundfont is not None else bundled_soundfont()
        if not soundfont.is_file():
            raise MakeDatasetError(f"{soundfont}: SoundFont file not found")
        renderer = SoundFontRenderer(soundfont, sample_rate)
        for program in programs:
            renderer.check_program(soundfont, program)

    existed = out.is_dir()
    try:
        out.mkdir(parents=True, exist_ok=True)
        # The notes are written beside `out` first and moved in only when all of them rendered, so a failure
        # midway (a program silent at some pitch) leaves the folder as it was, not half a new dataset in it.
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.rendering-", dir=out.resolve().parent))
    except OSError as err:
        raise MakeDatasetError(f"{out}: cannot create the output folder ({err.strerror})") from None
    try:
        names = _render_notes(staging, renderer, programs=programs, pitches=range(pitch_low, pitch_high + 1),
                              velocities=velocities, note_length=note_length, clip_length=clip_length,
                              sample_rate=sample_rate, channels=channels, pan_spread=pan_spread,
                              synthetic=synthetic, seed=seed, subtype=subtype, progress=progress)
        for name in names:
            os.replace(staging / name, out / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if not existed and not any(out.iterdir()):
            out.rmdir()
    return [out / name for name in names]


def _render_notes(
    folder: Path, renderer: SoundFontRenderer | None, *, programs: Sequence[int], pitches: range,
    velocities: Sequence[int], note_length: float, clip_length: float, sample_rate: int, channels: int,
    pan_spread: float, synthetic: bool, seed: int, subtype: str, progress: bool,
) -> list[str]:
    """Write one file per (program, pitch, velocity) into folder; returns their names in that order."""
    n_clip = round(clip_length * sample_rate)
    n_hold = min(round(note_length * sample_rate), n_clip)
    pans = program_pans(len(programs), pan_spread)
    rng = np.random.default_rng(seed)
    jobs = [(slot, pitch, v) for slot in range(len(programs)) for pitch in pitches for v in velocities]
    names, copies = [], 0
    first: tuple[tuple[int, int], np.ndarray] | None = None  # the current note's first velocity (the inner loop)
    for program_slot, pitch, velocity in tqdm(jobs, desc="rendering notes", unit="note", disable=not progress):
        program = programs[program_slot]
        if renderer is not None:
            stereo = renderer.render(program, pitch, velocity, n_clip, n_hold)  # [2, n]
        else:
            recipe = HarmonicRecipe.for_program(program, seed)
            stereo = np.tile(synthesize_note(pitch, velocity, n_clip, n_hold, sample_rate, recipe, rng), (2, 1))
        wave = _place(stereo, pans[program_slot], channels)
        loudest = np.abs(wave).max()
        if loudest <= 0.0:
            raise MakeDatasetError(f"program {program} rendered silence at pitch {pitch}, velocity {velocity}")
        names.append(note_file_name(program, pitch, velocity, synthetic))
        normalized = peak_normalize(wave, PEAK_DBFS).astype(np.float32)
        write_audio(folder / names[-1], normalized, sample_rate, subtype=subtype)
        if first is None or first[0] != (program_slot, pitch):
            first = ((program_slot, pitch), normalized)
        else:
            copies += np.abs(first[1] - normalized).max() < 1e-4
    if copies:
        compared = len(jobs) - len(jobs) // len(velocities)
        print(f"note: {copies} of {compared} notes at velocities {list(velocities)[1:]} are "
              f"copies of the velocity-{velocities[0]} note once peak-normalised (this "
              "SoundFont's velocity changes only the loudness): they add no variety")
    return names


def _place(stereo: np.ndarray, pan: float, channels: int) -> np.ndarray:
    """[2, n] render -> [channels, n]: panned for stereo output, averaged for mono."""
    if channels == 1:
        return stereo.mean(axis=0, keepdims=True)
    left, right = pan_gains(float(pan))
    return stereo * np.array([[left], [right]])


def run(cfg: DictConfig) -> list[Path]:
    """The make_dataset command (cfg composed from conf/make_dataset.yaml, ``make_dataset``'s arguments)."""
    start = time.perf_counter()
    settings = OmegaConf.to_container(cfg, resolve=True)
    out = Path(to_absolute_path(settings.pop("out")))
    soundfont = settings.pop("soundfont")
    paths = make_dataset(out, soundfont=to_absolute_path(soundfont) if soundfont else None, **settings)
    seconds = time.perf_counter() - start
    print(f"wrote {len(paths)} notes to {out} in {seconds:.2f} s ({len(paths) / seconds:.0f} notes/s)")
    return paths


if __name__ == "__main__":
    from gansynth.commands.cli import make_dataset as command

    command()

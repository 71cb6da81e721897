"""Read the notes of a MIDI file and fit them into the model's pitch vocabulary.

pretty_midi resolves tempo changes to seconds and pairs note-ons with note-offs, so overlapping
notes (also two at the same pitch) arrive as separate notes and are all kept. Notes without a
positive duration carry no sound in MIDI and are dropped. Unlike Magenta (which silently drops
pitches outside 36-84), pitches the model cannot play (outside its vocabulary, or inside it but absent
from its training data, whose class it never learned) are transposed by octaves by default and counted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

import pretty_midi

from gansynth.core.errors import GANSynthError
from gansynth.core.pitch import PitchVocab

FIT_MODES = ("transpose", "skip")


class MidiError(GANSynthError):
    """A MIDI file that cannot be read or holds nothing to play."""


@dataclass(frozen=True)
class Note:
    """One note in seconds; instrument_index is the track's position in the file."""

    start: float
    end: float
    pitch: int
    velocity: int
    program: int
    instrument_index: int

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class FitReport:
    """How many notes kept their pitch, moved by octaves, or were left out."""

    kept: int
    transposed: int
    skipped: int


def read_notes(path: str | Path, include_drums: bool = False) -> list[Note]:
    """All sounding notes of the file's instruments (drum tracks only if asked), sorted by onset."""
    path = Path(path)
    if not path.is_file():
        raise MidiError(f"{path}: MIDI file not found")
    try:
        score = pretty_midi.PrettyMIDI(str(path))
    except Exception as exc:  # pretty_midi/mido raise many unrelated types on corrupt input
        raise MidiError(f"{path}: not a readable MIDI file ({type(exc).__name__}: {exc})") from None
    notes = [
        Note(float(n.start), float(n.end), int(n.pitch), min(max(int(n.velocity), 1), 127),
             int(track.program), index)
        for index, track in enumerate(score.instruments)
        if include_drums or not track.is_drum
        for n in track.notes
        if n.end > n.start
    ]
    if not notes:
        what = "notes" if include_drums else "non-drum notes"
        raise MidiError(f"{path}: no playable {what} (need at least one note with positive duration)")
    notes.sort(key=lambda n: (n.start, n.pitch, n.instrument_index))
    return notes


def _octave_shift(pitch: int, playable: frozenset[int]) -> int | None:
    """The playable pitch the fewest octaves away (the lower one on a tie), or None when no playable
    pitch shares the note's pitch class."""
    same_class = [p for p in playable if (p - pitch) % 12 == 0]
    return min(same_class, key=lambda p: (abs(p - pitch), p), default=None)


def fit_to_vocab(notes: list[Note], vocab: PitchVocab, mode: str = "transpose",
                 trained: Iterable[int] | None = None) -> tuple[list[Note], FitReport]:
    """Keep notes on playable pitches: those of the vocabulary, and of trained (MIDI pitches the
    model saw in training) when given. Move the others by octaves onto the nearest playable pitch
    ("transpose") or drop them ("skip")."""
    if mode not in FIT_MODES:
        raise MidiError(f"out-of-range mode {mode!r} is not one of {', '.join(FIT_MODES)}")
    candidates = range(vocab.low, vocab.high + 1) if trained is None else trained
    playable = frozenset(p for p in candidates if vocab.contains(p))
    fitted: list[Note] = []
    transposed = skipped = 0
    for note in notes:
        if note.pitch in playable:
            fitted.append(note)
            continue
        shifted = _octave_shift(note.pitch, playable) if mode == "transpose" else None
        if shifted is None:
            skipped += 1
        else:
            transposed += 1
            fitted.append(replace(note, pitch=shifted))
    return fitted, FitReport(kept=len(fitted) - transposed, transposed=transposed, skipped=skipped)

"""Pitch labels for a folder of notes, from file names, a CSV sidecar, a regex, or the audio itself.

The fork read pitch from fixed character offsets chosen by the file's channel count and gave any
name that did not fit an empty label. Here every source is explicit, a name that does not match
yields a per-file message (collected for one report), and nothing is labelled silently.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import re
from collections.abc import Sequence
from pathlib import Path

from gansynth.core.audio import AudioError, read_audio, to_channels
from gansynth.core.errors import GANSynthError
from gansynth.core.files import atomic_write
from gansynth.core.pitch import PitchError, estimate_f0, hz_to_midi

SOURCES = ("nsynth", "fork", "csv", "regex", "estimate")
NSYNTH_STEM = re.compile(r"_(?P<instrument>\d{3})-(?P<pitch>\d{3})-(?P<velocity>\d{3})$")
FORK_STEM = re.compile(r"(?P<pitch>\d{3})$")
INSTRUMENT_STEM = re.compile(r"^(?P<instrument>.+)[-_]\d{3}-\d{3}$")
ESTIMATE_FMAX_HZ = 2100.0
ESTIMATE_FMIN_HZ = 30.0

Label = int | str
"""A MIDI pitch, or a message saying why the file has none."""


class LabelError(GANSynthError):
    """A label configuration that cannot be used at all (unknown source, unreadable CSV, bad regex)."""


def label_files(
    files: Sequence[Path],
    source: str = "nsynth",
    *,
    root: Path | None = None,
    csv_path: str | Path | None = None,
    pattern: str | None = None,
    estimate_cache: Path | None = None,
) -> dict[Path, Label]:
    """Map each file to its MIDI pitch (int) or to the reason it has none (str).

    root is the data folder: CSV entries and relative csv_path are resolved against it, and the
    `regex` source matches the path relative to it (so folder names can carry the pitch).
    estimate_cache is a JSON file remembering estimated pitches by file identity.
    """
    if source not in SOURCES:
        raise LabelError(f"labels.source={source!r} is not one of {', '.join(SOURCES)}")
    root = Path(root) if root is not None else None
    if source == "nsynth":
        return {f: _from_stem(f, NSYNTH_STEM, "NAME_III-PPP-VVV (NSynth)") for f in files}
    if source == "fork":
        return {f: _from_stem(f, FORK_STEM, "...PPP (three digits before the extension)") for f in files}
    if source == "regex":
        return _from_regex(files, pattern, root)
    if source == "csv":
        return _from_csv(files, csv_path, root)
    return _from_estimate(files, estimate_cache)


def instrument_of(path: str | Path) -> str:
    """Instrument name of an NSynth-style file, ``<instrument>-PPP-VVV.wav`` or ``<instrument>_PPP-VVV``:
    everything before the pitch and velocity fields (the evaluation's classes, training's pairs)."""
    match = INSTRUMENT_STEM.match(Path(path).stem)
    if match is None:
        raise LabelError(f"{path}: file name does not end in -PPP-VVV, so it names no instrument")
    return match["instrument"]


def _from_stem(path: Path, stem_pattern: re.Pattern[str], expected: str) -> Label:
    match = stem_pattern.search(path.stem)
    if match is None:
        return f"name does not match {expected}"
    return int(match["pitch"])


def _from_regex(files: Sequence[Path], pattern: str | None, root: Path | None) -> dict[Path, Label]:
    if not pattern:
        raise LabelError("labels.source=regex needs labels.pattern with a named group (?P<pitch>...)")
    try:
        compiled = re.compile(pattern)
    except re.error as err:
        raise LabelError(f"labels.pattern {pattern!r} is not a valid regex: {err}") from None
    if "pitch" not in compiled.groupindex:
        raise LabelError(f"labels.pattern {pattern!r} has no named group (?P<pitch>...)")
    labels: dict[Path, Label] = {}
    for path in files:
        subject = path.relative_to(root).as_posix() if root is not None else path.name
        match = compiled.search(subject)
        if match is None or match["pitch"] is None:
            labels[path] = f"path {subject!r} does not match labels.pattern {pattern!r}"
        elif not match["pitch"].strip().lstrip("+-").isdigit():
            labels[path] = f"pitch group matched {match['pitch']!r}, not an integer"
        else:
            labels[path] = int(match["pitch"])
    return labels


def _from_csv(files: Sequence[Path], csv_path: str | Path | None, root: Path | None) -> dict[Path, Label]:
    if csv_path is None:
        raise LabelError("labels.source=csv needs labels.csv_path (a file,pitch table)")
    sheet = Path(csv_path)
    if not sheet.is_absolute() and root is not None:
        sheet = root / sheet
    table = read_label_csv(sheet, root if root is not None else sheet.parent)
    return {f: table.get(f.resolve(), f"not listed in {sheet.name}") for f in files}


def read_label_csv(sheet: Path, root: Path) -> dict[Path, int]:
    """Parse a `file,pitch` table (header optional) into {resolved path: midi}."""
    try:
        with open(sheet, newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.reader(handle))
    except OSError as err:
        raise LabelError(f"{sheet}: cannot read the label CSV ({err.strerror})") from None
    table: dict[Path, int] = {}
    for line, row in enumerate(rows, start=1):
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) < 2:
            raise LabelError(f"{sheet}:{line}: expected 'file,pitch', got {','.join(row)!r}")
        name, pitch = row[0].strip(), row[1].strip()
        if not pitch.lstrip("+-").isdigit():
            if line == 1:  # a header row
                continue
            raise LabelError(f"{sheet}:{line}: pitch {pitch!r} is not an integer")
        table[(root / name).resolve()] = int(pitch)
    return table


def file_identity(path: Path) -> str:
    """A key that changes when the file is replaced or edited: absolute path, size, mtime."""
    stat = path.stat()
    text = f"{path.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}"
    return hashlib.sha1(text.encode("utf-8", "surrogateescape")).hexdigest()


def _from_estimate(files: Sequence[Path], cache_file: Path | None) -> dict[Path, Label]:
    cache = _read_estimate_cache(cache_file)
    labels: dict[Path, Label] = {}
    for path in files:
        key = file_identity(path)
        if key not in cache:
            cache[key] = _estimate_midi(path)
        labels[path] = cache[key]
    if cache_file is not None:
        _write_json_atomically(cache_file, cache)
    return labels


def _estimate_midi(path: Path) -> Label:
    """Round the YIN f0 of the downmixed file to the nearest MIDI note."""
    try:
        wave, sample_rate = read_audio(path)
    except AudioError as err:
        return f"cannot estimate pitch: {err}"
    mono = to_channels(wave, 1, downmix=True)[0]
    fmax = min(ESTIMATE_FMAX_HZ, sample_rate / 4 - 1)
    try:
        hz = float(estimate_f0(mono, sample_rate, fmin=ESTIMATE_FMIN_HZ, fmax=fmax))
    except PitchError as err:
        return f"cannot estimate pitch: {err}"
    if not math.isfinite(hz):
        return "no pitch found (silent or unpitched)"
    return int(round(hz_to_midi(hz)))


def _read_estimate_cache(cache_file: Path | None) -> dict[str, Label]:
    if cache_file is None or not cache_file.exists():
        return {}
    try:
        return json.loads(cache_file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}  # a damaged cache is only a lost speed-up: estimate again


def _write_json_atomically(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "w") as handle:
        json.dump(data, handle, indent=0, sort_keys=True)

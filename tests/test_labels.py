"""Every label source gives the right MIDI pitch, or a per-file reason instead of a silent empty label."""

from __future__ import annotations

import json
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import soundfile as sf

from gansynth.core.labels import LabelError, instrument_of, label_files
from gansynth.commands.make_dataset import make_dataset


def touch(root: Path, *names: str) -> list[Path]:
    paths = []
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
        paths.append(path)
    return paths


def test_nsynth_names_give_the_middle_number(tmp_path):
    files = touch(tmp_path, "guitar_acoustic_000-060-075.wav", "flûte à bec_012-084-127.flac", "odd_60-075.wav")
    labels = label_files(files, "nsynth")
    assert labels[files[0]] == 60 and labels[files[1]] == 84
    assert "does not match" in labels[files[2]]


def test_fork_names_give_the_three_digits_before_the_extension(tmp_path):
    files = touch(tmp_path, "anything_060.wav", "take 2 072.aiff", "note.wav")
    labels = label_files(files, "fork")
    assert (labels[files[0]], labels[files[1]]) == (60, 72)
    assert isinstance(labels[files[2]], str)


def test_csv_with_header_maps_relative_paths(tmp_path):
    files = touch(tmp_path, "a.wav", "sub dir/b é.wav", "unlisted.wav")
    (tmp_path / "pitches.csv").write_text("file,pitch\na.wav,48\nsub dir/b é.wav,61\n", encoding="utf-8")
    labels = label_files(files, "csv", root=tmp_path, csv_path="pitches.csv")
    assert (labels[files[0]], labels[files[1]]) == (48, 61)
    assert labels[files[2]] == "not listed in pitches.csv"


def test_csv_without_header_is_read_from_the_first_row(tmp_path):
    files = touch(tmp_path, "a.wav")
    (tmp_path / "p.csv").write_text("a.wav,50\n")
    assert label_files(files, "csv", root=tmp_path, csv_path=tmp_path / "p.csv")[files[0]] == 50


def test_csv_with_a_bad_pitch_names_the_file_and_line(tmp_path):
    files = touch(tmp_path, "a.wav")
    (tmp_path / "p.csv").write_text("file,pitch\na.wav,sixty\n")
    with pytest.raises(LabelError, match=r"p\.csv:2: pitch 'sixty'"):
        label_files(files, "csv", root=tmp_path, csv_path="p.csv")


def test_regex_matches_the_path_relative_to_the_folder(tmp_path):
    files = touch(tmp_path, "63/take1.wav", "70/take2.wav", "loose.wav")
    labels = label_files(files, "regex", root=tmp_path, pattern=r"^(?P<pitch>\d+)/")
    assert (labels[files[0]], labels[files[1]]) == (63, 70)
    assert "does not match" in labels[files[2]]


@pytest.mark.parametrize("pattern, message", [(None, "needs labels.pattern"), (r"(\d+)", "no named group"),
                                              (r"(?P<pitch>\d+", "not a valid regex")])
def test_regex_configuration_errors(tmp_path, pattern, message):
    with pytest.raises(LabelError, match=message):
        label_files(touch(tmp_path, "60.wav"), "regex", pattern=pattern)


def test_unknown_source_is_rejected(tmp_path):
    with pytest.raises(LabelError, match="'midi' is not one of"):
        label_files(touch(tmp_path, "a.wav"), "midi")


def test_estimate_recovers_synthetic_pitches(synthetic_notes, tmp_path):
    files = sorted(synthetic_notes.glob("*.wav"))
    labels = label_files(files, "estimate", estimate_cache=tmp_path / "estimates.json")
    expected = {f: int(f.stem[-7:-4]) for f in files}
    assert labels == expected and len(files) == 8


def test_estimate_recovers_soundfont_pitches(tmp_path):
    pitches = [36, 48, 60, 72, 79]
    files = make_dataset(tmp_path, programs=(0, 40, 73), pitch_low=36, pitch_high=79, velocities=(100,),
                         note_length=0.4, clip_length=0.5, progress=False)
    files = [f for f in files if int(f.stem[-7:-4]) in pitches]
    labels = label_files(files, "estimate")
    misses = {f.name: labels[f] for f in files if labels[f] != int(f.stem[-7:-4])}
    assert len(files) == 15 and misses == {}


def test_estimate_cache_is_reused_without_reading_audio(synthetic_notes, tmp_path):
    files = sorted(synthetic_notes.glob("*.wav"))
    cache = tmp_path / "estimates.json"
    first = label_files(files, "estimate", estimate_cache=cache)
    with mock.patch("gansynth.core.labels.read_audio", side_effect=AssertionError("audio was read")) as reader:
        second = label_files(files, "estimate", estimate_cache=cache)
    assert second == first and reader.call_count == 0 and len(json.loads(cache.read_text())) == 8


def test_estimate_reports_silence_instead_of_a_pitch(tmp_path):
    silent = tmp_path / "silence.wav"
    sf.write(silent, np.zeros(4000, np.float32), 16000)
    assert label_files([silent], "estimate")[silent] == "no pitch found (silent or unpitched)"


def test_instrument_comes_from_an_nsynth_style_name():
    assert instrument_of("notes/violin_040-060-090.wav") == "violin_040"
    assert instrument_of("guitar_acoustic_000-060-075.wav") == "guitar_acoustic_000"
    with pytest.raises(LabelError, match="names no instrument"):
        instrument_of("notes/take3.wav")

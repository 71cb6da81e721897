"""The dataset maker writes the notes it promises: count, names, format, pitch, level and panning."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from gansynth.commands.make_dataset import MakeDatasetError, make_dataset, pan_gains
from gansynth.core.pitch import estimate_f0, hz_to_midi

PEAK = 10 ** (-3 / 20)


def rms_db(x: np.ndarray) -> float:
    return 10 * np.log10(np.mean(np.square(x, dtype=np.float64)))


def test_files_have_the_requested_count_names_rate_channels_and_length(tmp_path):
    paths = make_dataset(tmp_path, programs=(0, 40), pitch_low=60, pitch_high=62, velocities=(80, 120),
                         clip_length=0.3, sample_rate=22050, channels=2, progress=False)
    infos = [sf.info(str(p)) for p in paths]
    assert len(paths) == 12 and len(list(tmp_path.iterdir())) == 12
    assert paths[0].name == "acoustic_grand_piano_000-060-080.wav" and paths[-1].name == "violin_040-062-120.wav"
    assert {(i.samplerate, i.channels, i.frames, i.subtype) for i in infos} == {(22050, 2, 6615, "PCM_16")}


def test_soundfont_notes_have_their_pitch_within_50_cents(tmp_path):
    paths = make_dataset(tmp_path, programs=(0, 40, 73), pitch_low=48, pitch_high=72, velocities=(100,),
                         note_length=0.4, clip_length=0.5, progress=False)
    waves = np.stack([sf.read(p, dtype="float32")[0] for p in paths])  # [75, n] mono
    cents = 100 * (hz_to_midi(estimate_f0(waves, 16000).numpy()) - [int(p.stem[-7:-4]) for p in paths])
    assert len(paths) == 75 and np.abs(cents).max() < 50


@pytest.mark.parametrize("synthetic, copies", [(False, 4), (True, 0)])
def test_velocities_that_only_change_loudness_are_reported_as_copies(tmp_path, capsys, synthetic, copies):
    """TimGM6mb's velocity only scales a note, which peak normalisation undoes: the maker says so. The
    synthetic timbres darken with lower velocity (the control: no such line)."""
    make_dataset(tmp_path, synthetic=synthetic, programs=(0, 40), pitch_low=60, pitch_high=61,
                 velocities=(60, 120), progress=False)
    out = capsys.readouterr().out
    assert (f"note: {copies} of 4 notes at velocities [120] are copies" in out) == bool(copies)
    assert ("copies" in out) == bool(copies)


def test_notes_are_peak_normalised_to_minus_3_dbfs(tmp_path):
    paths = make_dataset(tmp_path, synthetic=True, programs=(5,), pitch_low=40, pitch_high=44,
                         velocities=(20, 127), subtype="FLOAT", progress=False)
    peaks = [np.abs(sf.read(p)[0]).max() for p in paths]
    np.testing.assert_allclose(peaks, PEAK, rtol=1e-6)


@pytest.mark.parametrize("synthetic, tolerance_db", [(True, 0.01), (False, 1.5)])
def test_stereo_programs_are_panned_to_their_own_positions(tmp_path, synthetic, tolerance_db):
    paths = make_dataset(tmp_path, synthetic=synthetic, programs=(0, 40, 73), pitch_low=60, pitch_high=60,
                         velocities=(100,), channels=2, pan_spread=0.6, subtype="FLOAT", progress=False)
    balance = [rms_db(x[:, 0]) - rms_db(x[:, 1]) for x in (sf.read(p)[0] for p in paths)]  # L - R in dB
    left, right = pan_gains(-0.6)
    expected = 20 * np.log10(left / right)  # 9.8 dB for a mono source
    np.testing.assert_allclose(balance, [expected, 0.0, -expected], atol=tolerance_db)


def test_synthetic_notes_fall_silent_after_the_release(tmp_path):
    (path,) = make_dataset(tmp_path, synthetic=True, programs=(3,), pitch_low=50, pitch_high=50, velocities=(90,),
                           note_length=0.1, clip_length=0.28, progress=False)
    wave = sf.read(path)[0]
    held, tail = wave[: 1600], wave[1600 + int(0.08 * 16000):]  # the longest release is 80 ms
    assert rms_db(held) > -20 and len(tail) == 1600 and np.count_nonzero(tail) == 0


def test_the_same_seed_renders_the_same_synthetic_notes(tmp_path):
    kwargs = dict(synthetic=True, programs=(7,), pitch_low=60, pitch_high=61, velocities=(100,), progress=False)
    first = [sf.read(p)[0] for p in make_dataset(tmp_path / "a", seed=3, **kwargs)]
    again = [sf.read(p)[0] for p in make_dataset(tmp_path / "b", seed=3, **kwargs)]
    other = [sf.read(p)[0] for p in make_dataset(tmp_path / "c", seed=4, **kwargs)]
    assert np.array_equal(first, again) and np.abs(np.subtract(first, other)).max() > 0.01


def test_cli_writes_the_notes_and_reports_the_rate(tmp_path, capsys, console):
    console("make_dataset", f"out={tmp_path}", "synthetic=true", "programs=[1,2]", "pitch_low=60", "pitch_high=63",
            "velocities=[100]")
    assert len(list(tmp_path.glob("synth_00[12]-06[0-3]-100.wav"))) == 8
    assert "wrote 8 notes" in capsys.readouterr().out


def test_cli_defaults_are_the_readmes(tmp_path, console):
    """README: programs 0, 40, 73, MIDI 48-72, velocities 60, 90, 120: 225 mono 16 kHz 16-bit notes of 0.28 s."""
    console("make_dataset", f"out={tmp_path}", "synthetic=true", "progress=false")
    notes = {tuple(int(n) for n in p.stem.split("_")[1].split("-")): sf.info(str(p)) for p in tmp_path.iterdir()}
    assert sorted(notes) == [(program, pitch, velocity) for program in (0, 40, 73) for pitch in range(48, 73)
                             for velocity in (60, 90, 120)]
    assert {(i.samplerate, i.channels, i.frames, i.subtype) for i in notes.values()} == {(16000, 1, 4480, "PCM_16")}


@pytest.mark.parametrize("arguments, message", [
    (["synthetic=true", "pitch_low=70", "pitch_high=60"], "pitch_low=70 is above pitch_high=60"),
    (["channels=3"], "channels must be 1 or 2, got 3"),
    (["pitch-low=60"], "pitch-low: no such setting (did you mean pitch_low?); add a new key with +pitch-low=..."),
])
def test_cli_turns_bad_arguments_into_one_line(arguments, message, tmp_path, capsys, console):
    with pytest.raises(SystemExit) as exit_info:
        console("make_dataset", f"out={tmp_path / 'out'}", *arguments)
    assert exit_info.value.code == 2 and capsys.readouterr().err == f"error: {message}\n"
    assert not (tmp_path / "out").exists()


def test_an_output_path_that_is_a_file_is_named(tmp_path):
    (tmp_path / "taken").write_text("")
    with pytest.raises(MakeDatasetError, match=r"taken/notes: cannot create the output folder \(Not a directory\)"):
        make_dataset(tmp_path / "taken" / "notes", synthetic=True, progress=False)


def test_missing_soundfont_is_named(tmp_path):
    with pytest.raises(MakeDatasetError, match="nowhere.sf2: SoundFont file not found"):
        make_dataset(tmp_path, soundfont=tmp_path / "nowhere.sf2", progress=False)


def test_unreadable_soundfont_is_named(tmp_path):
    bad = tmp_path / "bad.sf2"
    bad.write_bytes(b"not a soundfont")
    with pytest.raises(MakeDatasetError, match="bad.sf2: cannot load SoundFont"):
        make_dataset(tmp_path, soundfont=bad, progress=False)


@pytest.mark.parametrize("existing", [True, False])
def test_a_program_silent_midway_leaves_the_folder_as_it_was(tmp_path, existing):
    """TimGM6mb's program 65 has no sample at MIDI 64: the error names it after 9 notes were rendered, and
    none of them reaches the folder; a file already there is untouched; a folder the call made is gone."""
    out = tmp_path / "notes"
    if existing:
        out.mkdir()
        (out / "kept.wav").write_bytes(b"an earlier dataset")
    with pytest.raises(MakeDatasetError, match="program 65 rendered silence at pitch 64, velocity 100"):
        make_dataset(out, programs=(0, 65), pitch_low=60, pitch_high=64, velocities=(100,), progress=False)
    assert sorted(p.name for p in tmp_path.rglob("*")) == (["kept.wav", "notes"] if existing else [])
    if existing:
        assert (out / "kept.wav").read_bytes() == b"an earlier dataset"

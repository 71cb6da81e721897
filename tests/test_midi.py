"""MIDI reading (instruments, drums, overlaps, tempo changes, bad files) and octave fitting."""

import mido
import pretty_midi
import pytest

from gansynth.core.midi import MidiError, Note, fit_to_vocab, read_notes
from gansynth.core.pitch import PitchVocab


def write_midi(path, tracks):
    """tracks: list of (program, is_drum, [(pitch, velocity, start, end), ...])."""
    score = pretty_midi.PrettyMIDI(initial_tempo=120)
    for program, is_drum, notes in tracks:
        instrument = pretty_midi.Instrument(program=program, is_drum=is_drum)
        instrument.notes += [pretty_midi.Note(v, p, s, e) for p, v, s, e in notes]
        score.instruments.append(instrument)
    score.write(str(path))
    return path


def test_non_drum_notes_of_every_instrument_sorted_by_onset(tmp_path):
    path = write_midi(tmp_path / "a.mid", [
        (0, False, [(60, 100, 0.5, 1.0), (64, 90, 0.0, 0.75)]),
        (40, False, [(67, 80, 0.25, 0.5)]),
        (0, True, [(36, 127, 0.0, 0.1)]),
    ])
    notes = read_notes(path)
    assert [(n.pitch, n.program, n.instrument_index) for n in notes] == [(64, 0, 0), (67, 40, 1), (60, 0, 0)]
    assert notes[0].start == pytest.approx(0.0) and notes[0].end == pytest.approx(0.75, abs=1e-3)


def test_drums_included_on_request(tmp_path):
    path = write_midi(tmp_path / "d.mid", [(0, False, [(60, 100, 0.0, 1.0)]), (0, True, [(36, 127, 0.0, 0.1)])])
    assert len(read_notes(path)) == 1
    assert sorted(n.pitch for n in read_notes(path, include_drums=True)) == [36, 60]


def test_overlapping_and_same_pitch_notes_are_kept(tmp_path):
    path = write_midi(tmp_path / "o.mid", [(0, False, [(60, 100, 0.0, 1.0), (64, 100, 0.2, 1.2),
                                                        (60, 70, 0.5, 1.5)])])
    notes = read_notes(path)
    assert len(notes) == 3
    assert [n.velocity for n in notes if n.pitch == 60] == [100, 70]


def test_tempo_change_moves_onsets(tmp_path):
    # 480 ticks per beat: 2 beats at 120 bpm (1.0 s), then 60 bpm, so tick 1440 is 2.0 s (not 1.5 s).
    file = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack([
        mido.MetaMessage("set_tempo", tempo=500_000, time=0),
        mido.Message("note_on", note=60, velocity=100, time=0),
        mido.Message("note_off", note=60, velocity=0, time=480),
        mido.MetaMessage("set_tempo", tempo=1_000_000, time=480),
        mido.Message("note_on", note=62, velocity=100, time=480),
        mido.Message("note_off", note=62, velocity=0, time=480),
    ])
    file.tracks.append(track)
    file.save(tmp_path / "t.mid")
    notes = read_notes(tmp_path / "t.mid")
    assert [(n.pitch, round(n.start, 6), round(n.end, 6)) for n in notes] == [(60, 0.0, 0.5), (62, 2.0, 3.0)]


def test_zero_length_notes_are_dropped(tmp_path):
    file = mido.MidiFile(ticks_per_beat=480)
    file.tracks.append(mido.MidiTrack([
        mido.Message("note_on", note=50, velocity=100, time=0),
        mido.Message("note_off", note=50, velocity=0, time=0),
        mido.Message("note_on", note=60, velocity=100, time=0),
        mido.Message("note_off", note=60, velocity=0, time=480),
    ]))
    file.save(tmp_path / "z.mid")
    assert [n.pitch for n in read_notes(tmp_path / "z.mid")] == [60]


def test_missing_file(tmp_path):
    with pytest.raises(MidiError, match="nope.mid: MIDI file not found"):
        read_notes(tmp_path / "nope.mid")


def test_corrupt_file(tmp_path):
    good = write_midi(tmp_path / "good.mid", [(0, False, [(60, 100, 0.0, 1.0)])]).read_bytes()
    for name, data in (("text.mid", b"hello, not midi"), ("cut.mid", good[:20])):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(MidiError, match=f"{name}: not a readable MIDI file"):
            read_notes(tmp_path / name)


def test_only_drums_means_nothing_to_play(tmp_path):
    path = write_midi(tmp_path / "drums.mid", [(0, True, [(36, 127, 0.0, 0.1), (38, 127, 0.5, 0.6)])])
    with pytest.raises(MidiError, match="drums.mid: no playable non-drum notes"):
        read_notes(path)


def notes_at(*pitches):
    return [Note(float(i), i + 0.5, p, 100, 0, 0) for i, p in enumerate(pitches)]


def test_transpose_moves_by_the_fewest_octaves():
    fitted, report = fit_to_vocab(notes_at(10, 100, 60, 24, 84), PitchVocab(24, 84))
    assert [n.pitch for n in fitted] == [34, 76, 60, 24, 84]
    assert (report.kept, report.transposed, report.skipped) == (3, 2, 0)


def test_skip_drops_out_of_range_notes():
    fitted, report = fit_to_vocab(notes_at(10, 100, 60), PitchVocab(24, 84), mode="skip")
    assert [n.pitch for n in fitted] == [60]
    assert (report.kept, report.transposed, report.skipped) == (1, 0, 2)


def test_transpose_skips_when_no_octave_fits():
    fitted, report = fit_to_vocab(notes_at(67, 61), PitchVocab(60, 65))
    assert [n.pitch for n in fitted] == [61]
    assert report.skipped == 1


def test_untrained_pitches_move_to_the_nearest_trained_octave():
    fitted, report = fit_to_vocab(notes_at(60, 36, 50, 90, 49), PitchVocab(24, 84), trained=[48, 72, 50, 37])
    assert [n.pitch for n in fitted] == [48, 48, 50, 37]  # 60 is as far from 48 as from 72: the lower wins
    assert (report.kept, report.transposed, report.skipped) == (1, 3, 1)  # no F# was trained for 90


def test_unknown_fit_mode():
    with pytest.raises(MidiError, match="out-of-range mode"):
        fit_to_vocab(notes_at(60), PitchVocab(), mode="clamp")

"""MIDI -> wav rendering from a tiny random checkpoint shaped exactly like a trained one."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import mido
import numpy as np
import pytest
import soundfile as sf
import torch
from omegaconf import OmegaConf

from gansynth.commands.cli import compose_config
from gansynth.commands.generate import run_generate as generate_command
from gansynth.core.midi import MidiError, Note, read_notes
from gansynth.core.networks import Generator
from gansynth.core.synth import CheckpointError, RenderError
from gansynth.inference.checkpoint import load_checkpoint
from gansynth.inference.render import (NoteShape, interpolate_anchors, random_anchors, render_interpolation,
                                       render_midi, render_notes)
from gansynth.core.spectral import SpecgramCodec, mel_weight_matrix

ROOT = Path(__file__).resolve().parents[1]
SR = 16000
CLIP = 4000  # 0.25 s at 16 kHz
LATENT = 32
TINY_NETWORK = dict(num_blocks=5, start_shape=[2, 16], latent_dim=LATENT, fmap_base=256, fmap_decay=1.0,
                    fmap_max=64, attention_areas=[])


def run_generate(settings: dict):
    """The generate command on conf/generate.yaml with settings over it (a key the file lacks is refused)."""
    return generate_command(OmegaConf.merge(compose_config("generate"), settings))


def make_checkpoint(path: Path, channel_mode: str = "stereo", seed: int = 0, trained: range | None = None,
                    instruments: tuple[str, ...] = ()) -> Path:
    """A Lightning-style checkpoint of a tiny random generator, with the keys a trained one has; its
    training pitch histogram counts every MIDI pitch 24..84, or only those in trained. With ``instruments``,
    its latent categories play them, as after ``model.instrument_projection``."""
    codec = SpecgramCodec(SR, CLIP / SR, channel_mode, n_fft=512, hop_length=128, n_frames=32)
    torch.manual_seed(seed)
    network = dict(TINY_NETWORK, latent_categories=len(instruments))
    generator = Generator(image_shape=codec.image_shape, num_pitches=61, **network)
    weights = generator.state_dict()
    state = {f"ema_generator.{k}": v for k, v in weights.items()}
    state.update({f"generator.{k}": v + 1.0 for k, v in weights.items()})  # must be ignored
    torch.save({"hyper_parameters": {"codec": codec.to_dict(), "network": network,
                                     "pitch": {"low": 24, "high": 84, "counts": pitch_counts(trained)},
                                     "instrument_projection": bool(instruments),
                                     "instrument_names": list(instruments)},
                "state_dict": state, "epoch": 0}, path)
    return path


def pitch_counts(trained: range | None) -> list[int]:
    """Files per MIDI pitch 24..84 in a made-up training set."""
    return [pitch - 23 if trained is None or pitch in trained else 0 for pitch in range(24, 85)]


# The test piece. 1000 ticks per beat: 120 bpm (0.5 ms a tick) up to tick 2000 = 1.0 s, then 60 bpm
# (1 ms a tick). (track, pitch, velocity, start s, end s):
PIECE = [
    (0, 60, 127, 0.0, 0.2),
    (0, 64, 100, 0.1, 0.3),     # overlaps the first note
    (0, 60, 90, 0.15, 0.35),    # same pitch while the first still sounds
    (1, 72, 1, 0.6, 0.8),       # quietest velocity
    (1, 72, 127, 1.2, 1.4),     # loudest velocity, same pitch and length, after the tempo change
    (1, 48, 100, 1.5, 1.505),   # a 5 ms note
    (1, 55, 80, 1.79, 1.99),    # the last note ends 10 ms before the end of the file (2.0 s)
]
SILENT_GAPS = [(0.35, 0.6), (0.8, 1.2), (1.4, 1.5), (1.505, 1.79)]


def seconds_to_tick(t: float) -> int:
    return round(t * 2000) if t <= 1.0 else round(2000 + (t - 1.0) * 1000)


def write_piece(path: Path, notes=PIECE, drums: bool = False) -> Path:
    file = mido.MidiFile(type=1, ticks_per_beat=1000)
    tempo = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500_000, time=0),
                            mido.MetaMessage("set_tempo", tempo=1_000_000, time=2000),
                            mido.MetaMessage("end_of_track", time=1000)])
    file.tracks.append(tempo)
    for track_index, program in enumerate((0, 40)):
        channel = 9 if drums else track_index
        events = [(seconds_to_tick(s), 1, mido.Message("note_on", channel=channel, note=p, velocity=v))
                  for t, p, v, s, _ in notes if t == track_index]
        events += [(seconds_to_tick(e), 0, mido.Message("note_off", channel=channel, note=p))
                   for t, p, _, _, e in notes if t == track_index]
        track, now = mido.MidiTrack([mido.Message("program_change", channel=channel, program=program)]), 0
        for tick, _, message in sorted(events, key=lambda item: item[:2]):
            track.append(message.copy(time=tick - now))
            now = tick
        file.tracks.append(track)
    file.save(path)
    return path


@pytest.fixture(scope="module")
def stereo_ckpt(tmp_path_factory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.ckpt")


@pytest.fixture(scope="module")
def rendered(stereo_ckpt, tmp_path_factory):
    """The test piece rendered once through run_generate: (audio [ch, n], sample rate, notes read)."""
    folder = tmp_path_factory.mktemp("render")
    midi = write_piece(folder / "piece.mid")
    run_generate(dict(ckpt_path=str(stereo_ckpt), midi_file=str(midi), output_dir=str(folder), subtype="FLOAT"))
    audio, sr = sf.read(folder / "piece.wav", dtype="float32", always_2d=True)
    return audio.T, sr, read_notes(midi)


def generate_to(folder: Path, ckpt: Path, midi: Path, **settings) -> np.ndarray:
    run_generate(dict(ckpt_path=str(ckpt), midi_file=str(midi), output_dir=str(folder), subtype="FLOAT",
                      **settings))
    return sf.read(folder / f"{midi.stem}.wav", dtype="float32", always_2d=True)[0].T


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x)))) if x.size else 0.0


# ---------------------------------------------------------------------------------------- the piece


def test_piece_is_read_with_the_tempo_change(rendered):
    _, _, notes = rendered
    assert [n.start for n in notes] == pytest.approx([0.0, 0.1, 0.15, 0.6, 1.2, 1.5, 1.79])
    assert sorted({n.instrument_index for n in notes}) == [0, 1]


def test_output_ends_at_the_last_sounding_sample(rendered):
    audio, sr, notes = rendered
    expected = max(round(n.start * SR) + min(round(n.duration * SR), CLIP) for n in notes)
    assert sr == SR and audio.shape == (2, expected) and expected == 31840  # 1.99 s, not 2 or 3 s


def test_peak_is_normalised_to_minus_one_dbfs(rendered):
    audio, _, _ = rendered
    assert np.abs(audio).max() == pytest.approx(10 ** (-1 / 20), rel=1e-5)


def test_energy_starts_at_each_separated_onset(rendered):
    audio, _, notes = rendered
    for note in notes[3:]:
        onset = round(note.start * SR)
        window = min(160, round(note.duration * SR))  # 10 ms, or the whole 5 ms note
        assert rms(audio[:, onset - 160:onset]) == 0.0
        assert rms(audio[:, onset:onset + window]) > 1e-4


def test_silence_between_separated_notes(rendered):
    audio, _, _ = rendered
    for start, end in SILENT_GAPS:
        assert np.abs(audio[:, round(start * SR):round(end * SR)]).max() == 0.0


def test_five_ms_note_sounds_for_exactly_its_samples(rendered):
    audio, _, _ = rendered
    loud = np.flatnonzero(np.abs(audio[:, 23000:28000]).max(axis=0)) + 23000
    assert loud.min() >= 24000 and loud.max() < 24080  # 1.5 s + 80 samples, attack/release end at 0


def test_velocity_1_is_127_times_quieter_than_127(rendered):
    audio, _, _ = rendered
    quiet = audio[:, round(0.6 * SR):round(0.8 * SR)]
    loud = audio[:, round(1.2 * SR):round(1.4 * SR)]
    assert rms(loud) / rms(quiet) == pytest.approx(127.0, rel=1e-3)


# ---------------------------------------------------------------------------------------- latents


def test_same_seed_bit_identical_and_other_seed_differs(stereo_ckpt, tmp_path):
    midi = write_piece(tmp_path / "p.mid", PIECE[:3])
    first = generate_to(tmp_path / "a", stereo_ckpt, midi, seed=7)
    again = generate_to(tmp_path / "b", stereo_ckpt, midi, seed=7)
    other = generate_to(tmp_path / "c", stereo_ckpt, midi, seed=8)
    assert np.array_equal(first, again)
    assert np.abs(first - other).max() > 0.01


def test_saved_latents_reproduce_the_render(stereo_ckpt, tmp_path):
    midi = write_piece(tmp_path / "p.mid", PIECE[:3])
    first = generate_to(tmp_path / "a", stereo_ckpt, midi, seed=3)
    saved = np.load(tmp_path / "a" / "p.latents.npy")
    replay = generate_to(tmp_path / "b", stereo_ckpt, midi, instrument="file",
                         latents_file=str(tmp_path / "a" / "p.latents.npy"))
    assert saved.shape == (1, LATENT)
    assert np.array_equal(first, replay)


def test_play_as_gives_every_latent_the_named_instruments_category(tmp_path):
    """The seed's anchors with one swap each (the same numbers), every one in that instrument's category, so
    the slerp between them stays there; two instruments, two renders."""
    ckpt = make_checkpoint(tmp_path / "c.ckpt", instruments=("oboe_068", "viola_041"))
    midi = write_piece(tmp_path / "p.mid")
    settings = dict(instrument="slerp", secs_per_instrument=0.5, seed=1)
    plain = generate_to(tmp_path / "plain", ckpt, midi, **settings)
    drawn = np.load(tmp_path / "plain" / "p.latents.npy")
    audio = {}
    for index, name in enumerate(("oboe_068", "viola_041")):
        audio[name] = generate_to(tmp_path / name, ckpt, midi, play_as=name, **settings)
        anchors = np.load(tmp_path / name / "p.latents.npy")
        assert (anchors[:, :2].argmax(1) == index).all() and np.array_equal(anchors[:, 2:], drawn[:, 2:])
        assert np.array_equal(np.sort(anchors[:, :2], 1), np.sort(drawn[:, :2], 1))
    assert 0 < (drawn[:, :2].argmax(1) == 0).sum() < len(drawn)  # the seed alone mixes both (the control)
    assert np.abs(audio["oboe_068"] - audio["viola_041"]).max() > 1e-3 and plain.shape == audio["oboe_068"].shape


@pytest.mark.parametrize("instruments, message", [
    (("oboe_068", "viola_041"), "play_as='tuba' is not one of the checkpoint's instruments: oboe_068, viola_041"),
    ((), "play_as='tuba' needs a checkpoint trained with model.instrument_projection=true"),
])
def test_play_as_names_an_instrument_of_the_checkpoint(tmp_path, instruments, message):
    ckpt = make_checkpoint(tmp_path / "c.ckpt", instruments=instruments)
    with pytest.raises(RenderError, match=re.escape(message)):
        run_generate(dict(ckpt_path=str(ckpt), midi_file=str(write_piece(tmp_path / "p.mid")), play_as="tuba",
                          output_dir=str(tmp_path / "out")))
    assert_nothing_written(tmp_path / "out")


def test_slerp_anchors_cover_short_pieces(stereo_ckpt, tmp_path):
    midi = write_piece(tmp_path / "p.mid")
    generate_to(tmp_path / "long", stereo_ckpt, midi, instrument="slerp", secs_per_instrument=6.0)
    generate_to(tmp_path / "short", stereo_ckpt, midi, instrument="slerp", secs_per_instrument=0.5)
    assert np.load(tmp_path / "long" / "p.latents.npy").shape == (2, LATENT)  # 1.99 s piece, 6 s spacing
    assert np.load(tmp_path / "short" / "p.latents.npy").shape == (5, LATENT)  # round(1.99 / 0.5) + 1


def test_interpolated_latents_hit_the_anchors_and_keep_their_norm():
    anchors = random_anchors(3, 256, seed=0)
    path = interpolate_anchors(anchors, np.array([0.0, 0.25, 0.5, 1.0]))
    np.testing.assert_allclose(path[[0, 2, 3]], anchors, atol=1e-5)
    # Between two anchors of similar norm slerp stays near that norm (a straight line would dip ~30 %).
    assert np.linalg.norm(path[1]) == pytest.approx(np.linalg.norm(anchors[:2], axis=1).mean(), rel=0.05)


# ---------------------------------------------------------------------------------------- the mix


def test_each_pitch_latent_pair_is_generated_once(stereo_ckpt):
    synth = load_checkpoint(stereo_ckpt, batch_size=2)
    calls = []
    original = synth.generate
    synth.generate = lambda pitches, z: calls.append(list(pitches)) or original(pitches, z)
    notes = [Note(0.1 * i, 0.1 * i + 0.1, p, 100, 0, 0) for i, p in enumerate([60, 62, 60, 64, 62, 60, 67])]
    latents = interpolate_anchors(random_anchors(1, LATENT, 0), np.zeros(len(notes)))
    render_midi(synth, notes, latents)
    assert calls == [[60, 62], [64, 67]]  # 4 distinct pitches, batches of 2


def test_batch_size_does_not_change_the_audio(stereo_ckpt):
    notes = [Note(0.05 * i, 0.05 * i + 0.2, 40 + 3 * i, 100, 0, 0) for i in range(5)]
    latents = interpolate_anchors(random_anchors(2, LATENT, 0), np.linspace(0, 1, 5))
    one = render_midi(load_checkpoint(stereo_ckpt, batch_size=1), notes, latents)
    five = render_midi(load_checkpoint(stereo_ckpt, batch_size=5), notes, latents)
    np.testing.assert_allclose(one, five, atol=1e-4)  # batched convs round differently; phase sums amplify it


def test_release_tail_extends_the_note_up_to_the_clip(stereo_ckpt):
    synth = load_checkpoint(stereo_ckpt)
    latents = random_anchors(1, LATENT, 0)
    short = [Note(0.5, 0.55, 60, 100, 0, 0)]
    assert render_midi(synth, short, latents, NoteShape(release_tail=0.1)).shape == (2, 8000 + 2400)
    assert render_midi(synth, short, latents, NoteShape(release_tail=5.0)).shape == (2, 8000 + CLIP)


def test_quadratic_velocity_curve(stereo_ckpt):
    synth = load_checkpoint(stereo_ckpt)
    notes = [Note(0.0, 0.2, 60, 127, 0, 0), Note(0.3, 0.5, 60, 64, 0, 0)]
    latents = np.repeat(random_anchors(1, LATENT, 0), 2, axis=0)
    audio = render_midi(synth, notes, latents, NoteShape(velocity_curve="quadratic"), peak_db=None)
    assert rms(audio[:, :3200]) / rms(audio[:, 4800:8000]) == pytest.approx((127 / 64) ** 2, rel=1e-4)


def test_mono_checkpoint_renders_one_channel(tmp_path):
    synth = load_checkpoint(make_checkpoint(tmp_path / "mono.ckpt", "mono"))
    audio = render_midi(synth, [Note(0.0, 0.1, 60, 100, 0, 0)], random_anchors(1, LATENT, 0))
    assert audio.shape == (1, 1600)


def test_the_codec_and_its_mel_matrix_come_from_the_checkpoint(stereo_ckpt, tmp_path):
    blob = torch.load(stereo_ckpt, weights_only=True)
    del blob["hyper_parameters"]["codec"]["mel_matrix"]  # as saved before the setting existed
    torch.save(blob, tmp_path / "old.ckpt")
    released, old = load_checkpoint(stereo_ckpt), load_checkpoint(tmp_path / "old.ckpt")
    for synth, mel_matrix in ((released, "released"), (old, "independent")):
        expected = torch.from_numpy(mel_weight_matrix(256, SR, mel_matrix)).float()
        assert synth.codec.mel_matrix == mel_matrix and torch.equal(synth.codec.linear_to_mel, expected)
    z = torch.from_numpy(random_anchors(1, LATENT, 0))
    assert not torch.allclose(released.generate([60], z), old.generate([60], z), atol=1e-4)


def test_bf16_autocast_stays_close_to_fp32(stereo_ckpt):
    notes = [Note(0.0, 0.25, 60, 100, 0, 0)]
    latents = random_anchors(1, LATENT, 0)
    full = render_midi(load_checkpoint(stereo_ckpt), notes, latents)
    half = render_midi(load_checkpoint(stereo_ckpt, precision="bf16"), notes, latents)
    correlation = np.corrcoef(full.ravel(), half.ravel())[0, 1]
    assert half.shape == full.shape and correlation > 0.9


def test_single_notes_one_array_each(stereo_ckpt):
    synth = load_checkpoint(stereo_ckpt)
    notes = render_notes(synth, [48, 60, 72], np.repeat(random_anchors(1, LATENT, 0), 3, axis=0), separate=True)
    assert [a.shape for a in notes] == [(2, CLIP)] * 3


def test_interpolation_is_one_sequence(stereo_ckpt):
    synth = load_checkpoint(stereo_ckpt)
    audio = render_interpolation(synth, [48, 60, 72], random_anchors(2, LATENT, 0), gap_seconds=0.25)
    assert audio.shape == (2, 2 * (CLIP + 4000) + CLIP)  # notes every 0.5 s, the last one 0.25 s long


def test_notes_mode_writes_one_file_per_pitch(stereo_ckpt, tmp_path):
    report = run_generate(dict(ckpt_path=str(stereo_ckpt), mode="notes", pitches=[12, 60, 100],
                               separate_files=True, output_dir=str(tmp_path)))
    assert sorted(p.name for p in tmp_path.glob("*.wav")) == ["notes_00_24.wav", "notes_01_60.wav", "notes_02_76.wav"]
    assert (report.fit.transposed, report.fit.skipped) == (2, 0)
    assert sf.info(tmp_path / "notes_01_60.wav").frames == CLIP


# ---------------------------------------------------------------------------------------- untrained pitches


@pytest.fixture(scope="module")
def one_octave_ckpt(tmp_path_factory) -> Path:
    """Trained on MIDI 48..59 only: every pitch class once."""
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "octave.ckpt", trained=range(48, 60))


@pytest.mark.parametrize("out_of_range, names, fit", [
    # 30 is below the vocabulary; 64, 84 and 60 are inside it but were never trained; 50 was
    ("transpose", ["notes_00_54", "notes_01_50", "notes_02_52", "notes_03_48", "notes_04_48"], (1, 4, 0)),
    ("skip", ["notes_00_50"], (1, 0, 4)),
])
def test_untrained_pitches_move_to_the_nearest_trained_octave(one_octave_ckpt, tmp_path, capsys,
                                                              out_of_range, names, fit):
    report = run_generate(dict(ckpt_path=str(one_octave_ckpt), mode="notes", pitches=[30, 50, 64, 84, 60],
                               separate_files=True, out_of_range=out_of_range, output_dir=str(tmp_path)))
    assert sorted(p.stem for p in tmp_path.glob("*.wav")) == names
    assert (report.fit.kept, report.fit.transposed, report.fit.skipped) == fit
    assert f"({fit[1]} transposed, {fit[2]} skipped to fit the 12 trained pitches in MIDI 48..59)" in \
        capsys.readouterr().out


def test_a_pitch_class_never_trained_is_skipped(tmp_path):
    ckpt = make_checkpoint(tmp_path / "few.ckpt", trained=range(48, 53))  # C to E
    midi = write_piece(tmp_path / "p.mid", [(0, 55, 100, 0.0, 0.2), (0, 67, 100, 0.2, 0.4), (0, 60, 100, 0.4, 0.6)])
    report = run_generate(dict(ckpt_path=str(ckpt), midi_file=str(midi), output_dir=str(tmp_path / "out")))
    assert (report.fit.kept, report.fit.transposed, report.fit.skipped) == (0, 1, 2)  # G twice; C 60 -> 48
    with pytest.raises(MidiError, match=r"no notes the model can play with out_of_range=skip "
                                        r"\(it knows 5 trained pitches in MIDI 48..52\)"):
        run_generate(dict(ckpt_path=str(ckpt), midi_file=str(midi), out_of_range="skip",
                          output_dir=str(tmp_path / "none")))
    assert_nothing_written(tmp_path / "none")


# ---------------------------------------------------------------------------------------- bad input


def assert_nothing_written(folder: Path) -> None:
    assert not folder.exists() or list(folder.iterdir()) == []


def test_missing_midi(stereo_ckpt, tmp_path):
    with pytest.raises(MidiError, match="missing.mid: MIDI file not found"):
        run_generate(dict(ckpt_path=str(stereo_ckpt), midi_file=str(tmp_path / "missing.mid"),
                          output_dir=str(tmp_path / "out")))
    assert_nothing_written(tmp_path / "out")


def test_corrupt_midi(stereo_ckpt, tmp_path):
    (tmp_path / "bad.mid").write_bytes(b"MThd\x00\x00\x00\x06garbage")
    with pytest.raises(MidiError, match="bad.mid: not a readable MIDI file"):
        run_generate(dict(ckpt_path=str(stereo_ckpt), midi_file=str(tmp_path / "bad.mid"),
                          output_dir=str(tmp_path / "out")))
    assert_nothing_written(tmp_path / "out")


def test_drums_only_midi(stereo_ckpt, tmp_path):
    midi = write_piece(tmp_path / "drums.mid", drums=True)
    with pytest.raises(MidiError, match="drums.mid: no playable non-drum notes"):
        run_generate(dict(ckpt_path=str(stereo_ckpt), midi_file=str(midi), output_dir=str(tmp_path / "out")))
    assert_nothing_written(tmp_path / "out")


@pytest.mark.parametrize("content, message", [
    (None, "checkpoint file not found"),
    (b"definitely not a torch file", "not a readable torch checkpoint"),
    ({"state_dict": {}}, "not a GANSynth checkpoint"),
    ({"hyper_parameters": {"codec": {}}, "state_dict": {"generator.w": torch.zeros(1)}}, "not a GANSynth checkpoint"),
])
def test_bad_checkpoint(tmp_path, content, message):
    ckpt = tmp_path / "model.ckpt"
    if isinstance(content, bytes):
        ckpt.write_bytes(content)
    elif content is not None:
        torch.save(content, ckpt)
    midi = write_piece(tmp_path / "p.mid")
    with pytest.raises(CheckpointError, match=f"model.ckpt: {message}"):
        run_generate(dict(ckpt_path=str(ckpt), midi_file=str(midi), output_dir=str(tmp_path / "out")))
    assert_nothing_written(tmp_path / "out")


def test_checkpoint_with_a_wrong_pitch_histogram(stereo_ckpt, tmp_path):
    blob = torch.load(stereo_ckpt, weights_only=True)
    blob["hyper_parameters"]["pitch"]["counts"] = [0] * 61
    torch.save(blob, tmp_path / "empty.ckpt")
    with pytest.raises(CheckpointError, match=r"empty.ckpt: incompatible checkpoint \(PitchError: pitch.counts "
                                              r"must have 61 entries with a positive sum, got 61 summing to 0\)"):
        load_checkpoint(tmp_path / "empty.ckpt")


def test_incompatible_checkpoint(stereo_ckpt, tmp_path):
    blob = torch.load(stereo_ckpt, weights_only=True)
    blob["hyper_parameters"]["network"] = dict(TINY_NETWORK, fmap_max=32)  # weights no longer fit
    torch.save(blob, tmp_path / "changed.ckpt")
    with pytest.raises(CheckpointError, match="changed.ckpt: incompatible checkpoint"):
        load_checkpoint(tmp_path / "changed.ckpt")


@pytest.mark.parametrize("setting, message", [
    (dict(attack_percent=150), "attack_percent=150"),
    (dict(mode="loop"), "mode='loop'"),
    (dict(velocity_curve="cubic"), "velocity_curve 'cubic'"),
    (dict(sustain="forever"), "sustain 'forever'"),
    (dict(peak_db=3.0), "peak_db"),
    (dict(instrument="file"), "latents_file is required"),
    (dict(compile="yes"), "compile must be true or false, got 'yes'"),
])
def test_bad_settings_fail_before_loading(tmp_path, setting, message):
    with pytest.raises(ValueError, match=message):
        run_generate(dict(ckpt_path=str(tmp_path / "never-read.ckpt"), midi_file="x.mid",
                          output_dir=str(tmp_path / "out"), **setting))
    assert_nothing_written(tmp_path / "out")


def test_bad_latents_file(stereo_ckpt, tmp_path):
    np.save(tmp_path / "z.npy", np.zeros((2, LATENT + 1), np.float32))
    with pytest.raises(RenderError, match=r"z.npy: latents must be shaped \[32\] or \[K, 32\]"):
        run_generate(dict(ckpt_path=str(stereo_ckpt), midi_file=str(write_piece(tmp_path / "p.mid")),
                          instrument="file", latents_file=str(tmp_path / "z.npy"),
                          output_dir=str(tmp_path / "out")))
    assert_nothing_written(tmp_path / "out")


# ---------------------------------------------------------------------------------------- entry point


def test_hydra_entry_point_end_to_end(stereo_ckpt, tmp_path):
    midi = write_piece(tmp_path / "song.mid")
    result = subprocess.run(
        [sys.executable, str(ROOT / "generate.py"), f"ckpt_path={stereo_ckpt}", f"midi_file={midi}",
         f"output_dir={tmp_path / 'out'}", "release_percent=10"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    info = sf.info(tmp_path / "out" / "song.wav")
    assert (info.samplerate, info.channels, info.frames) == (SR, 2, 31840)
    assert "rendered 7 notes" in result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "song.mid"]  # no Hydra litter

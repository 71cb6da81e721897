"""A MIDI file's mix streamed in blocks (and written through a scratch file) equals the mix made whole
in one buffer; the stream hands blocks out before the piece has been generated."""

from __future__ import annotations

import numpy as np
import pretty_midi
import soundfile as sf
import torch
from omegaconf import OmegaConf

import gansynth.core.audio as audio
import gansynth.inference.render as render
from gansynth.commands.cli import compose_config
from gansynth.commands.generate import run_generate
from gansynth.core.audio import peak_normalize, write_audio, write_audio_stream
from gansynth.core.midi import Note, read_notes
from gansynth.core.networks import Generator
from gansynth.core.pitch import PitchVocab
from gansynth.core.spectral import SpecgramCodec
from gansynth.core.synth import Synth
from gansynth.inference.render import NoteShape, note_gain, prepare_clip, random_anchors, render_midi, stream_mix

LATENT = 32
NETWORK = dict(num_blocks=5, start_shape=[2, 16], latent_dim=LATENT, fmap_base=256, fmap_max=64,
               attention_areas=[])
CODEC = dict(sample_rate=16000, audio_length=0.25, channel_mode="stereo", n_fft=512, hop_length=128,
             n_frames=32)
# (pitch, start s, end s): overlaps, a repeated pitch long after its first use, a chord, a late note
PIECE = [(60, 0.0, 0.2), (64, 0.1, 0.3), (60, 0.15, 0.35), (48, 0.5, 0.55), (52, 0.5, 0.7), (55, 0.5, 0.6),
         (64, 0.9, 1.3), (60, 1.6, 1.75), (72, 2.0, 2.1)]


def make_synth(batch_size: int) -> Synth:
    codec = SpecgramCodec(**CODEC)
    torch.manual_seed(0)
    generator = Generator.for_codec(codec, PitchVocab(), **NETWORK).eval()
    return Synth(generator, codec, PitchVocab(), [1] * 61, 5, 1.0, LATENT, torch.device("cpu"), batch_size)


def whole_mix(synth: Synth, notes: list[Note], latents: np.ndarray, shape: NoteShape) -> np.ndarray:
    """The non-streamed reference: every note generated alone and added into one buffer of the piece."""
    sr = synth.sample_rate
    starts = [round(n.start * sr) for n in notes]
    lengths = [render.sounding_samples(n, shape, sr, synth.n_samples) for n in notes]
    mix = np.zeros((synth.channels, max(s + n for s, n in zip(starts, lengths))), dtype=np.float32)
    for note, latent, start, n in zip(notes, latents, starts, lengths):
        clip = synth.generate([note.pitch], torch.from_numpy(latent[None])).numpy()[0]
        mix[:, start:start + n] += prepare_clip(clip, n, sr, shape)[:, :n] * note_gain(n, note.velocity, shape)
    return mix


def write_midi(path) -> None:
    midi = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(program=0)
    piano.notes += [pretty_midi.Note(100, pitch, start, end) for pitch, start, end in PIECE]
    midi.instruments.append(piano)
    midi.write(str(path))


def test_streamed_render_equals_the_whole_mix(tmp_path, monkeypatch):
    monkeypatch.setattr(render, "MIX_BLOCK_SECONDS", 0.05)  # many blocks in a 2 s piece
    monkeypatch.setattr(audio, "STREAM_FRAMES", 1000)  # many chunks in the second pass
    write_midi(tmp_path / "piece.mid")
    synth, notes = make_synth(batch_size=1), read_notes(tmp_path / "piece.mid")  # batched convs round differently: as the reference
    latents = np.repeat(random_anchors(1, LATENT, 0), len(notes), axis=0)  # the command's default timbre
    expected = peak_normalize(whole_mix(synth, notes, latents, NoteShape()), -1.0)

    blocks = list(stream_mix(synth, notes, latents))
    assert len(blocks) > 5
    streamed = peak_normalize(np.concatenate(blocks, axis=1), -1.0)
    np.testing.assert_allclose(streamed, expected, atol=1e-6)  # mixing order only: float32 rounding
    np.testing.assert_array_equal(render_midi(synth, notes, latents), streamed)

    write_audio_stream(tmp_path / "stream.wav", iter(blocks), synth.sample_rate, "PCM_16", -1.0)
    write_audio(tmp_path / "whole.wav", streamed, synth.sample_rate, "PCM_16")
    assert (tmp_path / "stream.wav").read_bytes() == (tmp_path / "whole.wav").read_bytes()


def test_generate_command_streams_the_same_mix(tmp_path, monkeypatch):
    monkeypatch.setattr(render, "MIX_BLOCK_SECONDS", 0.05)
    synth = make_synth(batch_size=1)
    torch.save({"hyper_parameters": {"codec": synth.codec.to_dict(), "network": NETWORK,
                                     "pitch": {"low": 24, "high": 84, "counts": [1] * 61}},
                "state_dict": {f"ema_generator.{k}": v for k, v in synth.generator.state_dict().items()}},
               tmp_path / "tiny.ckpt")
    write_midi(tmp_path / "piece.mid")
    cfg = OmegaConf.merge(compose_config("generate"), dict(
        ckpt_path=str(tmp_path / "tiny.ckpt"), midi_file=str(tmp_path / "piece.mid"), output_dir=str(tmp_path),
        subtype="FLOAT", batch_size=1))
    report = run_generate(cfg)
    written, _ = sf.read(tmp_path / "piece.wav", dtype="float32", always_2d=True)
    notes = read_notes(tmp_path / "piece.mid")
    latents = np.repeat(random_anchors(1, LATENT, 0), len(notes), axis=0)
    expected = peak_normalize(whole_mix(synth, notes, latents, NoteShape()), -1.0)
    np.testing.assert_allclose(written.T, expected, atol=1e-6)
    assert report.seconds == expected.shape[1] / synth.sample_rate


def test_blocks_come_out_before_the_piece_is_generated():
    synth = make_synth(batch_size=2)
    calls = []
    original = synth.generate
    synth.generate = lambda pitches, z: calls.append(len(pitches)) or original(pitches, z)
    notes = [Note(5.0 * i, 5.0 * i + 0.2, 40 + i, 100, 0, 0) for i in range(8)]  # one note every 5 s
    latents = random_anchors(len(notes), LATENT, 0)  # every note its own timbre: no clip is reused
    stream = stream_mix(synth, notes, latents)
    first = next(stream)
    assert calls == [2] and first.shape[1] == 5 * synth.sample_rate  # 1 batch of 4 generated, 5 s out
    assert sum(block.shape[1] for block in stream) + first.shape[1] == round(35.2 * synth.sample_rate)

"""Notes longer than the clip: looped steady parts whose joins are no larger a step than the note's
own motion, on real 4 s notes (a synthetic tone and a SoundFont violin) and through the 0.25 s renderer."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from gansynth.commands.make_dataset import make_dataset
from gansynth.core.midi import Note
from gansynth.core.synth import RenderError
from gansynth.inference.checkpoint import load_checkpoint
from gansynth.inference.render import NoteShape, random_anchors, render_midi
from gansynth.inference.sustain import Loop, SustainError, find_loop, loop_to, steady_span, sustained
from test_render import LATENT, SR, make_checkpoint, run_generate, write_piece

TEN_SECONDS = 10 * SR


def join_steps(audio: np.ndarray, loop: Loop) -> float:
    """The largest sample-to-sample step in and around every crossfade of a looped note."""
    ends = range(loop.end, audio.shape[1], loop.period)
    return max(float(np.abs(np.diff(audio[:, j - loop.crossfade - 2:j + 2])).max()) for j in ends)


def own_steps(clip: np.ndarray, sample_rate: int) -> float:
    """The note's own largest sample-to-sample step over its steady part."""
    first, last = steady_span(clip, sample_rate)
    return float(np.abs(np.diff(clip[:, first:last])).max())


@pytest.fixture(scope="module", params=[(True, 0), (False, 40)], ids=["synthetic", "violin"])
def four_second_note(request, tmp_path_factory) -> np.ndarray:
    """A 4 s mono note held for 3.5 s (MIDI 48), written as a wav and read back: [1, 64000]."""
    synthetic, program = request.param
    path, = make_dataset(tmp_path_factory.mktemp("long"), synthetic=synthetic, programs=(program,), pitch_low=48,
                         pitch_high=48, velocities=(100,), note_length=3.5, clip_length=4.0, sample_rate=SR,
                         channels=1, progress=False)
    audio, rate = sf.read(path, dtype="float32", always_2d=True)
    assert rate == SR
    return audio.T


def test_a_4_s_note_loops_to_10_s_without_a_step_larger_than_its_own(four_second_note):
    loop = find_loop(four_second_note, SR)
    long = loop_to(four_second_note, TEN_SECONDS, loop)
    first, last = steady_span(four_second_note, SR)
    assert long.shape == (1, TEN_SECONDS)
    assert first <= loop.start - loop.crossfade and loop.end <= last  # inside the steady part
    assert np.array_equal(long[:, :loop.end - loop.crossfade], four_second_note[:, :loop.end - loop.crossfade])
    assert join_steps(long, loop) <= own_steps(four_second_note, SR)
    # the level holds: every second of the extension is within 3 dB of the steady part's RMS
    steady = np.sqrt(np.mean(np.square(four_second_note[:, first:last])))
    seconds = np.sqrt(np.mean(np.square(long[:, 4 * SR:].reshape(1, 6, SR)), axis=(0, 2)))
    assert np.all(np.abs(20 * np.log10(seconds / steady)) < 3.0)


def test_the_join_measure_catches_a_click(four_second_note):
    """A splice from the steady part's highest sample back to its lowest, without a crossfade, clicks:
    the measure above can fail."""
    first, last = steady_span(four_second_note, SR)
    middle = (first + last) // 2
    end = middle + int(np.argmax(four_second_note[0, middle:last])) + 1
    start = first + int(np.argmin(four_second_note[0, first:middle])) + 1
    clicking = Loop(start, end, 1, 1.0)
    assert join_steps(loop_to(four_second_note, TEN_SECONDS, clicking), clicking) > \
        1.5 * own_steps(four_second_note, SR)


def test_a_note_within_the_clip_is_only_cut():
    clip = np.arange(20, dtype=np.float32).reshape(1, 20)
    assert np.array_equal(sustained(clip, 12, SR), clip[:, :12])


def test_a_clip_too_short_to_loop_is_refused():
    with pytest.raises(SustainError, match="too short to loop"):
        sustained(np.ones((1, 400), np.float32), 1000, SR)


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return load_checkpoint(make_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.ckpt"))


def test_a_10_s_midi_note_on_a_0_25_s_model(synth):
    note = [Note(0.5, 10.5, 60, 127, 0, 0)]
    latents = random_anchors(1, LATENT, 0)
    flat = NoteShape(attack_percent=0.0, release_percent=0.0, velocity_curve="constant", sustain="loop")
    looped = render_midi(synth, note, latents, flat, peak_db=None)[:, SR // 2:]  # [2, 10 s]
    clip = synth.generate([60], torch.from_numpy(latents)).numpy()[0]
    clip = clip / np.abs(clip).max()
    loop = find_loop(clip, SR)
    assert looped.shape == (2, TEN_SECONDS)
    np.testing.assert_allclose(looped, loop_to(clip, TEN_SECONDS, loop), atol=1e-6)  # division vs product
    assert join_steps(looped, loop) <= own_steps(clip, SR)

    shaped = render_midi(synth, note, latents, NoteShape(release_percent=10.0, sustain="loop"), peak_db=None)
    gain = np.abs(shaped[:, SR // 2:]).max(0)  # [10 s]
    assert gain[-1] == 0.0 and gain[-SR // 10:].max() < 0.2 * gain[5 * SR:6 * SR].max()  # released at note-off
    assert gain[:9 * SR].reshape(9, SR).max(1).min() > 0.5 * gain.max()  # sustained to the release

    cut = render_midi(synth, note, latents, NoteShape(sustain="none"), peak_db=None)
    assert cut.shape == (2, SR // 2 + synth.n_samples)  # the old behaviour: the clip's end


def test_unknown_sustain_is_refused_before_rendering():
    with pytest.raises(RenderError, match="sustain 'forever' is not one of none, loop"):
        NoteShape(sustain="forever")


def test_generate_holds_a_long_midi_note_with_sustain_loop(tmp_path):
    ckpt = make_checkpoint(tmp_path / "tiny.ckpt")
    midi = write_piece(tmp_path / "long.mid", [(0, 60, 100, 0.0, 1.9)])
    for sustain, seconds in (("none", 0.25), ("loop", 1.9)):
        run_generate(dict(ckpt_path=str(ckpt), midi_file=str(midi), output_dir=str(tmp_path / sustain), sustain=sustain))
        assert sf.info(tmp_path / sustain / "long.wav").frames == round(seconds * SR)

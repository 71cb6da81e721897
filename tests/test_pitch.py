import math

import pytest
import torch

from gansynth.core.pitch import PitchError, PitchVocab, estimate_f0, hz_to_midi, midi_to_hz

TEST_PITCHES = (24, 36, 48, 60, 72, 84)


def harmonic_tone(
    midi: float, sample_rate: int, seconds: float = 0.5, harmonics: tuple[int, ...] = (1, 2, 3, 4, 5)
) -> torch.Tensor:
    """A decaying note with 1/h partials below Nyquist, peak 0.5: [n] float32."""
    t = torch.arange(int(sample_rate * seconds), dtype=torch.float64) / sample_rate
    f0 = midi_to_hz(float(midi))
    wave = sum(torch.sin(2 * math.pi * f0 * h * t + h) / h for h in harmonics if f0 * h < sample_rate / 2)
    wave = wave * torch.exp(-3.0 * t)
    return (0.5 * wave / wave.abs().max()).float()


def cents_off(f0_hz: torch.Tensor, midi: torch.Tensor) -> torch.Tensor:
    return 100.0 * (hz_to_midi(f0_hz) - midi)


def test_vocab_maps_midi_to_contiguous_indices():
    vocab = PitchVocab(24, 84)
    assert vocab.size == 61
    assert [vocab.index(m) for m in (24, 60, 84)] == [0, 36, 60]
    assert [vocab.midi(i) for i in (0, 36, 60)] == [24, 60, 84]
    assert PitchVocab.from_dict(vocab.to_dict()) == vocab


def test_vocab_contains_only_its_range():
    vocab = PitchVocab(40, 50)
    assert [vocab.contains(m) for m in (39, 40, 50, 51)] == [False, True, True, False]


@pytest.mark.parametrize("call", [lambda v: v.index(85), lambda v: v.midi(61), lambda v: v.midi(-1)])
def test_vocab_rejects_out_of_range_lookups(call):
    with pytest.raises(PitchError, match="outside"):
        call(PitchVocab())


@pytest.mark.parametrize("low, high", [(60, 59), (-1, 10), (0, 128), (24.0, 84)])
def test_vocab_rejects_bad_ranges(low, high):
    with pytest.raises(PitchError, match="PitchVocab"):
        PitchVocab(low, high)


def test_midi_hz_conversion_anchors_a4_and_round_trips():
    assert midi_to_hz(69) == pytest.approx(440.0)
    assert midi_to_hz(57) == pytest.approx(220.0)
    assert hz_to_midi(261.6255653) == pytest.approx(60.0, abs=1e-6)
    midis = torch.linspace(0, 127, 50, dtype=torch.float64)
    assert torch.allclose(hz_to_midi(midi_to_hz(midis)), midis, atol=1e-9)


@pytest.mark.parametrize("sample_rate", [16000, 44100])
def test_estimate_f0_finds_harmonic_tones_within_25_cents(sample_rate):
    waves = torch.stack([harmonic_tone(m, sample_rate) for m in TEST_PITCHES])  # [6, n]
    error = cents_off(estimate_f0(waves, sample_rate), torch.tensor(TEST_PITCHES, dtype=torch.float32))
    assert error.abs().max() < 25.0, error


@pytest.mark.parametrize("sample_rate", [16000, 44100])
def test_estimate_f0_finds_a_missing_fundamental(sample_rate):
    waves = torch.stack([harmonic_tone(m, sample_rate, harmonics=(2, 3, 4, 5, 6)) for m in TEST_PITCHES])
    error = cents_off(estimate_f0(waves, sample_rate), torch.tensor(TEST_PITCHES, dtype=torch.float32))
    assert error.abs().max() < 25.0, error


def test_estimate_f0_avoids_the_octave_above_when_the_second_harmonic_dominates():
    sample_rate = 16000
    t = torch.arange(sample_rate) / sample_rate
    f0 = midi_to_hz(36.0)
    wave = 0.1 * torch.sin(2 * math.pi * f0 * t) + torch.sin(2 * math.pi * 2 * f0 * t) + 0.5 * torch.sin(
        2 * math.pi * 3 * f0 * t
    )
    assert cents_off(estimate_f0(wave, sample_rate), torch.tensor(36.0)).abs() < 25.0


def test_estimate_f0_returns_nan_for_silence_and_noise():
    generator = torch.Generator().manual_seed(0)
    silence = torch.zeros(16000)
    noise = 0.3 * torch.randn(16000, generator=generator)
    f0 = estimate_f0(torch.stack([silence, noise]), 16000)
    assert torch.isnan(f0).tolist() == [True, True]


def test_estimate_f0_batch_equals_singles():
    waves = torch.stack([harmonic_tone(m, 16000) for m in TEST_PITCHES])
    singles = torch.stack([estimate_f0(w, 16000) for w in waves])
    assert singles.shape == (6,)
    assert torch.allclose(estimate_f0(waves, 16000), singles, rtol=1e-5)


def test_estimate_f0_handles_clips_shorter_than_one_frame():
    wave = harmonic_tone(60, 16000, seconds=0.05)  # 800 samples, frame is 1069
    assert cents_off(estimate_f0(wave, 16000), torch.tensor(60.0)).abs() < 25.0


@pytest.mark.parametrize(
    "wave, sample_rate, match",
    [
        (torch.zeros(2, 2, 100), 16000, "shape"),
        (torch.zeros(100, dtype=torch.int16), 16000, "floating"),
        (torch.zeros(0), 16000, "no samples"),
        (torch.zeros(100), 0, "sample_rate"),
        (torch.zeros(100), 8000, "fmax"),
        (torch.full((100,), float("nan")), 16000, "NaN"),
    ],
)
def test_estimate_f0_rejects_bad_input(wave, sample_rate, match):
    with pytest.raises(PitchError, match=match):
        estimate_f0(wave, sample_rate)


def test_a_clip_is_pitched_only_when_most_of_its_sounding_frames_are_periodic():
    """A noise clip with a short tone inside has a few periodic frames; their median is no pitch a
    listener hears, so the clip counts as unpitched. A tone with a short noise burst stays pitched."""
    sr = 16000
    tone = harmonic_tone(60, sr, seconds=1.0) / torch.exp(-3.0 * torch.arange(sr) / sr)  # steady, peak ~0.5
    noise = 0.3 * torch.randn(sr, generator=torch.Generator().manual_seed(0))
    mostly_noise = torch.cat([tone[: sr // 4], noise[sr // 4:]])
    mostly_tone = torch.cat([tone[: 3 * sr // 4], noise[3 * sr // 4:]])
    f0 = estimate_f0(torch.stack([mostly_noise, mostly_tone]), sr)
    assert torch.isnan(f0[0])
    assert abs(float(cents_off(f0[1], torch.tensor(60.0)))) < 25

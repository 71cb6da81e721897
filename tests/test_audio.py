"""Audio I/O: round trips per subtype, channel conversion, resampling, clipping, atomic writes, bad files."""


import numpy as np
import pytest
import soundfile as sf
import torch

from gansynth.core import audio
from gansynth.core.audio import AudioError, load_clip, read_audio, resample, to_channels, write_audio


def _ramp(channels: int = 2, n: int = 4001) -> np.ndarray:
    """Every level from -1 to 1 in fine steps, so quantisation errors show up: [channels, n]."""
    ramp = np.linspace(-1.0, 1.0, n, dtype=np.float32)
    return np.stack([ramp * (1.0 - 0.1 * c) for c in range(channels)])


def _sine(freq: float, sample_rate: int, seconds: float) -> np.ndarray:
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.mark.parametrize("subtype, lsb", [("PCM_16", 2.0**-15), ("PCM_24", 2.0**-23), ("FLOAT", 0.0)])
def test_write_read_round_trip_within_one_lsb(tmp_path, subtype, lsb):
    original = _ramp()
    path = tmp_path / "ramp.wav"
    report = write_audio(path, original, 16000, subtype=subtype)
    restored, rate = read_audio(path)
    assert rate == 16000 and restored.shape == (2, 4001) and restored.dtype == np.float32
    assert report.clipped_samples == 0 and report.peak == pytest.approx(1.0)
    assert np.abs(restored - original).max() <= lsb + 1e-9


@pytest.mark.parametrize("subtype, lsb", [("PCM_U8", 2.0**-7), ("PCM_32", 2.0**-24)])
def test_reads_8_and_32_bit_pcm(tmp_path, subtype, lsb):
    original = _ramp(channels=1)
    path = tmp_path / f"{subtype}.wav"
    sf.write(path, original.T, 8000, subtype=subtype)
    restored, rate = read_audio(path)
    assert rate == 8000 and restored.shape == (1, 4001)
    assert np.abs(restored - original).max() <= lsb + 1e-9


def test_reads_flac(tmp_path):
    original = _ramp()
    path = tmp_path / "ramp.flac"
    sf.write(path, original.T, 22050, subtype="PCM_16")
    restored, rate = read_audio(path)
    assert rate == 22050 and restored.shape == (2, 4001)
    assert np.abs(restored - original).max() <= 2.0**-15 + 1e-9


def test_write_accepts_a_torch_tensor(tmp_path):
    original = torch.linspace(-0.5, 0.5, 1000).reshape(1, 1000)
    write_audio(tmp_path / "t.wav", original, 16000, subtype="FLOAT")
    restored, _ = read_audio(tmp_path / "t.wav")
    assert np.array_equal(restored, original.numpy())


def test_stereo_to_mono_is_the_mean():
    stereo = np.array([[0.2, -0.4, 1.0], [0.6, 0.4, -1.0]], dtype=np.float32)
    assert np.allclose(to_channels(stereo, 1), [[0.4, 0.0, 0.0]], atol=1e-7)


def test_mono_to_stereo_duplicates():
    mono = np.array([[0.1, -0.3, 0.7]], dtype=np.float32)
    stereo = to_channels(mono, 2)
    assert stereo.shape == (2, 3) and np.array_equal(stereo[0], mono[0]) and np.array_equal(stereo[1], mono[0])


def test_three_channels_refused_without_downmix(tmp_path):
    path = tmp_path / "surround.wav"
    with pytest.raises(AudioError, match="surround.wav: has 3 channels"):
        to_channels(np.zeros((3, 10), dtype=np.float32), 2, path=path)


def test_three_channels_downmix_to_mono_is_the_mean_of_all():
    three = np.array([[0.3], [0.6], [-0.6]], dtype=np.float32)
    assert np.allclose(to_channels(three, 1, downmix=True), [[0.1]], atol=1e-7)


def test_three_channels_downmix_to_stereo_keeps_front_pair_and_shares_the_rest():
    three = np.array([[0.4], [-0.4], [0.2]], dtype=np.float32)
    # L = (0.4 + 0.2) / 2, R = (-0.4 + 0.2) / 2
    assert np.allclose(to_channels(three, 2, downmix=True), [[0.3], [-0.1]], atol=1e-7)


def test_resampling_keeps_frequency_and_duration():
    tone = _sine(1000.0, 44100, 1.0)[None]  # [1, 44100]
    resampled = resample(tone, 44100, 16000)
    assert abs(resampled.shape[1] - 16000) <= 1
    spectrum = np.abs(np.fft.rfft(resampled[0] * np.hanning(resampled.shape[1])))
    peak_hz = np.argmax(spectrum) * 16000 / resampled.shape[1]
    assert abs(peak_hz - 1000.0) <= 1.0
    middle = resampled[0, 1000:-1000]
    assert np.abs(middle).max() == pytest.approx(0.5, abs=0.01)


def test_resampling_at_the_same_rate_returns_the_input():
    tone = _sine(440.0, 16000, 0.1)[None]
    assert resample(tone, 16000, 16000) is tone


def test_load_clip_converts_channels_and_rate(tmp_path):
    path = tmp_path / "stereo44k.wav"
    left, right = _sine(440.0, 44100, 0.5), _sine(440.0, 44100, 0.5) * 0.5
    sf.write(path, np.stack([left, right]).T, 44100, subtype="FLOAT")
    clip = load_clip(path, 16000, 1)
    assert clip.shape[0] == 1 and abs(clip.shape[1] - 8000) <= 1
    assert np.abs(clip[0, 500:-500]).max() == pytest.approx(0.375, abs=0.01)


def test_clipping_is_counted_and_warned(tmp_path):
    loud = np.array([[0.5, 1.5, -2.0, 1.0, 1.25]], dtype=np.float32)
    path = tmp_path / "loud.wav"
    with pytest.warns(UserWarning, match=r"loud\.wav: clipped 3 samples"):
        report = write_audio(path, loud, 16000)
    restored, _ = read_audio(path)
    assert report.clipped_samples == 3 and report.peak == pytest.approx(2.0)
    assert np.abs(restored - np.clip(loud, -1, 1)).max() <= 2.0**-15


def test_float_subtype_keeps_samples_beyond_one(tmp_path):
    loud = np.array([[0.5, 1.5, -2.0]], dtype=np.float32)
    report = write_audio(tmp_path / "loud.wav", loud, 16000, subtype="FLOAT")
    restored, _ = read_audio(tmp_path / "loud.wav")
    assert report.clipped_samples == 0 and np.array_equal(restored, loud)


def test_failed_write_leaves_previous_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "keep.wav"
    previous = _ramp(channels=1)
    write_audio(path, previous, 16000)
    before = path.read_bytes()

    def crash_midway(file, data, *args, **kwargs):
        file.write(b"RIFF half a header")
        raise OSError("disk full")

    monkeypatch.setattr(audio.sf, "write", crash_midway)
    with pytest.raises(OSError, match="disk full"):
        write_audio(path, np.zeros((1, 100), dtype=np.float32), 16000)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.wav"]


def test_unknown_subtype_is_refused(tmp_path):
    with pytest.raises(AudioError, match=r"x\.wav: subtype 'PCM_12'"):
        write_audio(tmp_path / "x.wav", np.zeros((1, 10), dtype=np.float32), 16000, subtype="PCM_12")


def test_missing_file_is_named(tmp_path):
    with pytest.raises(AudioError, match=r"absent\.wav: no such file"):
        read_audio(tmp_path / "absent.wav")


def test_text_file_named_wav_is_refused(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("this is not audio\n")
    with pytest.raises(AudioError, match=r"notes\.wav: not a readable audio file"):
        read_audio(path)


def test_truncated_wav_is_refused(tmp_path):
    path = tmp_path / "cut.wav"
    sf.write(path, _ramp().T, 16000, subtype="PCM_16")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 1001])
    with pytest.raises(AudioError, match=r"cut\.wav: truncated or corrupt"):
        read_audio(path)


def test_zero_sample_file_is_refused(tmp_path):
    path = tmp_path / "empty.wav"
    sf.write(path, np.zeros((0, 1), dtype=np.float32), 16000)
    with pytest.raises(AudioError, match=r"empty\.wav: contains zero samples"):
        read_audio(path)


def test_nan_samples_are_refused(tmp_path):
    path = tmp_path / "nan.wav"
    samples = np.zeros((100, 1), dtype=np.float32)
    samples[[10, 20]] = np.nan
    sf.write(path, samples, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"nan\.wav: 2 samples are NaN or infinite"):
        read_audio(path)

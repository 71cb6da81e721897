"""The mel-IF codec: exact linear round trips, Magenta's mel matrix, normaliser, stereo, batching, persistence."""

import json
import math

import numpy as np
import pytest
import soundfile as sf
import torch

from gansynth.core.audio import load_clip
from gansynth.core.spectral import (
    MEL_MATRICES,
    CodecError,
    SpecgramCodec,
    band_blocks,
    banded_matmul,
    dual_hann_window,
    hz_to_mel,
    instantaneous_frequency,
    istft,
    mel_bands,
    mel_to_hz,
    mel_to_linear_matrix,
    mel_weight_matrix,
    phase_from_if,
    polar_with_dc,
    stft,
    unwrap,
)

PAPER = {}
FORK = {"sample_rate": 44100, "audio_length": 1.5, "channel_mode": "stereo"}
TINY = {"n_fft": 512, "hop_length": 128, "n_frames": 32, "audio_length": 0.25}
LOG_FLOOR = math.log(1e-6)


def _rms(x: torch.Tensor) -> float:
    return float(x.pow(2).mean().sqrt())


def _band_limited_noise(n: int, sample_rate: int, low_hz: float = 200.0, seed: int = 0) -> torch.Tensor:
    """White noise without content below ``low_hz``: the representation drops the DC bin by design."""
    spectrum = torch.fft.rfft(torch.randn(n, generator=torch.Generator().manual_seed(seed)))
    spectrum[torch.fft.rfftfreq(n, 1 / sample_rate) < low_hz] = 0
    noise = torch.fft.irfft(spectrum, n)
    return 0.5 * noise / noise.abs().max()  # [n]


def _chirp(n: int, sample_rate: int, f0: float = 100.0, f1: float = 4000.0) -> torch.Tensor:
    t = torch.arange(n, dtype=torch.float64) / sample_rate
    return (0.5 * torch.sin(2 * math.pi * (f0 * t + (f1 - f0) * t**2 / (2 * t[-1])))).float()  # [n]


def _tone(freq: float, n: int, sample_rate: int, harmonics: int = 1) -> torch.Tensor:
    t = torch.arange(n, dtype=torch.float64) / sample_rate
    return sum(0.3 / k * torch.sin(2 * math.pi * freq * k * t) for k in range(1, harmonics + 1)).float()


@pytest.fixture(scope="module")
def paper_linear() -> SpecgramCodec:
    return SpecgramCodec(mel=False)


@pytest.fixture(scope="module")
def paper_mel() -> SpecgramCodec:
    return SpecgramCodec()


# ---------------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("signal", ["noise", "chirp"])
def test_stft_istft_round_trip_is_exact_away_from_edges(signal):
    n_fft, hop = 2048, 512
    n = hop * 127 + n_fft
    wave = _band_limited_noise(n, 16000) if signal == "noise" else _chirp(n, 16000)
    restored = istft(stft(wave, n_fft, hop), n_fft, hop, dual_hann_window(n_fft, hop))
    assert restored.shape == (n,)
    assert _rms((restored - wave)[n_fft:-n_fft]) <= 1e-5


@pytest.mark.parametrize("signal", ["noise", "chirp"])
def test_linear_logmag_if_round_trip_is_exact_away_from_edges(paper_linear, signal):
    n = paper_linear.n_samples
    wave = _band_limited_noise(n, 16000) if signal == "noise" else _chirp(n, 16000)
    image = paper_linear.encode(wave[None, None])  # [1, 2, 128, 1024]
    restored = paper_linear.decode(image)[0, 0]
    assert image.shape == (1, 2, 128, 1024)
    assert _rms((restored - wave)[2048:-2048]) <= 1e-5


@pytest.mark.parametrize("mel_matrix, wave_error, magnitude_error", [
    ("released", 0.18, 0.06), ("independent", 0.03, 0.025),
])
def test_mel_round_trip_error_of_a_harmonic_tone(mel_matrix, wave_error, magnitude_error):
    # Mel compression is lossy (Magenta only shape-checks it). Measured for a 220 Hz tone with 5
    # harmonics, waveform error / magnitude spectral convergence: released 15.9 % / 5.4 %,
    # independent 1.95 % / 1.6 %: the released matrix's near-linear low bands overlap more.
    codec = SpecgramCodec(mel_matrix=mel_matrix)
    wave = _tone(220.0, codec.n_samples, 16000, harmonics=5)
    restored = codec.decode(codec.encode(wave[None, None]))[0, 0]
    inner = slice(2048, -2048)
    assert float((restored - wave)[inner].norm() / wave[inner].norm()) <= wave_error
    magnitude = stft(wave[inner], 2048, 512).abs()
    restored_magnitude = stft(restored[inner], 2048, 512).abs()
    assert float((restored_magnitude - magnitude).norm() / magnitude.norm()) <= magnitude_error


# ------------------------------------------------------------------------------------ geometry


def test_paper_geometry_numbers(paper_mel):
    assert paper_mel.n_samples == 64000 and paper_mel.max_samples == 67072 and paper_mel.pad == 3072
    assert paper_mel.image_shape == (2, 128, 1024)


def test_first_three_frames_are_pure_left_padding(paper_linear):
    wave = _chirp(paper_linear.n_samples, 16000)
    logmag = paper_linear.encode(wave[None])[0]  # [128, 1024]
    assert float((logmag[:3] - LOG_FLOOR).abs().max()) < 1e-6
    assert float(logmag[3].max()) > 0.0


def test_column_k_is_stft_bin_k_plus_one_and_last_column_is_nyquist(paper_linear):
    n = paper_linear.n_samples
    bin_128 = _tone(128 * 16000 / 2048, n, 16000)  # 1000 Hz, exactly STFT bin 128
    nyquist = 0.3 * torch.tensor([1.0, -1.0]).repeat(n // 2)
    peaks = [int(paper_linear.encode(w[None])[0, 64].argmax()) for w in (bin_128, nyquist)]
    assert peaks == [127, 1023]


def test_too_long_audio_is_refused_with_the_numbers():
    with pytest.raises(CodecError, match=r"70560 samples.*67072.*max 1\.521 s"):
        SpecgramCodec(sample_rate=44100, audio_length=1.6)


def test_wrong_wave_length_is_refused(paper_mel):
    with pytest.raises(CodecError, match=r"expected a wave shaped \[B, 1, 64000\].*got \(1, 1, 63999\)"):
        paper_mel.encode(torch.zeros(1, 1, 63999))


def test_n_fft_must_be_a_power_of_two():
    with pytest.raises(CodecError, match="n_fft must be a power of two"):
        SpecgramCodec(n_fft=1000, hop_length=250)


# ------------------------------------------------------------------------------- phase and IF


def test_unwrap_matches_numpy():
    phase = torch.rand(64, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 20 - 10
    assert np.abs(unwrap(phase, dim=0).numpy() - np.unwrap(phase.numpy(), axis=0)).max() < 1e-12


def test_if_first_frame_is_phase_over_pi_and_the_rest_in_unit_range():
    phase = (torch.rand(50, 8, generator=torch.Generator().manual_seed(2)) * 2 - 1) * math.pi
    inst_freq = instantaneous_frequency(phase)  # [50, 8]
    assert torch.allclose(inst_freq[0], phase[0] / math.pi)
    assert float(inst_freq[1:].abs().max()) <= 1.0
    rewrapped = torch.remainder(phase_from_if(inst_freq) - phase + math.pi, 2 * math.pi) - math.pi
    assert float(rewrapped.abs().max()) < 1e-5


@pytest.mark.parametrize("settings", [PAPER, TINY], ids=["paper", "tiny"])
def test_mel_decode_equals_unwrapping_the_linear_phase_again(settings):
    """decode takes the mel phase through the matrix and stops there; going on to the linear IF and back
    (the longer path, here the oracle) only adds multiples of 2 pi, so the waves agree to float rounding."""
    codec = SpecgramCodec(**settings)
    image = codec.denormalize(torch.rand(3, *codec.image_shape, generator=torch.Generator().manual_seed(3)) * 2 - 1)
    logmag, inst_freq = image[:, 0:1], image[:, 1:2]  # [3, 1, T, F] each
    power = torch.exp(logmag) @ codec.mel_to_linear
    linear_if = instantaneous_frequency(phase_from_if(inst_freq) @ codec.mel_to_linear)
    spec = torch.polar(torch.exp(0.5 * torch.log(power + 1e-6)), phase_from_if(linear_if))
    oracle = istft(spec, codec.n_fft, codec.hop_length, codec.synthesis_window)[..., codec.pad:]
    wave = codec.decode(image)
    assert float((wave - oracle).abs().max() / oracle.abs().max()) < 1e-5
    assert float(wave.abs().max()) > 0.01  # not both silent


# ----------------------------------------------------------------------------------- mel matrix


def _magenta_released_bands(n_bins: int, sample_rate: float) -> tuple[np.ndarray, np.ndarray, int]:
    """Magenta's ``linear_to_mel_weight_matrix`` (0 Hz to Nyquist) as it ran, with its own formulas:
    lower, centre and upper edges are views into one array, so each in-place widening writes
    through to the neighbouring bands. Returns the matrix, the band centres in Hz and the count."""
    nyquist = sample_rate / 2
    to_mel = lambda hz: 1127.0 * np.log(1.0 + hz / 700.0)  # noqa: E731
    to_hz = lambda mel: 700.0 * (np.exp(mel / 1127.0) - 1.0)  # noqa: E731
    shared = np.linspace(to_mel(0.0), to_mel(nyquist), n_bins + 2)
    lower, centre, upper = shared[:-2], shared[1:-1], shared[2:]  # views, as released
    threshold_hz = 1.5 * nyquist / n_bins
    count = 0
    for band in range(n_bins):
        if to_hz(upper[band]) - to_hz(lower[band]) < threshold_hz:
            ratio = 0.5 * threshold_hz / (to_hz(centre[band]) + 700.0)
            half = 1127.0 * np.log(ratio + np.sqrt(1.0 + ratio**2))
            lower[band], upper[band] = centre[band] - half, centre[band] + half
            count += 1
    linear_hz = np.linspace(0.0, nyquist, n_bins)[1:, None]
    low, mid, high = (to_hz(edge)[None] for edge in (lower, centre, upper))
    weights = np.maximum(0.0, np.minimum((linear_hz - low) / (mid - low), (high - linear_hz) / (high - mid)))
    return np.pad(weights, ((1, 0), (0, 0))), to_hz(centre), count


def _nearest_columns(centres_hz: np.ndarray, tones_hz: tuple[float, ...]) -> list[int]:
    return [int(np.abs(centres_hz - hz).argmin()) for hz in tones_hz]


TONES_HZ = (100.0, 500.0, 1000.0, 4000.0)


@pytest.mark.parametrize("settings, widened, columns", [
    (PAPER, 852, [17, 85, 170, 681]), (FORK, 909, [6, 31, 61, 247]),
])
def test_released_matrix_is_the_one_magentas_code_ran(settings, widened, columns):
    codec = SpecgramCodec(**settings)
    expected, centres_hz, count = _magenta_released_bands(1024, codec.sample_rate)
    assert (count, _nearest_columns(centres_hz, TONES_HZ)) == (widened, columns)
    _, centre_mel, _, flags = mel_bands(1024, codec.sample_rate, "released")
    assert int(flags.sum()) == widened
    assert _nearest_columns(mel_to_hz(centre_mel), TONES_HZ) == columns
    assert np.abs(mel_weight_matrix(1024, codec.sample_rate, "released") - expected).max() < 1e-9
    assert np.abs(codec.linear_to_mel.double().numpy() - expected).max() < 1e-6


def test_released_low_bands_are_nearly_linear():
    centres_hz = mel_to_hz(mel_bands(1024, 16000, "released")[1])
    assert centres_hz[:3] == pytest.approx([1.77, 7.66, 13.54], abs=0.01)
    assert np.diff(centres_hz[:600]) == pytest.approx(5.88, abs=0.05)


def test_independent_matrix_widens_each_band_alone():
    lower, centre, upper, flags = mel_bands(1024, 16000, "independent")
    assert int(flags.sum()) == 498
    assert _nearest_columns(mel_to_hz(centre), TONES_HZ[1:]) == [218, 360, 774]
    evenly = np.linspace(0.0, hz_to_mel(8000.0), 1026)
    assert np.array_equal(centre, evenly[1:-1])  # widening moves no centre
    assert np.array_equal(lower[~flags], evenly[:-2][~flags]) and np.array_equal(upper[~flags], evenly[2:][~flags])


@pytest.mark.parametrize("mel_matrix", MEL_MATRICES)
def test_paper_matrix_shape_and_empty_first_row_and_column(mel_matrix):
    matrix = mel_weight_matrix(1024, 16000, mel_matrix)  # [linear, mel]
    assert matrix.shape == (1024, 1024) and matrix.dtype == np.float64
    assert not matrix[:, 0].any() and not matrix[0].any()
    assert matrix.sum(axis=0).max() == pytest.approx(2.7616, abs=1e-4)


@pytest.mark.parametrize("mel_matrix", MEL_MATRICES)
def test_flat_spectrum_survives_mel_and_back_except_first_and_last_bin(mel_matrix):
    matrix = mel_weight_matrix(1024, 16000, mel_matrix)
    flat = np.ones(1024) @ matrix @ mel_to_linear_matrix(matrix)
    assert np.abs(flat[1:-1] - 1.0).max() < 1e-12
    assert flat[0] == 0.0 and flat[-1] == 0.0


@pytest.mark.parametrize("mel_matrix, n_fft, widened, empty_columns", [
    ("released", 512, 213, []), ("released", 256, 107, []),
    ("independent", 512, 125, [0]), ("independent", 256, 63, [0]),
])
def test_small_geometries_leave_at_most_mel_column_zero_empty(mel_matrix, n_fft, widened, empty_columns):
    matrix = mel_weight_matrix(n_fft // 2, 16000, mel_matrix)
    inverse = mel_to_linear_matrix(matrix)
    assert np.flatnonzero(matrix.sum(axis=0) == 0).tolist() == empty_columns
    assert int(mel_bands(n_fft // 2, 16000, mel_matrix)[3].sum()) == widened
    assert np.isfinite(inverse).all()
    flat = np.ones(n_fft // 2) @ matrix @ inverse
    assert np.abs(flat[1:-1] - 1.0).max() < 1e-12


def test_unknown_mel_matrix_is_refused_naming_the_key():
    with pytest.raises(CodecError, match="mel_matrix must be one of released, independent, got 'cascaded'"):
        SpecgramCodec(mel_matrix="cascaded")


@pytest.mark.parametrize("geometry", [PAPER, FORK], ids=["paper", "fork"])
@pytest.mark.parametrize("matrix_name", ["linear_to_mel", "mel_to_linear"])
def test_mel_products_in_blocks_cover_every_nonzero_and_equal_the_dense_product(geometry, matrix_name):
    codec = SpecgramCodec(**geometry)
    matrix = getattr(codec, matrix_name)
    blocks = band_blocks(matrix.double().numpy())
    covered = torch.zeros_like(matrix, dtype=torch.bool)
    for first, last, start, end in blocks:
        covered[first:last, start:end] = True
    assert not matrix[~covered].any()  # the blocks hold every nonzero: the same sums, zeros left out
    assert covered.sum() < matrix.numel() / 8  # ... and at most 1/8 of the dense work (1/16 here)
    x = torch.rand(2, 3, 128, 1024, dtype=torch.float64)
    dense = x @ matrix.double()
    assert torch.allclose(banded_matmul(x, matrix.double(), blocks), dense, rtol=1e-12, atol=1e-12)


def test_polar_with_dc_is_the_padded_polar_form_with_and_without_autograd():
    magnitude, phase = torch.rand(2, 1, 8, 64), 300.0 * torch.randn(2, 1, 8, 64)  # phases as large as cumsums get
    expected = torch.nn.functional.pad(torch.polar(magnitude, phase), (1, 0))
    fast = polar_with_dc(magnitude, phase)
    assert fast.shape == (2, 1, 8, 65) and fast.dtype == torch.complex64 and not fast[..., 0].any()
    torch.testing.assert_close(fast, expected, atol=1e-6, rtol=0)
    magnitude.requires_grad_(True)
    polar_with_dc(magnitude, phase).abs().sum().backward()  # the differentiable path
    torch.testing.assert_close(magnitude.grad, torch.ones_like(magnitude))


def test_a_band_too_wide_to_pay_keeps_the_dense_product():
    assert SpecgramCodec(**TINY).to_linear_blocks is None  # 256 bins: the blocks would do 1/4 of the work
    assert band_blocks(np.ones((64, 64))) is None
    assert band_blocks(np.eye(1024)) is not None


def test_mel_matrices_are_derived_buffers_not_state(paper_mel):
    assert paper_mel.linear_to_mel.shape == (1024, 1024)
    assert paper_mel.mel_to_linear.shape == (1024, 1024)
    assert len(paper_mel.state_dict()) == 0


# ----------------------------------------------------------------------------------- normaliser


def test_fixed_normaliser_constants(paper_mel):
    raw = torch.tensor([LOG_FLOOR, 10.377, 0.5]).reshape(1, 1, 3).repeat(2, 1, 1)  # [C, T, F]
    normalized = paper_mel.normalize(raw)
    assert normalized[0, 0, :2].tolist() == pytest.approx([-0.8, 0.8], abs=1e-4)
    assert normalized[1, 0, 2].item() == pytest.approx(0.4)
    corners = paper_mel.denormalize(torch.tensor([-1.0, 1.0]).reshape(1, 1, 2).expand(2, 1, 2))
    assert corners[0, 0].tolist() == pytest.approx([-16.840, 13.400], abs=1e-3)
    assert corners[1, 0].tolist() == pytest.approx([-1.25, 1.25])


def test_normalize_clips_to_unit_range(paper_mel):
    image = torch.tensor([-100.0, 0.0, 100.0]).reshape(1, 1, 3).repeat(2, 1, 1)  # [2, 1, 3]
    normalized = paper_mel.normalize(image)
    assert normalized.min().item() == -1.0 and normalized.max().item() == 1.0
    assert torch.allclose(paper_mel.denormalize(paper_mel.normalize(image[:, :, 1:2])), image[:, :, 1:2])


def test_normalize_if_maps_an_if_image_as_normalize_maps_every_if_channel():
    codec = SpecgramCodec(**TINY).with_fitted_normalizer(torch.randn(3, 2, 32, 256) * 3)  # IF shift != 0
    stereo = torch.randn(3, 4, 32, 256) * 3  # [B, (mag, IF) x 2 channels, T, F], partly beyond [-1, 1]
    stereo_codec = SpecgramCodec(**TINY, channel_mode="stereo").with_fitted_normalizer(stereo)
    for c, image in ((codec, stereo[:, :2]), (stereo_codec, stereo)):
        for channel in range(1, image.shape[1], 2):
            torch.testing.assert_close(c.normalize_if(image[:, channel: channel + 1]),
                                       c.normalize(image)[:, channel: channel + 1])


def test_fitted_normaliser_maps_observed_range_to_point_eight():
    codec = SpecgramCodec(**TINY)
    wave = torch.stack([_chirp(codec.n_samples, 16000), _tone(440.0, codec.n_samples, 16000)])[:, None]
    images = codec.encode(wave)  # [2, 2, 32, 256]
    fitted = codec.with_fitted_normalizer(images).normalize(images)
    for kind in range(2):
        assert fitted[:, kind].min().item() == pytest.approx(-0.8, abs=1e-5)
        assert fitted[:, kind].max().item() == pytest.approx(0.8, abs=1e-5)


# ------------------------------------------------------------------------------------ stereo


@pytest.mark.parametrize("mel_matrix", MEL_MATRICES)
def test_stereo_tones_stay_on_their_own_side(tmp_path, mel_matrix):
    codec = SpecgramCodec(**FORK, mel_matrix=mel_matrix)
    n = codec.n_samples
    path = tmp_path / "left440_right1000.wav"
    sf.write(path, torch.stack([_tone(440.0, n, 44100), _tone(1000.0, n, 44100)]).T.numpy(), 44100,
             subtype="FLOAT")
    wave = torch.from_numpy(load_clip(path, 44100, 2))  # [2, n]
    image = codec.encode(wave)  # [4, 128, 1024]
    restored = codec.decode(image).numpy()  # [2, n]
    assert image.shape == (4, 128, 1024) and restored.shape == (2, n)

    def band_energy(channel: np.ndarray, hz: float) -> float:
        inner = channel[2048:-2048] * np.hanning(n - 4096)
        spectrum = np.abs(np.fft.rfft(inner)) ** 2
        freqs = np.fft.rfftfreq(n - 4096, 1 / 44100)
        return float(spectrum[np.abs(freqs - hz) < 30].sum())

    # Measured: -110 dB on both sides (the Hann measurement floor of the input itself).
    for side, own, other in ((0, 440.0, 1000.0), (1, 1000.0, 440.0)):
        leakage_db = 10 * math.log10(band_energy(restored[side], other) / band_energy(restored[side], own))
        assert leakage_db <= -80.0


# --------------------------------------------------------------------------- batch and device


def test_batch_of_three_equals_three_single_encodes_and_decodes():
    codec = SpecgramCodec(**TINY)
    n = codec.n_samples
    waves = torch.stack([_chirp(n, 16000), _tone(330.0, n, 16000, 3), _band_limited_noise(n, 16000)])[:, None]
    images = codec.encode(waves)  # [3, 2, 32, 256]
    singles = torch.stack([codec.encode(w) for w in waves])
    assert images.shape == (3, 2, 32, 256)
    assert float((images - singles).abs().max()) < 1e-5
    decoded = codec.decode(images)  # [3, 1, n]
    assert float((decoded - torch.stack([codec.decode(i) for i in images])).abs().max()) < 1e-5


def test_unbatched_wave_gives_unbatched_image():
    codec = SpecgramCodec(**TINY, channel_mode="stereo")
    image = codec.encode(torch.zeros(2, codec.n_samples))
    assert image.shape == (4, 32, 256) and codec.decode(image).shape == (2, codec.n_samples)


def test_codec_follows_dtype_and_device_moves():
    codec = SpecgramCodec(**TINY)
    wave = _chirp(codec.n_samples, 16000)[None, None]
    image = codec.encode(wave)  # [1, 2, 32, 256]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    moved = SpecgramCodec(**TINY).to(device=device, dtype=torch.float64)
    assert moved.linear_to_mel.dtype == torch.float64 and moved.linear_to_mel.device.type == device
    moved_image = moved.encode(wave.to(device, torch.float64))
    restored = moved.decode(image.to(device, torch.float64))
    assert moved_image.dtype == restored.dtype == torch.float64 and restored.device.type == device
    # Only log-mel is compared: re-unwrapping the mel phase (Magenta's rule) may decide a step of
    # almost exactly pi differently at another precision, which changes IF by design.
    assert float((moved_image[:, 0].cpu() - image[:, 0]).abs().max()) < 1e-2  # measured 1.8e-3
    assert _rms(restored.cpu().float() - codec.decode(image)) < 1e-5


# ------------------------------------------------------------------------------- persistence


@pytest.mark.parametrize("mel_matrix", MEL_MATRICES)
def test_to_dict_from_dict_round_trip_through_json(mel_matrix):
    codec = SpecgramCodec(**FORK, mel_matrix=mel_matrix, norm_scale=(0.05, 0.7), norm_shift=(0.1, 0.01))
    settings = json.loads(json.dumps(codec.to_dict()))
    rebuilt = SpecgramCodec.from_dict(settings)
    assert settings["mel_matrix"] == mel_matrix and rebuilt.to_dict() == codec.to_dict()
    assert torch.equal(rebuilt.linear_to_mel, codec.linear_to_mel)
    assert torch.equal(rebuilt.mel_to_linear, codec.mel_to_linear)
    image = torch.rand(1, 4, 128, 1024)
    assert torch.equal(rebuilt.normalize(image), codec.normalize(image))


def test_a_saved_dict_without_mel_matrix_rebuilds_the_independent_matrix():
    saved = {k: v for k, v in SpecgramCodec(**TINY).to_dict().items() if k != "mel_matrix"}
    rebuilt = SpecgramCodec.from_dict(saved)
    assert rebuilt.mel_matrix == "independent"
    assert torch.equal(rebuilt.linear_to_mel, SpecgramCodec(**TINY, mel_matrix="independent").linear_to_mel)


def test_from_dict_refuses_unknown_settings():
    with pytest.raises(CodecError, match="unknown codec settings: n_mels"):
        SpecgramCodec.from_dict({"n_mels": 128})

"""Metrics with known answers, the pitch classifier on synthetic tones, and the evaluate command."""

from __future__ import annotations

import hashlib
import json
import math

import pytest
import soundfile as sf
import torch

from gansynth.evaluation.classifier import (
    ClassifierError,
    classifier_accuracy,
    log_frequency_spectrogram,
    train_pitch_classifier,
)
from gansynth.evaluation.metrics import (
    EvaluationError,
    evaluate,
    frechet_distance,
    number_of_different_bins,
    pitch_accuracy,
    pitch_entropy,
    pitch_scores,
)
from gansynth.core.pitch import PitchVocab, midi_to_hz
from test_pitch import harmonic_tone
from test_render import make_checkpoint

SR = 16000


def varied_tones(midis: list[int], seed: int, samples: int = 4000) -> torch.Tensor:
    """Mono notes [N, 1, samples] with random 1/h-falling partials, decay, gain and ±5-cent detune."""
    generator = torch.Generator().manual_seed(seed)
    t = torch.arange(samples, dtype=torch.float64) / SR
    clips = []
    for midi in midis:
        detune = 0.1 * (torch.rand(1, generator=generator).item() - 0.5)
        f0 = midi_to_hz(midi + detune)
        amplitudes = (0.3 + 0.7 * torch.rand(6, generator=generator, dtype=torch.float64)) / torch.arange(1, 7)
        phases = 2 * math.pi * torch.rand(6, generator=generator, dtype=torch.float64)
        wave = sum(a * torch.sin(2 * math.pi * f0 * (h + 1) * t + p)
                   for h, (a, p) in enumerate(zip(amplitudes, phases)))
        decay = torch.exp(-t * 8.0 * torch.rand(1, generator=generator, dtype=torch.float64))
        gain = 0.1 + 0.8 * torch.rand(1, generator=generator, dtype=torch.float64)
        clips.append(gain * decay * wave / wave.abs().max())
    return torch.stack(clips).unsqueeze(1).float()


def gaussian_mixture(n: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    """[n, 2] points around four centres on a square, optionally all moved along x."""
    generator = torch.Generator().manual_seed(seed)
    centres = torch.tensor([[0.0, 0.0], [6.0, 0.0], [0.0, 6.0], [6.0, 6.0]])
    which = torch.randint(4, (n,), generator=generator)
    return centres[which] + torch.randn(n, 2, generator=generator) + torch.tensor([shift, 0.0])


# ---------------------------------------------------------------------------------------------- PA / PE


def test_pa_is_one_for_tones_at_their_labels():
    midis = [36, 48, 60, 72]
    audio = torch.stack([harmonic_tone(m, SR) for m in midis]).unsqueeze(1)  # [4, 1, n]
    scores = pitch_accuracy(audio, SR, torch.tensor(midis))
    assert scores["pa"] == 1.0
    assert scores["voiced"] == 1.0


def test_pa_is_zero_for_tones_one_semitone_off():
    midis = [36, 48, 60, 72]
    audio = torch.stack([harmonic_tone(m + 1, SR) for m in midis]).unsqueeze(1)
    assert pitch_accuracy(audio, SR, torch.tensor(midis))["pa"] == 0.0


def test_pa_scores_each_stereo_channel():
    midis = [40, 55, 67]
    left = torch.stack([harmonic_tone(m, SR) for m in midis])
    right = torch.stack([harmonic_tone(m + 2, SR) for m in midis])
    scores = pitch_accuracy(torch.stack([left, right], dim=1), SR, torch.tensor(midis))  # [3, 2, n]
    assert scores["pa_per_channel"] == [1.0, 0.0]
    assert scores["pa"] == 0.5


def test_unpitched_clips_count_as_misses():
    noise = 0.3 * torch.randn(3, 1, 8000, generator=torch.Generator().manual_seed(0))
    scores = pitch_accuracy(noise, SR, torch.tensor([60, 60, 60]))
    assert (scores["pa"], scores["voiced"]) == (0.0, 0.0)


def test_pe_of_k_equally_used_pitches_is_log_k():
    predicted = torch.tensor([48.1, 52.0, 55.2, 59.9, 62.0] * 3)
    assert pitch_entropy(predicted) == pytest.approx(math.log(5), abs=1e-12)


def test_pe_of_one_pitch_is_zero_and_ignores_unpitched():
    assert pitch_entropy(torch.tensor([60.0, 60.2, float("nan"), 59.9])) == 0.0


def test_pitch_scores_reject_mismatched_targets():
    with pytest.raises(EvaluationError, match="targets"):
        pitch_scores(torch.full((4, 2), 440.0), torch.tensor([69, 69, 69]))


# ---------------------------------------------------------------------------------------------- NDB


def test_ndb_is_small_for_two_samples_of_one_distribution():
    result = number_of_different_bins(gaussian_mixture(2000, seed=1), gaussian_mixture(2000, seed=2), bins=20)
    assert result["bins"] == 20
    assert result["ndb_fraction"] <= 0.10


def test_ndb_is_large_for_a_shifted_distribution():
    result = number_of_different_bins(gaussian_mixture(2000, seed=1), gaussian_mixture(2000, seed=2, shift=2.0),
                                      bins=20)
    assert result["ndb_fraction"] >= 0.5


def test_ndb_caps_bins_at_one_per_five_reference_samples():
    result = number_of_different_bins(gaussian_mixture(60, seed=1), gaussian_mixture(60, seed=2), bins=50)
    assert result["bins"] == 12


def test_ndb_is_reproducible_for_a_seed():
    real, fake = gaussian_mixture(500, seed=1), gaussian_mixture(300, seed=3, shift=1.0)
    assert number_of_different_bins(real, fake, seed=7) == number_of_different_bins(real, fake, seed=7)


def test_ndb_rejects_too_few_reference_samples():
    with pytest.raises(EvaluationError, match="NDB reference"):
        number_of_different_bins(torch.zeros(9, 3), torch.zeros(20, 3))


# ---------------------------------------------------------------------------------------------- FD


def test_fd_of_identical_sets_is_zero():
    features = torch.randn(500, 8, generator=torch.Generator().manual_seed(0))
    assert frechet_distance(features, features) == pytest.approx(0.0, abs=1e-8)


def test_fd_of_shifted_sets_is_the_squared_mean_distance():
    features = torch.randn(500, 8, generator=torch.Generator().manual_seed(0)) @ torch.randn(
        8, 8, generator=torch.Generator().manual_seed(1))
    shift = torch.linspace(-1.0, 2.0, 8)
    assert frechet_distance(features, features + shift) == pytest.approx(float(shift.square().sum()), rel=0.01)


def test_fd_matches_the_closed_form_for_diagonal_covariances():
    """Axes scaled by s_a and s_b: FD = sum (s_a - s_b)^2 for whitened, centred samples."""
    base = torch.randn(4000, 3, generator=torch.Generator().manual_seed(0)).double()
    base = (base - base.mean(0)) @ torch.linalg.inv(torch.linalg.cholesky(torch.cov(base.T))).T  # unit covariance
    scale_a, scale_b = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([2.0, 2.0, 1.0])
    expected = float((scale_a - scale_b).square().sum())  # 1 + 0 + 4
    assert frechet_distance(base * scale_a, base * scale_b) == pytest.approx(expected, rel=0.01)


def test_fd_is_finite_with_fewer_notes_than_feature_dimensions():
    features = torch.randn(10, 64, generator=torch.Generator().manual_seed(0))
    assert frechet_distance(features, features) == pytest.approx(0.0, abs=1e-6)


# ---------------------------------------------------------------------------------------------- classifier

CLASSIFIER_PITCHES = [45, 48, 50, 53, 57]


@pytest.fixture(scope="module")
def tone_spectrograms() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Train (16 per pitch) and held-out (6 per pitch) log-frequency spectrograms with class labels."""
    sets = {}
    for name, per_pitch, seed in (("train", 16, 0), ("held_out", 6, 1)):
        labels = torch.arange(len(CLASSIFIER_PITCHES)).repeat(per_pitch)
        audio = varied_tones([CLASSIFIER_PITCHES[i] for i in labels], seed)
        sets[name] = (log_frequency_spectrogram(audio, SR), labels)
    return sets


def test_spectrogram_has_a_fixed_size_for_any_clip_length():
    short, long = torch.zeros(2, 2, 3000), torch.zeros(2, 2, 40000)
    assert log_frequency_spectrogram(short, SR).shape == log_frequency_spectrogram(long, SR).shape == (2, 2, 8, 169)


def test_spectrogram_rejects_a_sample_rate_below_its_top_bin():
    with pytest.raises(ClassifierError, match="8000 Hz is too low"):
        log_frequency_spectrogram(torch.zeros(1, 1, 4000), 8000)


def test_classifier_learns_held_out_tones(tone_spectrograms):
    model = train_pitch_classifier(*tone_spectrograms["train"], num_classes=len(CLASSIFIER_PITCHES), steps=60)
    assert classifier_accuracy(model, *tone_spectrograms["held_out"]) >= 0.9


def test_classifier_training_is_reproducible_for_a_seed(tone_spectrograms):
    spectrograms, labels = tone_spectrograms["train"]
    first, second = (train_pitch_classifier(spectrograms, labels, 5, steps=5, seed=3) for _ in range(2))
    assert all(torch.equal(a, b) for a, b in zip(first.parameters(), second.parameters()))


def test_classifier_rejects_labels_outside_its_classes(tone_spectrograms):
    spectrograms, labels = tone_spectrograms["train"]
    with pytest.raises(ClassifierError, match="labels must lie in 0..3"):
        train_pitch_classifier(spectrograms, labels, num_classes=4, steps=1)


# ---------------------------------------------------------------------------------------------- evaluate


class ToneSynth:
    """Stands in for render.Synth: plays varied tones at `pitch_map(requested pitch)`."""

    sample_rate = SR
    latent_dim = 4

    def __init__(self, pitches: list[int], pitch_map=lambda midi: midi):
        self.vocab = PitchVocab(40, 60)
        self.pitch_counts = [int(self.vocab.midi(i) in pitches) for i in range(self.vocab.size)]
        self.pitch_map = pitch_map
        self.trained_pitches = list(pitches)
        self.calls = 0

    def generate(self, pitches: list[int], z: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return varied_tones([self.pitch_map(p) for p in pitches], seed=100 + self.calls)


EVAL_PITCHES = [44, 47, 50, 53, 56]


@pytest.fixture(scope="module")
def real_batches() -> list[tuple[torch.Tensor, torch.Tensor]]:
    midi = torch.tensor(EVAL_PITCHES).repeat(20)  # 100 notes: 80 reference, 20 held out
    audio = varied_tones(midi.tolist(), seed=5)
    return [(audio[:60], midi[:60]), (audio[60:], midi[60:])]


def run_evaluate(synth: ToneSynth, real_batches) -> dict:
    return evaluate(synth, real_batches, notes_per_pitch=8, ndb_bins=10, classifier_steps=60, seed=0)


def test_evaluate_scores_a_faithful_synth_like_the_real_notes(real_batches):
    report = run_evaluate(ToneSynth(EVAL_PITCHES), real_batches)
    assert report["generated"]["notes"] == 40
    assert report["generated"]["compared_notes"] == report["real"]["compared_notes"] == 20
    assert report["generated"]["pa"] == report["real"]["pa"] == 1.0
    assert report["generated"]["pe"] == pytest.approx(math.log(5))
    assert report["classifier_accuracy"] >= 0.9


def test_evaluate_separates_a_collapsed_synth_from_a_faithful_one(real_batches):
    faithful = run_evaluate(ToneSynth(EVAL_PITCHES), real_batches)["generated"]
    collapsed = run_evaluate(ToneSynth(EVAL_PITCHES, pitch_map=lambda midi: 50), real_batches)["generated"]
    assert collapsed["pa"] == pytest.approx(0.2)
    assert collapsed["pe"] == 0.0
    assert collapsed["fd"] > 5 * faithful["fd"]
    assert collapsed["ndb"] > faithful["ndb"]


def test_evaluate_reports_what_a_generator_that_is_the_data_would_score(real_batches):
    """With instrument names, the report carries the perfect sampler's coverage and mix entropy at its own
    notes_per_pitch, and the table prints them; a draw of 8 notes never beats the whole data's mix."""
    from gansynth.commands.evaluate import format_report

    names = ["odd", "even"] * 50  # two "instruments" the classifier can only guess at: a mix of both
    report = evaluate(ToneSynth(EVAL_PITCHES), real_batches, names, notes_per_pitch=8, ndb_bins=10,
                      classifier_steps=60, seed=0)
    sampler = report["perfect_sampler"]
    assert 0.5 <= sampler["coverage"]["p5"] <= sampler["coverage"]["mean"] <= 1.0
    assert 0.0 < sampler["entropy"]["mean"] <= report["real"]["entropy"] + 1e-9
    assert f"coverage {sampler['coverage']['mean']:.3f}, mix entropy {sampler['entropy']['mean']:.3f}" in \
        format_report(report)
    parts = report["generated"]["nearest_real_parts"]
    assert f"generated notes, share by features: harmonics {parts['harmonics']:.2f}" in format_report(report)


def two_instrument_tones(midis: list[int], bright: list[bool]) -> torch.Tensor:
    """Mono notes [N, 1, 4000]: a "bright" instrument of eight equal partials, a "dull" one of a fundamental
    with a weak octave."""
    t = torch.arange(4000, dtype=torch.float64) / SR
    levels = {True: [1.0] * 8, False: [1.0, 0.05]}
    clips = [sum(a * torch.sin(2 * math.pi * midi_to_hz(m) * (h + 1) * t) for h, a in enumerate(levels[b]))
             for m, b in zip(midis, bright)]
    return torch.stack([0.5 * c / c.abs().max() for c in clips]).unsqueeze(1).float()


class CategorySynth(ToneSynth):
    """Plays the instrument its latent's category names (z's first two entries), or the other one."""

    instruments = ("bright", "dull")

    def __init__(self, pitches: list[int], swapped: bool = False):
        super().__init__(pitches)
        self.swapped = swapped

    def generate(self, pitches: list[int], z: torch.Tensor) -> torch.Tensor:
        plays_bright = (z[:, :2].argmax(1) == 0) != self.swapped
        return two_instrument_tones(list(pitches), plays_bright.tolist())


def test_category_fidelity_hears_whether_each_category_plays_its_instrument():
    """A synth whose categories play their instruments scores 1 per instrument; one that swaps them scores 0
    at the same mix entropy (which cannot tell the two apart); a synth without categories reports none."""
    from gansynth.commands.evaluate import format_report

    midi = torch.tensor(EVAL_PITCHES).repeat(20)
    bright = [i % 2 == 0 for i in range(len(midi))]
    real = [(two_instrument_tones(midi.tolist(), bright), midi)]
    names = ["bright" if b else "dull" for b in bright]
    settings = dict(notes_per_pitch=16, ndb_bins=10, classifier_steps=20, seed=0)
    faithful = evaluate(CategorySynth(EVAL_PITCHES), real, names, **settings)
    swapped = evaluate(CategorySynth(EVAL_PITCHES, swapped=True), real, names, **settings)
    assert faithful["generated"]["category_fidelity_per_instrument"] == {"bright": 1.0, "dull": 1.0}
    assert swapped["generated"]["category_fidelity"] == 0.0
    assert faithful["generated"]["entropy"] == pytest.approx(swapped["generated"]["entropy"])
    assert faithful["generated"]["entropy"] > 0.5
    assert "category plays: 1.000 (bright 1.00, dull 1.00; chance 0.500)" in format_report(faithful)
    plain = evaluate(ToneSynth(EVAL_PITCHES), real, names, **settings)
    assert "category_fidelity" not in plain["generated"] and "category plays" not in format_report(plain)


def test_generated_notes_play_the_same_latents_at_every_pitch():
    """Note i of every pitch comes from latent i, so the keyboard metric can follow one latent up the
    keyboard; the latents differ from each other."""
    from gansynth.evaluation.metrics import generated_note_batches

    class RecordingSynth(ToneSynth):
        def generate(self, pitches, z):
            self.seen = [*getattr(self, "seen", []), *zip(pitches, z)]
            return super().generate(pitches, z)

    synth = RecordingSynth(EVAL_PITCHES)
    for _ in generated_note_batches(synth, notes_per_pitch=3, seed=0):
        pass
    by_pitch = {pitch: torch.stack([z for p, z in synth.seen if p == pitch]) for pitch in EVAL_PITCHES}
    assert all(torch.equal(latents, by_pitch[44]) for latents in by_pitch.values())
    assert torch.cdist(by_pitch[44], by_pitch[44]).fill_diagonal_(1.0).min() > 0.1


def test_evaluate_rejects_real_pitches_outside_the_model(real_batches):
    audio, midi = real_batches[0]
    with pytest.raises(EvaluationError, match=r"pitches \[70\] are outside"):
        run_evaluate(ToneSynth(EVAL_PITCHES), [*real_batches, (audio[:1], torch.tensor([70]))])


# ---------------------------------------------------------------------------------------------- command line


def write_note_folder(folder, pitches: list[int], per_pitch: int) -> None:
    """NSynth-named mono 16-bit wavs of 0.25 s harmonic tones."""
    folder.mkdir()
    for pitch in pitches:
        for k in range(per_pitch):
            tone = varied_tones([pitch], seed=pitch * 100 + k)[0, 0].numpy()
            sf.write(folder / f"tone_{k:03d}-{pitch:03d}-100.wav", tone, SR, subtype="PCM_16")


def test_cli_writes_a_report_with_real_ceiling_above_an_untrained_model(tmp_path, capsys, console):
    ckpt = make_checkpoint(tmp_path / "tiny.ckpt")
    write_note_folder(tmp_path / "notes", [55, 60, 64, 67], per_pitch=5)
    out = tmp_path / "reports" / "report.json"
    console("evaluate", f"ckpt_path={ckpt}", f"data.path={tmp_path / 'notes'}", "notes_per_pitch=1", "ndb_bins=4",
            "classifier_steps=20", f"out={out}")
    report = json.loads(out.read_text())
    assert report["real"]["notes"] == 20
    digest = hashlib.sha256()
    for wav in sorted((tmp_path / "notes").glob("*.wav")):  # the render scored: every file's name and bytes
        digest.update(wav.name.encode() + b"\0" + wav.read_bytes())
    assert report["data_sha256"] == digest.hexdigest()
    assert report["generated"]["notes"] == 61  # one note for each of the checkpoint's 61 pitches
    assert len(report["generated"]["pa_per_channel"]) == 2  # the tiny checkpoint is stereo
    assert report["real"]["pa"] >= 0.9
    assert report["generated"]["pa"] <= 0.2
    assert "PA (mean)" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["data.path=x"], "ckpt_path is required: add ckpt_path=... to the command line"),
    (["ckpt_path=a.ckpt"], "data.path is required: add data.path=... to the command line"),
    (["ckpt_path=a.ckpt", "data.path=x", "notes_per_pitchh=3"],
     "notes_per_pitchh: no such setting (did you mean notes_per_pitch?)"),
    (["ckpt_path=a.ckpt", "data.path=x", "notes_per_pitch=all"],
     "notes_per_pitch: expected an integer like the default 32, got 'all'"),
    (["ckpt_path=missing.ckpt", "data.path=x"], "missing.ckpt: checkpoint file not found"),
])
def test_cli_bad_input_is_one_line_and_exit_2(argv, message, tmp_path, monkeypatch, capsys, console):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        console("evaluate", *argv)
    error = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert message in error and error.count("\n") == 1


def test_evaluate_rejects_too_few_real_notes(real_batches):
    audio, midi = real_batches[0]
    with pytest.raises(EvaluationError, match="11 notes split into 9 reference and 2 held-out"):
        evaluate(ToneSynth(EVAL_PITCHES), [(audio[:11], midi[:11])], held_out_fraction=0.2)

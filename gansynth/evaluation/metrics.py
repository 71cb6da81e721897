"""Evaluation metrics: PA, PE, NDB, a Fréchet distance and the timbre scores, beside controls.

The originals never released their evaluation code (facts 8.1), so "it learns pitch" had no
reproducible number. Here every metric is a pure function on tensors (usable during training), and
`evaluate` scores a checkpoint against real notes with the same functions, reporting the real notes'
own scores as the ceiling a perfect generator would reach.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from gansynth.evaluation.classifier import (
    classifier_accuracy,
    classifier_embeddings,
    log_frequency_spectrogram,
    train_pitch_classifier,
)
from gansynth.core.errors import GANSynthError
from gansynth.core.labels import LabelError, instrument_of
from gansynth.core.networks import latent_category
from gansynth.core.pitch import estimate_f0, hz_to_midi
from gansynth.evaluation.timbre import (TimbreReference, category_fidelity, perfect_sampler_scores, timbre_features,
                                       timbre_scores)

CENTS_TOLERANCE = 50.0
NDB_ALPHA = 0.05
MIN_REFERENCE_PER_BIN = 5
KMEANS_ITERATIONS = 100
GENERATE_CHUNK = 32


class EvaluationError(GANSynthError):
    """Inputs the metrics cannot score: mismatched shapes, too few notes, bad settings."""


# ----------------------------------------------------------------------------------------------
# Pitch accuracy and entropy


def estimate_note_pitches(audio: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """Audio [N, ch, n] -> f0 Hz [N, ch], each channel estimated on its own (NaN where unpitched)."""
    audio = torch.as_tensor(audio)
    if audio.dim() != 3 or audio.shape[0] == 0:
        raise EvaluationError(f"audio must be a non-empty [N, channels, samples] batch, got {tuple(audio.shape)}")
    n_clips, n_channels, n_samples = audio.shape
    return estimate_f0(audio.reshape(n_clips * n_channels, n_samples), sample_rate).reshape(n_clips, n_channels)


def pitch_entropy(predicted_midi: torch.Tensor) -> float:
    """Entropy (nats) of the histogram of rounded predicted pitches; NaN (unpitched) entries are left out.

    A generator asked for k pitches equally often scores log(k) when it delivers them all, 0 when it
    collapses to one pitch.
    """
    voiced = torch.as_tensor(predicted_midi).flatten()
    voiced = voiced[~torch.isnan(voiced)]
    if voiced.numel() == 0:
        return float("nan")
    counts = torch.unique(voiced.round(), return_counts=True)[1].double()
    p = counts / counts.sum()
    return float((p * p.reciprocal().log()).sum())


def pitch_scores(f0_hz: torch.Tensor, target_midi: torch.Tensor) -> dict:
    """PA (hits within ±50 cents of the target; per channel and mean), PE and the voiced fraction.

    f0_hz [N, ch] from `estimate_note_pitches`, target_midi [N]. An unpitched clip counts as a miss.
    """
    target = torch.as_tensor(target_midi, dtype=torch.float64, device=f0_hz.device).flatten()
    if f0_hz.dim() != 2 or f0_hz.shape[0] != target.numel():
        raise EvaluationError(f"need f0 [N, channels] and N target pitches, got f0 {tuple(f0_hz.shape)} "
                              f"and {target.numel()} targets")
    predicted = hz_to_midi(f0_hz.double())  # [N, ch], NaN where unpitched
    hits = (100.0 * (predicted - target[:, None])).abs() <= CENTS_TOLERANCE  # NaN compares False
    per_channel = hits.double().mean(0)  # [ch]
    return {
        "pa": float(per_channel.mean()),
        "pa_per_channel": [float(v) for v in per_channel],
        "pe": pitch_entropy(predicted),
        "voiced": float((~torch.isnan(predicted)).double().mean()),
    }


def pitch_accuracy(audio: torch.Tensor, sample_rate: int, target_midi: torch.Tensor) -> dict:
    """Score clips [N, ch, n] against their conditioned MIDI pitches [N]; see `pitch_scores` for the keys."""
    return pitch_scores(estimate_note_pitches(audio, sample_rate), target_midi)


# ----------------------------------------------------------------------------------------------
# NDB


def _check_features(name: str, features: torch.Tensor, min_rows: int = 1) -> torch.Tensor:
    features = torch.as_tensor(features).to("cpu", torch.float64)
    if features.dim() != 2 or features.shape[0] < min_rows:
        raise EvaluationError(f"{name}: need at least {min_rows} feature rows [N, D], got {tuple(features.shape)}")
    if not torch.isfinite(features).all():
        raise EvaluationError(f"{name}: features contain NaN or infinite values")
    return features


def _kmeans(features: torch.Tensor, k: int, seed: int) -> torch.Tensor:
    """Centroids [k, D] by k-means++ seeding and Lloyd iterations; deterministic for a seed."""
    generator = torch.Generator().manual_seed(seed)
    n = features.shape[0]
    centroids = features[torch.randint(n, (1,), generator=generator)]  # [1, D]
    for _ in range(1, k):
        squared = torch.cdist(features, centroids).amin(1).square()  # [N] distance to nearest chosen
        weights = squared if squared.sum() > 0 else torch.ones(n, dtype=features.dtype)
        centroids = torch.cat([centroids, features[torch.multinomial(weights, 1, generator=generator)]])
    assignment = torch.full((n,), -1)
    for _ in range(KMEANS_ITERATIONS):
        new_assignment = torch.cdist(features, centroids).argmin(1)  # [N]
        if torch.equal(new_assignment, assignment):
            break
        assignment = new_assignment
        sums = torch.zeros_like(centroids).index_add_(0, assignment, features)  # [k, D]
        counts = torch.bincount(assignment, minlength=k).to(features.dtype)[:, None]
        centroids = torch.where(counts > 0, sums / counts.clamp_min(1.0), centroids)  # empty: keep
    return centroids


def number_of_different_bins(
    reference: torch.Tensor, candidate: torch.Tensor, bins: int = 50, alpha: float = NDB_ALPHA, seed: int = 0
) -> dict:
    """NDB (Richardson & Weiss 2018): cluster the reference into bins, count bins whose share differs.

    Each bin's proportion of reference vs candidate samples is compared with a two-proportion z-test at
    `alpha`. The bin count is capped at one bin per 5 reference samples, so every bin can be tested.
    """
    reference = _check_features("NDB reference", reference, min_rows=2 * MIN_REFERENCE_PER_BIN)
    candidate = _check_features("NDB candidate", candidate)
    if reference.shape[1] != candidate.shape[1]:
        raise EvaluationError(f"NDB: reference has {reference.shape[1]} features, candidate {candidate.shape[1]}")
    if bins < 2 or not 0 < alpha < 1:
        raise EvaluationError(f"NDB: need bins >= 2 and 0 < alpha < 1, got bins={bins}, alpha={alpha}")
    k = min(bins, reference.shape[0] // MIN_REFERENCE_PER_BIN)
    centroids = _kmeans(reference, k, seed)
    n_ref, n_cand = reference.shape[0], candidate.shape[0]
    count_ref = torch.bincount(torch.cdist(reference, centroids).argmin(1), minlength=k).double()
    count_cand = torch.bincount(torch.cdist(candidate, centroids).argmin(1), minlength=k).double()
    p_ref, p_cand = count_ref / n_ref, count_cand / n_cand
    pooled = (count_ref + count_cand) / (n_ref + n_cand)
    standard_error = (pooled * (1 - pooled) * (1 / n_ref + 1 / n_cand)).sqrt()
    z = (p_ref - p_cand).abs() / standard_error.clamp_min(1e-300)
    p_value = torch.special.erfc(z / math.sqrt(2.0))  # two-sided normal tail
    different = (p_value < alpha) & (standard_error > 0)
    ndb = int(different.sum())
    return {"ndb": ndb, "ndb_fraction": ndb / k, "bins": k}


# ----------------------------------------------------------------------------------------------
# Fréchet distance


def frechet_distance(features_a: torch.Tensor, features_b: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets [N, D] and [M, D].

    ||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^1/2). The trace of the root is taken from the
    eigenvalues of S_a^1/2 S_b S_a^1/2, which is symmetric, so it stays real and stable even when the
    covariances are singular (fewer notes than feature dimensions).
    """
    a = _check_features("Fréchet distance set A", features_a, min_rows=2).numpy()
    b = _check_features("Fréchet distance set B", features_b, min_rows=2).numpy()
    if a.shape[1] != b.shape[1]:
        raise EvaluationError(f"Fréchet distance: sets have {a.shape[1]} and {b.shape[1]} features")
    mean_a, mean_b = a.mean(0), b.mean(0)
    cov_a, cov_b = (np.atleast_2d(np.cov(x, rowvar=False, ddof=1)) for x in (a, b))  # [D, D] even for D = 1
    eigval_a, eigvec_a = np.linalg.eigh(cov_a)
    root_a = (eigvec_a * np.sqrt(eigval_a.clip(min=0.0))) @ eigvec_a.T
    cross = np.linalg.eigvalsh(root_a @ cov_b @ root_a).clip(min=0.0)
    trace_term = np.trace(cov_a) + np.trace(cov_b) - 2.0 * np.sqrt(cross).sum()
    return float(np.square(mean_a - mean_b).sum() + max(trace_term, 0.0))


# ----------------------------------------------------------------------------------------------
# Scoring a generator against real notes


@dataclass(frozen=True)
class _NoteSet:
    """What the metrics need from a set of notes: MIDI labels [N], f0 per channel [N, ch] and
    log-frequency spectrograms [N, ch, 8, F]; built batch by batch so that thousands of long stereo
    notes never sit in memory as audio.
    """

    midi: torch.Tensor
    f0: torch.Tensor
    spectrograms: torch.Tensor
    timbre: torch.Tensor  # [N, D] pitch-invariant timbre features

    @classmethod
    def from_batches(
        cls, batches: Iterable[tuple[torch.Tensor, torch.Tensor]], sample_rate: int, name: str
    ) -> _NoteSet:
        midi, f0, spectrograms, timbre = [], [], [], []
        for audio, labels in batches:
            audio = torch.as_tensor(audio, dtype=torch.float32)
            labels = torch.as_tensor(labels).flatten()
            if audio.dim() != 3 or audio.shape[0] != labels.numel():
                raise EvaluationError(f"{name}: need audio [N, channels, samples] with N labels, got "
                                      f"{tuple(audio.shape)} and {labels.numel()} labels")
            midi.append(labels.long())
            f0.append(estimate_note_pitches(audio, sample_rate))
            spectrograms.append(log_frequency_spectrogram(audio, sample_rate))
            timbre.append(timbre_features(audio, labels, sample_rate))
        if not midi:
            raise EvaluationError(f"{name}: no notes to evaluate")
        return cls(torch.cat(midi), torch.cat(f0), torch.cat(spectrograms), torch.cat(timbre))

    def __len__(self) -> int:
        return len(self.midi)

    def subset(self, index: torch.Tensor) -> _NoteSet:
        return _NoteSet(self.midi[index], self.f0[index], self.spectrograms[index], self.timbre[index])

    @property
    def flat_spectrograms(self) -> torch.Tensor:
        return self.spectrograms.flatten(1)  # [N, ch * 8 * F]


def evaluation_latents(synth, notes_per_pitch: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(MIDI [N], latents [N, latent_dim]) of the generated notes: every trained pitch, pitch by pitch, note i
    of every pitch from latent i."""
    pitches = synth.trained_pitches
    midi = torch.tensor(pitches).repeat_interleave(notes_per_pitch)  # [N]
    latents = torch.randn(notes_per_pitch, synth.latent_dim, generator=torch.Generator().manual_seed(seed))
    return midi, latents.repeat(len(pitches), 1)


def instruments_played(synth, notes_per_pitch: int, seed: int, heard: Sequence[str]) -> list[str] | None:
    """The instrument each of `generated_note_batches`' notes asks for through its latent's category, or None
    unless the model's categories are exactly the instruments ``heard`` (the classifier's): a model trained
    without model.instrument_projection has none, one trained on other data has others."""
    names = tuple(getattr(synth, "instruments", ()))
    if not names or set(names) != set(heard):
        return None
    categories = latent_category(evaluation_latents(synth, notes_per_pitch, seed)[1], len(names))
    return [names[c] for c in categories]


def generated_note_batches(
    synth, notes_per_pitch: int, seed: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(audio [b, ch, n], MIDI [b]) for notes_per_pitch notes of every pitch the model was trained on,
    pitch by pitch: the same notes_per_pitch latents at every pitch, as a musician plays one timbre."""
    pitches = synth.trained_pitches
    if notes_per_pitch < 1 or not pitches:
        raise EvaluationError(f"need notes_per_pitch >= 1 and a model with trained pitches, got "
                              f"notes_per_pitch={notes_per_pitch} and {len(pitches)} pitches")
    midi, latents = evaluation_latents(synth, notes_per_pitch, seed)
    for begin in range(0, len(midi), GENERATE_CHUNK):
        chunk = midi[begin : begin + GENERATE_CHUNK]
        yield synth.generate(chunk.tolist(), latents[begin : begin + GENERATE_CHUNK]), chunk


def mean_note_batches(
    dataset, codec, vocab, notes_per_pitch: int, device: str | torch.device = "cpu"
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The "mean note" control: each pitch's mean normalised image over a dataset of real (raw image,
    pitch index, instrument index) items, decoded and repeated notes_per_pitch times. A real pitched drone with one fixed
    timbre: it may pass PA, never timbre. The means are accumulated batch by batch."""
    sums = torch.zeros(vocab.size, *codec.image_shape, device=device)  # [P, C, T, F]
    counts = torch.zeros(vocab.size, device=device)
    for images, pitch_index, _ in torch.utils.data.DataLoader(dataset, batch_size=64):
        pitch_index = pitch_index.to(device)
        sums.index_add_(0, pitch_index, codec.normalize(images.to(device)))
        counts.index_add_(0, pitch_index, torch.ones(len(pitch_index), device=device))
    for index in torch.nonzero(counts).flatten().tolist():
        mean = (sums[index] / counts[index])[None]  # [1, C, T, F]
        audio = codec.decode(codec.denormalize(mean)).float().cpu()  # [1, ch, n]
        yield audio.expand(notes_per_pitch, -1, -1), torch.full((notes_per_pitch,), vocab.midi(index))


def white_noise_batches(
    pitches: Sequence[int], notes_per_pitch: int, channels: int, samples: int, rms: float, seed: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The white-noise control: Gaussian noise at the real notes' RMS, "asked" for every pitch."""
    generator = torch.Generator().manual_seed(seed)
    for pitch in pitches:
        yield (rms * torch.randn(notes_per_pitch, channels, samples, generator=generator),
               torch.full((notes_per_pitch,), pitch))


def datamodule_note_batches(
    datamodule, codec, device: str | torch.device = "cpu", batch_size: int = 16
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(audio [b, ch, n], MIDI [b]) of a DataModule's real notes, decoded from its cached images.

    Decoding the cache measures the real notes through the same representation the model learns.
    """
    datamodule.scan()
    datamodule.prepare_data()
    datamodule.setup("fit")
    datamodule.set_batch_size(1)
    dataset = datamodule.train_dataloader().dataset
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False)
    with torch.inference_mode():
        for images, pitch_index, _ in loader:  # [b, C, T, F] raw units, [b], instruments
            yield codec.decode(images.to(device)).cpu(), pitch_index + datamodule.pitch_low


def _split(n: int, held_out_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded (train, held-out) index split with at least one note on each side."""
    if not 0 < held_out_fraction < 1:
        raise EvaluationError(f"held_out_fraction={held_out_fraction} must lie strictly between 0 and 1")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    held = min(n - 1, max(1, round(n * held_out_fraction)))
    return order[held:], order[:held]


def evaluate(
    synth,
    real_batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    instruments: Sequence[str] | None = None,
    controls: dict[str, Iterable[tuple[torch.Tensor, torch.Tensor]]] | None = None,
    notes_per_pitch: int = 8,
    ndb_bins: int = 50,
    classifier_steps: int = 500,
    held_out_fraction: float = 0.2,
    seed: int = 0,
) -> dict:
    """Score a Synth's generated notes, and each control's notes, against real notes.

    ``real_batches`` yields (audio [b, ch, n], MIDI [b]) of the real notes as the model's codec returns
    them; ``instruments`` names each real note's instrument (timbre metrics are left out without it or
    with fewer than two instruments); ``controls`` maps a name to note batches scored like the generated
    ones (untrained G, mean note, white noise: what every metric must fail).

    A seeded split of the real notes trains the pitch classifier and the NDB clusters; the held-out
    real notes are scored against that same training part as the "real" ceiling. NDB and FD depend
    on how many notes are compared (FD is biased upward for small sets), so every column compares
    the same number of notes: a seeded sample of min(held-out, generated) from each side.
    PA, PE and the timbre metrics use every note; the real column's nearest-real ratio leaves each
    note's own copy out, and its keyboard takes each note's instrument as its voice.
    ``perfect_sampler`` holds the coverage and mix entropy that ``notes_per_pitch`` real notes drawn
    at random per pitch score: the ceiling of those two at this many notes.
    """
    real = _NoteSet.from_batches(real_batches, synth.sample_rate, "real notes")
    train_index, held_index = _split(len(real), held_out_fraction, seed)
    if len(train_index) < 2 * MIN_REFERENCE_PER_BIN or len(held_index) < 2:
        raise EvaluationError(f"real notes: {len(real)} notes split into {len(train_index)} reference and "
                              f"{len(held_index)} held-out; need at least {2 * MIN_REFERENCE_PER_BIN} and 2")
    outside = sorted({int(m) for m in real.midi if not synth.vocab.contains(int(m))})
    if outside:
        raise EvaluationError(f"real notes: pitches {outside} are outside the model's range "
                              f"{synth.vocab.low}..{synth.vocab.high}")
    timbre = None
    if instruments is not None and len(set(instruments)) >= 2:
        if len(instruments) != len(real):
            raise EvaluationError(f"got {len(instruments)} instrument names for {len(real)} real notes")
        timbre = TimbreReference.fit(real.timbre, real.midi, list(instruments))
    candidates = {"generated": generated_note_batches(synth, notes_per_pitch, seed), **(controls or {})}
    scored = {name: _NoteSet.from_batches(batches, synth.sample_rate, f"{name} notes")
              for name, batches in candidates.items()}
    train, held = real.subset(train_index), real.subset(held_index)
    compared = min(len(held), *(len(notes) for notes in scored.values()))
    classifier = train_pitch_classifier(train.spectrograms, train.midi - synth.vocab.low, synth.vocab.size,
                                        steps=classifier_steps, seed=seed)
    train_embeddings = classifier_embeddings(classifier, train.spectrograms)

    def scores(notes: _NoteSet, sample_from: _NoteSet, is_real: bool = False) -> dict:
        order = torch.randperm(len(sample_from), generator=torch.Generator().manual_seed(seed))
        sample = sample_from.subset(order[:compared])
        result = {
            **pitch_scores(notes.f0, notes.midi),
            "notes": len(notes),
            **number_of_different_bins(train.flat_spectrograms, sample.flat_spectrograms, ndb_bins, seed=seed),
            "fd": frechet_distance(train_embeddings, classifier_embeddings(classifier, sample.spectrograms)),
            "compared_notes": compared,
        }
        if timbre is not None:
            result.update(timbre_scores(timbre, notes.timbre, notes.midi, leave_one_out=is_real,
                                        voice=timbre.instrument if is_real else None))
        return result

    report = {name: scores(notes, notes) for name, notes in scored.items()}
    played = instruments_played(synth, notes_per_pitch, seed, timbre.names) if timbre is not None else None
    if played is not None:
        report["generated"].update(category_fidelity(timbre, scored["generated"].timbre, played))
    report["real"] = scores(real, held, is_real=True)
    report.update({
        "columns": ["generated", "real", *(controls or {})],
        "classifier_accuracy": classifier_accuracy(classifier, held.spectrograms, held.midi - synth.vocab.low),
        "reference_notes": len(train),
        "notes_per_pitch": notes_per_pitch,
        "seed": seed,
    })
    if timbre is not None:
        report["instruments"] = timbre.names
        report["instrument_classifier_leave_one_pitch_out"] = timbre.leave_one_pitch_out_accuracy()
        report["perfect_sampler"] = perfect_sampler_scores(timbre, notes_per_pitch, seed=seed)
    return report


def real_instruments(datamodule) -> list[str] | None:
    """Each real note's instrument from its NSynth-style file name, or None when names carry none."""
    try:
        return [instrument_of(path) for path in datamodule.scan().files]
    except LabelError:
        return None

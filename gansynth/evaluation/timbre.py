"""Timbre metrics: does a generator make the instruments of its data, with their variety?

Pitch accuracy alone is passed by a decoded "mean note" (a real pitched drone). What separates a
GAN that learned its data from such a template is timbre: which instrument a note sounds like,
whether one pitch gets several instruments from several latents, and how close each note comes to
some real note. All of it is measured on pitch-invariant features, so notes of different pitches
compare:

- harmonic profile: the level of harmonics 1..H relative to the strongest, read at multiples of the
  asked-for f0 (dB);
- temporal envelope: RMS of equal segments of the clip relative to the loudest (dB), which carries
  the attack and the decay;
- noisiness: the energy between the harmonics relative to the energy on them (dB).

An instrument classifier (nearest centroid in standardised features) is fitted on real notes whose
instrument comes from the file name; generated notes are then scored per pitch for coverage and mix
entropy, for diversity relative to the real notes of that pitch, and for the distance to the
nearest real note relative to how far real notes are from their neighbours of other pitches.
Coverage and mix entropy are counted over the few notes scored per pitch, so they read low even for a
generator that is the data; `perfect_sampler_scores` measures how low, at any number of notes per pitch.

One latent is one instrument to a musician who plays it across the keyboard. ``keyboard`` measures that:
each note comes from a voice (the latent it was drawn from, or for real notes the instrument), and the
score is how much the voice tells which instrument the note sounds like, I(voice; instrument) / log(n).
A note farther than ``RECOGNISABLE_RATIO`` real-neighbour distances from every real note sounds like no
instrument and counts as an even share of all of them: otherwise an untrained G, whose latents pick
consistently among noises far from every real note, would score above a trained one (measured: 0.38
against 0.21). A latent that drifts from one instrument to another up the keyboard scores low although
every pitch may hold a fair mix; a timbre the latent does not choose (the mean note, noise) scores 0.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from gansynth.core.errors import GANSynthError
from gansynth.core.pitch import midi_to_hz

HARMONICS = 10
ENVELOPE_SEGMENTS = 8
FLOOR_DB = -80.0
PEAK_HALF_WIDTH = 0.03  # a harmonic's peak is searched within +-3 % (half a semitone) of k * f0
RECOGNISABLE_RATIO = 3.0  # issue 9's nearest-real floor: farther from every real note is no instrument
FEATURE_GROUPS = {  # the columns of `timbre_features`, by what they describe
    "harmonics": slice(0, HARMONICS),
    "envelope": slice(HARMONICS, HARMONICS + ENVELOPE_SEGMENTS),
    "noisiness": slice(HARMONICS + ENVELOPE_SEGMENTS, HARMONICS + ENVELOPE_SEGMENTS + 1),
}


class TimbreError(GANSynthError):
    """Notes the timbre metrics cannot score (shapes, too few instruments or pitches)."""


def _db(power: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    return (10.0 * torch.log10(power.clamp_min(1e-20) / reference.clamp_min(1e-20))).clamp_min(FLOOR_DB)


def timbre_features(audio: torch.Tensor, midi: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """Audio [N, ch, n] of notes asked to sound at MIDI pitches [N] -> features [N, D].

    Channels are measured one by one and averaged, so mono and stereo notes share one feature space.
    D = HARMONICS + ENVELOPE_SEGMENTS + 1.
    """
    audio = torch.as_tensor(audio, dtype=torch.float32)
    if audio.dim() != 3 or audio.shape[0] != len(midi) or audio.shape[-1] < ENVELOPE_SEGMENTS:
        raise TimbreError(f"need audio [N, channels, samples] and N pitches, got {tuple(audio.shape)} "
                          f"and {len(midi)} pitches")
    n_notes, n_channels, n = audio.shape
    waves = audio.reshape(n_notes * n_channels, n)  # [M, n]
    f0 = midi_to_hz(torch.as_tensor(midi, dtype=torch.float64)).repeat_interleave(n_channels)  # [M]

    # Harmonic profile and noisiness from one long, zero-padded FFT of the whole clip.
    n_fft = 1 << math.ceil(math.log2(4 * n))
    spectrum = torch.fft.rfft(waves * torch.hann_window(n, dtype=waves.dtype), n_fft).abs().square()  # [M, K]
    bin_hz = sample_rate / n_fft
    freqs = torch.arange(spectrum.shape[-1], dtype=torch.float64) * bin_hz  # [K]
    ratio = freqs[None, :] / f0[:, None]  # [M, K] frequency in multiples of f0
    nearest = ratio.round()
    on_harmonic = ((ratio - nearest).abs() <= PEAK_HALF_WIDTH * nearest.clamp_min(1)) & (nearest >= 1)
    harmonic_levels = torch.stack([
        torch.where(on_harmonic & (nearest == k), spectrum, 0.0).amax(-1) for k in range(1, HARMONICS + 1)
    ], dim=1)  # [M, H]
    profile = _db(harmonic_levels, harmonic_levels.amax(-1, keepdim=True))  # [M, H]
    audible = (ratio >= 0.5) & (ratio <= HARMONICS + 0.5)
    between = torch.where(audible & ~on_harmonic, spectrum, 0.0).sum(-1)
    on = torch.where(audible & on_harmonic, spectrum, 0.0).sum(-1)
    noisiness = _db(between, on)[:, None]  # [M, 1]

    # Temporal envelope: RMS of equal segments, relative to the loudest.
    segments = waves[:, : n - n % ENVELOPE_SEGMENTS].reshape(len(waves), ENVELOPE_SEGMENTS, -1)
    energy = segments.square().mean(-1)  # [M, S]
    envelope = _db(energy, energy.amax(-1, keepdim=True))  # [M, S]

    features = torch.cat([profile.float(), envelope, noisiness.float()], dim=1)  # [M, D]
    return features.reshape(n_notes, n_channels, -1).mean(1)  # [N, D]


@dataclass
class TimbreReference:
    """Real notes' features, pitches and instruments, standardised, with a nearest-centroid classifier."""

    features: torch.Tensor  # [R, D] standardised
    midi: torch.Tensor  # [R]
    instrument: torch.Tensor  # [R] index into names
    names: list[str]
    mean: torch.Tensor  # [D]
    std: torch.Tensor  # [D]

    @classmethod
    def fit(cls, features: torch.Tensor, midi: torch.Tensor, instruments: list[str]) -> TimbreReference:
        names = sorted(set(instruments))
        if len(names) < 2:
            raise TimbreError(f"timbre metrics need notes of at least 2 instruments, got {names}")
        midi = torch.as_tensor(midi).long()
        if len(set(midi.tolist())) < 2:
            raise TimbreError("timbre metrics need real notes of at least 2 pitches")
        mean, std = features.mean(0), features.std(0).clamp_min(1.0)  # dB features: 1 dB floor
        return cls((features - mean) / std, midi, torch.tensor([names.index(i) for i in instruments]),
                   names, mean, std)

    def standardise(self, features: torch.Tensor) -> torch.Tensor:
        return (features - self.mean) / self.std

    def centroids(self, exclude_midi: int | None = None) -> torch.Tensor:
        keep = self.midi != exclude_midi if exclude_midi is not None else torch.ones_like(self.midi, dtype=torch.bool)
        return torch.stack([self.features[keep & (self.instrument == i)].mean(0) for i in range(len(self.names))])

    def classify(self, standardised: torch.Tensor) -> torch.Tensor:
        """Instrument index [N] of the nearest instrument centroid."""
        return torch.cdist(standardised, self.centroids()).argmin(1)

    def leave_one_pitch_out_accuracy(self) -> float:
        """Accuracy on each real pitch with centroids fitted on the other pitches: is it pitch-invariant?"""
        hits = [
            (torch.cdist(self.features[self.midi == p], self.centroids(exclude_midi=p)).argmin(1)
             == self.instrument[self.midi == p])
            for p in self.midi.unique().tolist()
        ]
        return float(torch.cat(hits).float().mean())

    def neighbour_distance(self) -> float:
        """Mean distance from a real note to the nearest real note of another pitch: the yardstick."""
        distances = torch.cdist(self.features, self.features)
        distances[self.midi[:, None] == self.midi[None, :]] = float("inf")
        return float(distances.amin(1).mean())


def voice_within_pitch(midi: torch.Tensor) -> torch.Tensor:
    """[N] each note's rank among the notes of its pitch, in order: the latent's index when the same
    latents are played at every pitch."""
    voice = torch.empty_like(midi)
    for pitch in midi.unique().tolist():
        mine = torch.nonzero(midi == pitch).flatten()
        voice[mine] = torch.arange(len(mine))
    return voice


def keyboard_consistency(predicted: torch.Tensor, voice: torch.Tensor, n_instruments: int) -> float:
    """I(voice; predicted instrument) / log(n_instruments) over notes [N], within [0, 1] (see the module
    docstring); ``predicted`` == n_instruments marks a note that sounds like no instrument, which counts
    as an even share of every instrument: it tells nothing about which one its latent plays."""
    def entropy(counts: torch.Tensor) -> torch.Tensor:  # [..., n] -> [...] nats
        share = counts / counts.sum(-1, keepdim=True).clamp_min(1)
        return -(share * share.clamp_min(1e-12).log()).sum(-1)

    one_hot = torch.nn.functional.one_hot(predicted.clamp_max(n_instruments - 1), n_instruments).double()
    one_hot[predicted == n_instruments] = 1.0 / n_instruments  # no instrument: says nothing about any of them
    joint = torch.zeros(int(voice.max()) + 1, n_instruments, dtype=torch.float64).index_add_(0, voice, one_hot)
    per_voice = joint.sum(1)
    within = (per_voice * entropy(joint)).sum() / per_voice.sum()
    information = float((entropy(joint.sum(0)) - within) / math.log(n_instruments))
    return max(0.0, information)  # no -0.0 from rounding


def category_fidelity(reference: TimbreReference, features: torch.Tensor, played: Sequence[str]) -> dict:
    """How often a note is heard (the reference's classifier) as the instrument its latent's category plays.

    ``played`` [N] names each note's instrument by its latent category (a model trained with
    ``model.instrument_projection``). The mix entropy cannot tell a category that plays its instrument from
    one that spreads over all of them; this can. ``category_fidelity``: the per-instrument shares averaged
    (chance 1 / instruments, the real notes' own ceiling is the classifier's accuracy)."""
    heard = reference.classify(reference.standardise(features))
    per_instrument = {}
    for name in sorted(set(played)):
        mine = torch.tensor([claimed == name for claimed in played])
        per_instrument[name] = float((heard[mine] == reference.names.index(name)).double().mean())
    return {"category_fidelity": sum(per_instrument.values()) / len(per_instrument),
            "category_fidelity_per_instrument": per_instrument}


def timbre_scores(reference: TimbreReference, features: torch.Tensor, midi: torch.Tensor,
                  leave_one_out: bool = False, voice: torch.Tensor | None = None) -> dict:
    """Coverage, mix entropy, diversity, nearest-real ratio and keyboard of notes [N, D] at MIDI pitches [N].

    - coverage: distinct predicted instruments per pitch over the data's instrument count, averaged;
    - entropy: entropy of each pitch's predicted instrument mix over log(instrument count), averaged
      (``entropy_per_pitch``: each pitch's own, to see which end of the keyboard loses an instrument);
    - diversity: mean pairwise distance between notes of a pitch over the same for the real notes of
      that pitch, averaged over pitches both sides have at least two notes of;
    - nearest-real ratio: mean distance to the nearest real note over ``neighbour_distance``. With
      ``leave_one_out`` (scoring the reference itself) a note's own copy is not its nearest note;
      ``nearest_real_parts``: the share of that squared distance in each of ``FEATURE_GROUPS``, which
      says what puts the notes far away (an envelope, a spectrum, noise);
    - keyboard: ``keyboard_consistency`` with each note's ``voice`` [N] (default: its rank within its
      pitch, the latent's index when every pitch plays the same latents in the same order); a note
      beyond ``RECOGNISABLE_RATIO`` of every real note counts as no instrument.
    """
    standardised = reference.standardise(features)
    midi = torch.as_tensor(midi).long()
    predicted = reference.classify(standardised)
    n_instruments = len(reference.names)
    pitches = midi.unique().tolist()
    coverage, entropy, diversity = [], [], []
    for pitch in pitches:
        mine = midi == pitch
        counts = torch.bincount(predicted[mine], minlength=n_instruments).double()
        share = counts[counts > 0] / counts.sum()
        coverage.append(len(share) / n_instruments)
        entropy.append(float(-(share * share.log()).sum()) / math.log(n_instruments))
        real = reference.features[reference.midi == pitch]
        if mine.sum() >= 2 and len(real) >= 2:
            diversity.append(float(torch.pdist(standardised[mine]).mean() / torch.pdist(real).mean()))
    distances = torch.cdist(standardised, reference.features)  # [N, R]
    if leave_one_out:
        distances[distances <= 1e-9] = float("inf")
    nearest_distance, nearest_index = distances.min(1)
    nearest = nearest_distance / reference.neighbour_distance()  # [N] in real-neighbour distances
    squared = (standardised - reference.features[nearest_index]).square()  # [N, D]
    parts = {name: float(squared[:, columns].sum() / squared.sum().clamp_min(1e-12))
             for name, columns in FEATURE_GROUPS.items()}
    return {
        "coverage": sum(coverage) / len(coverage),
        "entropy": sum(entropy) / len(entropy),
        "entropy_per_pitch": dict(zip(pitches, entropy)),
        "diversity": sum(diversity) / len(diversity) if diversity else float("nan"),
        "nearest_real_ratio": float(nearest.mean()),
        "nearest_real_parts": parts,
        "keyboard": keyboard_consistency(torch.where(nearest <= RECOGNISABLE_RATIO, predicted, n_instruments),
                                         voice_within_pitch(midi) if voice is None else voice, n_instruments),
        "instrument_mix": {name: int((predicted == i).sum()) for i, name in enumerate(reference.names)},
    }


def perfect_sampler_scores(reference: TimbreReference, notes_per_pitch: int, repeats: int = 200,
                           seed: int = 0) -> dict:
    """Coverage and mix entropy of a generator that is the data: ``notes_per_pitch`` reference notes drawn
    per pitch at random (with replacement), scored as generated notes are; mean, sd and 5th percentile
    over ``repeats`` draws. With 8 notes per pitch of 3 equally common instruments the per-pitch entropy
    of the draw averages well below that of the whole data, which is what a floor on it must allow for."""
    generator = torch.Generator().manual_seed(seed)
    by_pitch = [torch.nonzero(reference.midi == p).flatten() for p in reference.midi.unique().tolist()]
    features = reference.features * reference.std + reference.mean  # the notes' own, unstandardised
    draws: dict[str, list[float]] = {"coverage": [], "entropy": []}
    for _ in range(repeats):
        index = torch.cat([rows[torch.randint(len(rows), (notes_per_pitch,), generator=generator)]
                           for rows in by_pitch])
        scores = timbre_scores(reference, features[index], reference.midi[index])
        for key, values in draws.items():
            values.append(scores[key])
    summary = {}
    for key, values in draws.items():
        v = torch.tensor(values, dtype=torch.float64)
        summary[key] = {"mean": float(v.mean()), "sd": float(v.std()), "p5": float(v.quantile(0.05))}
    return summary

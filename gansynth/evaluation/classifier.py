"""A small pitch classifier trained on the project's own real notes, for Fréchet distance features.

The paper's classifier was trained on NSynth and never released; downloading another model's weights
would tie the metric to data we do not train on. So the evaluation trains this net from scratch on
the real notes, with a fixed seed and step budget, and reports its held-out accuracy next to the
distance so a reader can tell whether its features mean anything.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from gansynth.core.errors import GANSynthError
from gansynth.core.pitch import midi_to_hz

LOWEST_BIN_MIDI = 24.0
HIGHEST_BIN_MIDI = 108.0
BINS_PER_SEMITONE = 2
TIME_FRAMES = 8
DB_FLOOR = -100.0
DYNAMIC_RANGE_DB = 80.0
EMBEDDING_SIZE = 64
FEATURE_CHUNK = 32  # clips per STFT call, to bound memory on long stereo clips


class ClassifierError(GANSynthError):
    """Audio, labels or settings the pitch classifier cannot use."""


def _log_frequency_filterbank(sample_rate: int, n_fft: int) -> torch.Tensor:
    """[n_fft // 2 + 1, F] triangles on a half-semitone axis; each column sums to 1.

    Triangles narrower than an FFT bin at the low end would be empty; they take the nearest FFT bin
    instead, so every output bin carries signal.
    """
    n_bins = int((HIGHEST_BIN_MIDI - LOWEST_BIN_MIDI) * BINS_PER_SEMITONE) + 1
    centres = LOWEST_BIN_MIDI + torch.arange(n_bins, dtype=torch.float64) / BINS_PER_SEMITONE  # [F]
    fft_hz = torch.arange(n_fft // 2 + 1, dtype=torch.float64) * sample_rate / n_fft  # [K]
    fft_midi = 69.0 + 12.0 * torch.log2(fft_hz.clamp_min(1e-3) / 440.0)
    distance = (fft_midi[:, None] - centres[None, :]).abs() * BINS_PER_SEMITONE  # [K, F] in bins
    weights = (1.0 - distance).clamp_min(0.0)
    empty = weights.sum(0) == 0
    nearest = (fft_hz[:, None] - midi_to_hz(centres)[None, :]).abs().argmin(0)  # [F]
    weights[nearest[empty], torch.nonzero(empty).squeeze(-1)] = 1.0
    return (weights / weights.sum(0, keepdim=True)).float()


def log_frequency_spectrogram(audio: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """Audio [N, ch, n] -> magnitude in dB on a log-frequency axis, pooled to 8 frames: [N, ch, 8, F].

    A log-frequency axis turns a pitch change into a shift, which a small conv net learns quickly;
    pooling time to a fixed count makes any clip length give the same feature size.
    """
    if audio.dim() != 3:
        raise ClassifierError(f"spectrogram: audio must be [N, channels, samples], got {tuple(audio.shape)}")
    if midi_to_hz(HIGHEST_BIN_MIDI) >= sample_rate / 2:
        raise ClassifierError(f"spectrogram: sample rate {sample_rate} Hz is too low for a top bin at "
                              f"{midi_to_hz(HIGHEST_BIN_MIDI):.0f} Hz; need > {2 * midi_to_hz(HIGHEST_BIN_MIDI):.0f} Hz")
    n_fft = 1 << round(math.log2(sample_rate / 8))  # ~8 Hz resolution
    filterbank = _log_frequency_filterbank(sample_rate, n_fft).to(audio.device)
    window = torch.hann_window(n_fft, device=audio.device)
    pooled = []
    for part in audio.float().split(FEATURE_CHUNK):
        flat = part.reshape(-1, part.shape[-1])  # [b * ch, n]
        if flat.shape[-1] < n_fft:
            flat = nn.functional.pad(flat, (0, n_fft - flat.shape[-1]))
        stft = torch.stft(flat, n_fft, n_fft // 4, window=window, center=False, return_complex=True)
        magnitude = stft.abs().transpose(1, 2) @ filterbank  # [b * ch, frames, F]
        db = 20.0 * torch.log10(magnitude.clamp_min(10.0 ** (DB_FLOOR / 20.0)))
        db = nn.functional.adaptive_avg_pool2d(db.unsqueeze(1), (TIME_FRAMES, db.shape[-1])).squeeze(1)
        pooled.append(db.reshape(part.shape[0], part.shape[1], TIME_FRAMES, -1))
    return torch.cat(pooled)


class PitchClassifier(nn.Module):
    """Conv net on log-frequency spectrograms [B, ch, 8, F] -> pitch logits; `embed` gives its features."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 8, (3, 5), padding=(1, 2)),
            nn.ReLU(),
            nn.MaxPool2d(2),  # [B, 8, 4, F/2]
            nn.Conv2d(8, 16, (3, 5), padding=(1, 2)),
            nn.ReLU(),
            nn.MaxPool2d(2),  # [B, 16, 2, F/4]
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d((1, 21)),  # [B, 32, 1, 21]: keeps where along frequency energy sits
            nn.Flatten(),
            nn.Linear(32 * 21, EMBEDDING_SIZE),
            nn.ReLU(),
        )
        self.head = nn.Linear(EMBEDDING_SIZE, num_classes)

    @staticmethod
    def _relative_level(spectrogram: torch.Tensor) -> torch.Tensor:
        """dB relative to each clip's loudest cell, mapped to [0, 1]: pitch must not depend on gain."""
        peak = spectrogram.amax(dim=(1, 2, 3), keepdim=True)
        return ((spectrogram - peak).clamp_min(-DYNAMIC_RANGE_DB) + DYNAMIC_RANGE_DB) / DYNAMIC_RANGE_DB

    def embed(self, spectrogram: torch.Tensor) -> torch.Tensor:
        """[B, ch, 8, F] dB -> [B, 64] penultimate features."""
        return self.features(self._relative_level(spectrogram))

    def forward(self, spectrogram: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(spectrogram))  # [B, num_classes]


def _check_training_set(spectrograms: torch.Tensor, labels: torch.Tensor, num_classes: int) -> None:
    if spectrograms.dim() != 4:
        raise ClassifierError(f"classifier: spectrograms must be [N, ch, T, F], got {tuple(spectrograms.shape)}")
    if labels.shape != (spectrograms.shape[0],):
        raise ClassifierError(f"classifier: need one label per clip, got {tuple(labels.shape)} labels "
                              f"for {spectrograms.shape[0]} clips")
    if spectrograms.shape[0] == 0:
        raise ClassifierError("classifier: no training clips")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ClassifierError(f"classifier: labels must lie in 0..{num_classes - 1}, "
                              f"got {int(labels.min())}..{int(labels.max())}")


def train_pitch_classifier(
    spectrograms: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    steps: int = 500,
    batch_size: int = 32,
    learning_rate: float = 3e-3,
    seed: int = 0,
) -> PitchClassifier:
    """Fit a fresh classifier for a fixed number of Adam steps; the same seed gives the same weights."""
    labels = torch.as_tensor(labels, dtype=torch.long, device=spectrograms.device)
    _check_training_set(spectrograms, labels, num_classes)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = PitchClassifier(spectrograms.shape[1], num_classes).to(spectrograms.device)
        optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
        for _ in range(steps):
            batch = torch.randint(0, spectrograms.shape[0], (min(batch_size, spectrograms.shape[0]),))
            loss = nn.functional.cross_entropy(model(spectrograms[batch]), labels[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return model.eval()


@torch.no_grad()
def classifier_accuracy(model: PitchClassifier, spectrograms: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of clips whose arg-max class equals the label."""
    labels = torch.as_tensor(labels, dtype=torch.long, device=spectrograms.device)
    if labels.numel() == 0:
        return float("nan")
    return (model(spectrograms).argmax(-1) == labels).float().mean().item()


@torch.no_grad()
def classifier_embeddings(model: PitchClassifier, spectrograms: torch.Tensor) -> torch.Tensor:
    """[N, ch, T, F] -> [N, 64] features for a Fréchet distance."""
    return torch.cat([model.embed(part) for part in spectrograms.split(256)])

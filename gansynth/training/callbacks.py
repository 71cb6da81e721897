"""Training callbacks that count in images, not steps: checkpoints and audible samples."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO
from pytorch_lightning.utilities import rank_zero_only

from gansynth.core.audio import peak_normalize, write_audio
from gansynth.core.files import atomic_write
from gansynth.evaluation.metrics import generated_note_batches, instruments_played, pitch_accuracy, real_instruments
from gansynth.evaluation.timbre import (TimbreError, TimbreReference, category_fidelity, timbre_features,
                                        timbre_scores)

SAMPLE_PEAK_DB = -1.0


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write each checkpoint to a temporary file beside it, flush it to disk and rename it into
    place, so a run killed at any moment (even ``kill -9``) leaves the old checkpoint or the new
    one, never half a file. The temporary name is unique to each write (the pid, to tell whose a
    leftover is, and a random token): two writers of one path, e.g. two jobs sharing a run folder,
    never write into each other's file. A write that fails removes its temporary file."""

    def save_checkpoint(self, checkpoint, path, storage_options=None):
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path, durable=True) as handle:
            torch.save(checkpoint, handle)


def crossed(before: int, after: int, every: int) -> bool:
    """True when a multiple of ``every`` lies in (before, after]."""
    return every > 0 and after // every > before // every


class EveryImages(pl.Callback):
    """A callback that acts whenever a batch carries ``images_seen`` across a multiple of
    ``every_images`` (0: never): the image count, not the step count, is the training clock."""

    def __init__(self, every_images: int):
        self.every_images = every_images
        self._before = 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self._before = int(pl_module.images_seen)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if crossed(self._before, int(pl_module.images_seen), self.every_images):
            self.act(trainer, pl_module, batch)

    def act(self, trainer, pl_module, batch) -> None:
        raise NotImplementedError


class ImageCountCheckpoint(EveryImages):
    """Save ``images-<n>.ckpt`` every ``every_images`` images and keep ``last.ckpt`` current."""

    def __init__(self, dirpath: str, every_images: int):
        super().__init__(every_images)
        self.dirpath = Path(dirpath)

    def act(self, trainer, pl_module, batch):
        trainer.save_checkpoint(self.dirpath / f"images-{int(pl_module.images_seen):09d}.ckpt")
        self.save_last(trainer)

    def on_train_end(self, trainer, pl_module):
        self.save_last(trainer)

    def save_last(self, trainer):
        trainer.save_checkpoint(self.dirpath / "last.ckpt")


class StopAtImages(pl.Callback):
    """End training at the first batch that brings ``images_seen`` to ``max_images`` or past it: a
    budget in images, where ``trainer.max_steps`` counts two steps (G and D) per batch. A run
    resumed at or past the budget trains no further batch."""

    def __init__(self, max_images: int):
        if isinstance(max_images, bool) or not isinstance(max_images, int) or max_images < 1:
            raise ValueError(f"max_images must be a positive integer, got {max_images!r}")
        self.max_images = max_images

    def on_train_start(self, trainer, pl_module):
        self._stop_if_done(trainer, pl_module)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self._stop_if_done(trainer, pl_module)

    def _stop_if_done(self, trainer, pl_module):
        if int(pl_module.images_seen) >= self.max_images:
            trainer.should_stop = True


class SampleLogger(EveryImages):
    """Every ``every_images`` images, render one note per pitch with the EMA generator (fixed
    latent), write a wav of all of them to ``<run>/samples`` and log each note and its
    spectrogram to TensorBoard. TensorBoard audio is mono, so stereo is logged as L and R."""

    def __init__(self, out_dir: str, every_images: int, pitches: list[int], seed: int = 0):
        super().__init__(every_images)
        self.out_dir = Path(out_dir)
        self.pitches = list(pitches)
        self.seed = seed

    @rank_zero_only
    def act(self, trainer, pl_module, batch):
        pitches = [p for p in self.pitches if pl_module.vocab.contains(p)]
        if not pitches:
            return
        codec, seen = pl_module.codec, int(pl_module.images_seen)
        z = pl_module.latent(1, self.seed).expand(len(pitches), -1)
        audio = pl_module.synth().generate(pitches, z)  # [P, ch, n]
        gap = np.zeros((audio.shape[1], codec.sample_rate // 4), dtype=np.float32)
        strip = np.concatenate([np.concatenate([a.numpy(), gap], axis=1) for a in audio], axis=1)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        write_audio(self.out_dir / f"images-{seen:09d}.wav", peak_normalize(strip, SAMPLE_PEAK_DB), codec.sample_rate)

        writer = getattr(trainer.logger, "experiment", None)
        if writer is None or not hasattr(writer, "add_audio"):
            return
        sides = ["mono"] if audio.shape[1] == 1 else ["left", "right"]
        images = codec.encode(audio.to(pl_module.device)).cpu()  # what the notes sound like, re-encoded
        for pitch, note, image in zip(pitches, audio, images):
            for side, channel in zip(sides, note.numpy()):
                clip = peak_normalize(channel, SAMPLE_PEAK_DB)
                writer.add_audio(f"audio/pitch_{pitch}/{side}", clip, seen, codec.sample_rate)
            writer.add_image(f"spectrogram/fake/pitch_{pitch}", to_picture(image[0]), seen, dataformats="HW")
        real = batch[0][:1].float()
        writer.add_image("spectrogram/real", to_picture(real[0, 0]), seen, dataformats="HW")


LOGGED_LOSSES = ("g_loss", "d_loss", "gp", "g_balance", "g_instrument", "real_instrument_acc")  # the last step's, where logged, beside each record


class LearningMonitor(EveryImages):
    """Every ``every_images`` images, score the EMA generator on ``notes_per_pitch`` latents of every
    training pitch: periodicity-gated pitch accuracy and, when the file names carry instruments, the
    timbre metrics against the real notes as the codec returns them (``gansynth.evaluation.timbre``), and, when
    G's latent categories are the data's instruments, how often a category is heard as its instrument (the
    mix entropy alone cannot tell when the categories are learnt). Logged to
    TensorBoard and appended to ``<run>/metrics.jsonl`` with the wall-clock minutes and the last step's
    losses."""

    def __init__(self, path: str, every_images: int, notes_per_pitch: int = 8, seed: int = 0):
        super().__init__(every_images)
        self.path = Path(path)
        self.notes_per_pitch = notes_per_pitch
        self.seed = seed
        self._measured_at = -1
        self._start = time.perf_counter()
        self._reference = None

    def on_train_start(self, trainer, pl_module):
        self._start = time.perf_counter()

    def act(self, trainer, pl_module, batch):
        self.measure(trainer, pl_module)

    def on_train_end(self, trainer, pl_module):
        """The run's last images count too, unless the monitor is off (every_images 0)."""
        if self.every_images and int(pl_module.images_seen) != self._measured_at:
            self.measure(trainer, pl_module)

    @torch.no_grad()
    def _timbre_reference(self, trainer, pl_module):
        """The real notes decoded from the cache (the codec's ceiling) with their file names' instruments."""
        datamodule = trainer.datamodule
        instruments = real_instruments(datamodule)
        if instruments is None:
            return None
        dataset = datamodule.train_dataloader().dataset
        codec, features, midi = pl_module.codec, [], []
        for images, labels, _ in torch.utils.data.DataLoader(dataset, batch_size=64):
            labels = labels + pl_module.vocab.low
            features.append(timbre_features(codec.decode(images.to(pl_module.device)).float().cpu(), labels,
                                            codec.sample_rate))
            midi.append(labels)
        try:
            return TimbreReference.fit(torch.cat(features), torch.cat(midi), instruments)
        except TimbreError:
            return None

    @rank_zero_only
    def measure(self, trainer, pl_module):
        self._measured_at = seen = int(pl_module.images_seen)
        seconds = time.perf_counter() - self._start
        if self._reference is None:
            self._reference = self._timbre_reference(trainer, pl_module) or False
        synth = pl_module.synth()
        batches = list(generated_note_batches(synth, self.notes_per_pitch, self.seed))
        audio, pitches = torch.cat([a for a, _ in batches]), torch.cat([m for _, m in batches])
        scores = pitch_accuracy(audio, pl_module.codec.sample_rate, pitches)
        record = {"images_seen": seen, "minutes": seconds / 60.0, "stage": pl_module.stage,
                  "pitch_accuracy": scores["pa"], "pitch_entropy": scores["pe"],
                  **{key: float(trainer.callback_metrics[f"loss/{key}"]) for key in LOGGED_LOSSES
                     if f"loss/{key}" in trainer.callback_metrics}}
        if self._reference:
            features = timbre_features(audio, pitches, pl_module.codec.sample_rate)
            timbre = timbre_scores(self._reference, features, pitches)
            record.update({key: timbre[key] for key in ("coverage", "entropy", "diversity", "nearest_real_ratio",
                                                        "keyboard")})
            played = instruments_played(synth, self.notes_per_pitch, self.seed, self._reference.names)
            if played is not None:
                record["category_fidelity"] = category_fidelity(self._reference, features, played)["category_fidelity"]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
        writer = getattr(trainer.logger, "experiment", None)
        if writer is not None and hasattr(writer, "add_scalar"):
            for key, value in record.items():
                if key not in ("images_seen", "minutes", "stage", *LOGGED_LOSSES):
                    writer.add_scalar(f"eval/{key}", value, seen)


def to_picture(logmag: torch.Tensor) -> torch.Tensor:
    """[T, F] log magnitude → [F, T] picture in [0, 1], low frequencies at the bottom."""
    x = logmag.detach().float().T.flip(0)
    return (x - x.min()) / (x.max() - x.min()).clamp_min(1e-9)

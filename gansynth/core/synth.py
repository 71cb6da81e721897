"""What a trained generator is to everything that plays it: the EMA generator, its codec and vocabulary
at the stage it reached. Training hands its live model over as one (samples, evaluation during
training) and inference rebuilds one from a checkpoint, so it sits below both.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from gansynth.core.errors import GANSynthError
from gansynth.core.frozen import CompiledOrEager, frozen_generator
from gansynth.core.networks import Generator, with_category
from gansynth.core.pitch import PitchVocab
from gansynth.core.spectral import SpecgramCodec

PRECISIONS = ("fp32", "bf16")


class CheckpointError(GANSynthError):
    """A checkpoint file that is missing, unreadable, not GANSynth's, or does not build a model."""


class RenderError(GANSynthError):
    """A generation setting or latents file that cannot be used."""



@dataclass
class Synth:
    """Everything generation needs, rebuilt from one checkpoint: EMA generator, codec, vocabulary.

    `generate` runs `network`, a frozen inference copy of the generator made once here (scales
    folded in, channels_last): a snapshot, so a training run hands over a new Synth for new weights.
    With `compile` that copy goes through `torch.compile`, and every batch is padded to `batch_size`
    so that one compiled shape serves the whole render.
    """

    generator: Generator
    codec: SpecgramCodec
    vocab: PitchVocab
    pitch_counts: list[int]
    blocks: int     # the trained stage: active blocks and the newest block's fade-in weight
    alpha: float
    latent_dim: int
    device: torch.device
    batch_size: int = 8
    precision: str = "fp32"
    compile: bool = False
    instruments: tuple[str, ...] = ()  # the instrument each latent category plays (model.instrument_projection)
    network: Generator = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise RenderError(f"precision {self.precision!r} is not one of {', '.join(PRECISIONS)}")
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise RenderError(f"batch_size must be a positive integer, got {self.batch_size!r}")
        if not isinstance(self.compile, bool):
            raise RenderError(f"compile must be true or false, got {self.compile!r}")
        self.network = frozen_generator(self.generator)
        if self.compile:
            self.network = CompiledOrEager(self.network)

    @property
    def sample_rate(self) -> int:
        return int(self.codec.sample_rate)

    @property
    def channels(self) -> int:
        return int(self.codec.audio_channels)

    @property
    def n_samples(self) -> int:
        return int(self.codec.n_samples)

    @property
    def trained_pitches(self) -> list[int]:
        """MIDI pitches present in the training data; the classes of the others were never learned."""
        return [self.vocab.midi(i) for i, count in enumerate(self.pitch_counts) if count > 0]

    def describe_trained_pitches(self) -> str:
        """'25 trained pitches in MIDI 48..72', for messages."""
        pitches = self.trained_pitches
        return f"{len(pitches)} trained pitches in MIDI {pitches[0]}..{pitches[-1]}"

    def instrument_category(self, name: str) -> int:
        """The latent category that plays the training instrument ``name`` (its file-name stem), for
        ``play_as``; a model trained without model.instrument_projection has no such categories."""
        if not self.instruments:
            raise RenderError(f"play_as={name!r} needs a checkpoint trained with model.instrument_projection=true "
                              f"(its latent categories are instruments); this one has none")
        if name not in self.instruments:
            raise RenderError(f"play_as={name!r} is not one of the checkpoint's instruments: "
                              f"{', '.join(self.instruments)}")
        return self.instruments.index(name)

    def as_instrument(self, latents: np.ndarray, name: str) -> np.ndarray:
        """``latents`` [N, latent] moved into instrument ``name``'s category, the rest of each z kept. A slerp
        between two of them stays there: the largest category entry keeps its place in any positive mix of
        two latents that share it."""
        category = torch.full((latents.shape[0],), self.instrument_category(name))
        return with_category(torch.from_numpy(latents), category, len(self.instruments)).numpy()

    @torch.inference_mode()
    def generate(self, pitches: Sequence[int], z: torch.Tensor) -> torch.Tensor:
        """Clips [N, ch, n_samples] float32 on the CPU for MIDI pitches [N] and latents z [N, latent]."""
        if len(pitches) != z.shape[0] or z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise RenderError(f"generate: need z shaped [{len(pitches)}, {self.latent_dim}], "
                              f"got {tuple(z.shape)}")
        out_of_range = [p for p in pitches if not self.vocab.contains(p)]
        if out_of_range:
            raise RenderError(f"generate: pitches {out_of_range} are outside the model's "
                              f"range {self.vocab.low}..{self.vocab.high}")
        index = torch.tensor([self.vocab.index(p) for p in pitches], dtype=torch.long)
        # Each batch's clips go straight into one CPU tensor; from a GPU into page-locked memory, without waiting:
        # a pageable copy ran at ~1.7 GB/s on the H200, a quarter of a paper render's time (README, Benchmarks).
        on_gpu = self.device.type == "cuda"
        clips = torch.empty(len(pitches), self.channels, self.n_samples, pin_memory=on_gpu)  # [N, ch, n]
        for begin in range(0, len(pitches), self.batch_size):
            z_batch = z[begin:begin + self.batch_size].to(self.device, torch.float32)  # [b, latent]
            p_batch = index[begin:begin + self.batch_size].to(self.device)  # [b]
            count = len(p_batch)
            if self.compile and count < self.batch_size:  # the compiled shape: pad with copies of the first note
                z_batch = torch.cat([z_batch, z_batch[:1].expand(self.batch_size - count, -1)])
                p_batch = torch.cat([p_batch, p_batch[:1].expand(self.batch_size - count)])
            with self._autocast():
                image = self.network(z_batch, p_batch, self.blocks, self.alpha)[:count]  # [b, C, h, w] in [-1, 1]
            # A checkpoint from before the last stage emits a smaller image: its blocky spectrogram
            # is what it means at full size (nearest-neighbour), as Magenta's full-size output.
            image = image.float()
            if image.shape[-2:] != self.codec.image_shape[1:]:
                image = F.interpolate(image, size=tuple(self.codec.image_shape[1:]), mode="nearest")
            wave = self.codec.decode(self.codec.denormalize(image))  # [b, ch, n]
            clips[begin:begin + count].copy_(wave, non_blocking=on_gpu)
        if on_gpu:
            torch.cuda.synchronize(self.device)  # the last copies have landed
        return clips

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

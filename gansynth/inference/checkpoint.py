"""Rebuild a Synth from a Lightning checkpoint alone: no training data, no training code."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch

from gansynth.core.networks import Generator
from gansynth.core.pitch import PitchVocab
from gansynth.core.schedule import Schedule
from gansynth.core.spectral import SpecgramCodec
from gansynth.core.synth import CheckpointError, Synth

EMA_PREFIX = "ema_generator."
REQUIRED_HPARAMS = ("codec", "network", "pitch")


def _read_checkpoint(path: Path) -> tuple[dict, dict[str, torch.Tensor], Mapping]:
    """The checkpoint's hyperparameters and EMA weights (prefix stripped), or a one-line error."""
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises pickle, zip and runtime errors alike for a non-torch file
        raise CheckpointError(f"{path}: not a readable torch checkpoint ({type(exc).__name__})") from None
    hparams = blob.get("hyper_parameters") if isinstance(blob, dict) else None
    state = blob.get("state_dict") if isinstance(blob, dict) else None
    if not isinstance(hparams, Mapping) or not isinstance(state, Mapping):
        raise CheckpointError(f"{path}: not a GANSynth checkpoint (no hyper_parameters/state_dict)")
    missing = [key for key in REQUIRED_HPARAMS if key not in hparams]
    ema = {k[len(EMA_PREFIX):]: v for k, v in state.items() if k.startswith(EMA_PREFIX)}
    if missing or not ema:
        what = ", ".join([f"hyper_parameters.{k}" for k in missing] + ([] if ema else ["EMA weights"]))
        raise CheckpointError(f"{path}: not a GANSynth checkpoint (missing {what})")
    return dict(hparams), ema, state


def trained_stage(hparams: Mapping, state: Mapping, num_blocks: int) -> tuple[int, float]:
    """(blocks, alpha) the checkpoint had reached: from its images-seen counter and schedule, or
    the full network when the checkpoint has no schedule."""
    if "schedule" not in hparams or "images_seen" not in state:
        return num_blocks, 1.0
    return Schedule(**hparams["schedule"]).blocks_and_alpha(int(state["images_seen"]))


def load_checkpoint(path: str | os.PathLike, device: str = "cpu", batch_size: int = 8,
                    precision: str = "fp32", untrained_seed: int | None = None, compile: bool = False) -> Synth:
    """Build the EMA generator and codec from a checkpoint alone (no training data needed).

    With ``untrained_seed`` the generator keeps the checkpoint's architecture and stage but gets fresh
    initial weights: the "untrained G" control that every learning metric must fail.
    """
    path = Path(path)
    hparams, ema, state = _read_checkpoint(path)
    try:
        codec = SpecgramCodec.from_dict(dict(hparams["codec"]))
        network = dict(hparams["network"])
        pitch = dict(hparams["pitch"])
        vocab = PitchVocab(int(pitch["low"]), int(pitch["high"]))
        with torch.random.fork_rng():
            torch.manual_seed(0 if untrained_seed is None else untrained_seed)
            generator = Generator.for_codec(codec, vocab, **network)
        if untrained_seed is None:
            generator.load_state_dict(ema, strict=True)
        counts = [int(c) for c in pitch.get("counts", [1] * vocab.size)]
        vocab.check_counts(counts)
        blocks, alpha = trained_stage(hparams, state, int(network["num_blocks"]))
        instruments = tuple(hparams.get("instrument_names", ())) if hparams.get("instrument_projection") else ()
    except Exception as exc:  # any failure here means the stored config and weights do not fit together
        message = " ".join(str(exc).split())[:300]
        raise CheckpointError(f"{path}: incompatible checkpoint ({type(exc).__name__}: {message})") from None
    torch_device = torch.device(device)
    generator.to(torch_device).eval().requires_grad_(False)
    return Synth(generator=generator, codec=codec.to(torch_device), vocab=vocab, pitch_counts=counts,
                 blocks=blocks, alpha=alpha, latent_dim=int(network["latent_dim"]),
                 device=torch_device, batch_size=batch_size, precision=precision, compile=compile,
                 instruments=instruments)

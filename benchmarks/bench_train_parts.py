"""Parts of a training step computed another way than before, each against its before path, in one process.

- ``upsampling``: G's first conv of every block after the first, one stride-2 transposed conv of the coarse map
  (`EqualizedUpsamplingConv2d`), against upsampling 2x (nearest), joining the extra channels and convolving.
  Timed: G's forward + backward.
- ``collapse``: D's last conv, from the start grid to one feature vector, as one matmul (`EqualizedCollapse`),
  against the VALID convolution. Timed: D's score of a batch, its gradient penalty and backward.
- ``adam``: Adam fused (one kernel for all parameters) against its default per-parameter loop. Timed: one
  update of G's and D's parameters, every one with a gradient.

The before path keeps the same parameters: each layer of the lever's type runs its old forward, or the
optimizer settings ask for the unfused Adam. With ``--steps`` the whole training step (``bench_train.bench_stage``:
the critic's step with its penalty and G's step) is timed too. Rounds are interleaved; each path's best and
median kept.

    python benchmarks/bench_train_parts.py [--levers upsampling collapse adam]
        [--configs paper:0 paper:4 paper:8 paper:12 tiny:8] [--rounds 6] [--steps 0] [--output PATH]
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
import types
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import bench_train  # noqa: E402  (benchmarks/, the script's own folder)
from gansynth.core.layers import (EqualizedCollapse, EqualizedConv2d, EqualizedUpsamplingConv2d,  # noqa: E402
                                  cat_channels, is_channels_last)
from gansynth.training.losses import gradient_penalty  # noqa: E402
from machine import apply_freed_memory, machine_record  # noqa: E402

BATCHES = {"paper": 8, "fork": 8, "tiny": 16}


def upsampled_join(inputs: tuple[torch.Tensor, list[torch.Tensor]], channels_last: bool) -> torch.Tensor:
    """What a first block conv read before it upsampled inside itself: x upsampled 2x (nearest), joined with the
    extra channels (also `bench_render.py`'s before path)."""
    x, extras = inputs
    return cat_channels([F.interpolate(x, scale_factor=2, mode="nearest"), *extras], channels_last)


def upsample_then_conv(layer: EqualizedUpsamplingConv2d, inputs) -> torch.Tensor:
    return EqualizedConv2d.forward(layer, upsampled_join(inputs, is_channels_last(layer.weight)))


def generator_pass(model, blocks: int, alpha: float, batch: int):
    labels = torch.arange(batch) % model.vocab.size
    instruments = torch.arange(batch) // 2 % bench_train.INSTRUMENTS
    noise = torch.Generator().manual_seed(0)

    def run() -> None:
        model._fake(labels, instruments, blocks, alpha, noise).square().mean().backward()
    return run


def critic_pass(model, blocks: int, alpha: float, batch: int):
    shape = (batch, model.codec.image_shape[0], *model.current_size(blocks))
    real = torch.randn(shape).clamp_(-1, 1).contiguous(memory_format=torch.channels_last)
    fake = torch.randn(shape).clamp_(-1, 1).contiguous(memory_format=torch.channels_last)
    noise = torch.Generator().manual_seed(0)
    told = torch.arange(batch) // 2 % bench_train.INSTRUMENTS if model.discriminator.instrument_head else None

    def critic(x):
        return model.discriminator(x, blocks, alpha, instruments=told)[0]

    def run() -> None:
        (critic(real).mean() + gradient_penalty(critic, real, fake, 1.0, noise)).backward()
    return run


def adam_pass(model, blocks: int, alpha: float, batch: int):
    model.adam_optimizers = model.configure_optimizers()  # adam_path switches their fused flag
    for optimizer in model.adam_optimizers:
        for group in optimizer.param_groups:
            for parameter in group["params"]:
                parameter.grad = torch.randn_like(parameter).mul_(1e-3)

    def run() -> None:
        for optimizer in model.adam_optimizers:
            optimizer.step()
    return run


class UnfusedAdam:
    """A model's optimizer settings with Adam's default per-parameter loop, as before."""

    def __init__(self, settings) -> None:
        self.settings = settings

    def __getattr__(self, name: str):
        return getattr(self.settings, name)

    def adam_arguments(self, stage: int) -> dict:
        return dict(self.settings.adam_arguments(stage), fused=False)


def adam_path(model, before: bool) -> None:
    if before != isinstance(model.optim_settings, UnfusedAdam):
        model.optim_settings = UnfusedAdam(model.optim_settings) if before else model.optim_settings.settings
    for optimizer in getattr(model, "adam_optimizers", ()):
        for group in optimizer.param_groups:
            group["fused"] = not before


def layer_path(kind: type, before_forward):
    """The path switch of a lever that computes a layer type another way: its layers run `before_forward`, or
    their own forward."""
    def take_path(model, before: bool) -> None:
        for layer in model.modules():
            if isinstance(layer, kind):
                if before:
                    layer.forward = types.MethodType(before_forward, layer)
                else:
                    layer.__dict__.pop("forward", None)
    return take_path


# lever -> (its path switch, take_path(model, before); (before, after) path names; what is timed; its pass)
LEVERS = {
    "upsampling": (layer_path(EqualizedUpsamplingConv2d, upsample_then_conv),
                   ("upsample, then conv (before)", "transposed conv of the coarse map"), "G fwd+bwd", generator_pass),
    "collapse": (layer_path(EqualizedCollapse, EqualizedConv2d.forward),
                 ("VALID conv (before)", "one matmul"), "D score + penalty + bwd", critic_pass),
    "adam": (adam_path, ("per-parameter loop (before)", "fused"), "Adam update of G and D", adam_pass),
}


def interleaved(rounds: int, seconds_of) -> dict[bool, list[float]]:
    """`seconds_of(before)` for before in (True, False), `rounds` times, alternating which goes first."""
    seconds = {True: [], False: []}
    for round_ in range(rounds):
        for before in (True, False) if round_ % 2 == 0 else (False, True):
            seconds[before].append(seconds_of(before))
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levers", nargs="+", choices=tuple(LEVERS), default=list(LEVERS))
    parser.add_argument("--configs", nargs="+", default=["paper:0", "paper:4", "paper:8", "paper:12", "tiny:8"],
                        help="config:stage pairs (stage ids as bench_train.py's), fp32, channels_last")
    parser.add_argument("--rounds", type=int, default=6, help="interleaved rounds of the lever's own pass")
    parser.add_argument("--steps", type=int, default=0, help="interleaved rounds of the whole training step (0: none)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "train_parts.json")
    args = parser.parse_args()
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    freed_memory = apply_freed_memory("reused")
    rows = []
    for lever in args.levers:
        take_path, names, timed, make_pass = LEVERS[lever]
        for spec in args.configs:
            config, _, stage = spec.partition(":")
            stage, batch = int(stage), BATCHES[config]
            model = bench_train.build_model(config).to(memory_format=torch.channels_last)
            model.images_seen.fill_(bench_train.stage_midpoint(model, stage))
            blocks, alpha = model.blocks_and_alpha()
            run = make_pass(model, blocks, alpha, batch)

            def pass_seconds(before: bool) -> float:
                take_path(model, before)
                start = time.perf_counter()
                run()
                return time.perf_counter() - start

            def step_seconds(before: bool) -> float:  # a fresh model: the step's own warm-up batch comes first
                torch.manual_seed(0)
                fresh = bench_train.build_model(config)
                take_path(fresh, before)
                return bench_train.bench_stage(fresh, stage, "fp32", batch, 1, torch.device("cpu"))["ms_per_iter"] / 1e3

            interleaved(1, pass_seconds)  # warm-up: oneDNN picks its kernels
            passes, steps = interleaved(args.rounds, pass_seconds), interleaved(args.steps, step_seconds)
            row = dict(lever=lever, config=config, stage=stage, resolution=list(model.current_size(blocks)),
                       batch=batch, timed=timed)
            for before, name in zip((True, False), names):
                row[name] = dict(ms=1e3 * min(passes[before]), median_ms=1e3 * statistics.median(passes[before]))
                if args.steps:
                    row[name].update(step_ms=1e3 * min(steps[before]),
                                     step_median_ms=1e3 * statistics.median(steps[before]))
            row["speedup"] = min(passes[True]) / min(passes[False])
            if args.steps:
                row["step_speedup"] = min(steps[True]) / min(steps[False])
            rows.append(row)
            print(f"{lever:10s} {config:6s} {'x'.join(map(str, row['resolution'])):9s} {timed}: "
                  + "  ".join(f"{name} {row[name]['ms']:.0f} ms (median {row[name]['median_ms']:.0f})" for name in names)
                  + f"  x{row['speedup']:.2f}" + (f"   whole step x{row['step_speedup']:.2f}" if args.steps else ""),
                  flush=True)
    report = dict(machine_record("cpu", args.threads), freed_memory=freed_memory, precision="fp32",
                  layout="channels_last", rounds=args.rounds, steps=args.steps, rows=rows)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()

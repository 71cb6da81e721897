"""G's upsampling in training: each block's first conv as one stride-2 transposed conv of the coarse map, against
upsampling 2x (nearest) and then convolving, as G did before.

Both are timed in one process, in interleaved rounds (each path's best and median kept): G's forward + backward
alone (the training G, channels_last, at the middle of the stage), and with ``--steps`` the whole training step
(``bench_train.bench_stage``: the critic's step with its gradient penalty and G's step). The before path reuses
the same parameters: each ``EqualizedUpsamplingConv2d`` is told to upsample, join and convolve.

    python benchmarks/bench_upsampling.py [--configs paper:8 paper:12 tiny:8] [--rounds 6] [--steps 0] [--output PATH]
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
from gansynth.core.layers import EqualizedConv2d, EqualizedUpsamplingConv2d, cat_channels, is_channels_last  # noqa: E402
from machine import apply_freed_memory, machine_record  # noqa: E402

PATHS = ("upsample, then conv (before)", "transposed conv of the coarse map")
BATCHES = {"paper": 8, "fork": 8, "tiny": 16}


def upsample_then_conv(layer: EqualizedUpsamplingConv2d, inputs) -> torch.Tensor:
    x, extras = inputs
    upsampled = F.interpolate(x, scale_factor=2, mode="nearest")
    return EqualizedConv2d.forward(layer, cat_channels([upsampled, *extras], is_channels_last(layer.weight)))


def take_path(model, path: str) -> None:
    """Every first block conv of the model's G (and its EMA copy) runs `path`."""
    for layer in model.modules():
        if isinstance(layer, EqualizedUpsamplingConv2d):
            if path == PATHS[0]:
                layer.forward = types.MethodType(upsample_then_conv, layer)
            else:
                layer.__dict__.pop("forward", None)


def generator_pass(model, stage: int, batch: int, precision: str):
    """G's forward + backward at the middle of `stage`, as its training step runs it."""
    model.images_seen.fill_(bench_train.stage_midpoint(model, stage))
    blocks, alpha = model.blocks_and_alpha()
    labels = torch.arange(batch) % model.vocab.size
    instruments = torch.arange(batch) // 2 % bench_train.INSTRUMENTS
    noise = torch.Generator().manual_seed(0)

    def run() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            image = model._fake(labels, instruments, blocks, alpha, noise)
        image.float().square().mean().backward()
    return run


def timed(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=["paper:8", "paper:12", "tiny:8"],
                        help="config:stage pairs (stage ids as bench_train.py's)")
    parser.add_argument("--precisions", nargs="+", choices=tuple(bench_train.PRECISIONS), default=["fp32"])
    parser.add_argument("--rounds", type=int, default=6, help="interleaved rounds of G's forward + backward")
    parser.add_argument("--steps", type=int, default=0, help="interleaved rounds of the whole training step (0: none)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "upsampling.json")
    args = parser.parse_args()
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    freed_memory = apply_freed_memory("reused")
    rows = []
    for spec in args.configs:
        config, _, stage = spec.partition(":")
        stage, batch = int(stage), BATCHES[config]
        for precision in args.precisions:
            model = bench_train.build_model(config).to(memory_format=torch.channels_last)
            run = generator_pass(model, stage, batch, precision)
            seconds = {path: [] for path in PATHS}
            for path in PATHS:  # warm-up: oneDNN picks its kernels
                take_path(model, path)
                run()
            for round_ in range(args.rounds):
                for path in PATHS if round_ % 2 == 0 else PATHS[::-1]:
                    take_path(model, path)
                    seconds[path].append(timed(run))
            steps = {path: [] for path in PATHS}
            for round_ in range(args.steps):
                for path in PATHS if round_ % 2 == 0 else PATHS[::-1]:
                    torch.manual_seed(0)
                    fresh = bench_train.build_model(config)
                    take_path(fresh, path)
                    steps[path].append(bench_train.bench_stage(fresh, stage, precision, batch, 1,
                                                               torch.device("cpu"))["ms_per_iter"] / 1e3)
            resolution = list(model.current_size(model.blocks_and_alpha()[0]))
            for path in PATHS:
                row = dict(config=config, stage=stage, resolution=resolution, batch=batch, precision=precision,
                           path=path, g_ms=1e3 * min(seconds[path]), g_median_ms=1e3 * statistics.median(seconds[path]),
                           g_speedup=min(seconds[PATHS[0]]) / min(seconds[path]))
                if steps[path]:
                    row.update(step_ms=1e3 * min(steps[path]), step_median_ms=1e3 * statistics.median(steps[path]),
                               step_speedup=min(steps[PATHS[0]]) / min(steps[path]))
                rows.append(row)
                print(f"{config:6s} {'x'.join(map(str, resolution)):9s} {precision:5s} {path:34s} "
                      f"G fwd+bwd best {row['g_ms']:7.0f} ms  median {row['g_median_ms']:7.0f}  "
                      f"x{row['g_speedup']:.2f}" + (f"   step best {row['step_ms']:7.0f} ms  "
                                                    f"median {row['step_median_ms']:7.0f}  x{row['step_speedup']:.2f}"
                                                    if steps[path] else ""), flush=True)
    report = dict(machine_record("cpu", args.threads), freed_memory=freed_memory, rounds=args.rounds,
                  steps=args.steps, rows=rows)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()

"""Gradient-penalty step through the paper critic's top block: PyTorch's conv and leaky ReLU against ours.

Both are timed in one run, in interleaved rounds, best of each (ours: ``gansynth.core.double_backward``).

One step: the critic on interpolates, the input gradient with ``create_graph``, the penalty, and its backward
to the weights, the work ``gradient_penalty`` adds to every critic step. The critic is D's top block at
128x1024 (3x3 32->32, 3x3 32->64, each + leaky ReLU, 2x2 average pool) on channels_last activations,
in fp32 and under bf16 autocast.

    python benchmarks/bench_double_backward.py [--batch 8] [--rounds 3] [--threads 2] [--output PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gansynth.core.double_backward import LeakyReLU, conv2d  # noqa: E402
from gansynth.core.precision import bf16_units  # noqa: E402
from machine import cpu_model  # noqa: E402  (benchmarks/, the script's own folder)

HEIGHT, WIDTH, WIDTHS = 128, 1024, (32, 32, 64)  # the paper D's top block: its input and two conv widths
SLOPE = 0.2
OPS = {
    "PyTorch (F.conv2d, F.leaky_relu)": (lambda x, w, b: F.conv2d(x, w, b, padding=1), lambda x: F.leaky_relu(x, SLOPE)),
    "gansynth.core.double_backward": (lambda x, w, b: conv2d(x, w, b, 1), LeakyReLU(SLOPE)),
}


def penalty_step(ops, x: torch.Tensor, weights, biases, bf16: bool) -> None:
    conv, leaky = ops
    mixed = x.clone().requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        h = mixed
        for weight, bias in zip(weights, biases):
            h = leaky(conv(h, weight, bias))
        score = F.avg_pool2d(h, 2).float().sum()
    (grad,) = torch.autograd.grad(score, mixed, create_graph=True)
    penalty = ((grad.float().flatten(1).norm(dim=1) - 1.0) ** 2).mean()
    penalty.backward()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; each path's best is kept")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "double_backward.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    channels_last = torch.channels_last
    x = torch.randn(args.batch, WIDTHS[0], HEIGHT, WIDTH).contiguous(memory_format=channels_last)
    weights = [torch.randn(o, i, 3, 3).contiguous(memory_format=channels_last).mul_(0.1).requires_grad_(True)
               for i, o in zip(WIDTHS[:-1], WIDTHS[1:])]
    biases = [torch.zeros(o, requires_grad=True) for o in WIDTHS[1:]]
    best: dict[tuple[str, str], float] = {}
    for _ in range(args.rounds):
        for precision in ("fp32", "bf16"):
            for name, ops in OPS.items():
                penalty_step(ops, x, weights, biases, precision == "bf16")  # warm-up: oneDNN picks its kernels
                start = time.perf_counter()
                penalty_step(ops, x, weights, biases, precision == "bf16")
                seconds = time.perf_counter() - start
                best[name, precision] = min(best.get((name, precision), seconds), seconds)
    rows = []
    for precision in ("fp32", "bf16"):
        baseline = best[next(iter(OPS)), precision]
        for name in OPS:
            rows.append(dict(ops=name, precision=precision, ms=1e3 * best[name, precision],
                             speedup=baseline / best[name, precision]))
    print(f"gradient penalty step, D's top block at {HEIGHT}x{WIDTH}, batch {args.batch}, channels_last; "
          f"{cpu_model()} ({bf16_units()}), {args.threads} threads, torch {torch.__version__}, best of {args.rounds}")
    print("| ops | precision | ms | × PyTorch's (same run) |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['ops']} | {r['precision']} | {r['ms']:.0f} | {r['speedup']:.2f} |")
    report = dict(device="cpu", device_name=cpu_model(), bf16_units=bf16_units(), threads=args.threads,
                  torch=torch.__version__, batch=args.batch, rounds=args.rounds, shape=[HEIGHT, WIDTH],
                  widths=list(WIDTHS), rows=rows)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()

"""Time and peak memory of SelfAttention2d at the fork's D size (C=256, 32x256, batch 2).

Compares the fused (SDPA) and explicit (matmul + softmax) paths in fp32 and under bf16 autocast, for a
plain forward+backward and for a gradient-penalty style forward + double backward. Each configuration
runs in a fresh subprocess so its peak memory is its own: on CPU the increase of the process's peak RSS
over the set-up state (ru_maxrss), on CUDA `torch.cuda.max_memory_allocated` above the set-up state.

    python benchmarks/bench_attention.py [--device cuda] [--repeats 3] [--output PATH]
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from machine import cpu_model  # benchmarks/, the script's own folder

CHANNELS, HEIGHT, WIDTH, BATCH = 256, 32, 256, 2
PATHS = ("explicit", "fused")
DTYPES = ("fp32", "bf16")
MODES = ("fwd+bwd", "fwd+double-bwd")
DEFAULT_OUTPUT = Path(__file__).parent / "results" / "attention.json"


def _peak_bytes(torch, device: str) -> int:
    if device == "cuda":
        return torch.cuda.max_memory_allocated()
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def measure(path: str, dtype: str, mode: str, device: str, repeats: int) -> dict:
    """One configuration in this process: median step time and peak memory above the set-up state."""
    import torch

    from gansynth.core.layers import SelfAttention2d

    torch.set_num_threads(2)
    torch.manual_seed(0)
    attention = SelfAttention2d(CHANNELS).to(device)
    with torch.no_grad():
        attention.gamma.fill_(1.0)  # make the attention branch part of the gradient
    x = torch.randn(BATCH, CHANNELS, HEIGHT, WIDTH, device=device, requires_grad=True)
    double_backward = path == "explicit"

    def step() -> None:
        with torch.autocast(device, dtype=torch.bfloat16, enabled=dtype == "bf16"):
            y = attention(x, double_backward=double_backward)
        loss = y.float().square().mean()
        if mode == "fwd+bwd":
            loss.backward()
            return
        (slope,) = torch.autograd.grad(loss, x, create_graph=True)
        slope.square().sum().backward()

    def synchronize() -> None:
        if device == "cuda":
            torch.cuda.synchronize()

    synchronize()
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    baseline = _peak_bytes(torch, device)
    try:
        step()  # warm-up, also the first peak
    except RuntimeError as error:
        return {"status": "unsupported", "error": str(error).splitlines()[0][:160]}
    times = []
    for _ in range(repeats):
        synchronize()
        start = time.perf_counter()
        step()
        synchronize()
        times.append(time.perf_counter() - start)
    peak = _peak_bytes(torch, device) - baseline
    return {"status": "ok", "ms": 1e3 * statistics.median(times), "peak_mib": peak / 2**20}


def _run_child(path: str, dtype: str, mode: str, device: str, repeats: int) -> dict:
    command = [sys.executable, __file__, "--child", path, dtype, mode, "--device", device, "--repeats", str(repeats)]
    root = Path(__file__).resolve().parents[1]
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
    completed = subprocess.run(command, capture_output=True, text=True, check=True, env=environment)
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--child", nargs=3, metavar=("PATH", "DTYPE", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(*args.child, args.device, args.repeats)))
        return

    import torch

    rows = []
    print(f"SelfAttention2d C={CHANNELS} {HEIGHT}x{WIDTH} batch {BATCH}, {args.device}, torch {torch.__version__}")
    print(f"{'path':9} {'dtype':5} {'mode':15} {'ms':>9} {'peak MiB':>9}")
    for path in PATHS:
        for dtype in DTYPES:
            for mode in MODES:
                measured = _run_child(path, dtype, mode, args.device, args.repeats)
                row = {"path": path, "dtype": dtype, "mode": mode, **measured}
                rows.append(row)
                if row["status"] == "ok":
                    print(f"{path:9} {dtype:5} {mode:15} {row['ms']:9.1f} {row['peak_mib']:9.1f}")
                else:
                    print(f"{path:9} {dtype:5} {mode:15} {'unsupported':>19}  ({row['error']})")
    device_name = torch.cuda.get_device_name() if args.device == "cuda" else cpu_model()
    result = {
        "shape": {"batch": BATCH, "channels": CHANNELS, "height": HEIGHT, "width": WIDTH},
        "device": args.device,
        "device_name": device_name,
        "torch": torch.__version__,
        "threads": 2,
        "repeats": args.repeats,
        "memory": "CPU: peak RSS increase over set-up (ru_maxrss); CUDA: max_memory_allocated increase",
        "rows": rows,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()

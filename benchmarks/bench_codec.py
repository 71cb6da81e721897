"""Codec throughput: encode and decode images per second for the paper, fork and tiny geometries.

Run as ``python benchmarks/bench_codec.py``; prints a table and writes ``benchmarks/results/codec.json``.
The codec runs once per training clip (cached) and once per generated note, so this says whether it
can ever be the bottleneck next to the networks. Where the codec takes its mel products in column blocks
(``banded_matmul``), the dense product is timed beside it in the same run, best of ``--rounds`` interleaved, and
so is the decode's complex spectrum as ``polar_with_dc`` writes it against ``torch.polar`` and a pad.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gansynth.core.spectral import SpecgramCodec, polar_with_dc  # noqa: E402
from machine import cpu_model  # noqa: E402  (benchmarks/, the script's own folder)

GEOMETRIES = {
    "paper (mono 16k 4 s)": {},
    "fork (stereo 44.1k 1.5 s)": {"sample_rate": 44100, "audio_length": 1.5, "channel_mode": "stereo"},
    "tiny (mono 16k 0.25 s, n_fft 512)": {"n_fft": 512, "hop_length": 128, "n_frames": 32,
                                          "audio_length": 0.25},
}
RESULTS_PATH = Path(__file__).resolve().parent / "results" / "codec.json"


def seconds_per_call(step, device: torch.device, min_seconds: float, max_calls: int = 50) -> float:
    """Mean wall time of one call, after a warm-up call, over at least ``min_seconds``."""
    step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    calls, start = 0, time.perf_counter()
    while calls < max_calls and (calls < 2 or time.perf_counter() - start < min_seconds):
        step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        calls += 1
    return (time.perf_counter() - start) / calls


def with_dense_mel_products(codec: SpecgramCodec) -> SpecgramCodec:
    """A copy of ``codec`` that takes its mel products as one dense matmul each (the codec before blocks)."""
    dense = copy.deepcopy(codec)
    dense.to_mel_blocks = dense.to_linear_blocks = None
    return dense


def mel_products(codec: SpecgramCodec) -> dict[str, SpecgramCodec]:
    """The codec as shipped ("banded" where it takes its mel products in blocks, else "dense") and, beside a
    banded one, its copy with dense products."""
    if codec.to_mel_blocks is None and codec.to_linear_blocks is None:
        return {"dense": codec}
    return {"banded": codec, "dense": with_dense_mel_products(codec)}


def bench_geometry(settings: dict, batch: int, device: torch.device, min_seconds: float, rounds: int) -> dict:
    codec = SpecgramCodec(**settings).to(device)
    waves = 0.1 * torch.randn(batch, codec.audio_channels, codec.n_samples, device=device)  # [B, ch, n]
    images = codec.encode(waves)  # [B, C, T, F]
    variants = mel_products(codec)
    best = {name: {"encode": math.inf, "decode": math.inf} for name in variants}
    magnitude = torch.rand(batch, codec.audio_channels, codec.n_frames, codec.n_bins, device=device)
    phase = 300.0 * torch.randn_like(magnitude)  # the decode's complex spectrum from these, two ways
    spectrum = {"torch.polar + pad": lambda: F.pad(torch.polar(magnitude, phase), (1, 0)),
                "polar_with_dc": lambda: polar_with_dc(magnitude, phase)}
    spectrum_s = dict.fromkeys(spectrum, math.inf)
    with torch.inference_mode():
        for _ in range(rounds):
            for name, variant in variants.items():
                for step, call in (("encode", lambda: variant.encode(waves)), ("decode", lambda: variant.decode(images))):
                    best[name][step] = min(best[name][step], seconds_per_call(call, device, min_seconds))
            for name, call in spectrum.items():
                spectrum_s[name] = min(spectrum_s[name], seconds_per_call(call, device, min_seconds))
    return {
        "settings": codec.to_dict(),
        "image_shape": list(codec.image_shape),
        "batch": batch,
        "spectrum_ms_per_batch": {name: 1000 * seconds for name, seconds in spectrum_s.items()},
        "products": {name: {"encode_images_per_s": batch / s["encode"], "decode_images_per_s": batch / s["decode"],
                            "encode_ms_per_batch": 1000 * s["encode"], "decode_ms_per_batch": 1000 * s["decode"]}
                     for name, s in best.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--min-seconds", type=float, default=1.0, help="time spent per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; each row is its best")
    parser.add_argument("--out", type=Path, default=RESULTS_PATH)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    rows = {name: bench_geometry(settings, args.batch, device, args.min_seconds, args.rounds)
            for name, settings in GEOMETRIES.items()}
    print(f"codec throughput on {device} ({args.threads} threads), batch {args.batch}, best of {args.rounds}")
    print(f"{'geometry':<36}{'image':>16}{'mel product':>13}{'encode img/s':>14}{'decode img/s':>14}")
    for name, row in rows.items():
        shape = "x".join(map(str, row["image_shape"]))
        for product, r in row["products"].items():
            print(f"{name:<36}{shape:>16}{product:>13}{r['encode_images_per_s']:>14.1f}{r['decode_images_per_s']:>14.1f}")
        print(f"{'':<36}complex spectrum ms per batch: " + ", ".join(
            f"{way} {ms:.2f}" for way, ms in row["spectrum_ms_per_batch"].items()))

    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model(),
        "threads": args.threads,
        "torch": torch.__version__,
        "rounds": args.rounds,
        "geometries": rows,
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

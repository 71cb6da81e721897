"""Data pipeline throughput: items per second with an empty spectrogram cache (cold) and a full one.

Run as ``python benchmarks/bench_data.py``; prints a table and writes ``benchmarks/results/data.json``.
Cold = scan + decode/resample + STFT encode + write + one epoch; cached = a fresh DataModule on the
same folder (scan + index) + one epoch from the memory-mapped cache; "loader only" is that epoch
alone. Notes come from the synthetic maker, so no SoundFont is needed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gansynth.training.data import AudioFolderDataModule  # noqa: E402
from gansynth.commands.make_dataset import make_dataset  # noqa: E402
from machine import cpu_model  # noqa: E402  (benchmarks/, the script's own folder)

RESULTS_PATH = Path(__file__).resolve().parent / "results" / "data.json"
SETUPS = {
    "tiny (mono 16k 0.28 s, 2x32x256)": dict(
        notes=dict(programs=tuple(range(8)), pitch_low=48, pitch_high=72, note_length=0.2, clip_length=0.28,
                   sample_rate=16000, channels=1),
        codec=dict(sample_rate=16000, audio_length=0.28, channel_mode="mono", n_fft=512, hop_length=128,
                   n_frames=32),
    ),
    "fork (stereo 44.1k 1.5 s, 4x128x1024)": dict(
        notes=dict(programs=(0, 1), pitch_low=48, pitch_high=72, note_length=1.0, clip_length=1.5,
                   sample_rate=44100, channels=2),
        codec=dict(sample_rate=44100, audio_length=1.5, channel_mode="stereo", n_fft=2048, hop_length=512,
                   n_frames=128),
    ),
}


def one_pass(folder: Path, codec: dict, batch_size: int, num_workers: int) -> dict:
    """Seconds spent in scan (with construction), prepare_data, and one epoch (setup + loader)."""
    clock = time.perf_counter()
    dm = AudioFolderDataModule(str(folder), codec, labels={"source": "nsynth"}, batch_size=batch_size,
                               num_workers=num_workers)
    dm.scan()
    scan_s, clock = time.perf_counter() - clock, time.perf_counter()
    dm.prepare_data()
    prepare_s, clock = time.perf_counter() - clock, time.perf_counter()
    dm.setup("fit")
    items = sum(images.shape[0] for images, *_ in dm.train_dataloader())
    epoch_s = time.perf_counter() - clock
    return {"scan_s": scan_s, "prepare_s": prepare_s, "epoch_s": epoch_s, "epoch_items": items,
            "total_s": scan_s + prepare_s + epoch_s}


def bench_setup(name: str, setup: dict, batch_size: int, num_workers: int, repeats: int, root: Path) -> dict:
    """Fastest of `repeats` cold/cached pairs: the machine is shared, so the minimum is the least noisy."""
    folder = root / name.split()[0]
    notes = len(make_dataset(folder, synthetic=True, velocities=(100,), progress=False, **setup["notes"]))
    colds, cacheds = [], []
    for _ in range(repeats):
        shutil.rmtree(folder / ".gansynth_cache", ignore_errors=True)
        colds.append(one_pass(folder, setup["codec"], batch_size, num_workers))
        cacheds.append(one_pass(folder, setup["codec"], batch_size, num_workers))
    cold = min(colds, key=lambda run: run["total_s"])
    cached = min(cacheds, key=lambda run: run["total_s"])
    return {
        "notes": notes,
        "repeats": repeats,
        "codec": setup["codec"],
        "cold": cold,
        "cached": cached,
        "cold_items_per_s": notes / cold["total_s"],
        "cached_items_per_s": notes / cached["total_s"],
        "cached_loader_items_per_s": cached["epoch_items"] / cached["epoch_s"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="the fastest run is reported")
    parser.add_argument("--out", type=Path, default=RESULTS_PATH)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as root:
        rows = {name: bench_setup(name, setup, args.batch, args.workers, args.repeats, Path(root))
                for name, setup in SETUPS.items()}
    print(f"data pipeline, {args.threads} threads, {args.workers} workers, batch {args.batch}, "
          f"best of {args.repeats}")
    print(f"{'geometry':<40}{'notes':>7}{'cold items/s':>14}{'cached items/s':>16}{'loader only':>13}")
    for name, row in rows.items():
        print(f"{name:<40}{row['notes']:>7}{row['cold_items_per_s']:>14.1f}{row['cached_items_per_s']:>16.1f}"
              f"{row['cached_loader_items_per_s']:>13.1f}")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "device_name": cpu_model(),
        "threads": args.threads,
        "workers": args.workers,
        "batch": args.batch,
        "torch": torch.__version__,
        "setups": rows,
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

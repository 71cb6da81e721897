"""Rendering speed: notes/s, real-time factor and peak RSS of MIDI rendering at full model size.

Two generators with random weights (rendering cost does not depend on training): the paper's
(mono 16 kHz 4 s, 7 blocks, fmap 4096/256) and the fork's (stereo 44.1 kHz 1.5 s, attention at
8192). The piece is a generated polyphonic MIDI of about 2 minutes; every note gets its own
latent (instrument=slerp with one anchor per second), so nothing is deduplicated: the worst case.
Each (model, precision) runs in its own process so ru_maxrss is that run's peak.

    python benchmarks/bench_render.py [--notes 24] [--device cpu] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODELS = {
    "paper": dict(codec=dict(sample_rate=16000, audio_length=4.0, channel_mode="mono", n_fft=2048,
                             hop_length=512, n_frames=128),
                  network=dict(num_blocks=7, start_shape=[2, 16], latent_dim=256, fmap_base=4096,
                               fmap_decay=1.0, fmap_max=256, attention_areas=[])),
    "fork": dict(codec=dict(sample_rate=44100, audio_length=1.5, channel_mode="stereo", n_fft=2048,
                            hop_length=512, n_frames=128),
                 network=dict(num_blocks=7, start_shape=[2, 16], latent_dim=256, fmap_base=4096,
                              fmap_decay=1.0, fmap_max=256, attention_areas=[8192])),
}
PIECE_SECONDS = 120.0


def write_checkpoint(path: Path, model: str) -> None:
    import torch

    from gansynth.core.networks import Generator
    from gansynth.core.spectral import SpecgramCodec

    spec = MODELS[model]
    codec = SpecgramCodec(**spec["codec"])
    generator = Generator(image_shape=codec.image_shape, num_pitches=61, **spec["network"])
    torch.save({"hyper_parameters": {"codec": codec.to_dict(), "network": spec["network"],
                                     "pitch": {"low": 24, "high": 84, "counts": [1] * 61}},
                "state_dict": {f"ema_generator.{k}": v for k, v in generator.state_dict().items()}}, path)


def polyphonic_notes(count: int) -> list:
    """`count` notes over ~2 minutes: a 3-note chord every few seconds plus a melody between."""
    import numpy as np

    from gansynth.core.midi import Note

    rng = np.random.default_rng(0)
    chords = count // 2 // 3
    notes = []
    for i in range(chords):
        start = i * PIECE_SECONDS / chords
        root = int(rng.integers(40, 60))
        notes += [Note(start, start + 2.0, root + step, 90, 0, 0) for step in (0, 4, 7)]
    melody = count - len(notes)
    for i in range(melody):
        start = (i + 0.5) * PIECE_SECONDS / melody
        notes.append(Note(start, start + 0.4, int(rng.integers(60, 80)), int(rng.integers(40, 127)), 1, 1))
    return sorted(notes, key=lambda n: n.start)


def run_one(model: str, precision: str, notes_count: int, device: str, threads: int, batch_size: int) -> dict:
    """Render once in this process and report its timings and peak RSS."""
    import numpy as np
    import torch

    from gansynth.inference.checkpoint import load_checkpoint
    from gansynth.inference.render import interpolate_anchors, random_anchors, render_midi

    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as folder:
        ckpt = Path(folder) / f"{model}.ckpt"
        write_checkpoint(ckpt, model)
        synth = load_checkpoint(ckpt, device=device, batch_size=batch_size, precision=precision)
    notes = polyphonic_notes(notes_count)
    end = max(n.end for n in notes)
    anchors = random_anchors(round(end) + 1, synth.latent_dim, seed=0)
    latents = interpolate_anchors(anchors, np.array([n.start / end for n in notes]))
    render_midi(synth, notes[:1], latents[:1])  # warm-up (allocator, kernels)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    started = time.perf_counter()
    audio = render_midi(synth, notes, latents)
    seconds = time.perf_counter() - started
    audio_seconds = audio.shape[1] / synth.sample_rate
    return dict(model=model, precision=precision, device=device, notes=len(notes), batch_size=batch_size,
                audio_seconds=round(audio_seconds, 2), wall_seconds=round(seconds, 2),
                notes_per_second=round(len(notes) / seconds, 2), ms_per_note=round(1000 * seconds / len(notes), 1),
                real_time_factor=round(seconds / audio_seconds, 3),
                peak_rss_mib=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1))


def table(rows: list[dict]) -> str:
    lines = ["| model | precision | device | notes | ms/note | notes/s | RTF (wall/audio) | peak RSS MiB |",
             "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['model']} | {r['precision']} | {r['device']} | {r['notes']} | {r['ms_per_note']} | "
              f"{r['notes_per_second']} | {r['real_time_factor']} | {r['peak_rss_mib']} |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notes", type=int, default=24)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "render.json")
    parser.add_argument("--one", nargs=2, metavar=("MODEL", "PRECISION"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(*args.one, args.notes, args.device, args.threads, args.batch_size)))
        return
    rows = []
    for model in MODELS:
        for precision in ("fp32", "bf16"):
            command = [sys.executable, __file__, "--one", model, precision, "--notes", str(args.notes),
                       "--device", args.device, "--threads", str(args.threads), "--batch-size", str(args.batch_size)]
            result = subprocess.run(command, capture_output=True, text=True, check=True)
            rows.append(json.loads(result.stdout.strip().splitlines()[-1]))
            print(table(rows[-1:]).splitlines()[-1], flush=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(dict(machine=platform.processor() or platform.machine(),
                                           threads=args.threads, piece_seconds=PIECE_SECONDS, rows=rows), indent=2))
    print(table(rows))


if __name__ == "__main__":
    main()

"""Mel matrix fidelity: round-trip error and pitch accuracy of real notes through each mel matrix.

Run as ``python benchmarks/bench_mel_matrix.py``; prints a table and writes
``benchmarks/results/mel_matrix.json``. Renders SoundFont notes (programs 0, 40, 73, MIDI 36-84,
velocity 100, held for the whole clip) for the paper, fork and tiny geometries, passes them through
the codec (encode, decode) with the ``released`` and ``independent`` mel matrices and with no mel at
all (the linear codec: what the STFT edges alone cost), and scores what comes back: the magnitude
SNR of the codec's own STFT and YIN pitch accuracy (``gansynth.evaluation.metrics.pitch_accuracy``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gansynth.core.audio import load_clip  # noqa: E402
from machine import cpu_model  # noqa: E402  (benchmarks/, the script's own folder)
from gansynth.evaluation.metrics import pitch_accuracy  # noqa: E402
from gansynth.core.labels import NSYNTH_STEM  # noqa: E402
from gansynth.commands.make_dataset import make_dataset  # noqa: E402
from gansynth.core.spectral import MEL_MATRICES, SpecgramCodec, stft  # noqa: E402

GEOMETRIES = {
    "paper": dict(sample_rate=16000, audio_length=4.0, channel_mode="mono"),
    "fork": dict(sample_rate=44100, audio_length=1.5, channel_mode="stereo"),
    "tiny": dict(sample_rate=16000, audio_length=0.25, channel_mode="mono", n_fft=512, hop_length=128,
                 n_frames=32),
}
VARIANTS = (*MEL_MATRICES, "linear")
NOTES = dict(programs=(0, 40, 73), pitch_low=36, pitch_high=84, velocities=(100,))
RESULTS_PATH = Path(__file__).resolve().parent / "results" / "mel_matrix.json"


def real_notes(name: str, data_root: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """The geometry's notes as waves [N, ch, n] and their MIDI pitches [N] (rendered once, then reused)."""
    settings = GEOMETRIES[name]
    channels = 2 if settings["channel_mode"] == "stereo" else 1
    folder = data_root / f"melnotes_{name}"
    paths = sorted(folder.glob("*.wav"))
    if not paths:
        paths = make_dataset(folder, note_length=settings["audio_length"], clip_length=settings["audio_length"],
                             sample_rate=settings["sample_rate"], channels=channels, progress=False, **NOTES)
    waves = np.stack([load_clip(p, settings["sample_rate"], channels) for p in paths])  # [N, ch, n]
    pitches = [int(NSYNTH_STEM.search(p.stem)["pitch"]) for p in paths]
    return torch.from_numpy(waves), torch.tensor(pitches)


def magnitude_snr_db(codec: SpecgramCodec, original: torch.Tensor, restored: torch.Tensor) -> torch.Tensor:
    """Per note: energy of the STFT magnitude over the energy of its error, in dB (all channels pooled)."""
    magnitude = stft(original, codec.n_fft, codec.hop_length).abs()  # [N, ch, T, F]
    error = stft(restored, codec.n_fft, codec.hop_length).abs() - magnitude
    return 10 * torch.log10(magnitude.square().sum((1, 2, 3)) / error.square().sum((1, 2, 3)))  # [N]


def measure(name: str, data_root: Path, batch: int) -> dict:
    waves, pitches = real_notes(name, data_root)
    sample_rate = GEOMETRIES[name]["sample_rate"]
    matrices = {}
    for variant in VARIANTS:
        mel = dict(mel=False) if variant == "linear" else dict(mel_matrix=variant)
        codec = SpecgramCodec(**GEOMETRIES[name], **mel)
        if waves.shape[-1] != codec.n_samples:
            raise SystemExit(f"{name}: notes have {waves.shape[-1]} samples, the codec wants {codec.n_samples}")
        with torch.inference_mode():
            restored = torch.cat([codec.decode(codec.encode(chunk)) for chunk in waves.split(batch)])
        snr = magnitude_snr_db(codec, waves, restored)
        matrices[variant] = {
            "magnitude_snr_db_mean": float(snr.mean()),
            "magnitude_snr_db_min": float(snr.min()),
            "magnitude_snr_db_lowest_octave": float(snr[pitches < 48].mean()),
            "pa": pitch_accuracy(restored, sample_rate, pitches)["pa"],
        }
    return {"settings": GEOMETRIES[name], "notes": len(pitches),
            "original_pa": pitch_accuracy(waves, sample_rate, pitches)["pa"], "matrices": matrices}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=Path("/tmp"),
                        help="notes are rendered into <data-root>/melnotes_<geometry> unless already there")
    parser.add_argument("--only", nargs="+", choices=tuple(GEOMETRIES), default=list(GEOMETRIES))
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS_PATH)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    rows = {name: measure(name, args.data_root, args.batch) for name in args.only}
    print("real notes through the codec: magnitude SNR dB (mean / worst note / MIDI 36-47) and pitch accuracy")
    print(f"{'geometry':<10}{'matrix':<13}{'SNR mean':>10}{'worst':>8}{'36-47':>8}{'PA':>7}")
    for name, row in rows.items():
        print(f"{name:<10}{'(original)':<13}{'':>26}{row['original_pa']:>7.3f}")
        for variant in VARIANTS:
            r = row["matrices"][variant]
            print(f"{'':<10}{variant:<13}{r['magnitude_snr_db_mean']:>10.1f}{r['magnitude_snr_db_min']:>8.1f}"
                  f"{r['magnitude_snr_db_lowest_octave']:>8.1f}{r['pa']:>7.3f}")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "device": "cpu",
        "device_name": cpu_model(),
        "threads": args.threads,
        "torch": torch.__version__,
        "notes": {k: list(v) if isinstance(v, tuple) else v for k, v in NOTES.items()},
        "geometries": rows,
    }
    args.out.write_text(json.dumps(report, indent=2, allow_nan=True) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

"""Which channel keeps generated notes from sounding like the data: magnitude or instantaneous frequency?

Each generated note (the checkpoint's EMA G, ``--latents`` per trained pitch) is paired with a real note
of its pitch (instruments in turn); the two swap one channel kind before decoding. "G magnitude + real
IF" scores G's magnitude as if its phase were perfect; "real magnitude + G IF" scores G's phase on a real
magnitude. Scored by the monitor's metrics against the real notes through the codec; the paired real
notes themselves are the ceiling. Prints a table, writes ``benchmarks/results/channel_swap.json``.

    python benchmarks/channel_swap.py --ckpt runs/x/checkpoints/last.ckpt --data notes/
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from machine import cpu_model  # noqa: E402  (benchmarks/, the script's own folder)
from gansynth.core.audio import load_clip  # noqa: E402
from gansynth.core.labels import NSYNTH_STEM  # noqa: E402
from gansynth.evaluation.metrics import pitch_accuracy  # noqa: E402
from gansynth.evaluation.timbre import TimbreReference, instrument_of, timbre_features, timbre_scores  # noqa: E402
from gansynth.inference.checkpoint import load_checkpoint  # noqa: E402

VARIANTS = ("generated", "G magnitude + real IF", "real magnitude + G IF", "G magnitude, IF zero", "paired real")


def swapped(kind: str, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Raw images [N, 2 ch, T, F] (magnitude and IF interleaved per audio channel) for one variant."""
    image = fake.clone()
    magnitude, phase = slice(0, None, 2), slice(1, None, 2)
    if kind == "G magnitude + real IF":
        image[:, phase] = real[:, phase]
    elif kind == "real magnitude + G IF":
        image[:, magnitude] = real[:, magnitude]
    elif kind == "G magnitude, IF zero":
        image[:, phase] = 0.0
    elif kind == "paired real":
        image = real
    return image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True, help="the NSynth-named notes it was trained on")
    parser.add_argument("--latents", type=int, default=8)
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "channel_swap.json")
    args = parser.parse_args()
    synth = load_checkpoint(args.ckpt)
    codec, rate = synth.codec, synth.sample_rate
    paths = sorted(args.data.glob("*.wav"))
    waves = torch.from_numpy(np.stack([load_clip(p, rate, codec.audio_channels)[:, :synth.n_samples] for p in paths]))
    midi = torch.tensor([int(NSYNTH_STEM.search(p.stem)["pitch"]) for p in paths])
    real = codec.encode(waves)  # [R, 2 ch, T, F] raw
    reference = TimbreReference.fit(timbre_features(codec.decode(real), midi, rate), midi,
                                    [instrument_of(p) for p in paths])
    pitches = midi.unique().repeat_interleave(args.latents)  # [N]
    z = torch.randn(len(pitches), synth.latent_dim, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        fake = codec.denormalize(synth.network(z, torch.tensor([synth.vocab.index(int(p)) for p in pitches]),
                                               synth.blocks, synth.alpha).float())
    pair = torch.stack([torch.nonzero(midi == p).flatten()[i % int((midi == p).sum())]
                        for i, p in enumerate(pitches.tolist())])
    rows = []
    for kind in VARIANTS:
        audio = codec.decode(swapped(kind, fake, real[pair]))
        scores = timbre_scores(reference, timbre_features(audio, pitches, rate), pitches)
        rows.append(dict(variant=kind, pa=pitch_accuracy(audio, rate, pitches)["pa"], **scores))
    print(f"{args.ckpt} on {args.data}, {args.latents} latents per pitch")
    print("| notes | PA | coverage | mix entropy | nearest-real |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['variant']} | {r['pa']:.2f} | {r['coverage']:.2f} | {r['entropy']:.2f} | {r['nearest_real_ratio']:.2f} |")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(dict(cpu=cpu_model(), torch=torch.__version__, ckpt=str(args.ckpt),
                                           data=str(args.data), rows=rows), indent=1) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()

"""Which channel keeps generated notes from sounding like the data: magnitude or instantaneous frequency?

Each generated note (the checkpoint's EMA G, ``--latents`` per trained pitch) is paired with a real note
of its pitch (instruments in turn); the two swap one channel kind before decoding. "G magnitude + real
IF" scores G's magnitude as if its phase were perfect; "real magnitude + G IF" scores G's phase on a real
magnitude. "... + comb IF" decodes a magnitude with the IF the codec gives the pitch's ideal harmonic
comb (`gansynth.core.harmonics.comb_if`, data-free): G's, and as controls an untrained G's and white
noise's, which must stay unpitched. Scored by the monitor's metrics against the real notes through the
codec; the paired real notes themselves are the ceiling. Prints a table, writes ``benchmarks/results/channel_swap.json``.

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
from gansynth.core.harmonics import comb_if  # noqa: E402
from gansynth.core.labels import NSYNTH_STEM, instrument_of  # noqa: E402
from gansynth.evaluation.metrics import pitch_accuracy  # noqa: E402
from gansynth.evaluation.timbre import TimbreReference, timbre_features, timbre_scores  # noqa: E402
from gansynth.inference.checkpoint import load_checkpoint  # noqa: E402

# variant -> (whose magnitude, whose IF)
VARIANTS = {
    "generated": ("G", "G"),
    "G magnitude + real IF": ("G", "real"),
    "real magnitude + G IF": ("real", "G"),
    "G magnitude, IF zero": ("G", "zero"),
    "G magnitude + comb IF": ("G", "comb"),
    "real magnitude + comb IF": ("real", "comb"),
    "untrained G magnitude + comb IF": ("untrained", "comb"),
    "white noise + comb IF": ("noise", "comb"),
    "paired real": ("real", "real"),
}


def swapped(magnitude: str, phase: str, images: dict[str, torch.Tensor], comb: torch.Tensor) -> torch.Tensor:
    """Raw image [N, 2 ch, T, F] (magnitude and IF interleaved per audio channel) with one source's
    magnitude and another's IF; ``comb`` is the comb's IF [N, 1, T, F]."""
    image = images[magnitude].clone()
    phases = {"zero": torch.zeros_like(comb), "comb": comb}
    image[:, 1::2] = phases[phase] if phase in phases else images[phase][:, 1::2]
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
    index = torch.tensor([synth.vocab.index(int(p)) for p in pitches])
    untrained = load_checkpoint(args.ckpt, untrained_seed=0)
    with torch.no_grad():
        fake, blank = (codec.denormalize(g.network(z, index, g.blocks, g.alpha).float()) for g in (synth, untrained))
    pair = torch.stack([torch.nonzero(midi == p).flatten()[i % int((midi == p).sum())]
                        for i, p in enumerate(pitches.tolist())])
    noise = torch.randn(len(pitches), codec.audio_channels, synth.n_samples, generator=torch.Generator().manual_seed(2))
    images = dict(G=fake, real=real[pair], untrained=blank, noise=codec.encode(0.1 * noise))
    comb = comb_if(codec, synth.vocab, [tuple(fake.shape[-2:])])[0][index]
    rows = []
    for kind, (magnitude, phase) in VARIANTS.items():
        audio = codec.decode(swapped(magnitude, phase, images, comb))
        features = timbre_features(audio, pitches, rate)
        rows.append(dict(variant=kind, pa=pitch_accuracy(audio, rate, pitches)["pa"],
                         noisiness_db=float(features[:, -1].mean()), **timbre_scores(reference, features, pitches)))
    print(f"{args.ckpt} on {args.data}, {args.latents} latents per pitch")
    print("| notes | PA | coverage | mix entropy | nearest-real | noisiness dB |\n|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['variant']} | {r['pa']:.2f} | {r['coverage']:.2f} | {r['entropy']:.2f} "
              f"| {r['nearest_real_ratio']:.2f} | {r['noisiness_db']:.1f} |")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(dict(cpu=cpu_model(), torch=torch.__version__, ckpt=str(args.ckpt),
                                           data=str(args.data), rows=rows), indent=1) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()

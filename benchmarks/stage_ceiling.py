"""The ceilings of the learning metrics: of each progressive stage, and of K notes drawn per pitch.

A lower stage's output is upsampled to the full image before decoding, so its timbre columns are bounded
by what that resolution can hold. This pools the real (normalised) images to each stage's size exactly as
training does for the reals, upsamples, decodes, and scores the result with the monitor's metrics
against the full-resolution round trip.

Coverage and mix entropy are counted per pitch over the K notes scored there, so even a perfect
generator, one that draws its notes at random from the data, scores below the ceiling of all real notes
when K is small. The second table draws K round-tripped real notes per pitch (with replacement) many
times and scores each draw: what a generator that is the data would score at the monitor's and the
evaluator's K. Prints both tables and writes ``benchmarks/results/stage_ceiling.json``.

    python benchmarks/stage_ceiling.py --data notes/ [--experiment tiny] [--override codec.channel_mode=stereo]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gansynth.commands.cli import compose_config  # noqa: E402
from gansynth.core.audio import load_clip  # noqa: E402
from gansynth.evaluation.metrics import pitch_accuracy  # noqa: E402
from gansynth.core.labels import NSYNTH_STEM, instrument_of  # noqa: E402
from gansynth.core.spectral import SpecgramCodec  # noqa: E402
from gansynth.evaluation.timbre import (TimbreReference, perfect_sampler_scores,  # noqa: E402
                                        timbre_features, timbre_scores)
from machine import cpu_model  # noqa: E402  (benchmarks/, the script's own folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="a folder of NSynth-named notes")
    parser.add_argument("--experiment", default="tiny")
    parser.add_argument("--override", nargs="*", default=[], metavar="KEY=VALUE",
                        help="Hydra overrides, e.g. codec.channel_mode=stereo as the learning runs use")
    parser.add_argument("--draws", type=int, nargs="+", default=[8, 16, 32, 64], metavar="K",
                        help="notes per pitch of the perfect-sampler table")
    parser.add_argument("--repeats", type=int, default=200, help="random draws per K")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "stage_ceiling.json")
    args = parser.parse_args()
    cfg = compose_config("train", [f"experiment={args.experiment}", *args.override])
    codec = SpecgramCodec(**OmegaConf.to_container(cfg.codec, resolve=True))
    paths = sorted(args.data.glob("*.wav"))
    waves = torch.from_numpy(np.stack([load_clip(p, codec.sample_rate, codec.audio_channels) for p in paths]))
    midi = torch.tensor([int(NSYNTH_STEM.search(p.stem)["pitch"]) for p in paths])
    images = codec.normalize(codec.encode(waves))
    full = codec.decode(codec.denormalize(images))
    reference = TimbreReference.fit(timbre_features(full, midi, codec.sample_rate), midi,
                                    [instrument_of(p) for p in paths])

    rows = []
    frames, bins = codec.image_shape[1:]
    for factor in (1, 2, 4, 8):
        pooled = F.interpolate(F.avg_pool2d(images, factor), scale_factor=factor, mode="nearest")
        audio = codec.decode(codec.denormalize(pooled))
        scores = timbre_scores(reference, timbre_features(audio, midi, codec.sample_rate), midi,
                               leave_one_out=factor == 1)
        rows.append(dict(resolution=f"{frames // factor}x{bins // factor}",
                         pa=pitch_accuracy(audio, codec.sample_rate, midi)["pa"], **scores))

    print(f"real notes of {args.data} ({len(paths)}), {args.experiment} codec {' '.join(args.override)}, "
          "pooled to each stage")
    print("| stage | PA | coverage | mix entropy | diversity | nearest-real |\n|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['resolution']} | {r['pa']:.2f} | {r['coverage']:.2f} | {r['entropy']:.2f} | "
              f"{r['diversity']:.2f} | {r['nearest_real_ratio']:.2f} |")

    draws = [{"notes_per_pitch": k, **perfect_sampler_scores(reference, k, args.repeats)} for k in args.draws]
    print(f"\na perfect sampler: K real notes per pitch drawn at random, {args.repeats} draws each")
    print("| K | coverage (mean / sd / 5th pct) | mix entropy (mean / sd / 5th pct) |\n|---|---|---|")
    for d in draws:
        print(f"| {d['notes_per_pitch']} | " + " | ".join(
            f"{d[key]['mean']:.3f} / {d[key]['sd']:.3f} / {d[key]['p5']:.3f}" for key in ("coverage", "entropy")) + " |")
    report = dict(cpu=cpu_model(), torch=torch.__version__, data=str(args.data),
                  experiment=args.experiment, overrides=args.override, notes=len(paths), rows=rows,
                  perfect_sampler=draws)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()

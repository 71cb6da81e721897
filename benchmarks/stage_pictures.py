"""Timbre scores of a trained G's picture at each stage it has: which blocks move notes toward or away
from the real ones.

A skip G's picture at a lower stage is the sum of its coarser blocks; drawn with fewer blocks and
upsampled bilinearly to the full size (the full-size comb IF with comb phase), it decodes to the note G
would make without its finer blocks. Each picture is scored with the evaluator's timbre metrics against
the real notes' round trip, and its nearest-real distance is split into the feature groups (harmonic
profile, envelope segments, noisiness): the envelope's share and its worst segment say what the finer
blocks get wrong. Prints a table and writes JSON.

    python benchmarks/stage_pictures.py --data notes/ --ckpt runs/x/checkpoints/last.ckpt [--ckpt ...]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gansynth.commands.cli import compose_config  # noqa: E402
from gansynth.commands.evaluate import real_notes  # noqa: E402
from gansynth.core.networks import upsample  # noqa: E402
from gansynth.evaluation.metrics import datamodule_note_batches, real_instruments  # noqa: E402
from gansynth.evaluation.timbre import (FEATURE_GROUPS, TimbreReference, timbre_features,  # noqa: E402
                                        timbre_scores)
from gansynth.inference.checkpoint import load_checkpoint  # noqa: E402
from machine import cpu_model  # noqa: E402  (benchmarks/, the script's own folder)

def stage_picture(synth, z: torch.Tensor, index: torch.Tensor, blocks: int) -> torch.Tensor:
    """Audio [N, ch, n] of the EMA G's picture with ``blocks`` blocks, brought up to the full size."""
    generator = synth.generator
    with torch.no_grad():
        image = generator(z, index, blocks, 1.0)
        while image.shape[-2:] != generator.resolution(generator.num_blocks):
            image = upsample(image, "bilinear")
        if generator.comb_phase:
            image = generator.with_comb_phase(image, index, generator.num_blocks)
        return synth.codec.decode(synth.codec.denormalize(image))


def real_reference(data: Path, ckpt: Path, synth) -> tuple[TimbreReference, list[int]]:
    """The evaluator's timbre reference (the training notes as the checkpoint's codec returns them, read
    through the evaluate config's data group) and the pitches the notes cover."""
    cfg = compose_config("evaluate", [f"data.path={data}", f"ckpt_path={ckpt}"])
    datamodule = real_notes(cfg.data, synth)
    audio, midi = zip(*datamodule_note_batches(datamodule, synth.codec))
    midi = torch.cat(midi)
    features = timbre_features(torch.cat(audio), midi, synth.sample_rate)
    return TimbreReference.fit(features, midi, real_instruments(datamodule)), sorted(set(midi.tolist()))


def distance_shares(reference: TimbreReference, standardised: torch.Tensor) -> dict:
    """Each feature group's share of the squared distance to the nearest real note, and the envelope
    segment with the largest mean squared error."""
    nearest = reference.features[torch.cdist(standardised, reference.features).argmin(1)]
    squared = (standardised - nearest).square()  # [N, D]
    shares = {name: float(squared[:, part].sum() / squared.sum()) for name, part in FEATURE_GROUPS.items()}
    envelope = squared[:, FEATURE_GROUPS["envelope"]].mean(0)
    return {**shares, "worst_segment": int(envelope.argmax()), "worst_segment_error": float(envelope.max())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="the NSynth-named notes the model was trained on")
    parser.add_argument("--ckpt", type=Path, action="append", required=True)
    parser.add_argument("--latents", type=int, default=16, help="latents per pitch (the same ones at every pitch)")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "stage_pictures.json")
    args = parser.parse_args()
    if not any(args.data.glob("*.wav")):
        parser.error(f"--data {args.data}: no .wav files there")
    for ckpt in args.ckpt:
        if not ckpt.is_file():
            parser.error(f"--ckpt {ckpt}: no such file")
    rows = []
    for ckpt in args.ckpt:
        synth = load_checkpoint(ckpt)
        reference, pitches = real_reference(args.data, ckpt, synth)
        z = torch.randn(args.latents, synth.latent_dim, generator=torch.Generator().manual_seed(0))
        notes = torch.tensor(pitches).repeat_interleave(args.latents)  # [P * K]
        index = torch.tensor([synth.vocab.index(p) for p in notes.tolist()])
        for blocks in range(1, synth.generator.num_blocks + 1):
            features = timbre_features(stage_picture(synth, z.repeat(len(pitches), 1), index, blocks), notes,
                                       synth.sample_rate)
            scores = timbre_scores(reference, features, notes)
            h, w = synth.generator.resolution(blocks)
            rows.append(dict(ckpt=str(ckpt), stage=f"{h}x{w}", **scores,
                             **distance_shares(reference, reference.standardise(features))))
    print(f"{len(pitches)} pitches x {args.latents} latents, EMA G, each stage's picture upsampled to full size")
    print("| checkpoint | stage | coverage | mix entropy | nearest-real | envelope share | worst segment (error) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['ckpt']} | {r['stage']} | {r['coverage']:.2f} | {r['entropy']:.2f} | "
              f"{r['nearest_real_ratio']:.2f} | {r['envelope']:.2f} | {r['worst_segment']} "
              f"({r['worst_segment_error']:.1f}) |")
    report = dict(cpu=cpu_model(), torch=torch.__version__, data=str(args.data), latents=args.latents, rows=rows)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()

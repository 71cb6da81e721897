"""Does each latent category play its instrument's attack and release? Level curves, frame by frame.

A checkpoint trained with ``model.instrument_projection`` plays instrument k from latent category k. This
draws ``--latents`` latents in each category at every trained pitch and compares the median level curve
of those notes (each frame's power in dB below the note's loudest frame, the codec's frames) with the
real notes of that instrument passed through the model's codec (with the comb's IF where the model draws
magnitudes only: what G could at best return). The real notes of every other pitch, against all of them,
show how far two samples of one instrument lie apart (the ceiling). Beside them, two controls that must score worse: the
untrained generator, and one curve for every instrument (the median over all real notes: a G that
ignores the category). Prints, per instrument, the curves at every few frames, the onset (the first
frame), the frame of the peak, the release (the drop from the frames before ``--note-off`` to the last
ones) and the mean distance to the real curve in dB; writes ``benchmarks/results/level_curves.json``.

    python benchmarks/level_curves.py --ckpt runs/x/checkpoints/last.ckpt --data notes/ [--note-off 0.2]
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

from gansynth.core.audio import load_clip  # noqa: E402
from gansynth.core.labels import NSYNTH_STEM, instrument_of  # noqa: E402
from gansynth.inference.checkpoint import load_checkpoint  # noqa: E402
from machine import machine_record  # noqa: E402  (benchmarks/, the script's own folder)

SHOWN_EVERY = 3  # frames between the columns the table prints


def level_curves(waves: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    """[N, ch, n] waves -> [N, frames]: each frame's power (channels summed) in dB below the note's loudest."""
    spec = torch.stft(waves.flatten(0, 1), n_fft, hop, window=torch.hann_window(n_fft), return_complex=True)
    power = spec.abs().square().sum(1).unflatten(0, waves.shape[:2]).sum(1)  # [N, frames]
    db = 10.0 * torch.log10(power + 1e-10)
    return db - db.amax(1, keepdim=True)


def through_codec(synth, waves: torch.Tensor, midi: torch.Tensor) -> torch.Tensor:
    """The real notes as the model's representation returns them: with the comb's IF where G draws none, as
    training shows them to the critic (``Generator.with_comb_phase``)."""
    codec = synth.codec.cpu()
    image = codec.normalize(codec.encode(waves))  # [N, 2 ch, T, F]
    if synth.generator.comb_phase:
        image = synth.generator.with_comb_phase(image, midi - synth.vocab.low, synth.blocks)
    return codec.decode(codec.denormalize(image))


def summary(curves: torch.Tensor, target: torch.Tensor, off: int) -> dict:
    """The median curve of [N, frames] and its onset, peak frame, release and distance to ``target``."""
    median = curves.median(0).values
    return {"curve": [round(float(v), 2) for v in median], "onset_db": float(median[0]),
            "peak_frame": int(median.argmax()),
            "release_db": float(median[-4:-1].mean() - median[off - 4:off].mean()),
            "distance_db": float((median - target).abs().mean())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", type=Path, required=True,
                        help="a checkpoint trained with model.instrument_projection")
    parser.add_argument("--data", type=Path, required=True, help="the NSynth-named notes it was trained on")
    parser.add_argument("--latents", type=int, default=8, help="latents per category, each at every trained pitch")
    parser.add_argument("--note-off", type=float, default=0.2, help="seconds the real notes' keys were held")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "level_curves.json")
    args = parser.parse_args()
    synth = load_checkpoint(args.ckpt)
    if not synth.instruments:
        sys.exit(f"error: {args.ckpt}: trained without model.instrument_projection (no category per instrument)")
    untrained = load_checkpoint(args.ckpt, untrained_seed=args.seed)
    paths = [p for p in sorted(args.data.glob("*.wav")) if instrument_of(p) in synth.instruments]
    if not paths:
        sys.exit(f"error: {args.data}: no note of the checkpoint's instruments ({', '.join(synth.instruments)})")
    n_fft, hop = synth.codec.n_fft, synth.codec.hop_length
    waves = torch.from_numpy(np.stack([load_clip(p, synth.sample_rate, synth.channels)[:, :synth.n_samples]
                                       for p in paths]))
    midi = torch.tensor([int(NSYNTH_STEM.search(p.stem)["pitch"]) for p in paths])
    real = level_curves(through_codec(synth, waves, midi), n_fft, hop)  # [N, frames]
    names = np.array([instrument_of(p) for p in paths])
    everyone = real.median(0).values  # one curve for every instrument: the category ignored
    off = round(args.note_off * synth.sample_rate / hop)
    pitches = synth.trained_pitches
    rng = np.random.default_rng(args.seed)
    rows = {}
    for name in synth.instruments:
        is_mine = torch.from_numpy(names == name)
        mine = real[is_mine]
        target = mine.median(0).values
        latents = synth.as_instrument(rng.standard_normal((args.latents, synth.latent_dim)).astype(np.float32), name)
        z = torch.from_numpy(np.repeat(latents, len(pitches), 0))
        pitch_rank = torch.unique(midi[is_mine], return_inverse=True)[1]
        rows[name] = {"real_half": summary(mine[pitch_rank % 2 == 0], target, off),
                      "generated": summary(level_curves(synth.generate(pitches * args.latents, z), n_fft, hop),
                                           target, off),
                      "untrained": summary(level_curves(untrained.generate(pitches * args.latents, z), n_fft, hop),
                                           target, off),
                      "one_curve": summary(everyone[None], target, off)}
    frames = len(everyone)
    shown = list(range(0, frames, SHOWN_EVERY))
    print(f"level in dB below each note's loudest frame ({hop / synth.sample_rate * 1000:.0f} ms frames), "
          f"median over notes; release: the last frames against the 4 before frame {off} (note-off)")
    print(f"{'instrument':<22}{'notes':<11}" + "".join(f"{i:>6}" for i in shown)
          + f"{'onset':>7}{'peak@':>6}{'release':>8}{'dist':>6}")
    for name, row in rows.items():
        for column, scores in row.items():
            print(f"{name[:21]:<22}{column:<11}" + "".join(f"{scores['curve'][i]:6.1f}" for i in shown)
                  + f"{scores['onset_db']:7.1f}{scores['peak_frame']:6d}{scores['release_db']:8.1f}"
                  + f"{scores['distance_db']:6.2f}")
    means = {column: float(np.mean([row[column]["distance_db"] for row in rows.values()]))
             for column in ("generated", "untrained", "one_curve")}
    print("mean distance to each instrument's real curve (dB): "
          + ", ".join(f"{column} {value:.2f}" for column, value in means.items()))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"machine": machine_record("cpu", torch.get_num_threads()),
                                       "ckpt": str(args.ckpt), "data": str(args.data), "latents": args.latents,
                                       "instruments": rows, "mean_distance_db": means}, indent=1) + "\n")
    print(f"written to {args.output}")


if __name__ == "__main__":
    main()

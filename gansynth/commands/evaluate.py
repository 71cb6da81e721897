"""The evaluate command: score a checkpoint against the real notes it was trained on, beside the real
ceiling and the controls, print the table and optionally save it as JSON.

    gansynth-evaluate ckpt_path=runs/x/checkpoints/last.ckpt data.path=notes [out=report.json]
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from hydra.utils import instantiate, to_absolute_path
from omegaconf import DictConfig

from gansynth.core.files import atomic_write
from gansynth.core.synth import Synth
from gansynth.evaluation.metrics import (datamodule_note_batches, evaluate, generated_note_batches,
                                         mean_note_batches, real_instruments, white_noise_batches)
from gansynth.inference.checkpoint import load_checkpoint


def real_notes(data: DictConfig, synth: Synth):
    """The ``data`` group's DataModule, read with the checkpoint's codec and pitch range (never a
    normaliser fitted anew): the notes the model was trained on, as its representation returns them."""
    return instantiate(data, path=to_absolute_path(data.path), codec=synth.codec.to_dict(),
                       pitch_low=synth.vocab.low, pitch_high=synth.vocab.high, fit_normalizer=False,
                       num_workers=0, _convert_="all")


REPORT_ROWS = [
    ("PA (mean)", "pa", "{:.3f}"), ("PE (nats)", "pe", "{:.3f}"), ("pitched", "voiced", "{:.3f}"),
    ("NDB / bins", "ndb_fraction", "{:.3f}"), ("FD", "fd", "{:.1f}"),
    ("coverage", "coverage", "{:.3f}"), ("mix entropy", "entropy", "{:.3f}"),
    ("diversity", "diversity", "{:.3f}"), ("nearest-real", "nearest_real_ratio", "{:.2f}"),
    ("keyboard", "keyboard", "{:.3f}"),
]


def format_report(report: dict) -> str:
    """A table of `evaluate`'s numbers: generated, the real ceiling and each control side by side."""
    columns = report["columns"]
    lines = [f"{'metric':<14}" + "".join(f"{name:>12}" for name in columns)]
    for label, key, fmt in REPORT_ROWS:
        if key in report["generated"]:
            lines.append(f"{label:<14}" + "".join(f"{fmt.format(report[c][key]):>12}" for c in columns))
    lines.append(f"NDB ({report['generated']['bins']} bins) and FD against {report['reference_notes']} real "
                 f"reference notes, {report['generated']['compared_notes']} notes per column; pitch "
                 f"classifier held-out accuracy {report['classifier_accuracy']:.3f}")
    if "instruments" in report:
        for column in columns:
            parts = ", ".join(f"{name} {share:.2f}" for name, share in report[column]["nearest_real_parts"].items())
            lines.append(f"nearest-real distance of {column} notes, share by features: {parts}")
        lines.append(f"instruments: {', '.join(report['instruments'])} (classifier leave-one-pitch-out "
                     f"accuracy on real notes {report['instrument_classifier_leave_one_pitch_out']:.3f})")
        generated = report["generated"]
        if "category_fidelity" in generated:
            shares = ", ".join(f"{name} {share:.2f}" for name, share in
                               generated["category_fidelity_per_instrument"].items())
            lines.append(f"generated notes heard as the instrument their latent's category plays: "
                         f"{generated['category_fidelity']:.3f} ({shares}; chance {1 / len(report['instruments']):.3f})")
        sampler = report["perfect_sampler"]
        lines.append(f"a generator that is the data ({report['notes_per_pitch']} real notes drawn per pitch) scores "
                     f"coverage {sampler['coverage']['mean']:.3f}, mix entropy {sampler['entropy']['mean']:.3f} "
                     f"(5th percentile {sampler['coverage']['p5']:.3f}, {sampler['entropy']['p5']:.3f})")
    return "\n".join(lines)


def run(cfg: DictConfig) -> dict:
    """Load the checkpoint, read the real notes with the model's codec, evaluate with the controls,
    print and save (cfg composed from conf/evaluate.yaml)."""
    synth = load_checkpoint(to_absolute_path(cfg.ckpt_path), device=cfg.device)
    datamodule = real_notes(cfg.data, synth)
    real_batches = list(datamodule_note_batches(datamodule, synth.codec, synth.device))
    controls = control_batches(cfg, synth, datamodule, real_batches) if cfg.controls else None
    report = evaluate(synth, real_batches, real_instruments(datamodule), controls, cfg.notes_per_pitch,
                      cfg.ndb_bins, cfg.classifier_steps, cfg.held_out_fraction, cfg.seed)
    report["ckpt_path"] = str(cfg.ckpt_path)
    report["data_path"] = str(cfg.data.path)
    report["data_sha256"] = datamodule.scan().fingerprint()  # which render of the data was scored
    print(format_report(report))
    if cfg.out:
        _write_json_atomically(Path(to_absolute_path(cfg.out)), report)
        print(f"report written to {cfg.out}")
    return report


def control_batches(cfg: DictConfig, synth, datamodule, real_batches) -> dict:
    """Untrained G (the checkpoint's architecture, fresh weights), the per-pitch mean note, white noise."""
    untrained = load_checkpoint(to_absolute_path(cfg.ckpt_path), device=cfg.device, untrained_seed=cfg.seed)
    dataset = datamodule.train_dataloader().dataset
    rms = float(torch.cat([audio.flatten() for audio, _ in real_batches]).square().mean().sqrt())
    return {
        "untrained": generated_note_batches(untrained, cfg.notes_per_pitch, cfg.seed),
        "mean_note": mean_note_batches(dataset, synth.codec, synth.vocab, cfg.notes_per_pitch, synth.device),
        "noise": white_noise_batches(synth.trained_pitches, cfg.notes_per_pitch, synth.channels,
                                     synth.n_samples, rms, cfg.seed),
    }


def _write_json_atomically(path: Path, report: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "w") as handle:
        handle.write(json.dumps(report, indent=2, allow_nan=True) + "\n")


if __name__ == "__main__":
    from gansynth.commands.cli import evaluate as command

    command()

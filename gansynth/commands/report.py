"""The `gansynth-report` command: one page a musician opens from disk to hear and see a checkpoint.

A folder with `index.html`, its PNGs and its wavs, linked by relative paths only (no server, no
network): real and generated notes side by side over a spread of pitches, one pitch across many
latents (timbre variety), a few latents each across those pitches (one instrument up the keyboard?),
the evaluation table beside the real ceiling and the controls, and the training curves from the run's
`metrics.jsonl`.

    gansynth-report ckpt_path=runs/x/checkpoints/last.ckpt data.path=notes output_dir=report
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np
import torch
from hydra.utils import to_absolute_path
from omegaconf import DictConfig, OmegaConf

from gansynth.commands import evaluate
from gansynth.commands.cli import check_setting, compose_config
from gansynth.core.audio import load_clip, peak_normalize, write_audio
from gansynth.core.errors import GANSynthError
from gansynth.core.files import atomic_write, writable_folder
from gansynth.core.synth import Synth
from gansynth.evaluation.plots import save_png, spectrograms, training_curves
from gansynth.inference.checkpoint import load_checkpoint
from gansynth.inference.render import random_anchors

PAGE_STYLE = ("body{font-family:sans-serif;max-width:1100px;margin:auto;padding:1em}"
              "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
              "img{max-width:100%}figure{display:inline-block;margin:4px}audio{width:220px}")


KEYBOARD_LATENTS = 4  # the first latents of the timbre grid, each played at every pitch shown


class ReportError(GANSynthError):
    """A report setting, data folder or metrics file that cannot make the page."""


def check_settings(cfg: DictConfig) -> None:
    for key in ("pitches", "grid_latents"):
        if cfg[key] < 1:
            raise ReportError(f"report: {key} must be >= 1, got {cfg[key]}")
    # a null default takes any value on the command line: the evaluator's defaults give each its kind
    evaluator = {"evaluation": OmegaConf.to_container(compose_config("evaluate"))}
    for key, value in cfg.evaluation.items():
        check_setting(evaluator, f"evaluation.{key}", value)


def metrics_path(cfg: DictConfig) -> Path | None:
    """The training record: metrics_file, or <run>/metrics.jsonl beside <run>/checkpoints/x.ckpt when it exists."""
    if cfg.metrics_file is not None:
        path = Path(to_absolute_path(cfg.metrics_file))
        if not path.is_file():
            raise ReportError(f"{path}: metrics file not found")
        return path
    beside_run = Path(to_absolute_path(cfg.ckpt_path)).parent.parent / "metrics.jsonl"
    return beside_run if beside_run.is_file() else None


def read_metrics(path: Path) -> list[dict]:
    """LearningMonitor's records, one JSON object a line; a bad line names the file and line."""
    records = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                record = None
            if not isinstance(record, dict) or "images_seen" not in record:
                raise ReportError(f"{path}:{number}: not a metrics record (JSON with images_seen)")
            records.append(record)
    return records


def spread(values: list[int], count: int) -> list[int]:
    """count values evenly spread over the sorted list (all of them when it is shorter)."""
    if count >= len(values):
        return values
    return [values[round(i * (len(values) - 1) / (count - 1))] for i in range(count)] if count > 1 else [values[len(values) // 2]]


def given_evaluation(cfg: DictConfig, ckpt: Path) -> dict | None:
    """evaluation_file's report when one is given: it must be gansynth-evaluate's JSON of this checkpoint."""
    if cfg.evaluation_file is None:
        return None
    path = Path(to_absolute_path(cfg.evaluation_file))
    try:
        report = json.loads(path.read_text())
    except FileNotFoundError:
        raise ReportError(f"{path}: evaluation file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        report = None
    required = {"columns", "generated", "notes_per_pitch", "ckpt_path", "data_sha256"}
    if not isinstance(report, dict) or not required <= report.keys():
        raise ReportError(f"{path}: not a gansynth-evaluate report (write one with gansynth-evaluate out=...)")
    if Path(to_absolute_path(report["ckpt_path"])).resolve() != ckpt.resolve():
        raise ReportError(f"{path}: evaluates {report['ckpt_path']}, not {ckpt}")
    return report


def evaluation_settings(cfg: DictConfig, ckpt: Path) -> DictConfig:
    """gansynth-evaluate's config with the report's own settings over it; a null keeps the evaluator's value."""
    own = {key: value for key, value in cfg.evaluation.items() if value is not None}
    return OmegaConf.merge(compose_config("evaluate"), {
        "ckpt_path": str(ckpt), "data": cfg.data, "seed": cfg.seed, "device": cfg.device, **own})


def real_notes(cfg: DictConfig, synth: Synth, evaluation: dict | None) -> dict[int, Path]:
    """The first file of each pitch of the data folder that the model was trained on (and that a given
    evaluation scored: the same render of the data)."""
    scan = evaluate.real_notes(cfg.data, synth).scan()
    if evaluation is not None and evaluation["data_sha256"] != scan.fingerprint():
        raise ReportError(f"{cfg.evaluation_file}: scored another render of the data than {cfg.data.path} "
                          "(data_sha256 differs)")
    trained = set(synth.trained_pitches)
    first: dict[int, Path] = {}
    for path, pitch in zip(scan.files, scan.pitches):
        if pitch in trained:
            first.setdefault(pitch, path)
    if not first:
        raise ReportError(f"{cfg.data.path}: no note of a pitch the model was trained on "
                          f"({synth.describe_trained_pitches()})")
    return dict(sorted(first.items()))


class Page:
    """Writes the report's files into one folder and collects the HTML that links them."""

    def __init__(self, folder: Path, sample_rate: int):
        self.folder, self.sample_rate, self.parts = folder, sample_rate, []
        for sub in ("img", "audio"):
            (folder / sub).mkdir(exist_ok=True)

    def audio(self, name: str, audio: np.ndarray, label: str) -> str:
        write_audio(self.folder / "audio" / name, peak_normalize(audio, -1.0), self.sample_rate, "PCM_16")
        return f'<figure><figcaption>{html.escape(label)}</figcaption><audio controls src="audio/{name}"></audio></figure>'

    def picture(self, name: str, figure, alt: str) -> str:
        save_png(figure, self.folder / "img" / name)
        return f'<img src="img/{name}" alt="{html.escape(alt)}">'

    def add(self, *parts: str) -> None:
        self.parts.extend(parts)

    def write(self, title: str) -> Path:
        index = self.folder / "index.html"
        with atomic_write(index, "w") as handle:
            handle.write(f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}'
                         f"</title><style>{PAGE_STYLE}</style></head>\n<body>\n<h1>{html.escape(title)}</h1>\n"
                         + "\n".join(self.parts) + "\n</body></html>\n")
        return index


def metrics_table(report: dict) -> str:
    """evaluate's numbers as an HTML table: generated, the real ceiling and the controls."""
    columns = report["columns"]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    rows = [f"<tr><th>{html.escape(label)}</th>" + "".join(f"<td>{fmt.format(report[c][key])}</td>" for c in columns)
            + "</tr>" for label, key, fmt in evaluate.REPORT_ROWS if key in report["generated"]]
    return f"<table><tr><th>metric</th>{head}</tr>{''.join(rows)}</table>"


def run_report(cfg: DictConfig) -> Path:
    """The command: check the inputs, evaluate, draw, write the folder; return index.html."""
    check_settings(cfg)
    ckpt = Path(to_absolute_path(cfg.ckpt_path))
    given = given_evaluation(cfg, ckpt)
    synth = load_checkpoint(ckpt, cfg.device)
    real = real_notes(cfg, synth, given)
    records = read_metrics(path) if (path := metrics_path(cfg)) else []
    page = Page(writable_folder(to_absolute_path(cfg.output_dir)), synth.sample_rate)
    sr, n = synth.sample_rate, synth.n_samples
    page.add(f"<p>Checkpoint <code>{html.escape(str(ckpt))}</code>: {sr} Hz, {synth.channels} channel(s), "
             f"{n / sr:g} s clips, {html.escape(synth.describe_trained_pitches())}; data "
             f"<code>{html.escape(str(to_absolute_path(cfg.data.path)))}</code>.</p>")

    pitches = spread(list(real), cfg.pitches)
    generated = synth.generate(pitches, torch.from_numpy(np.repeat(random_anchors(1, synth.latent_dim, cfg.seed),
                                                                   len(pitches), 0))).numpy()
    page.add("<h2>Real and generated notes</h2>",
             f"<p>The first real note of each pitch beside a generated one (latent of seed {cfg.seed}).</p>")
    for pitch, fake in zip(pitches, generated):
        heard = load_clip(real[pitch], sr, synth.channels)[:, :n]  # [ch, <= n]
        page.add(f"<h3>MIDI {pitch}</h3>",
                 page.picture(f"pitch_{pitch}.png", spectrograms([(f"real {real[pitch].name}", heard),
                                                                  ("generated", fake)], sr, 2), f"MIDI {pitch}"),
                 "<br>", page.audio(f"real_{pitch}.wav", heard, "real"),
                 page.audio(f"generated_{pitch}.wav", fake, "generated"))

    middle = pitches[len(pitches) // 2]
    grid_anchors = random_anchors(cfg.grid_latents, synth.latent_dim, cfg.seed + 1)  # [grid_latents, latent_dim]
    grid = synth.generate([middle] * cfg.grid_latents, torch.from_numpy(grid_anchors)).numpy()
    page.add(f"<h2>Timbre variety: MIDI {middle} across {cfg.grid_latents} latents</h2>",
             page.picture("grid.png", spectrograms([(f"latent {i}", a) for i, a in enumerate(grid)], sr, 4),
                          "one pitch across latents"), "<br>",
             *(page.audio(f"grid_{i:02d}.wav", a, f"latent {i}") for i, a in enumerate(grid)))

    shown = grid_anchors[:KEYBOARD_LATENTS]  # [k, latent_dim]
    played = synth.generate(pitches * len(shown), torch.from_numpy(np.repeat(shown, len(pitches), 0))).numpy()
    page.add(f"<h2>One latent across the keyboard: {len(shown)} latents at MIDI {', '.join(map(str, pitches))}</h2>",
             "<p>A row is one latent, as a MIDI file plays it: a latent that is one instrument keeps its "
             "kind of spectrum from the low notes to the high ones (the evaluation's <i>keyboard</i>).</p>",
             page.picture("keyboard.png", spectrograms([(f"latent {i // len(pitches)}, MIDI {pitch}", a) for i, (pitch, a)
                                                        in enumerate(zip(pitches * len(shown), played))], sr, len(pitches)),
                          "latents across pitches"))

    scores = given or evaluate.run(evaluation_settings(cfg, ckpt))
    source = f" (from <code>{html.escape(str(cfg.evaluation_file))}</code>)" if given else ""
    page.add("<h2>Evaluation</h2>",
             f"<p>{scores['generated']['notes']} generated notes ({scores['notes_per_pitch']} per trained pitch)"
             f"{source} "
             "against the real notes through the codec (the ceiling) and the controls every metric must fail "
             "(untrained generator, each pitch's mean note, white noise).</p>", metrics_table(scores))

    page.add("<h2>Training curves</h2>")
    if records:
        page.add(f"<p>From <code>{html.escape(str(path))}</code>, {len(records)} records.</p>",
                 page.picture("curves.png", training_curves(records), "training curves"))
    else:
        page.add("<p>No metrics.jsonl beside the checkpoint's run folder (train with "
                 "<code>callbacks.learning_monitor.every_images</code> &gt; 0, or give <code>metrics_file</code>).</p>")
    index = page.write(f"GANSynth listening report: {ckpt.name}")
    print(f"report written to {index}")
    return index

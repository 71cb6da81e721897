"""The listening report: one folder that opens from disk, every linked file present, pictures drawn
by matplotlib, and (where Debian's chromium is installed) a real headless browser rendering it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from matplotlib.image import imread

from gansynth.commands import cli, evaluate
from gansynth.commands.demo import compose_config
from gansynth.commands.report import ReportError, evaluation_settings, run_report
from test_evaluate import write_note_folder
from test_render import CLIP, SR, make_checkpoint

DATA_PITCHES = [55, 60, 64, 67]
RECORDS = [{"images_seen": 1000 * i, "minutes": i, "stage": 0, "pitch_accuracy": 0.1 * i, "pitch_entropy": 1.0,
            "g_loss": 1.0 / i, "d_loss": -0.5 / i, "gp": 0.01, "coverage": 0.2 * i, "entropy": 0.1 * i}
           for i in (1, 2, 3)]


class Links(HTMLParser):
    """Every src/href of a page, and its tags."""

    def __init__(self):
        super().__init__()
        self.links, self.tags = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.links += [value for name, value in attrs if name in ("src", "href")]


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory) -> Path:
    """A run laid out as train.py lays it out: checkpoints/last.ckpt beside metrics.jsonl."""
    run = tmp_path_factory.mktemp("run")
    (run / "checkpoints").mkdir()
    make_checkpoint(run / "checkpoints" / "last.ckpt", trained=range(55, 68))
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    write_note_folder(run / "notes", DATA_PITCHES, per_pitch=4)
    return run


def make_report(run: Path, out: Path, *overrides: str) -> Path:
    return run_report(compose_config("report", [
        f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}", f"data.path={run / 'notes'}", f"output_dir={out}",
        "pitches=3", "grid_latents=4", "evaluation.notes_per_pitch=1", "evaluation.ndb_bins=4",
        "evaluation.classifier_steps=20", *overrides]))


@pytest.fixture(scope="module")
def page(run_folder, tmp_path_factory) -> Path:
    return make_report(run_folder, tmp_path_factory.mktemp("report") / "report")


def test_page_parses_and_every_linked_file_exists(page):
    links = Links()
    links.feed(page.read_text())
    links.close()
    assert links.tags.count("img") == 3 + 1 + 1 + 1  # 3 pitches, the latent grid, the keyboard, the curves
    assert links.tags.count("audio") == 2 * 3 + 4
    assert all(not link.startswith(("http:", "https:", "//", "/")) for link in links.links)  # opens from disk
    assert all((page.parent / link).is_file() for link in links.links)
    assert {p.name for p in page.parent.iterdir()} == {"index.html", "img", "audio"}


def test_real_beside_generated_and_the_grid_are_real_files(page):
    real, sr = sf.read(page.parent / "audio" / "real_64.wav", always_2d=True)
    generated = sf.info(page.parent / "audio" / "generated_64.wav")
    assert sr == SR and real.shape == (CLIP, 2) and generated.frames == CLIP  # the data's mono as the model's stereo
    grid = [sf.read(page.parent / "audio" / f"grid_{i:02d}.wav")[0] for i in range(4)]
    assert min(np.abs(a - b).max() for i, a in enumerate(grid) for b in grid[i + 1:]) > 0.01  # 4 different latents
    for name in ("grid.png", "keyboard.png"):  # the keyboard: 4 latents x 3 pitches
        picture = imread(page.parent / "img" / name)
        assert picture.shape[1] > 400 and picture[..., :3].std() > 0.05  # drawn, not blank


def test_the_page_shows_the_metrics_with_ceiling_and_controls(page):
    text = page.read_text()
    for heading in ("<th>generated</th>", "<th>real</th>", "<th>untrained</th>", "<th>mean_note</th>",
                    "<th>noise</th>", "<th>PA (mean)</th>", "<th>keyboard</th>", "3 records"):
        assert heading in text


def test_chromium_renders_the_page(page, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("no chromium binary installed")
    shot = tmp_path / "shot.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1200,2400",
                    f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=180, check=True)
    picture = imread(shot)
    assert picture.shape[:2] == (2400, 1200)
    assert picture[..., :3].std() > 0.05  # the text and the pictures, not a blank or error page


def test_bad_metrics_file_is_named_before_anything_is_written(run_folder, tmp_path):
    bad = tmp_path / "metrics.jsonl"
    bad.write_text(json.dumps(RECORDS[0]) + "\nnot json\n")
    with pytest.raises(ReportError, match=r"metrics.jsonl:2: not a metrics record"):
        make_report(run_folder, tmp_path / "out", f"metrics_file={bad}")
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def evaluation(run_folder) -> dict:
    """gansynth-evaluate's report of the run's checkpoint on its notes, as `out=` writes it."""
    return evaluate.run(compose_config("evaluate", [
        f"ckpt_path={run_folder / 'checkpoints' / 'last.ckpt'}", f"data.path={run_folder / 'notes'}",
        "notes_per_pitch=3", "ndb_bins=4", "classifier_steps=20"]))


def test_a_given_evaluation_is_the_pages_table_as_it_is(run_folder, evaluation, tmp_path):
    given = dict(evaluation, generated=dict(evaluation["generated"], pa=0.123456))  # a number no evaluation here made
    (tmp_path / "evaluation.json").write_text(json.dumps(given))
    text = make_report(run_folder, tmp_path / "out", f"evaluation_file={tmp_path / 'evaluation.json'}").read_text()
    assert "<th>PA (mean)</th><td>0.123</td>" in text
    assert f"({evaluation['notes_per_pitch']} per trained pitch) (from <code>" in text


@pytest.mark.parametrize("change, message", [
    (None, "evaluation file not found"),
    ("not json", "not a gansynth-evaluate report (write one with gansynth-evaluate out=...)"),
    ({"ckpt_path": "other/last.ckpt"}, "evaluates other/last.ckpt, not "),
    ({"data_sha256": "0" * 64}, "scored another render of the data than "),
])
def test_an_evaluation_of_something_else_is_named_before_anything_is_written(run_folder, evaluation, tmp_path,
                                                                              change, message):
    path = tmp_path / "evaluation.json"
    if change is not None:
        path.write_text(change if isinstance(change, str) else json.dumps(dict(evaluation, **change)))
    with pytest.raises(ReportError, match=re.escape(message)) as caught:
        make_report(run_folder, tmp_path / "out", f"evaluation_file={path}")
    assert len(str(caught.value).splitlines()) == 1 and "evaluation.json" in str(caught.value)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("argv, message", [
    (["ckpt_path=a.ckpt"], "data.path is required: add data.path=... to the command line"),
    (["ckpt_path=a.ckpt", "data.path=notes", "grid_latent=4"], "grid_latent: no such setting (did you mean "
                                                               "grid_latents?); add a new key with +grid_latent=..."),
    (["ckpt_path=a.ckpt", "data.path=notes", "pitches=0"], "report: pitches must be >= 1, got 0"),
    # the count's default is null (the evaluator's 32): its kind comes from the evaluator's config
    (["ckpt_path=a.ckpt", "data.path=notes", "evaluation.notes_per_pitch=abc"],
     "evaluation.notes_per_pitch: expected an integer like the default 32, got 'abc'"),
])
def test_console_script_bad_input_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["gansynth-report", *argv])
    with pytest.raises(SystemExit) as exit_info:
        cli.report()
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines() == [f"error: {message}"]
    assert list(tmp_path.iterdir()) == []



def test_without_a_count_the_table_scores_the_evaluators_latents_per_pitch(tmp_path):
    """Two latents per pitch made a perfect mix read as collapse; the report counts as gansynth-evaluate does."""
    report = compose_config("report", ["ckpt_path=run.ckpt", "data.path=notes"])
    settings = evaluation_settings(report, tmp_path / "run.ckpt")
    assert settings.notes_per_pitch == compose_config("evaluate", []).notes_per_pitch >= 32
    shrunk = compose_config("report", ["ckpt_path=run.ckpt", "data.path=notes", "evaluation.notes_per_pitch=3"])
    assert evaluation_settings(shrunk, tmp_path / "run.ckpt").notes_per_pitch == 3


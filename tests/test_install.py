"""The package as a user installs it: a wheel built from the source, installed into a fresh venv away
from the checkout, its console scripts run from another folder (slow: a dozen new Pythons and a
short training run).

The fresh venv sees this venv's installed dependencies through a .pth file, so nothing is downloaded;
the checkout itself is never on its path, which the test checks through ``gansynth.__file__``.
"""
from __future__ import annotations

import os
import shutil
import site
import tomllib
from fnmatch import fnmatch
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = ("train", "generate", "evaluate", "make-dataset", "demo", "export", "report")
SMALL_TRAIN = [  # the tiny experiment for four batches of its first stage (2×16)
    "experiment=tiny", "model.schedule.stable_images=16", "model.schedule.transition_images=16",
    "model.schedule.batch_sizes=[8]", "model.schedule.total_images=1000", "max_images=32",
    "callbacks.samples.every_images=0", "callbacks.learning_monitor.every_images=0",
    "+trainer.enable_progress_bar=false",
]

@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The bin/ folder of a fresh venv with the wheel of this checkout installed in it."""
    tmp = tmp_path_factory.mktemp("install")
    source = tmp / "source"  # a copy, so that building leaves nothing in the checkout
    shutil.copytree(ROOT / "gansynth", source / "gansynth", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp / "dist"),
         str(source)], tmp)
    (wheel,) = (tmp / "dist").glob("gansynth-*.whl")

    venv = tmp / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp)
    (python,) = (venv / "lib").glob("python3*/site-packages")
    (python / "project_dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--no-deps", "-q",
         str(wheel)], tmp)
    return venv / "bin"


def run(args: list, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    result = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    if check:
        assert result.returncode == 0, f"{args}:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result


def test_every_config_file_is_declared_as_package_data():
    """The fast check behind the wheel test below: a config in a folder the package-data globs do not
    reach (they do not recurse) is left out of the wheel, and the installed command cannot compose."""
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["gansynth"]
    configs = [path.relative_to(ROOT / "gansynth").parts for path in (ROOT / "gansynth" / "conf").rglob("*.yaml")]
    missing = ["/".join(parts) for parts in configs
               if not any(len(parts) == len(pattern.split("/")) and all(map(fnmatch, parts, pattern.split("/")))
                          for pattern in patterns)]
    assert len(configs) > 20 and missing == []


@pytest.mark.slow
def test_the_wheel_ships_the_configs_and_the_installed_package_is_used(installed, tmp_path):
    where = run([installed / "python", "-c", "import gansynth; print(gansynth.__file__)"], tmp_path).stdout
    assert Path(where.strip()).is_relative_to(installed.parent) and not Path(where.strip()).is_relative_to(ROOT)
    for command in COMMANDS:
        script = installed / f"gansynth-{command}"
        assert "Powered by Hydra" in run([script, "--help"], tmp_path).stdout
        assert run([script, "--cfg", "job"], tmp_path).stdout.strip()
    assert list(tmp_path.iterdir()) == []  # printing help or a config writes nothing


@pytest.mark.slow
def test_console_scripts_make_data_train_render_and_evaluate(installed, tmp_path):
    run([installed / "gansynth-make-dataset", "out=notes", "synthetic=true", "programs=[0,1,2,3,4]",
         "pitch_low=58", "pitch_high=61", "velocities=[100]", "clip_length=0.25", "progress=false"], tmp_path)
    run([installed / "gansynth-train", *SMALL_TRAIN, "data.path=notes", "hydra.run.dir=run"], tmp_path)
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert ckpt.is_file()

    run([installed / "gansynth-generate", f"ckpt_path={ckpt}", "mode=notes", "pitches=[58,61]", "output_dir=out"],
        tmp_path)
    assert sf.info(tmp_path / "out" / "notes.wav").channels == 1

    out = run([installed / "gansynth-evaluate", f"ckpt_path={ckpt}", "data.path=notes", "notes_per_pitch=2",
               "ndb_bins=2", "classifier_steps=5", "controls=false", "out=evaluation.json"], tmp_path).stdout
    assert "PA (mean)" in out and (tmp_path / "evaluation.json").is_file()

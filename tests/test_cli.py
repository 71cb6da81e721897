"""Every command, run as a user runs it, ends bad input the same way: exit status 2, one line on
stderr that names the file or key, no traceback, and nothing written or overwritten."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gansynth.core.labels import instrument_of

ROOT = Path(__file__).resolve().parents[1]


def command(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """Run ``python <args>`` with this checkout's package first on the path."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def assert_one_line_error(result: subprocess.CompletedProcess, expected: str) -> None:
    assert result.returncode == 2, result.stderr[-3000:]
    assert result.stderr.splitlines() == [f"error: {expected}"]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def existing_run(tmp_path) -> tuple[Path, dict[str, bytes]]:
    """A run folder from an earlier run, and the bytes of everything in it."""
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "checkpoints" / "last.ckpt").write_bytes(os.urandom(4096))
    (run_dir / "config.yaml").write_text("seed: 0\n")
    return run_dir, snapshot(run_dir)


@pytest.fixture
def launch_folder(tmp_path) -> Path:
    """An empty folder to launch commands from: it must stay empty."""
    folder = tmp_path / "cwd"
    folder.mkdir()
    return folder


@pytest.mark.parametrize("overrides, expected", [
    (["experiment=tiny", "data.path=notes", "model.schedule.stable_image=5"],
     "model.schedule.stable_image: no such setting (did you mean model.schedule.stable_images?); "
     "add a new key with +model.schedule.stable_image=..."),
    (["experiment=tinny", "data.path=notes"],
     "experiment=tinny: no such option (did you mean tiny?); experiment is one of paper, stereo_44k, tiny"),
    (["experiment=tiny", "data.path=notes", "seed=abc"], "seed: expected an integer like the default 0, got 'abc'"),
    (["experiment=tiny", "callbacks.samples.pitches=60", "data.path=notes"],
     "callbacks.samples.pitches: expected a list like the default [48, 60, 72], got 60"),
    (["experiment=tiny", "data.path=notes", "samples.every_images=0"],  # a key from before callbacks were a group
     "samples.every_images: no such setting (did you mean callbacks.samples.every_images?); "
     "add a new key with +samples.every_images=..."),
    (["experiment=tiny", "data.path=notes", "checkpoint_every_images=5000"],
     "checkpoint_every_images: no such setting (did you mean callbacks.checkpoint.every_images?); "
     "add a new key with +checkpoint_every_images=..."),
    (["experiment=tiny"], "data.path is required: add data.path=... to the command line"),
])
def test_train_rejects_a_bad_override_before_the_job(overrides, expected, existing_run, launch_folder):
    run_dir, before = existing_run
    result = command([str(ROOT / "train.py"), *overrides, f"hydra.run.dir={run_dir}"], launch_folder)
    assert_one_line_error(result, expected)
    assert snapshot(run_dir) == before and list(launch_folder.iterdir()) == []


def test_schedule_lengths_take_one_int_or_a_list_per_stage(launch_folder):
    """The override check lets the Schedule's per-stage lists through (the Schedule checks them)."""
    result = command([str(ROOT / "train.py"), "experiment=tiny", "data.path=notes",
                      "model.schedule.transition_images=[2000,8000]", "--cfg", "job"], launch_folder)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "transition_images:\n    - 2000\n    - 8000" in result.stdout


def test_train_error_inside_the_job_writes_nothing(synthetic_notes, launch_folder):
    """A ScheduleError raised inside Hydra's instantiate, after Hydra made the run folder runs/<date>/:
    nothing was written into it (no .hydra/, log or config.yaml), so an existing run folder would keep
    its files, and the empty folder is removed."""
    result = command([str(ROOT / "train.py"), "experiment=tiny", f"data.path={synthetic_notes}", "data.too_long=crop",
                      "model.schedule.stable_images=0"], launch_folder)
    assert_one_line_error(result, "Schedule: stable_images must be 1 to 5 positive ints, got 0")
    assert list(launch_folder.glob("runs/*")) == [] and snapshot(launch_folder) == {}


def test_a_learning_rate_that_is_no_number_is_one_line(synthetic_notes, launch_folder):
    """model.optim.lr takes a number or a list (the type check lets both through): a word still gets one line."""
    result = command([str(ROOT / "train.py"), "experiment=tiny", f"data.path={synthetic_notes}", "data.too_long=crop",
                      "model.optim.lr=fast"], launch_folder)
    assert_one_line_error(result, "model.optim.lr must be 1 to 9 positive floats, got fast")
    assert list(launch_folder.glob("runs/*")) == [] and snapshot(launch_folder) == {}


def test_an_instrument_of_one_pitch_stops_the_paired_tiny_before_anything_is_encoded(synthetic_notes, tmp_path,
                                                                                     launch_folder):
    """The tiny experiment pairs each note with its instrument at another pitch: a folder where one
    instrument has one pitch fails in one line naming the file and the way out, and no cache is written."""
    folder = tmp_path / "notes"
    folder.mkdir()
    for note in sorted(synthetic_notes.glob("*.wav"))[:3]:  # program 0 at MIDI 58-60 ...
        shutil.copy(note, folder)
    lone = sorted(synthetic_notes.glob("*.wav"))[-1]  # ... and program 1 at MIDI 61 alone
    shutil.copy(lone, folder)
    result = command([str(ROOT / "train.py"), "experiment=tiny", f"data.path={folder}", "data.too_long=crop"],
                     launch_folder)
    assert_one_line_error(result, f"{folder}: notes that cannot be paired (to train without pairs: "
                                  "data.instrument_pairs=false model.pair_critic_harmonics=0 "
                                  "model.instrument_projection=false): "
                                  f"{lone.name}: data.instrument_pairs: instrument '{instrument_of(lone)}' has no note "
                                  "at another pitch")
    assert not (folder / ".gansynth_cache").exists() and list(launch_folder.glob("runs/*")) == []


@pytest.mark.parametrize("settings, expected", [
    (["attack_percnt=5"], "attack_percnt: no such setting (did you mean attack_percent?); "
                          "add a new key with +attack_percnt=..."),
    (["attack_percent=loud"], "attack_percent: expected a number like the default 1.0, got 'loud'"),
    (["compile=yes"], "compile: expected true or false like the default False, got 'yes'"),
    ([], "{ckpt}: not a readable torch checkpoint (UnpicklingError)"),
])
def test_generate_rejects_bad_input(settings, expected, tmp_path, launch_folder):
    ckpt = tmp_path / "model.ckpt"
    ckpt.write_bytes(b"not a checkpoint")
    result = command([str(ROOT / "generate.py"), f"ckpt_path={ckpt}", "midi_file=song.mid",
                      f"output_dir={tmp_path / 'out'}", *settings], launch_folder)
    assert_one_line_error(result, expected.format(ckpt=ckpt))
    assert not (tmp_path / "out").exists() and list(launch_folder.iterdir()) == []


def test_evaluate_names_the_nearest_setting(launch_folder):
    result = command(["-m", "gansynth.commands.evaluate", "ckpt_path=a.ckpt", "data.path=notes", "notes_per_pich=2"],
                     launch_folder)
    assert_one_line_error(result, "notes_per_pich: no such setting (did you mean notes_per_pitch?); "
                                  "add a new key with +notes_per_pich=...")
    assert list(launch_folder.iterdir()) == []


def test_make_dataset_exits_2_and_creates_nothing(launch_folder):
    result = command(["-m", "gansynth.commands.make_dataset", "out=notes", "synthetic=true", "pitch_low=70",
                      "pitch_high=60"], launch_folder)
    assert_one_line_error(result, "pitch_low=70 is above pitch_high=60")
    assert list(launch_folder.iterdir()) == []


def test_demo_rejects_zero_minutes_before_rendering_anything(launch_folder):
    result = command(["-m", "gansynth.commands.demo", "out=demo", "minutes=0"], launch_folder)
    assert_one_line_error(result, "minutes: must lie between 1 second and 100 hours, got 0 minutes")
    assert list(launch_folder.iterdir()) == []


def test_valid_command_lines_pass_the_check():
    """What the docs, the tests and Lightning's DDP relaunch (its last three overrides) pass to train.py."""
    from gansynth.commands.cli import compose_checked

    compose_checked("train", ["experiment=stereo_44k", "data.path=/data", "trainer=ddp", "trainer.devices=auto",
                              "+trainer.max_steps=6", "codec.audio_length=1", "model.schedule.batch_sizes=[8,8,4]",
                              "trainer.max_time=00:00:01:00", "ckpt_path=null", 'hydra.run.dir="runs/a b"',
                              "hydra.job.name=train_ddp_process_1", "hydra.output_subdir=null"])
    compose_checked("generate", ["ckpt_path=x.ckpt", "mode=notes", "pitches=[48,60]", "peak_db=null",
                                 "attack_percent=5"])


@pytest.mark.parametrize("command, groups", [
    ("train", ["callbacks", "codec", "data", "experiment", "logger", "model", "trainer"]),
    ("evaluate", ["data"]), ("report", ["data"]),
    ("generate", []), ("make_dataset", []), ("demo", []), ("export", []),
])
def test_help_lists_only_the_groups_the_command_composes(command, groups, console, capsys):
    with pytest.raises(SystemExit) as exit_info:
        console(command, "--help")
    page = capsys.readouterr().out
    listed = page.partition("(group=option)")[2].partition("== Config ==")[0].split()
    assert exit_info.value.code == 0 and "Powered by Hydra" in page
    assert [word[:-1] for word in listed if word.endswith(":")] == groups

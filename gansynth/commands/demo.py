"""The built-in demo (``make demo``): from nothing to a rendered MIDI file on a CPU.

1. render a small stereo dataset from the General MIDI SoundFont inside pretty_midi,
2. train the tiny experiment for a fixed wall-clock budget,
3. render the bundled MIDI file with attack/release envelopes,
4. evaluate the checkpoint (pitch accuracy against the real notes' ceiling),
5. write the listening report (a page with spectrograms, players, metrics and curves),
and say where everything is.
"""
from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from hydra.utils import to_absolute_path
from omegaconf import DictConfig

from gansynth.commands.cli import compose_config
from gansynth.commands.make_dataset import make_dataset
from gansynth.core.errors import GANSynthError

BUNDLED_MIDI = Path(str(files("gansynth") / "assets" / "demo.mid"))
# piano, violin, flute over two octaves at three velocities: 225 stereo notes of 0.25 s
DEMO_DATASET = dict(programs=(0, 40, 73), pitch_low=48, pitch_high=72, velocities=(60, 90, 120),
                    note_length=0.2, clip_length=0.25, channels=2)


class DemoError(GANSynthError):
    """A demo setting that cannot run."""


def run(cfg: DictConfig) -> dict:
    """``gansynth-demo`` (cfg composed from conf/demo.yaml): every step, then where its results are."""
    seconds = int(cfg.minutes * 60)
    if not 1 <= seconds < 100 * 3600:  # at least a second of training, few enough hours for max_time
        raise DemoError(f"minutes: must lie between 1 second and 100 hours, got {cfg.minutes} minutes")
    out = Path(to_absolute_path(cfg.out))
    notes, run_dir = out / "notes", out / "run"

    print(f"[1/5] rendering the dataset into {notes}")
    make_dataset(notes, seed=cfg.seed, **DEMO_DATASET)

    print(f"[2/5] training the tiny experiment (at most {cfg.minutes:g} minutes or {cfg.max_images:,} images)")
    from gansynth.commands.train import run as train

    train_cfg = compose_config("train", [
        "experiment=tiny", "codec.channel_mode=stereo", f"data.path={notes}", f"run_dir={run_dir}",
        f"trainer.max_time=00:{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}",
        f"seed={cfg.seed}", f"max_images={cfg.max_images}", "callbacks.learning_monitor.every_images=5000",
    ])
    train(train_cfg)
    ckpt = run_dir / "checkpoints" / "last.ckpt"

    print(f"[3/5] rendering {BUNDLED_MIDI.name}")
    from gansynth.commands.generate import run_generate

    rendered = run_generate(compose_config("generate", [
        f"ckpt_path={ckpt}", f"midi_file={BUNDLED_MIDI}", f"output_dir={out}",
        "attack_percent=5", "attack_slope=0.7", "release_percent=30", "release_slope=0.4",
    ]))

    print("[4/5] evaluating")
    from gansynth.commands import evaluate

    evaluation_json = out / "evaluation.json"  # the report shows this table
    report = evaluate.run(compose_config("evaluate", [f"ckpt_path={ckpt}", f"data.path={notes}",
                                                      f"out={evaluation_json}"]))
    print("[5/5] writing the listening report")
    from gansynth.commands.report import run_report

    page = run_report(compose_config("report", [
        f"ckpt_path={ckpt}", f"data.path={notes}", f"output_dir={out / 'report'}", f"evaluation_file={evaluation_json}",
    ]))
    print("\nDone.")
    print(f"  rendered MIDI : {rendered.files[0]}")
    print(f"  checkpoint    : {ckpt}")
    print(f"  TensorBoard   : tensorboard --logdir {run_dir / 'tb'}")
    print(f"  samples       : {run_dir / 'samples'}")
    print(f"  report        : {page} (open it in a browser)")
    generated, real = report["generated"], report["real"]
    print(f"  pitch accuracy: {generated['pa']:.2f} generated vs {real['pa']:.2f} real")
    if "coverage" in generated:
        print(f"  timbre        : instrument coverage {generated['coverage']:.2f} (real {real['coverage']:.2f}), "
              f"nearest-real ratio {generated['nearest_real_ratio']:.2f} (real {real['nearest_real_ratio']:.2f})")
    return report


if __name__ == "__main__":
    from gansynth.commands.cli import demo as command

    command()

"""The built-in demo (``make demo``): from nothing to a rendered MIDI file on a CPU.

1. render a small stereo dataset from the General MIDI SoundFont inside pretty_midi,
2. train the tiny experiment for a fixed wall-clock budget,
3. render the bundled MIDI file with attack/release envelopes,
4. evaluate the checkpoint (pitch accuracy against the real notes' ceiling),
5. write the listening report (a page with spectrograms, players, metrics and curves),
and say where everything is.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from gansynth.commands.cli import CONFIG_DIR, ArgumentParser, bad_input_exits
from gansynth.commands.make_dataset import make_dataset

BUNDLED_MIDI = Path(__file__).resolve().parent / "assets" / "demo.mid"
# piano, violin, flute over two octaves at three velocities: 225 stereo notes of 0.25 s
DEMO_DATASET = dict(programs=(0, 40, 73), pitch_low=48, pitch_high=72, velocities=(60, 90, 120),
                    note_length=0.2, clip_length=0.25, channels=2)


def compose_config(name: str, overrides: list[str]):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose(config_name=name, overrides=overrides)


def training_minutes(text: str) -> float:
    """--minutes: at least one second of training, and few enough hours for max_time's 00:HH:MM:SS."""
    minutes = float(text)
    if not 1 <= minutes * 60 < 100 * 3600:
        raise argparse.ArgumentTypeError(f"must lie between 1 second and 100 hours, got {text} minutes")
    return minutes


def main(argv: list[str] | None = None) -> dict:
    """``python -m gansynth.commands.demo``: bad input prints one line and exits with status 2."""
    with bad_input_exits():
        return _run(argv)


def _run(argv: list[str] | None) -> dict:
    parser = ArgumentParser(prog="python -m gansynth.commands.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="demo_out", help="folder for the dataset, the run and the wav")
    parser.add_argument("--minutes", type=training_minutes, default=12.0,
                        help="wall-clock cap on training (the tiny experiment's image budget takes longer on 2 cores)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    out = Path(args.out).absolute()
    notes, run_dir = out / "notes", out / "run"

    print(f"[1/5] rendering the dataset into {notes}")
    make_dataset(notes, seed=args.seed, **DEMO_DATASET)

    print(f"[2/5] training the tiny experiment (at most {args.minutes:g} minutes)")
    from gansynth.commands.train import run

    seconds = int(args.minutes * 60)
    train_cfg = compose_config("train", [
        "experiment=tiny", "codec.channel_mode=stereo", f"data.path={notes}", f"run_dir={run_dir}",
        f"trainer.max_time=00:{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}",
        f"seed={args.seed}", "evaluation.every_images=5000",
    ])
    run(train_cfg)
    ckpt = run_dir / "checkpoints" / "last.ckpt"

    print(f"[3/5] rendering {BUNDLED_MIDI.name}")
    from gansynth.inference.render import run_generate

    rendered = run_generate(OmegaConf.to_container(compose_config("generate", [
        f"ckpt_path={ckpt}", f"midi_file={BUNDLED_MIDI}", f"output_dir={out}",
        "attack_percent=5", "attack_slope=0.7", "release_percent=30", "release_slope=0.4",
    ])))

    print("[4/5] evaluating")
    from gansynth.evaluation import metrics as evaluate

    report = evaluate.run(evaluate.parse_config([f"ckpt_path={ckpt}", f"data.path={notes}",
                                                 f"out={out / 'evaluation.json'}"]))
    print("[5/5] writing the listening report")
    from gansynth.commands.report import run_report

    page = run_report(compose_config("report", [
        f"ckpt_path={ckpt}", f"data.path={notes}", f"output_dir={out / 'report'}", "evaluation.notes_per_pitch=2",
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
    main()

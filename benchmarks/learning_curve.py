"""Pitch accuracy against training minutes for variants of the tiny experiment.

Each variant is a list of Hydra overrides; variants run in parallel, each in its own process
with ``--threads`` threads (2 matches the CI machine), for ``--minutes`` of wall time, with the
EMA generator's pitch accuracy measured every ``--eval-every`` images (LearningMonitor).
Prints a table of PA at fixed minutes and writes ``benchmarks/results/learning_curve.json``.

    python benchmarks/learning_curve.py --data /tmp/demo_notes --minutes 10 --variants base projection
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from machine import cpu_model  # benchmarks/, the script's own folder

ROOT = Path(__file__).resolve().parents[1]
# Every variant starts from the tiny experiment as it was when the results table began (its later
# changes are variants too), so each row of the table can be rerun as recorded.
BASE = ["experiment=tiny", "model.ema_rampup=null", "model.loss.aux_weight_g=10",
        "model.schedule.stable_images=6000", "model.schedule.transition_images=3000",
        "model.network.skip_output=false", "model.network.zero_init_rgb=false", "model.network.skip_input=false",
        "codec.channel_mode=stereo", "callbacks.samples.every_images=0", "~logger",
        "+trainer.enable_progress_bar=false", "trainer.log_every_n_steps=50", "model.loss.gp_every=1",
        "data.instrument_pairs=false", "model.pair_critic_harmonics=0", "model.envelope_critic=0",
        "model.profile_critic=0", "model.network.subharmonic_combs=[]"]
# The tiny experiment as it was before harmonic coordinates shipped: Magenta's G, 3 stages to 8x64.
BEFORE = ["model.network.harmonic_coordinates=false", "model.loss.projection=false",
          "model.schedule.num_blocks=3", "model.schedule.stable_images=3000", "model.schedule.transition_images=3000"]
HARMONIC = [*BEFORE, "model.network.harmonic_coordinates=true"]
FIVE_STAGES = ["model.schedule.num_blocks=5"]
# The shipped tiny's recipe stopped at 8x64: the fast proxy for levers on timbre and speed.
SHIPPED_8X64 = [*HARMONIC, "model.loss.projection=true", "model.loss.aux_weight_g=0", "model.ema_rampup=0.25",
                "model.schedule.stable_images=4000", "model.schedule.transition_images=2000"]
# Seamless fade-ins: a skip G and an input-skip D whose new blocks start at zero.
SEAMLESS_FADES = ["model.loss.aux_weight_g=0", "model.schedule.stable_images=4000",
                  "model.schedule.transition_images=2000", "model.ema_rampup=0.25",
                  "model.network.skip_output=true", "model.network.zero_init_rgb=true",
                  "model.network.skip_input=true"]
# Comb phase, time coordinates and no one-hot pitch in G; then z to every G block; then the critic reads
# each frame's level; then the lazy penalty and instrument pairs; then the envelope critic; then subharmonic
# combs: the shipped tiny.
NO_ONE_HOT = [*SEAMLESS_FADES, "model.network.skip_upsample=bilinear", "model.network.comb_phase=true",
              "model.network.time_coordinates=true", "model.network.pitch_one_hot=false"]
BLOCK_LATENT = [*NO_ONE_HOT, "model.network.block_latent_channels=16"]
FRAME_LEVEL = [*BLOCK_LATENT, "model.network.critic_frame_level=true"]
HARMONIC_PAIRS = [*FRAME_LEVEL, "model.loss.gp_every=4", "data.instrument_pairs=true",
                  "model.pair_critic_harmonics=16"]  # the tiny shipped before the envelope critic
ENVELOPE = [*HARMONIC_PAIRS, "model.envelope_critic=0.1"]  # the tiny shipped before subharmonic combs
SUBHARMONIC = [*ENVELOPE, "model.network.subharmonic_combs=[2,3]"]  # the shipped tiny
VARIANTS = {  # the older tables of docs/RESULTS.md, row by row
    "base": BEFORE,
    "harmonic": HARMONIC,
    "harmonic_linear": [*HARMONIC, "codec.mel=false"],
    "harmonic_projection": [*HARMONIC, "model.loss.projection=true"],
    "harmonic_skip8x64": [*HARMONIC, "model.network.skip_output=true"],
    "harmonic_full": [*HARMONIC, *FIVE_STAGES],
    "harmonic_skip": [*HARMONIC, *FIVE_STAGES, "model.network.skip_output=true",
                      "model.schedule.stable_images=4000", "model.schedule.transition_images=2000"],
    "start8x64": [*HARMONIC, "model.network.skip_output=true", "model.network.latent_input=dense",
                  "model.network.num_blocks=3", "model.network.start_shape=[8,64]", "model.network.fmap_base=128",
                  "model.schedule.stable_images=8000", "model.schedule.transition_images=4000"],
    "harmonic_projection_full": [],  # the tiny experiment shipped before the rows below
    "hp_no_aux_g": [*HARMONIC, "model.loss.projection=true", "model.loss.aux_weight_g=0"],
    "hp_mode_seeking": [*HARMONIC, "model.loss.projection=true", "model.loss.mode_seeking=1"],
    "full_no_aux_g": ["model.loss.aux_weight_g=0", "model.schedule.stable_images=4000",
                      "model.schedule.transition_images=2000"],
    "full_no_aux_g_keep_adam": ["model.loss.aux_weight_g=0", "model.schedule.stable_images=4000",
                                "model.schedule.transition_images=2000", "model.optim.reset_on_stage=false"],
    "full_ema_rampup": [  # the tiny experiment shipped before seamless fades
                        "model.loss.aux_weight_g=0", "model.schedule.stable_images=4000",
                        "model.schedule.transition_images=2000", "model.ema_rampup=0.25"],
    "shipped_8x64": SHIPPED_8X64,
    "augment_8x64": [*SHIPPED_8X64, "model.augment=[gain,shift,cutout]"],
    "lazy_gp_8x64": [*SHIPPED_8X64, "model.loss.gp_every=4"],
    "full_wider_top": [  # the tiny of its day with every block from 16x128 up twice as wide (128,128,128,64,32)
                       "model.loss.aux_weight_g=0", "model.schedule.stable_images=4000",
                       "model.schedule.transition_images=2000", "model.ema_rampup=0.25",
                       "model.network.fmap_base=1024"],
    "full_skip_zero": [  # the tiny of its day with a skip G whose new blocks start drawing nothing
                       "model.loss.aux_weight_g=0", "model.schedule.stable_images=4000",
                       "model.schedule.transition_images=2000", "model.ema_rampup=0.25",
                       "model.network.skip_output=true", "model.network.zero_init_rgb=true"],
    "full_skip_gd": SEAMLESS_FADES,  # shipped before bilinear skip upsampling
    "skip_gd_bilinear": [*SEAMLESS_FADES, "model.network.skip_upsample=bilinear"],  # shipped before comb IF
    "comb_if": [*SEAMLESS_FADES, "model.network.skip_upsample=bilinear", "model.network.comb_if=true"],
    "harmonic_phase": [*SEAMLESS_FADES, "model.network.skip_upsample=bilinear", "model.network.comb_if=true",
                       "model.loss.harmonic_phase=10"],
    "harmonic_phase100": [*SEAMLESS_FADES, "model.network.skip_upsample=bilinear", "model.network.comb_if=true",
                          "model.loss.harmonic_phase=100"],
    "comb_if_gd": [*SEAMLESS_FADES, "model.network.skip_upsample=bilinear", "model.network.comb_if=true",
                   "model.network.critic_comb_if=true"],  # probe in 1e27a6d, since removed
    "info_categories4": [*SEAMLESS_FADES, "model.network.skip_upsample=bilinear",
                         "model.network.latent_categories=4", "model.loss.category_weight=1"],  # probe in ce348fb, removed
    "block_bilinear": [*SEAMLESS_FADES, "model.network.skip_upsample=bilinear",
                       "model.network.block_upsample=bilinear"],  # probe in ce348fb, removed
    "comb_phase": [*SEAMLESS_FADES, "model.network.skip_upsample=bilinear", "model.network.comb_phase=true"],
    "comb_phase_time": [*SEAMLESS_FADES, "model.network.skip_upsample=bilinear", "model.network.comb_phase=true",
                        "model.network.time_coordinates=true"],
    "comb_phase_time_augment": [*SEAMLESS_FADES, "model.network.skip_upsample=bilinear", "model.network.comb_phase=true",
                               "model.network.time_coordinates=true", "model.augment=[gain,cutout]"],
    "comb_phase_time_mode_seeking": [*SEAMLESS_FADES, "model.network.skip_upsample=bilinear",
                                     "model.network.comb_phase=true", "model.network.time_coordinates=true",
                                     "model.loss.mode_seeking=1"],
    "comb_phase_time_no_one_hot": NO_ONE_HOT,
    "no_one_hot_block_concat": BLOCK_LATENT,
    "block_concat_frame_level": FRAME_LEVEL,  # the tiny shipped before the lazy penalty
    "frame_level_latent32": [*FRAME_LEVEL, "model.network.block_latent_channels=32"],  # the later value wins
    "frame_level_lazy4": [*FRAME_LEVEL, "model.loss.gp_every=4"],  # shipped before instrument pairs: 1.4x the images/s
    "frame_level_long_ema": [*FRAME_LEVEL, "model.ema_decay=0.999", "model.ema_rampup=0.5"],
    "frame_level_pack2": [*FRAME_LEVEL, "model.network.critic_pack=2"],
    "lazy4_transpose10": [*FRAME_LEVEL, "model.loss.gp_every=4", "model.loss.transposition=10"],  # probe in 7a3155a, since removed
    "lazy4_transpose30": [*FRAME_LEVEL, "model.loss.gp_every=4", "model.loss.transposition=30"],  # probe in 7a3155a, since removed
    "lazy4_transpose100": [*FRAME_LEVEL, "model.loss.gp_every=4", "model.loss.transposition=100"],  # probe in 7a3155a, since removed
    "lazy4_critic2": [*FRAME_LEVEL, "model.loss.gp_every=4", "model.loss.critic_steps=2"],  # probe in c5014c2, since removed
    "lazy4_pairs": [*FRAME_LEVEL, "model.loss.gp_every=4", "model.network.critic_pack=2", "data.instrument_pairs=true"],
    "lazy4_harmonic_pairs": HARMONIC_PAIRS,
    "harmonic_pairs_48": [*FRAME_LEVEL, "model.loss.gp_every=4", "data.instrument_pairs=true",
                          "model.pair_critic_harmonics=48"],
    "harmonic_pairs_weight3": [*HARMONIC_PAIRS, "model.pair_critic_weight=3"],  # probe in 3608ca8, since removed
    "harmonic_pairs_frequency": [*HARMONIC_PAIRS,
                                 "model.network.frequency_coordinates=true"],  # probe in 05f56d7, since removed
    "harmonic_pairs_mapping2": [*HARMONIC_PAIRS,
                                "model.network.latent_mapping_layers=2"],  # probe in f6d309c, since removed
    "harmonic_pairs_lr4e-4": [*HARMONIC_PAIRS, "model.optim.lr=4e-4"],
    "harmonic_pairs_lr6e-4": [*HARMONIC_PAIRS, "model.optim.lr=6e-4"],
    "harmonic_pairs_coarse_lr4e-4": [*HARMONIC_PAIRS, "model.optim.lr=[4e-4,8e-4]"],  # 8e-4 in the top stage only
    "harmonic_pairs_envelope": [*HARMONIC_PAIRS, "model.envelope_critic=true"],  # probe in 12aa59c (inside D's penalty), since replaced
    "harmonic_pairs_envelope_db": [*HARMONIC_PAIRS, "model.envelope_critic=1"],
    "harmonic_pairs_envelope_db0.1": ENVELOPE,
    "envelope_no_projection": [*ENVELOPE, "model.loss.projection=false"],
    "envelope_profile0.1": [*ENVELOPE, "model.profile_critic=0.1"],
    "envelope_profile0.03": [*ENVELOPE, "model.profile_critic=0.03"],
    "envelope_subharmonic23": SUBHARMONIC,  # the shipped tiny
    "envelope_subharmonic2345": [*ENVELOPE, "model.network.subharmonic_combs=[2,3,4,5]"],
    "envelope_subharmonic23_profile0.03": [*SUBHARMONIC, "model.profile_critic=0.03"],
    "envelope_subharmonic23_balance1": [*SUBHARMONIC, "model.instrument_balance=1"],
    "harmonic_pairs_floor50": [*HARMONIC_PAIRS, "model.loss.critic_floor_db=50"],
    "harmonic_pairs_floor60": [*HARMONIC_PAIRS, "model.loss.critic_floor_db=60"],
    "pitch_pairs_pack2": [*FRAME_LEVEL, "model.loss.gp_every=4", "data.pitch_pairs=true",
                          "model.network.critic_pack=2"],  # probe in b0eb6ce, since removed
    "block_concat_long_ema": [*BLOCK_LATENT, "model.ema_decay=0.999", "model.ema_rampup=0.5"],
    "block_concat_time_embedding": [*BLOCK_LATENT,
                                    "model.network.time_embedding_channels=4"],  # probe in fe55278, since removed
    "block_concat_settled_lr": [*BLOCK_LATENT, "+model.optim.settled_lr_scale=0.1"],  # probe in c919c52, since removed
    "no_one_hot_block_modulate": [*NO_ONE_HOT,
                                  "model.network.block_latent=modulate"],  # probe in 440ef36, since removed
    "comb_phase_time_gd": [*SEAMLESS_FADES, "model.network.skip_upsample=bilinear", "model.network.comb_phase=true",
                           "model.network.time_coordinates=true",
                           "model.network.critic_time_coordinates=true"],  # probe in 6db7d01, since removed
}
CHECKPOINTS = (2.5, 5.0, 7.5, 10.0, 12.5, 15.0)


def launch(name: str, overrides: list[str], args) -> subprocess.Popen:
    run_dir = Path(args.out) / (name + args.tag)  # a second seed or dataset of one variant gets its own folder
    cmd = [sys.executable, str(ROOT / "train.py"), *BASE, f"data.path={args.data}",
           f"trainer.max_time=00:00:{args.minutes:02d}:00", f"hydra.run.dir={run_dir}",
           f"callbacks.learning_monitor.every_images={args.eval_every}",
           f"model.schedule.total_images={args.images}", f"seed={args.seed}", *overrides]
    if args.resume_tag is not None:  # go on from the last checkpoint of this variant's run of that tag
        cmd.append(f"ckpt_path={Path(args.out) / (name + args.resume_tag) / 'checkpoints' / 'last.ckpt'}")
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    run_dir.mkdir(parents=True, exist_ok=True)
    log = open(run_dir / "train.log", "w")
    return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)


def pa_at(records: list[dict], minutes: float) -> float | None:
    """The last measurement taken at or before ``minutes``."""
    before = [r for r in records if r["minutes"] <= minutes + 0.25]
    return before[-1]["pitch_accuracy"] if before else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS))
    parser.add_argument("--images", type=int, default=10000000, help="stop each run at this many images")
    parser.add_argument("--minutes", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--eval-every", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(ROOT / "runs" / "learning_curve"))
    parser.add_argument("--tag", default="", help="suffix of the records' names, e.g. @notes2 for another dataset")
    parser.add_argument("--resume-tag", default=None,
                        help="continue each variant from its run of this tag (e.g. @notes2 to --images 80000)")
    parser.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "learning_curve.json"))
    args = parser.parse_args()
    procs = {name: launch(name, VARIANTS[name], args) for name in args.variants}
    results = {}
    for name, proc in procs.items():
        proc.wait()
        metrics = Path(args.out) / (name + args.tag) / "metrics.jsonl"
        records = [json.loads(line) for line in metrics.read_text().splitlines()] if metrics.exists() else []
        results[name] = {"overrides": VARIANTS[name], "returncode": proc.returncode, "records": records}
    marks = [m for m in CHECKPOINTS if m <= args.minutes]
    print(f"| variant | {' | '.join(f'{m:g} min' for m in marks)} | images | final PA |")
    print("|---" * (len(marks) + 3) + "|")
    for name, r in results.items():
        recs = r["records"]
        cells = [f"{v:.2f}" if (v := pa_at(recs, m)) is not None else "-" for m in marks]
        last = recs[-1] if recs else {"images_seen": 0, "pitch_accuracy": float("nan")}
        print(f"| {name} | {' | '.join(cells)} | {last['images_seen']} | {last['pitch_accuracy']:.2f} |")
    # Earlier variants' records stay: the file is the evidence of docs/RESULTS.md's tables, run by run.
    out = Path(args.json)
    saved = json.loads(out.read_text()) if out.exists() else {}
    saved.setdefault("cpu", cpu_model())  # the CPU of the first runs; each run records its own since
    runs = saved.setdefault("runs", {})
    for name, r in results.items():
        runs[name + args.tag] = dict(r, overrides=[*BASE, *r["overrides"]], minutes=args.minutes,
                                     threads=args.threads, seed=args.seed, data=args.data, cpu=cpu_model())
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(saved, indent=1))


if __name__ == "__main__":
    main()

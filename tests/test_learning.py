"""Does the GAN make notes? The tiny experiment as shipped, trained from scratch on the demo's SoundFont
notes for the learning budget (slow: TRAINING_BUDGET of wall time on 2 cores), scored by
`gansynth-evaluate` beside its controls.

The real ceiling and the controls are asserted strictly: a control that passes the floors would mean the
metrics are broken. So is the perfect sampler: real notes drawn per pitch as G's are must clear the timbre
floors, or the floors could not be met at this many notes. And so are the generated notes, at issue 9's
floors: three seeds of the shipped recipe (the profile critic at 0.1 per dB) on the demo's notes, each within this
budget on a 2-core CPU without bf16 units (fp32, 25,000-27,424 images), scored at 128 latents per pitch PA 1.00,
coverage 1.00, mix entropy 0.93 / 0.91 / 0.91 and nearest-real 1.71 / 1.86 / 1.70 (README, Results); the fifth
dataset, the hardest, 0.88 / 0.90 / 0.84 and 2.21 / 2.42 / 2.24 at 40,000 images. The worst seed with a margin (mix
entropy 0.84 - 0.04, nearest-real 2.42 + 0.5) is still on the right side of every floor, so the floors themselves
are the assertion. The budget sees 40,000-50,000 images on a 2-core machine with bf16 units, 25,000-27,500 in fp32
on one without, and the run stops at MAX_IMAGES whatever the machine: trained on, the recipe
before the envelope critic lost an instrument at one end of the keyboard (seed 0 scored 0.93 at 50,000 images
and 0.87 at ~68,600, seed 1 0.86 and 0.79), so a faster machine must not see more images in the same minutes.
128 latents per pitch, because two draws of 32 moved mix entropy by up to 0.12 on one checkpoint."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from gansynth.commands import evaluate
from gansynth.commands.cli import compose_config
from gansynth.commands.demo import DEMO_DATASET
from gansynth.commands.make_dataset import make_dataset
from gansynth.commands.train import run

sys.path.insert(0, str(Path(__file__).parent))
from test_train import compose_cfg  # noqa: E402

FLOORS = {"pa": 0.8, "coverage": 0.8, "entropy": 0.8}
MAX_NEAREST_REAL_RATIO = 3.0
TRAINING_BUDGET = "00:00:16:00"  # issue 9: the learning test takes at most 20 minutes on 2 cores (scoring ~2.5)
MAX_IMAGES = 50_000  # and no further: past ~50,000 images the recipe loses instruments (docs/RESULTS.md)
NOTES_PER_PITCH = 128


def floor_gaps(scores: dict) -> list[str]:
    """The floors a column misses, as readable lines (empty when it passes them all)."""
    gaps = [f"{key} {scores[key]:.2f} < {floor}" for key, floor in FLOORS.items() if scores[key] < floor]
    if scores["nearest_real_ratio"] > MAX_NEAREST_REAL_RATIO:
        gaps.append(f"nearest-real {scores['nearest_real_ratio']:.2f} > {MAX_NEAREST_REAL_RATIO}")
    return gaps


@pytest.mark.slow
def test_tiny_experiment_makes_notes_of_every_instrument(tmp_path):
    make_dataset(tmp_path / "notes", progress=False, **DEMO_DATASET)
    cfg = compose_cfg("experiment=tiny", "codec.channel_mode=stereo", f"data.path={tmp_path / 'notes'}",
                      f"run_dir={tmp_path / 'run'}", "callbacks.samples.every_images=0",
                      "+trainer.enable_progress_bar=false", f"trainer.max_time={TRAINING_BUDGET}",
                      f"max_images={MAX_IMAGES}", "seed=0")
    run(cfg)
    report = evaluate.run(compose_config("evaluate", [f"ckpt_path={tmp_path / 'run' / 'checkpoints' / 'last.ckpt'}",
                                                      f"data.path={tmp_path / 'notes'}",
                                                      f"notes_per_pitch={NOTES_PER_PITCH}"]))

    assert report["real"]["pa"] >= 0.95 and not floor_gaps(report["real"])  # the codec's ceiling passes
    sampler = report["perfect_sampler"]  # real notes drawn per pitch as G's are: the floors are reachable
    assert all(sampler[key]["p5"] >= FLOORS[key] for key in ("coverage", "entropy")), sampler
    for control in ("untrained", "mean_note", "noise"):
        assert floor_gaps(report[control]), f"the {control} control passes the floors: the metrics are broken"
    assert report["mean_note"]["coverage"] < FLOORS["coverage"]  # a pitched drone with one timbre
    # The untrained G draws from data-free pitch inputs (harmonic coordinates, the comb's IF), so a few of its
    # notes are pitched: 0.06-0.11 across recipes (docs/RESULTS.md); noise has no pitch at all.
    assert report["untrained"]["pa"] < 0.2 and report["noise"]["pa"] < 0.05

    gaps = floor_gaps(report["generated"])
    assert not gaps, "issue 9 floors not reached within the budget: " + "; ".join(gaps)

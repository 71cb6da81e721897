"""Does the GAN make notes? The tiny experiment as shipped, trained from scratch on rendered SoundFont
notes (slow: it trains for the experiment's whole image budget), scored by `gansynth.evaluate` beside
its controls. The floors are issue 9's; the controls must fail them, which proves the test can fail."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from gansynth import evaluate
from gansynth.demo import DEMO_DATASET
from gansynth.make_dataset import make_dataset
from gansynth.training import run

sys.path.insert(0, str(Path(__file__).parent))
from test_train import compose_cfg  # noqa: E402

FLOORS = {"pa": 0.8, "coverage": 0.8, "entropy": 0.8}
MAX_NEAREST_REAL_RATIO = 3.0


def passes_floors(scores: dict) -> bool:
    return (all(scores[key] >= floor for key, floor in FLOORS.items())
            and scores["nearest_real_ratio"] <= MAX_NEAREST_REAL_RATIO)


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="issue 9: the floors are not reached within the CPU budget yet (README, Results)")
def test_tiny_experiment_makes_notes_of_every_instrument(tmp_path):
    make_dataset(tmp_path / "notes", progress=False, **DEMO_DATASET)
    cfg = compose_cfg("experiment=tiny", "codec.channel_mode=stereo", f"data.path={tmp_path / 'notes'}",
                      f"run_dir={tmp_path / 'run'}", "samples.every_images=0", "+trainer.enable_progress_bar=false",
                      "seed=0")
    run(cfg)
    report = evaluate.run(OmegaConf.create({**evaluate.DEFAULTS, "ckpt_path": str(tmp_path / "run/checkpoints/last.ckpt"),
                                            "data": {**evaluate.DEFAULTS["data"], "path": str(tmp_path / "notes")}}))
    assert report["real"]["pa"] >= 0.95  # the ceiling: the codec keeps the pitch of real notes
    assert not passes_floors(report["mean_note"])  # a pitched drone with one timbre must fail
    assert report["untrained"]["pa"] < 0.1 and report["noise"]["pa"] < 0.05
    generated = report["generated"]
    assert generated["pa"] >= FLOORS["pa"]
    assert generated["coverage"] >= FLOORS["coverage"] and generated["entropy"] >= FLOORS["entropy"]
    assert generated["nearest_real_ratio"] <= MAX_NEAREST_REAL_RATIO

"""Console-script entry points; they compose the same Hydra configs as ``train.py``/``generate.py``."""
from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from gansynth.errors import GANSynthError

CONFIG_DIR = str(Path(__file__).resolve().parents[1] / "conf")


def fail(error: Exception) -> None:
    """Bad input ends the program with one clear line, not a traceback."""
    print(f"error: {error}", file=sys.stderr)
    sys.exit(2)


@hydra.main(config_path=CONFIG_DIR, config_name="train", version_base="1.3")
def train(cfg: DictConfig) -> None:
    from gansynth.training import run

    try:
        run(cfg)
    except GANSynthError as error:
        fail(error)


@hydra.main(config_path=CONFIG_DIR, config_name="generate", version_base="1.3")
def generate(cfg: DictConfig) -> None:
    from gansynth.render import run_generate

    try:
        run_generate(cfg)
    except GANSynthError as error:
        fail(error)

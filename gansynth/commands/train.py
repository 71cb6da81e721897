"""The train command: build and run a training job from the composed conf/train.yaml."""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytorch_lightning as pl
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate, to_absolute_path
from omegaconf import DictConfig, OmegaConf

from gansynth.core.precision import AUTO, trainer_precision
from gansynth.training.callbacks import AtomicCheckpointIO
from gansynth.core.synth import CheckpointError


def build_datamodule(cfg: DictConfig):
    """The DataModule with its path made absolute; its pre-flight scan runs before anything else."""
    return instantiate(cfg.data, path=to_absolute_path(cfg.data.path), seed=cfg.seed, _convert_="all")


def build_model(cfg: DictConfig, datamodule):
    """The LightningModule, given the codec and pitch histogram the data scan found, and whether the
    batches come in instrument pairs (and the instruments' names and how many notes each has)."""
    pitch = dict(low=datamodule.pitch_low, high=datamodule.pitch_high, counts=list(datamodule.pitch_counts))
    return instantiate(cfg.model, codec=datamodule.codec.to_dict(), pitch=pitch, seed=cfg.seed,
                       instrument_pairs=getattr(datamodule, "instrument_pairs", False),
                       instrument_counts=list(getattr(datamodule, "instrument_counts", [])),
                       instrument_names=list(getattr(datamodule, "instrument_names", [])), _convert_="all")


def build_trainer(cfg: DictConfig, run_dir: Path, extra_callbacks=()) -> pl.Trainer:
    """The Trainer with one callback per entry of the ``callbacks`` group (``conf/callbacks/``), in the
    group's order, then ``extra_callbacks``; checkpoints go through ``AtomicCheckpointIO``."""
    callbacks = [*(instantiate(node, _convert_="all") for node in cfg.callbacks.values()), *extra_callbacks]
    logger = instantiate(cfg.logger, save_dir=str(run_dir)) if cfg.get("logger") else False
    precision = trainer_precision(cfg.trainer.precision, cfg.trainer.accelerator)
    if cfg.trainer.precision == AUTO:
        print(f"trainer.precision={AUTO}: {precision} on this machine")
    return instantiate(
        cfg.trainer, precision=precision, callbacks=callbacks, logger=logger, plugins=[AtomicCheckpointIO()],
        default_root_dir=str(run_dir), enable_checkpointing=False, _convert_="all",
    )


def run(cfg: DictConfig, extra_callbacks=()):
    """Scan the data, build model and trainer, fit (resuming from ``ckpt_path`` if set). The global
    seed only makes the initial weights; training draws from per-rank streams (``gansynth.core.seeds``)."""
    ckpt = to_absolute_path(cfg.ckpt_path) if cfg.ckpt_path else None
    if ckpt and not Path(ckpt).is_file():  # before anything is written into the run folder
        raise CheckpointError(f"{ckpt}: checkpoint file not found (ckpt_path={cfg.ckpt_path})")
    pl.seed_everything(cfg.seed, workers=True)
    run_dir = Path(to_absolute_path(cfg.run_dir))
    datamodule = build_datamodule(cfg)
    report = datamodule.scan()
    print(report.summary())
    model = build_model(cfg, datamodule)
    trainer = build_trainer(cfg, run_dir, extra_callbacks)
    if trainer.global_rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt, weights_only=True)
    return trainer, model


@contextlib.contextmanager
def _removing_if_left_empty(folder: Path) -> Iterator[None]:
    """Hydra creates the run folder before the job starts; a run that fails leaves no empty folder."""
    try:
        yield
    finally:
        if folder != Path.cwd() and folder.is_dir() and not any(folder.iterdir()):
            os.rmdir(folder)


def main(cfg: DictConfig) -> None:
    """``gansynth-train`` / ``train.py`` inside Hydra's job."""
    with _removing_if_left_empty(Path(HydraConfig.get().runtime.output_dir)):
        run(cfg)

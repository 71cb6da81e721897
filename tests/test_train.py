"""Training end to end: the real Hydra config, shrunk; checkpoints, resume, DDP, divergence."""
from __future__ import annotations

import io
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from omegaconf import OmegaConf

from gansynth.commands.cli import compose_config
from gansynth.training.callbacks import AtomicCheckpointIO
from gansynth.commands.make_dataset import make_dataset
from gansynth.core.labels import instrument_of
from gansynth.training.module import GANSynth, TrainingDiverged
from gansynth.core.pitch import PitchError
from gansynth.core.schedule import ScheduleError
from gansynth.core.synth import CheckpointError
from gansynth.inference.checkpoint import load_checkpoint
from gansynth.core.spectral import SpecgramCodec
from gansynth.commands.train import build_trainer, run

ROOT = Path(__file__).resolve().parents[1]

# The tiny experiment made smaller still: a 8 × 64 image (20 ms at 16 kHz), 3 blocks
# (2×16 → 4×32 → 8×64), few channels, a few hundred images.
SHRINK = [
    "experiment=tiny", "codec.channel_mode=stereo",
    "codec.n_fft=128", "codec.hop_length=32", "codec.n_frames=8", "codec.audio_length=0.02",
    "model.network.num_blocks=3", "model.network.latent_dim=16",
    "model.network.fmap_base=64", "model.network.fmap_max=16",
    "model.schedule.stable_images=64", "model.schedule.transition_images=64",
    "model.schedule.batch_sizes=[8,8,4]", "model.schedule.total_images=400",
    "callbacks.checkpoint.every_images=128", "callbacks.samples.every_images=200",
    "callbacks.samples.pitches=[60,64]",
    "data.labels.source=nsynth", "data.num_workers=0",
    "trainer.log_every_n_steps=5", "+trainer.enable_progress_bar=false",
]


@pytest.fixture(scope="module")
def notes(tmp_path_factory) -> Path:
    """Stereo synthetic notes: two programs, one octave, one velocity."""
    folder = tmp_path_factory.mktemp("notes")
    make_dataset(folder, synthetic=True, programs=(0, 1), pitch_low=60, pitch_high=67, velocities=(100,),
                 note_length=0.015, clip_length=0.02, channels=2, progress=False)
    return folder


def compose_cfg(*overrides: str):
    return compose_config("train", overrides)


def train(notes: Path, run_dir: Path, *overrides: str, callbacks=()):
    cfg = compose_cfg(*SHRINK, f"data.path={notes}", f"run_dir={run_dir}", *overrides)
    return run(cfg, callbacks)


@pytest.mark.parametrize("experiment, channels, shape, trained_blocks, mel_matrix", [
    ("paper", 2, [2, 128, 1024], 7, "released"), ("stereo_44k", 4, [4, 128, 1024], 7, "released"),
    ("tiny", 2, [2, 32, 256], 5, "independent"),
])
def test_experiments_compose_and_override(experiment, channels, shape, trained_blocks, mel_matrix):
    cfg = compose_cfg(f"experiment={experiment}", "data.path=/x", "trainer.devices=4", "run_dir=/tmp/r")
    assert cfg.trainer.devices == 4 and cfg.data.path == "/x"
    assert cfg.data.codec.mel_matrix == mel_matrix
    assert cfg.data.codec.channel_mode == ("stereo" if channels == 4 else "mono")
    assert cfg.model.schedule.num_blocks == trained_blocks
    assert list(SpecgramCodec(**OmegaConf.to_container(cfg.codec)).image_shape) == shape


def test_fork_experiment_has_attention_at_8192():
    cfg = compose_cfg("experiment=stereo_44k", "data.path=/x", "run_dir=/tmp/r")
    assert list(cfg.model.network.attention_areas) == [8192]
    assert cfg.codec.sample_rate == 44100 and cfg.codec.audio_length == 1.5


def model_arguments(*overrides: str, instruments: int = 2) -> dict:
    """GANSynth's arguments as ``train.py`` builds them from the shrunk config (a flat pitch histogram and
    ``instruments`` instruments of 4 notes stand in for the data scan's)."""
    cfg = OmegaConf.to_container(compose_cfg(*SHRINK, "data.path=/x", "run_dir=/tmp/r", *overrides), resolve=True)
    model = {key: value for key, value in cfg["model"].items() if key != "_target_"}
    return dict(model, codec=SpecgramCodec(**cfg["codec"]).to_dict(), pitch=dict(low=24, high=84, counts=[1] * 61),
                instrument_pairs=cfg["data"]["instrument_pairs"], instrument_counts=[4] * instruments)


class RecordRates(pl.Callback):
    """The learning rates each step ran with, by the stage it trained."""

    def __init__(self):
        self.by_stage: dict[int, set[float]] = {}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        rates = {group["lr"] for opt in trainer.optimizers for group in opt.param_groups}
        self.by_stage.setdefault(pl_module._optim_stage, set()).update(rates)


@pytest.mark.parametrize("units, chosen", [("AMX", "bf16-mixed"), ("none", "32-true")])
def test_tiny_trains_in_bf16_only_on_a_cpu_with_bf16_units(monkeypatch, tmp_path, units, chosen):
    from gansynth.core import precision

    monkeypatch.setattr(precision, "bf16_units", lambda: units)
    cfg = compose_cfg(*SHRINK, "data.path=/x", f"run_dir={tmp_path}")
    assert cfg.trainer.precision == "bf16-auto" and build_trainer(cfg, tmp_path).precision == chosen


def test_a_learning_rate_list_names_the_last_stages(notes, tmp_path):
    """``[2e-4, 8e-4]`` over the five stages: both networks step at 2e-4 in stages 0-3 (the top fade-in
    included) and at 8e-4 in the top stage."""
    rates = RecordRates()
    train(notes, tmp_path, "model.optim.lr=[2e-4,8e-4]", callbacks=[rates])
    assert rates.by_stage == {0: {2e-4}, 1: {2e-4}, 2: {2e-4}, 3: {2e-4}, 4: {8e-4}}


def test_a_learning_rate_list_longer_than_the_stages_names_the_key():
    with pytest.raises(ScheduleError, match=re.escape("model.optim.lr must be 1 to 5 positive floats, got [0.0001, "
                                                      "0.0001, 0.0001, 0.0001, 0.0001, 0.0008]")):
        GANSynth(**model_arguments("model.optim.lr=[1e-4,1e-4,1e-4,1e-4,1e-4,8e-4]"))


def test_pitch_counts_that_do_not_fit_the_vocabulary_name_the_key():
    with pytest.raises(PitchError, match="pitch.counts must have 61 entries with a positive sum, got 3 summing to 6"):
        GANSynth(**dict(model_arguments(), pitch=dict(low=24, high=84, counts=[1, 2, 3])))


class RecordBatches(pl.Callback):
    """The size of every batch trained on."""

    def __init__(self):
        self.sizes = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.sizes.append(len(batch[1]))


def test_tiny_training_runs_all_stages_and_writes_outputs(notes, tmp_path):
    batches = RecordBatches()
    _, model = train(notes, tmp_path, callbacks=[batches])
    assert int(model.images_seen) == 400  # max_images defaults to the schedule's total_images
    assert model.stage == model.schedule.num_stages - 1
    ckpts = sorted(p.name for p in (tmp_path / "checkpoints").glob("*.ckpt"))
    assert "last.ckpt" in ckpts and "images-000000128.ckpt" in ckpts
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))
    assert list((tmp_path / "samples").glob("images-*.wav"))
    # The batch size followed the schedule from the first batch of stage 3 (192 images) on.
    assert batches.sizes == [8] * 24 + [4] * 52


class RecordStart(pl.Callback):
    """Remembers where a (resumed) run starts counting."""

    def on_train_start(self, trainer, pl_module):
        self.images_seen, self.stage = int(pl_module.images_seen), pl_module.stage
        self.ema = {k: v.clone() for k, v in pl_module.ema_generator.state_dict().items()}
        adam = trainer.optimizers[0].state.values()
        self.adam_steps = max((int(s["step"]) for s in adam), default=0)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if not hasattr(self, "learning_rates"):
            self.learning_rates = [group["lr"] for opt in trainer.optimizers for group in opt.param_groups]
            self.fused = [group["fused"] for opt in trainer.optimizers for group in opt.param_groups]


def test_resume_continues_images_and_stage(notes, tmp_path):
    # Stop after 19 iterations (global_step counts the G and the D step: 38) at batch 8.
    _, first = train(notes, tmp_path, "+trainer.max_steps=38")
    assert int(first.images_seen) == 152 and first.stage == 2
    ckpt = tmp_path / "checkpoints" / "last.ckpt"
    saved = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert int(saved["state_dict"]["images_seen"]) == 152
    assert saved["optim_stage"] == 2  # the stage whose Adam moments the checkpoint holds
    first.on_load_checkpoint({k: v for k, v in saved.items() if k != "optim_stage"})  # an older checkpoint
    assert first._optim_stage == 2
    # Rendering a mid-training checkpoint uses the stage it reached (2 blocks, stable), full size.
    synth = load_checkpoint(ckpt)
    assert (synth.blocks, synth.alpha) == (2, 1.0)
    assert synth.generate([60], torch.zeros(1, synth.latent_dim)).shape == (1, 2, 320)
    for state in saved["optimizer_states"]:  # as checkpoints saved before Adam ran fused
        for group in state["param_groups"]:
            group["fused"] = None
    torch.save(saved, ckpt)
    start = RecordStart()
    _, resumed = train(notes, tmp_path, f"ckpt_path={ckpt}", "model.optim.lr=2e-4", callbacks=[start])
    assert (start.images_seen, start.stage) == (152, 2)
    assert start.learning_rates == [2e-4, 2e-4]  # the command line's, not the checkpoint's 8e-4
    assert start.fused == [True, True]  # one kernel for all parameters, also resuming an older checkpoint
    # Adam was reset at the stage 2 boundary (128 images): 3 steps since, restored as saved.
    assert start.adam_steps == 3
    for key, value in start.ema.items():
        torch.testing.assert_close(value, saved["state_dict"][f"ema_generator.{key}"], rtol=0, atol=0)
    assert 400 <= int(resumed.images_seen) < 408 and resumed.stage == 4
    model = GANSynth.load_from_checkpoint(ckpt, weights_only=True)
    assert int(model.images_seen) == int(resumed.images_seen)


def test_resume_refuses_a_checkpoint_trained_on_the_other_mel_matrix(notes, tmp_path):
    train(notes, tmp_path, "+trainer.max_steps=2")  # the tiny codec: the independent matrix
    ckpt = tmp_path / "checkpoints" / "last.ckpt"
    with pytest.raises(CheckpointError, match=r"^codec\.mel_matrix: the checkpoint was trained with "
                                              r"'independent', this run asks for 'released'"):
        train(notes, tmp_path / "again", f"ckpt_path={ckpt}", "codec.mel_matrix=released")


def test_max_images_stops_at_the_first_batch_reaching_it(notes, tmp_path):
    _, model = train(notes, tmp_path, "max_images=100")  # batches of 8: 96 < 100 <= 104
    assert int(model.images_seen) == 104
    ckpt = tmp_path / "checkpoints" / "last.ckpt"
    assert int(torch.load(ckpt, weights_only=True)["state_dict"]["images_seen"]) == 104
    batches = RecordBatches()
    _, resumed = train(notes, tmp_path, f"ckpt_path={ckpt}", "max_images=100", callbacks=[batches])
    assert int(resumed.images_seen) == 104 and batches.sizes == []


def test_the_callbacks_group_builds_each_callback_with_its_settings(tmp_path):
    cfg = compose_cfg(*SHRINK, "data.path=/x", f"run_dir={tmp_path}", "callbacks.learning_monitor.notes_per_pitch=2")
    built = [c for c in build_trainer(cfg, tmp_path).callbacks if type(c).__module__ == "gansynth.training.callbacks"]
    assert [(type(c).__name__, getattr(c, "every_images", None)) for c in built] == [
        ("ImageCountCheckpoint", 128), ("StopAtImages", None), ("SampleLogger", 200), ("LearningMonitor", 4000)]
    checkpoint, stop, samples, monitor = built
    assert (checkpoint.dirpath, samples.out_dir, monitor.path) == (
        tmp_path / "checkpoints", tmp_path / "samples", tmp_path / "metrics.jsonl")
    assert (stop.max_images, samples.pitches, monitor.notes_per_pitch) == (400, [60, 64], 2)


def test_every_images_0_turns_the_image_count_callbacks_off(notes, tmp_path):
    """The documented off switch: no images-*.ckpt (last.ckpt stays), no samples/, no metrics.jsonl."""
    train(notes, tmp_path, "max_images=16", "~logger", *(f"callbacks.{name}.every_images=0"
                                                         for name in ("checkpoint", "samples", "learning_monitor")))
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()) == [
        "checkpoints/last.ckpt", "config.yaml"]


@pytest.fixture(scope="module")
def mono_notes(tmp_path_factory) -> Path:
    """20 mono notes (two programs, MIDI 60-69): 20 is no multiple of the batch, so data passes,
    epochs and stage boundaries fall at different image counts."""
    folder = tmp_path_factory.mktemp("mono_notes")
    make_dataset(folder, synthetic=True, programs=(0, 1), pitch_low=60, pitch_high=69, velocities=(100,),
                 note_length=0.015, clip_length=0.02, channels=1, progress=False)
    return folder


# fp32, stages of 24 images: batches of 8 until 72, where the fade-in to 8×64 starts with batches
# of 4 (stage 3, 72 to 96); the last stage runs to 104. A checkpoint every 12 images.
EXACT = ["codec.channel_mode=mono", "trainer.precision=32-true", "model.schedule.stable_images=24",
         "model.schedule.transition_images=24", "model.schedule.total_images=104",
         "callbacks.checkpoint.every_images=12", "callbacks.samples.every_images=0",
         "callbacks.learning_monitor.every_images=0", "~logger"]


def assert_same_training_state(path: Path, reference: Path, adam_steps: int) -> None:
    """Weights, EMA, buffers and both Adams' moments bit for bit; ``adam_steps`` since the reset."""
    a, b = (torch.load(p, map_location="cpu", weights_only=True) for p in (path, reference))
    torch.testing.assert_close(a["state_dict"], b["state_dict"], rtol=0, atol=0)
    for opt_a, opt_b in zip(a["optimizer_states"], b["optimizer_states"], strict=True):
        assert {int(s["step"]) for s in opt_b["state"].values()} == {adam_steps}
        torch.testing.assert_close(opt_a["state"], opt_b["state"], rtol=0, atol=0)


@pytest.mark.slow
def test_runs_resumed_at_a_stage_boundary_and_mid_fade_in_end_bit_exact(mono_notes, tmp_path):
    """One run stopped at 72 images (a stage boundary: Adam resets, batches shrink to 4, mid-epoch)
    and at 84 (mid fade-in, alpha 0.5) and resumed each time ends where the straight run does."""
    _, straight = train(mono_notes, tmp_path / "straight", *EXACT)
    assert int(straight.images_seen) == 104
    reference = tmp_path / "straight" / "checkpoints"
    ckpt = None
    for stop, expected, adam_steps in ((72, "images-000000072.ckpt", 3), (84, "images-000000084.ckpt", 3),
                                       (104, "last.ckpt", 2)):
        resume = [f"ckpt_path={ckpt}"] if ckpt else []
        train(mono_notes, tmp_path / str(stop), *EXACT, f"max_images={stop}", *resume)
        ckpt = tmp_path / str(stop) / "checkpoints" / "last.ckpt"
        assert_same_training_state(ckpt, reference / expected, adam_steps)


def test_train_script_runs_from_the_command_line(notes, tmp_path):
    args = [a for a in SHRINK if not a.startswith("+trainer.enable_progress_bar")]
    cmd = [sys.executable, str(ROOT / "train.py"), *args, "+trainer.max_steps=6",
           f"data.path={notes}", f"hydra.run.dir={tmp_path}"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
    assert (tmp_path / "config.yaml").is_file()


def test_failed_checkpoint_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    last = tmp_path / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"images_seen": 32}, last)
    real_save = torch.save

    def save_half_then_fail(obj, f, *args, **kwargs):
        buffer = io.BytesIO()
        real_save(obj, buffer)
        f.write(buffer.getbuffer()[: buffer.tell() // 2])
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", save_half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        AtomicCheckpointIO().save_checkpoint({"images_seen": 48, "weights": torch.ones(1000)}, last)
    assert torch.load(last, weights_only=True) == {"images_seen": 32}
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


def test_two_writers_of_one_checkpoint_never_share_a_temporary_file(tmp_path, monkeypatch):
    """Writer B saves the same path in full while writer A is between writing and renaming."""
    last = tmp_path / "last.ckpt"
    real_replace = os.replace

    def another_writer_first(src, dst):
        monkeypatch.setattr(os, "replace", real_replace)
        AtomicCheckpointIO().save_checkpoint({"writer": "B"}, last)
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", another_writer_first)
    AtomicCheckpointIO().save_checkpoint({"writer": "A"}, last)
    assert torch.load(last, weights_only=True) == {"writer": "A"}
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


def test_run_killed_with_sigkill_during_a_checkpoint_write_resumes_from_the_previous_one(notes, tmp_path):
    """kill -9 while last.ckpt is being rewritten leaves the previous last.ckpt whole; resuming
    continues from it. The write is stalled halfway by a test hook, so the kill always lands in it."""
    args = [a for a in SHRINK if not a.startswith("+trainer.enable_progress_bar")]
    signal_file = tmp_path / "stalled"
    # Checkpoint writes at batch 8, every 16 images: images-16, last (16), images-32, last (32),
    # images-48, then last (48) stalls: the complete last.ckpt is the one at 32 images.
    env = dict(os.environ, STALL_AT_SAVE="6", STALL_SIGNAL=str(signal_file), PYTHONPATH=str(ROOT))
    cmd = [sys.executable, str(ROOT / "tests" / "stall_checkpoint_write.py"), *args, f"data.path={notes}",
           f"hydra.run.dir={tmp_path}", "callbacks.checkpoint.every_images=16", "callbacks.samples.every_images=0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tmp_path, env=env)
    deadline = time.monotonic() + 240
    while not signal_file.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    stderr = proc.communicate()[1].decode()
    assert signal_file.exists(), stderr[-3000:]
    assert proc.returncode == -signal.SIGKILL
    folder = tmp_path / "checkpoints"
    (partial,) = folder.glob(".last.ckpt.*.tmp")
    assert 0 < partial.stat().st_size == int(signal_file.read_text()) // 2
    assert sorted(p.name for p in folder.glob("*.ckpt")) == [
        "images-000000016.ckpt", "images-000000032.ckpt", "images-000000048.ckpt", "last.ckpt"]
    last = folder / "last.ckpt"
    saved = torch.load(last, map_location="cpu", weights_only=True)
    assert int(saved["state_dict"]["images_seen"]) == 32
    start = RecordStart()
    _, resumed = train(notes, tmp_path / "resumed", f"ckpt_path={last}", "max_images=48", callbacks=[start])
    assert (start.images_seen, int(resumed.images_seen)) == (32, 48)


def test_missing_resume_checkpoint_fails_before_the_run_folder_is_touched(notes, tmp_path):
    (tmp_path / "config.yaml").write_text("seed: 0\n")
    with pytest.raises(CheckpointError, match=r"typo.ckpt: checkpoint file not found \(ckpt_path="):
        train(notes, tmp_path, f"ckpt_path={tmp_path / 'typo.ckpt'}")
    assert [p.name for p in tmp_path.iterdir()] == ["config.yaml"]
    assert (tmp_path / "config.yaml").read_text() == "seed: 0\n"


def test_nan_loss_stops_and_keeps_last_good_checkpoint(notes, tmp_path, monkeypatch):
    from gansynth.core import networks

    calls = {"n": 0}
    real_forward = networks.Discriminator.forward

    def poisoned(self, x, blocks, alpha, **kwargs):
        calls["n"] += 1
        critic, logits = real_forward(self, x, blocks, alpha, **kwargs)
        return (critic * float("nan"), logits) if calls["n"] > 100 else (critic, logits)

    monkeypatch.setattr(networks.Discriminator, "forward", poisoned)
    with pytest.raises(TrainingDiverged, match="is nan"):
        train(notes, tmp_path, "callbacks.checkpoint.every_images=32")
    last = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert all(torch.isfinite(v).all() for v in last["state_dict"].values() if v.is_floating_point())
    assert int(last["state_dict"]["images_seen"]) > 0


class RecordDraws(pl.Callback):
    """Each rank writes what every batch drew (the real images and labels, the latents of G's two
    calls), keyed by the image count it started at, and its final weights, so the test can compare
    ranks and runs after the processes end."""

    def __init__(self, folder: Path):
        self.folder = folder

    def on_train_start(self, trainer, pl_module):
        self.steps, self._latents = {}, []
        self._hook = pl_module.generator.register_forward_pre_hook(
            lambda module, args: self._latents.append(args[0].detach().clone()))

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self._latents = []
        self.steps[int(pl_module.images_seen)] = {"images": batch[0].clone(), "labels": batch[1].clone()}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.steps[max(self.steps)]["z"] = torch.stack(self._latents)  # [2, B, latent]

    def on_train_end(self, trainer, pl_module):
        self._hook.remove()
        self.folder.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu() for k, v in pl_module.state_dict().items()}
        torch.save({"steps": self.steps, "state": state}, self.folder / f"rank{trainer.global_rank}.pt")

    def load(self) -> list[dict]:
        return [torch.load(self.folder / f"rank{rank}.pt", weights_only=True) for rank in (0, 1)]


def train_ddp(notes: Path, run_dir: Path, *overrides: str) -> list[dict]:
    """Two gloo ranks (ddp_spawn under pytest); what each drew, as RecordDraws wrote it."""
    record = RecordDraws(run_dir / "draws")
    train(notes, run_dir, "trainer=ddp_cpu", "trainer.strategy=ddp_spawn_find_unused_parameters_true",
          "callbacks.samples.every_images=0", "callbacks.learning_monitor.every_images=0", *overrides,
          callbacks=[record])
    return record.load()


@pytest.fixture(scope="module")
def ddp_straight(notes, tmp_path_factory) -> list[dict]:
    """Six batches of 8 per rank (96 images), uninterrupted."""
    return train_ddp(notes, tmp_path_factory.mktemp("ddp_straight"), "max_images=96")


def test_ddp_ranks_train_one_model_on_different_data_and_noise(ddp_straight):
    rank0, rank1 = ddp_straight
    assert sorted(rank0["steps"]) == sorted(rank1["steps"]) == [0, 16, 32, 48, 64, 80]
    for key in rank0["state"]:
        torch.testing.assert_close(rank0["state"][key], rank1["state"][key], rtol=0, atol=0)
    for seen, a in rank0["steps"].items():
        b = rank1["steps"][seen]
        assert a["z"].shape == (2, 8, 16)
        assert not torch.isin(a["z"], b["z"]).any()  # not one latent value in common
        # Disjoint shards: no image rank 0 took from the stream is in rank 1's batch. The stream's are the
        # even items; each odd one is its predecessor's instrument at another pitch (data.instrument_pairs).
        assert not (a["images"][0::2, None] == b["images"][None, 0::2]).flatten(2).all(2).any()


@pytest.mark.slow
def test_ddp_resume_continues_each_ranks_streams(notes, tmp_path, ddp_straight):
    """Stopped at the stage boundary at 64 images and resumed: every rank draws the same batches
    and latents as in the uninterrupted run, and the weights end bit-exact."""
    first = train_ddp(notes, tmp_path / "first", "max_images=64")
    ckpt = tmp_path / "first" / "checkpoints" / "last.ckpt"
    second = train_ddp(notes, tmp_path / "second", "max_images=96", f"ckpt_path={ckpt}")
    for rank, straight in enumerate(ddp_straight):
        assert sorted(first[rank]["steps"]) == [0, 16, 32, 48]
        assert sorted(second[rank]["steps"]) == [64, 80]
        torch.testing.assert_close({**first[rank]["steps"], **second[rank]["steps"]}, straight["steps"],
                                   rtol=0, atol=0)
        torch.testing.assert_close(second[rank]["state"], straight["state"], rtol=0, atol=0)


def test_mode_seeking_loss_punishes_a_generator_that_ignores_its_latent():
    """Identical notes from different latents cost ~1/eps; notes that differ as much as their latents cost ~1."""
    from gansynth.training.losses import mode_seeking_loss

    z = torch.randn(8, 64, generator=torch.Generator().manual_seed(0))
    same = torch.zeros(8, 2, 4, 8)
    gap = (z[:4] - z[4:]).abs().mean(dim=1)
    following = torch.zeros(8, 2, 4, 8)
    following[4:] = gap[:, None, None, None]  # each pair's image gap equals its latent gap
    assert mode_seeking_loss(same, z).item() > 1e4
    assert mode_seeking_loss(following, z).item() == pytest.approx(1.0, rel=1e-3)


def test_instrument_balance_costs_a_missing_instrument_and_not_an_ambiguous_note():
    """Against equal shares of 3 instruments: a batch split evenly between confident notes costs ~0, and so
    does a batch of notes the classifier cannot place; a batch of one instrument costs the log of how much
    too rare the missing two are (1/3 / e^-10 each), and its gradient raises their logits."""
    from gansynth.training.losses import instrument_balance_loss

    share = torch.full((3,), 1 / 3)
    confident = torch.eye(3).repeat(2, 1) * 30.0  # [6, 3]: two notes of each instrument
    assert instrument_balance_loss(confident, share).item() == pytest.approx(0.0, abs=1e-6)
    assert instrument_balance_loss(torch.zeros(6, 3), share).item() == pytest.approx(0.0, abs=1e-6)
    one = torch.tensor([[10.0, 0.0, 0.0]] * 6, requires_grad=True)
    loss = instrument_balance_loss(one, share)
    assert loss.item() == pytest.approx(2 / 3 * 10.0 - math.log(3), rel=1e-3)
    loss.backward()
    assert (one.grad[:, 0] > 0).all() and (one.grad[:, 1:] < 0).all()


def test_harmonic_phase_loss_is_small_on_a_harmonic_note_of_the_comb_pitch_only():
    """A decaying harmonic note (its own roll-off and phases) sits close to its pitch's comb IF on its
    spectral peaks and far from the next semitone's; only the IF channels get a gradient."""
    from gansynth.core.harmonics import comb_if
    from gansynth.core.pitch import PitchVocab
    from gansynth.training.losses import harmonic_phase_loss

    codec = SpecgramCodec(audio_length=0.25, n_fft=512, hop_length=128, n_frames=32, mel_matrix="independent")
    t = torch.arange(codec.n_samples, dtype=torch.float64) / codec.sample_rate
    k = torch.arange(1, 30, dtype=torch.float64)[:, None]
    wave = ((torch.sin(2 * torch.pi * 261.63 * k * t + k * k) / k).sum(0) * torch.exp(-6.0 * t)).float()
    note = codec.normalize(codec.encode(0.5 * wave[None, None] / wave.abs().max())).requires_grad_(True)
    vocab = PitchVocab(48, 72)
    combs = codec.normalize_if(comb_if(codec, vocab, [(32, 256)])[0])
    loud = math.log(100.0) * float(codec.channel_scale[0])
    own = harmonic_phase_loss(note, combs[[vocab.index(60)]], loud)
    assert own < 0.05
    assert harmonic_phase_loss(note, combs[[vocab.index(61)]], loud) > 4 * own
    own.backward()
    assert note.grad[:, 0].abs().max() == 0 and note.grad[:, 1].abs().max() > 0


def test_ema_rampup_shortens_the_ema_memory_early_in_each_stage():
    """With ema_rampup the EMA half-life is at most rampup × images into the stage, so just after a
    fade-in begins the EMA follows G closely; deep into a stage it is the configured decay."""
    arguments = model_arguments("model.ema_rampup=0.25")
    gan = GANSynth(**arguments)
    assert gan.hparams.ema_decay == 0.995
    gan.images_seen.fill_(64 + 16)  # 16 images into the first fade-in: half-life 4 images, 2 per step
    assert gan.ema_decay_now(8) == pytest.approx(0.5 ** 2)
    gan.images_seen.fill_(64 * 10_000)  # far beyond the rampup (total_images ends the last stage there)
    assert gan.ema_decay_now(8) == pytest.approx(0.995)
    fixed = GANSynth(**dict(arguments, ema_rampup=None))
    fixed.images_seen.fill_(64 + 16)
    assert fixed.ema_decay_now(8) == 0.995


@pytest.mark.parametrize("override, message", [
    ("model.ema_rampup=-0.5", "model.ema_rampup must be > 0 or null (a fixed decay), got -0.5"),
    ("model.loss.mode_seeking=-1", "model.loss.mode_seeking must be >= 0, got -1"),
    ("model.loss.gp_every=0", "model.loss.gp_every must be an integer >= 1, got 0"),
    ("model.loss.gp_autocast=yes", "model.loss.gp_autocast must be true or false, got 'yes'"),
    ("model.channels_last=1", "model.channels_last must be true or false, got 1"),
    ("model.augment=[gain,reverb]", "model.augment: unknown augmentation 'reverb'"),
    ("model.network.critic_pack=3", "model.schedule.batch_sizes [8, 8, 4] must split into packs of "
                                    "model.network.critic_pack=3"),
    ("model.loss.harmonic_phase=-1", "model.loss.harmonic_phase must be >= 0, got -1"),
    ("model.loss.critic_floor_db=0", "model.loss.critic_floor_db must be > 0 dB or null, got 0"),
    ("model.envelope_critic=-1", "model.envelope_critic must be >= 0 (its score per dB; 0: none), got -1"),
    ("model.profile_critic=-1", "model.profile_critic must be >= 0 (its score per dB; 0: none), got -1"),
    ("model.envelope_bands=3", "model.envelope_bands must be a positive int that divides the first stage's 16 "
                               "mel columns, got 3"),
    ("model.instrument_balance=-1", "model.instrument_balance must be >= 0 (0: none), got -1"),
    ("model.instrument_aux=-1", "model.instrument_aux must be >= 0 (0: none), got -1"),
    ("model.network.comb_if=false model.loss.harmonic_phase=1",
     "model.loss.harmonic_phase needs model.network.comb_if=true"),
])
def test_out_of_range_model_settings_name_the_key(override, message):
    from gansynth.training.losses import SettingError

    with pytest.raises(SettingError, match=re.escape(message)):
        GANSynth(**model_arguments(*override.split()))


def test_the_critic_floor_flattens_only_what_lies_far_below_each_note_peak():
    """10 dB floor at 0.1 units per dB: a note peaking at 1.0 keeps every magnitude down to 0.0 and keeps a
    tenth of the distance below it; another note keeps its own floor; the IF channels pass untouched."""
    from gansynth.training.module import FLOOR_LEAK, floor_quiet_magnitudes

    x = torch.zeros(2, 2, 3, 4)  # two mono notes: [magnitude, IF]
    x[0, 0] = torch.tensor([[1.0, 0.5, -0.5, -2.0]] * 3)
    x[1, 0] = x[0, 0] - 1.0  # the same note 10 dB quieter: its floor moves with it
    x[:, 1] = -3.0
    floored = floor_quiet_magnitudes(x, floor_db=10.0, units_per_db=0.1)
    expected = torch.tensor([1.0, 0.5, -0.5 * FLOOR_LEAK, -2.0 * FLOOR_LEAK])
    torch.testing.assert_close(floored[0, 0], expected.expand(3, 4))
    torch.testing.assert_close(floored[1, 0], expected.expand(3, 4) - 1.0)
    torch.testing.assert_close(floored[:, 1], x[:, 1])


def test_a_packing_critic_trains_and_scores_pairs_of_notes(notes, tmp_path):
    """critic_pack=2: the run ends with finite weights, and its critic gives one score per pair of notes
    and every note's pitch logits."""
    _, model = train(notes, tmp_path, "model.network.critic_pack=2")
    assert all(torch.isfinite(p).all() for p in model.parameters())
    blocks, alpha = model.blocks_and_alpha()
    images = torch.zeros(4, model.codec.image_shape[0], *model.current_size(blocks))
    score, logits = model.discriminator(images, blocks, alpha, instruments=torch.tensor([0, 0, 1, 1]))
    assert score.shape == (2,) and logits.shape == (4, model.vocab.size)


def test_lazy_penalty_and_augmentation_train_reproducibly(notes, tmp_path):
    """With the critic's augmentations and a penalty every 2nd step, two runs of one seed end with the
    same weights (the transforms draw from the step's seeded stream), and not with the plain run's."""
    options = ["model.augment=[gain,shift,cutout]", "model.loss.gp_every=2"]
    _, first = train(notes, tmp_path / "a", *options)
    _, second = train(notes, tmp_path / "b", *options)
    _, plain = train(notes, tmp_path / "plain")
    torch.testing.assert_close(first.state_dict(), second.state_dict(), rtol=0, atol=0)
    changed = [not torch.equal(a, b) for a, b in zip(first.discriminator.state_dict().values(),
                                                       plain.discriminator.state_dict().values())]
    assert sum(changed) > len(changed) // 2


def test_gradient_penalty_takes_one_slope_per_score_of_a_packing_critic():
    """A linear critic of slope 1 per note has slope sqrt(2) per pair: the penalty of the paired critic
    is (sqrt(2) - 1)^2, the per-note critic's 0."""
    from gansynth.training.losses import gradient_penalty

    real, fake = torch.randn(4, 1, 1, 1), torch.randn(4, 1, 1, 1)
    noise = torch.Generator().manual_seed(0)
    assert gradient_penalty(lambda x: x.flatten(), real, fake, 1.0, noise).item() == pytest.approx(0.0)
    paired = gradient_penalty(lambda x: x.reshape(2, 2).sum(1), real, fake, 1.0, noise)
    assert paired.item() == pytest.approx((math.sqrt(2) - 1) ** 2)


def test_the_penalty_runs_in_fp32_under_bf16_autocast_unless_gp_autocast():
    from gansynth.training.losses import gradient_penalty

    seen = []  # whether autocast was on where the critic ran

    def critic(x):
        seen.append(torch.is_autocast_enabled("cpu"))
        return x.sum((1, 2, 3))

    real, fake, noise = torch.randn(2, 1, 2, 2), torch.randn(2, 1, 2, 2), torch.Generator().manual_seed(0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        gradient_penalty(critic, real, fake, 1.0, noise)
        gradient_penalty(critic, real, fake, 1.0, noise, autocast=True)
    assert seen == [False, True]


def test_channels_last_training_takes_the_steps_contiguous_training_takes(notes, tmp_path):
    """``model.channels_last`` changes the memory layout only: G and D's conv weights are channels_last, and
    after 4 iterations in fp32 every weight is where the contiguous run's is, up to rounding (measured 1.4e-6,
    where the last 3 iterations moved the weights by up to 4e-3)."""
    fp32 = "trainer.precision=32-true"
    _, fast = train(notes, tmp_path / "channels_last", "+trainer.max_steps=8", fp32, "model.channels_last=true")
    _, plain = train(notes, tmp_path / "contiguous", "+trainer.max_steps=8", fp32, "model.channels_last=false")
    _, first = train(notes, tmp_path / "one_iteration", "+trainer.max_steps=2", fp32, "model.channels_last=false")
    convs = [p for p in [*fast.generator.parameters(), *fast.discriminator.parameters()] if p.dim() == 4]
    assert all(p.is_contiguous(memory_format=torch.channels_last) for p in convs)
    assert not all(p.is_contiguous(memory_format=torch.channels_last)
                   for p in plain.discriminator.parameters() if p.dim() == 4)
    def largest_difference(a, b):
        return max((p - q).abs().max().item() for p, q in zip(a.parameters(), b.parameters()))

    assert largest_difference(fast, plain) < 1e-4
    assert largest_difference(plain, first) > 1e-3


def test_lazy_penalty_computes_the_critics_view_only_on_the_steps_that_take_it():
    """With a penalty every 4th step, step 1 leaves ``view`` uncalled; step 0 takes the slope on the
    viewed interpolates, 4x weighted: a summing critic has slope 1 on a note, 2 on its view of 4 copies."""
    from gansynth.training.losses import LossSettings, lazy_gradient_penalty

    settings = LossSettings(gp_weight=10.0, gp_target=1.0, drift=0.0, aux_weight_g=0.0, aux_weight_d=0.0, gp_every=4)
    real, fake = torch.randn(4, 1, 1, 1), torch.randn(4, 1, 1, 1)
    calls = []

    def four_copies(x):
        calls.append(x.shape)
        return x.repeat(1, 1, 2, 2)

    def penalty(images_seen, view=None):
        return lazy_gradient_penalty(lambda x: x.sum((1, 2, 3)), real, fake, images_seen, settings,
                                     torch.Generator().manual_seed(0), view=view)

    assert penalty(4, four_copies) is None and calls == []
    assert penalty(0)[1].item() == pytest.approx(0.0)
    term, gp = penalty(0, four_copies)
    assert len(calls) == 2 and gp.item() == pytest.approx(1.0) and term.item() == pytest.approx(40.0)


def extra_critic_parameters(model) -> list[torch.Tensor]:
    return [p for critic in (model.pair_critic, model.envelope_critic, model.profile_critic,
                             model.instrument_classifier)
            if critic is not None
            for p in critic.parameters()]


@pytest.mark.parametrize("critic", ["model.network.critic_pack=2", "model.pair_critic_harmonics=4",
                                    "model.pair_critic_harmonics=4 model.envelope_critic=1 model.envelope_bands=4 "
                                    "model.decibel_instruments=true model.profile_critic=1",
                                    "model.pair_critic_harmonics=4 model.instrument_balance=1",
                                    "model.pair_critic_harmonics=4 model.instrument_aux=1"])
def test_instrument_pairs_play_one_latent_at_both_pitches_of_a_real_pair(notes, tmp_path, critic):
    """With data.instrument_pairs, every G call of training (G's step and the critic's fakes) gives the
    two notes of a pair one latent and the pitches of a real pair of one instrument (two pitches), and the
    critic of pairs (a packing D, or the harmonic pair critic beside the per-note D, and the envelope
    critic of the pair's level curves and the profile critic of its harmonic grids, both told the pair's
    instrument) trains, as does the instrument classifier of the balance and
    auxiliary terms, whose costs G pays and the log shows."""
    calls, initial = [], []

    class RecordGeneratorInputs(pl.Callback):
        def on_fit_start(self, trainer, pl_module):
            pl_module.generator.register_forward_pre_hook(lambda _, args: calls.append(args[:2]))
            initial.extend(p.detach().clone() for p in extra_critic_parameters(pl_module))

    _, model = train(notes, tmp_path, "data.instrument_pairs=true", *critic.split(),
                     callbacks=[RecordGeneratorInputs()])
    assert model.hparams.instrument_pairs and len(calls) > 10
    for z, pitches in calls:
        torch.testing.assert_close(z[0::2], z[1::2], rtol=0, atol=0)
        assert not torch.equal(z[0], z[2]) and (pitches[0::2] != pitches[1::2]).all()
    trained = extra_critic_parameters(model)
    assert len(trained) == len(initial) and all(not torch.equal(a, b) for a, b in zip(trained, initial))
    assert all(torch.isfinite(p).all() for p in trained)
    logged = model.trainer.callback_metrics
    paid = {term for term in ("loss/g_balance", "loss/g_instrument") if term in logged}
    assert paid == {term for option, term in (("instrument_balance", "loss/g_balance"),
                                              ("instrument_aux", "loss/g_instrument")) if option in critic}
    assert all(torch.isfinite(logged[term]) for term in paid)


@pytest.mark.parametrize("override, instruments, message", [
    ("model.instrument_projection=false model.instrument_balance=1", 0,
     "model.instrument_balance needs data.instrument_pairs=true (instruments from the file names) and at least 2 "
     "instruments, got 0"),
    ("model.instrument_projection=false model.instrument_aux=1", 2,
     "model.instrument_aux needs model.instrument_projection=true (a fake's instrument is its latent's category)"),
    ("data.instrument_pairs=false model.pair_critic_harmonics=0", 2,
     "model.instrument_projection needs data.instrument_pairs=true (instruments from the file names)"),
    ("model.instrument_projection=true", 1, "model.instrument_projection needs at least 2 instruments in the data, "
                                            "got 1"),
    ("model.instrument_projection=false model.decibel_instruments=true", 2,
     "model.decibel_instruments needs model.envelope_critic or model.profile_critic > 0 and "
     "model.instrument_projection=true"),
    ("model.network.latent_categories=3", 2, "model.instrument_projection makes the data's 2 instruments G's latent "
                                             "categories; model.network.latent_categories must be 0 or 2, got 3"),
])
def test_the_instrument_options_need_instruments_from_the_names(override, instruments, message):
    from gansynth.training.losses import SettingError

    with pytest.raises(SettingError, match=re.escape(message)):
        GANSynth(**model_arguments(*override.split(), instruments=instruments))


def test_the_advice_for_notes_that_cannot_be_paired_builds_a_model_without_instruments():
    """The overrides the dataset error names are enough: ``tiny`` ties the told decibel critics to the projection."""
    from gansynth.training.data import DatasetError, InstrumentPairs

    with pytest.raises(DatasetError) as caught:
        InstrumentPairs([Path("/notes/oboe_068-060-100.wav")], [60], Path("/notes"))
    advice = re.search(r"to train without pairs: ([^)]*)\)", str(caught.value)).group(1).split()
    arguments = model_arguments(*advice, instruments=0)
    assert (arguments["instrument_pairs"], arguments["instrument_projection"], arguments["decibel_instruments"]) == (
        False, False, False)
    GANSynth(**arguments)


def test_instrument_projection_plays_each_fake_as_the_instrument_of_its_real_partner(notes, tmp_path):
    """Both G calls of a step (G's own and the critic's fakes) draw latents whose category is the real batch's
    instrument, note by note; the checkpoint renders with one category per instrument of the data, and the
    learning monitor records how often each category is heard as its instrument."""
    calls, instruments = [], []

    class RecordCategories(pl.Callback):
        def on_fit_start(self, trainer, pl_module):
            pl_module.generator.register_forward_pre_hook(
                lambda module, args: calls.append(module.category(args[0]).argmax(1)))

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            instruments.append(batch[2].clone())

    run_dir = tmp_path / "run"
    train(notes, run_dir, callbacks=[RecordCategories()])  # tiny: pairs, the pair critic and the projection
    assert len(calls) == 2 * len(instruments) > 10
    for step, batch_instruments in enumerate(instruments):
        assert torch.equal(calls[2 * step], batch_instruments) and torch.equal(calls[2 * step + 1], batch_instruments)
    assert set(torch.cat(instruments).tolist()) == {0, 1}
    synth = load_checkpoint(run_dir / "checkpoints" / "last.ckpt")  # generate's play_as names these
    assert synth.generator.latent_categories == 2
    assert synth.instruments == tuple(sorted({instrument_of(f) for f in notes.glob("*.wav")}))
    monitored = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[-1])  # the monitor hears them too
    assert 0.0 <= monitored["category_fidelity"] <= 1.0 and "keyboard" in monitored



@pytest.mark.parametrize("override, message", [
    ("model.pair_critic_harmonics=0", "data.instrument_pairs needs a critic of pairs: model.network.critic_pack=2 "
                                      "(got 1) or model.pair_critic_harmonics > 0"),
    ("data.instrument_pairs=false model.instrument_projection=false",
     "model.pair_critic_harmonics needs data.instrument_pairs=true"),
    ("model.network.critic_pack=4", "data.instrument_pairs needs model.network.critic_pack 1 or 2, got 4"),
])
def test_instrument_pairs_and_the_pair_critic_need_each_other(override, message):
    from gansynth.training.losses import SettingError

    with pytest.raises(SettingError, match=re.escape(message)):
        GANSynth(**model_arguments(*override.split()))

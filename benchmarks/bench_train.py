"""Training throughput per progressive stage: images/s of one real ``GANSynth.training_step``.

One iteration is what training repeats: a G step, a D step with the gradient penalty (double
backward) and the EMA update, run by a ``pl.Trainer`` on random raw images of the codec's shape with
random pitch labels. ``images_seen`` is set to the middle of each chosen stage before ``fit``, so the
module's own schedule picks the resolution and fade-in weight. The first batch of every run is the
warm-up and is also where FLOPs are counted (``FlopCounterMode``); the next ``--iters`` are timed and
averaged (use a multiple of ``model.loss.gp_every`` when it is overridden).
Achieved GFLOP/s is compared with this machine's speed on one large 3x3 conv (forward+backward, 256 channels)
in the row's own layout and dtype, measured in the same run; a 32-channel conv at 128x1024 (the paper's top
stage) is timed beside it, the ceiling of a stage made of such layers. Freed memory is kept for reuse, as
the train command does (`gansynth.core.allocator`); ``--freed-memory returned reused`` times glibc's
default beside it, one process per mode.

    python benchmarks/bench_train.py [--device cpu|cuda] [--iters 2] [--stages 0 2 4] [--configs paper]
    python benchmarks/bench_train.py --configs tiny tiny:model.loss.gp_every=4 --stages 8 --iters 8
    python benchmarks/bench_train.py --configs paper --precisions bf16 --stages 8 12 --freed-memory returned reused
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import pytorch_lightning as pl
import torch
from omegaconf import OmegaConf
from torch.utils.data import DataLoader, Dataset
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gansynth.commands.cli import compose_config  # noqa: E402
from gansynth.training.module import GANSynth  # noqa: E402
from machine import apply_freed_memory, cpu_model, machine_record  # noqa: E402  (benchmarks/, the script's own folder)
from gansynth.core.spectral import SpecgramCodec  # noqa: E402

CONFIGS = {"paper": "paper", "fork": "stereo_44k", "tiny": "tiny"}  # benchmark name -> Hydra experiment
PRECISIONS = {"fp32": "32-true", "bf16": "bf16-mixed"}
LAYOUTS = {"channels_last": torch.channels_last, "contiguous": torch.contiguous_format}
PEAK_CONV = dict(channels=256, height=32, width=256)
NARROW_CONV = dict(channels=32, height=128, width=1024)  # the paper's top stage: its widest maps, its fewest channels
INSTRUMENTS = 3  # with data.instrument_pairs (the tiny experiment): pairs of notes of one of three instruments


def parse_config(text: str) -> str:
    if text.partition(":")[0] not in CONFIGS:
        raise argparse.ArgumentTypeError(f"{text!r}: the name before ':' must be one of {', '.join(CONFIGS)}")
    return text


def build_model(experiment: str, overrides: list[str] = ()) -> GANSynth:
    """The LightningModule exactly as ``train.py experiment=... <overrides>`` composes it, with a flat
    pitch histogram (and ``data.instrument_pairs`` passed on as the data module passes it, with three
    instruments of equal counts)."""
    cfg = compose_config("train", [f"experiment={experiment}", *overrides])
    model_cfg = OmegaConf.to_container(cfg.model, resolve=True)
    model_cfg.pop("_target_")
    low, high = cfg.data.pitch_low, cfg.data.pitch_high
    codec = SpecgramCodec(**OmegaConf.to_container(cfg.codec, resolve=True))
    pitch = dict(low=low, high=high, counts=[1] * (high - low + 1))
    instruments = INSTRUMENTS if cfg.data.instrument_pairs else 0
    return GANSynth(codec=codec.to_dict(), pitch=pitch, instrument_pairs=cfg.data.instrument_pairs,
                    instrument_counts=[1] * instruments, instrument_names=[f"instrument_{i}" for i in range(instruments)],
                    **model_cfg)


class RandomNotes(Dataset):
    """``length`` (raw image, pitch index, instrument index or -1) items as the DataModule's; one random image
    is shared so loading costs nothing."""

    def __init__(self, image_shape, num_pitches: int, length: int, instruments: int = 0):
        self.image = torch.randn(*image_shape)
        self.num_pitches = num_pitches
        self.length = length
        self.instruments = instruments

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int):
        return self.image, index % self.num_pitches, index // 2 % self.instruments if self.instruments else -1


class _GlobalOnly:
    """Stands in for ``FlopCounterMode``'s module tracker: its backward hooks make
    ``torch.autograd.grad`` (the gradient penalty) fail, and only the global total is needed."""

    parents = ("Global",)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None


def flop_counter() -> FlopCounterMode:
    counter = FlopCounterMode(display=False)
    counter.mod_tracker = _GlobalOnly()
    return counter


class StepTimer(pl.Callback):
    """Wall time of each training batch (hooks around ``training_step``); batch 0 also counts FLOPs."""

    def __init__(self, device: torch.device):
        self.device = device
        self.seconds: list[float] = []
        self.flops = 0
        self._counter: FlopCounterMode | None = None
        self._start = 0.0

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self._sync()
        if batch_idx == 0:
            self._counter = flop_counter()
            self._counter.__enter__()
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self._sync()
        elapsed = time.perf_counter() - self._start
        if batch_idx == 0:
            self._counter.__exit__(None, None, None)
            self.flops = self._counter.get_total_flops()
        else:
            self.seconds.append(elapsed)


def stage_midpoint(model: GANSynth, stage: int) -> int:
    start = model.schedule.stage_end(stage - 1) if stage > 0 else 0
    return (start + model.schedule.stage_end(stage)) // 2


def bench_stage(model: GANSynth, stage: int, precision: str, batch: int, iters: int, device: torch.device) -> dict:
    """One ``fit`` of 1 + ``iters`` batches with the schedule parked in the middle of ``stage``."""
    model.images_seen.fill_(stage_midpoint(model, stage))
    blocks, alpha = model.blocks_and_alpha()
    data = RandomNotes(model.codec.image_shape, model.vocab.size, batch * (1 + iters),
                       len(model.hparams.instrument_counts))
    timer = StepTimer(device)
    trainer = pl.Trainer(
        accelerator=device.type, devices=1, precision=PRECISIONS[precision], max_epochs=1,
        max_steps=-1, callbacks=[timer], logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
    )
    trainer.fit(model, train_dataloaders=DataLoader(data, batch_size=batch, num_workers=0))
    if len(timer.seconds) != iters:
        raise RuntimeError(f"stage {stage}: expected {iters} timed batches, got {len(timer.seconds)}")
    seconds = statistics.fmean(timer.seconds)  # the mean: with a lazy penalty only every k-th step pays for it
    return dict(stage=stage, blocks=blocks, alpha=alpha, resolution=list(model.current_size(blocks)),
                ms_per_iter=1e3 * seconds, images_per_s=batch / seconds,
                gflop_per_iter=timer.flops / 1e9, gflop_per_s=timer.flops / 1e9 / seconds)


def conv_peak(device: torch.device, precision: str, layout: str, channels: int = PEAK_CONV["channels"],
              height: int = PEAK_CONV["height"], width: int = PEAK_CONV["width"], batch: int = 1,
              min_seconds: float = 1.0) -> dict:
    """GFLOP/s of a 3x3 ``channels``->``channels`` conv on [batch, channels, height, width] in ``layout``,
    forward + backward (input and weight grads)."""
    memory_format = LAYOUTS[layout]
    x = torch.randn(batch, channels, height, width, device=device).contiguous(memory_format=memory_format)
    weight = torch.randn(channels, channels, 3, 3, device=device).contiguous(memory_format=memory_format)
    x.requires_grad_(True)
    weight.requires_grad_(True)

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            y = torch.nn.functional.conv2d(x, weight, padding=1)
        y.float().sum().backward()

    with flop_counter() as counter:
        step()
    flops = counter.get_total_flops()
    times = []
    while len(times) < 3 or sum(times) < min_seconds:
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    return dict(shape=[batch, channels, height, width], ms=1e3 * seconds, gflop=flops / 1e9,
                gflop_per_s=flops / 1e9 / seconds)


def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model()


def table(rows: list[dict]) -> str:
    lines = ["| config | precision | layout | stage | blocks | resolution | ms/iter | images/s | GFLOP/iter | GFLOP/s | "
             "% of conv peak |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['config']} | {r['precision']} | {r['layout']} | {r['stage']} | {r['blocks']} | "
                     f"{r['resolution'][0]}x{r['resolution'][1]} | {r['ms_per_iter']:.0f} | {r['images_per_s']:.2f} | "
                     f"{r['gflop_per_iter']:.1f} | {r['gflop_per_s']:.1f} | {100 * r['peak_fraction']:.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--iters", type=int, default=2, help="timed iterations per stage (after 1 warm-up)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--stages", type=int, nargs="+", help="stage ids (default: every stable stage)")
    parser.add_argument("--configs", nargs="+", type=parse_config, default=list(CONFIGS),
                        help="NAME or NAME:KEY=VALUE[,KEY=VALUE] (a variant timed against NAME in the same run), "
                             f"NAME one of {', '.join(CONFIGS)}")
    parser.add_argument("--precisions", nargs="+", choices=tuple(PRECISIONS), default=list(PRECISIONS))
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's own)")
    parser.add_argument("--output", type=Path, help="default: benchmarks/results/train_<device>.json")
    parser.add_argument("--freed-memory", nargs="+", choices=("reused", "returned"), default=["reused"],
                        help="reused: freed blocks kept for the next step, as the train command does "
                             "(gansynth.core.allocator); returned: glibc's default. Several: one process each "
                             "(a process cannot switch back), their rows in one file")
    args = parser.parse_args()
    if args.iters < 1:
        parser.error("--iters must be >= 1")
    output = args.output or ROOT / "benchmarks" / "results" / f"train_{args.device}.json"
    if len(args.freed_memory) > 1:
        write_report(output, [run_child(args, mode) for mode in args.freed_memory])
        return
    freed_memory = apply_freed_memory(args.freed_memory[0])
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    # expected here: no workers (the data is one cached tensor), the EMA generator kept in eval mode
    warnings.filterwarnings("ignore", message=r".*(does not have many workers|log_every_n_steps|in eval mode|LeafSpec).*")
    torch.manual_seed(0)

    # Every row is compared with the reference conv in its own layout and dtype, measured here.
    peak = {layout: {p: conv_peak(device, p, layout) for p in args.precisions} for layout in LAYOUTS}
    narrow = {layout: {p: conv_peak(device, p, layout, batch=args.batch, **NARROW_CONV) for p in args.precisions}
              for layout in LAYOUTS}
    print(f"training step, {device_name(device)} ({device.type}, {torch.get_num_threads()} threads), "
          f"torch {torch.__version__}, batch {args.batch}, 1 warm-up + {args.iters} timed, freed memory {freed_memory}")
    for layout in LAYOUTS:
        for p in args.precisions:
            print(f"conv 3x3 fwd+bwd, {p}, {layout}: 256->256 on [1, 256, 32, 256] {peak[layout][p]['gflop_per_s']:.1f} "
                  f"GFLOP/s; 32->32 on [{args.batch}, 32, 128, 1024] {narrow[layout][p]['gflop_per_s']:.1f} GFLOP/s")

    rows = []
    for config in args.configs:
        name, _, overrides = config.partition(":")
        model = build_model(CONFIGS[name], overrides.split(",") if overrides else [])
        stages = args.stages if args.stages is not None else list(range(0, model.schedule.num_stages, 2))
        for precision in args.precisions:
            for stage in stages:
                layout = "channels_last" if model.hparams.channels_last else "contiguous"
                row = dict(config=config, precision=precision, layout=layout, freed_memory=freed_memory,
                           **bench_stage(model, stage, precision, args.batch, args.iters, device))
                row["reference_gflop_per_s"] = peak[layout][precision]["gflop_per_s"]
                row["peak_fraction"] = row["gflop_per_s"] / row["reference_gflop_per_s"]
                rows.append(row)
                print(table(rows[-1:]).splitlines()[-1], flush=True)
        del model

    print(table(rows))
    write_report(output, [dict(machine_record(str(device), torch.get_num_threads()), batch=args.batch, iters=args.iters,
                               conv_peak=peak, narrow_conv_peak=narrow, rows=rows)])


def run_child(args: argparse.Namespace, freed_memory: str) -> dict:
    """This script with the same settings and one allocator mode, in a fresh process; its report."""
    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / "report.json"
        command = [sys.executable, __file__, "--device", args.device, "--iters", str(args.iters),
                   "--batch", str(args.batch), "--configs", *args.configs, "--precisions", *args.precisions,
                   "--freed-memory", freed_memory, "--output", str(output)]
        command += ["--stages", *map(str, args.stages)] if args.stages is not None else []
        command += ["--threads", str(args.threads)] if args.threads else []
        subprocess.run(command, check=True)
        return json.loads(output.read_text())


def write_report(output: Path, reports: list[dict]) -> None:
    """One file: the first report's machine and references, every report's rows (each row's percentage
    is against the reference measured in its own process, recorded in the row)."""
    report = dict(reports[0], rows=[row for r in reports for row in r["rows"]])
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {output}")


if __name__ == "__main__":
    main()

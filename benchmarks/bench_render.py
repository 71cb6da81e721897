"""Rendering speed and memory: the fast generate path's levers, MIDI rendering at full model size, peak RSS against MIDI length.

Three parts, each writing its own JSON (every file records the CPU/GPU model, threads and torch):
- levers (`render_levers.json`): notes/s of the paper-size generator (random weights: rendering
  cost does not depend on training) through `Synth.generate` (decode included) with each lever of
  the fast path added in turn, and the issue's baseline measured in the same run: a naive PyTorch
  stack of the same conv shapes (no pixel norm, no equalised LR), bf16 + channels_last, G only.
  Rounds interleave the variants and the best round counts, so a busy machine slows all alike. Each
  row also records its first call (warm-up: oneDNN primitives; for compile=true, the compiling). Two
  ceilings close the list: the fast path's convolutions and linear maps alone, each run on the input it
  got in a real batch (what G costs if everything between them were free), and the decode alone. The
  whole list runs twice, each in its own process: with glibc's default allocator, which returns every
  large freed block to the system, and with freed memory kept for reuse (`gansynth.core.allocator`, what
  every command does; the other parts run that way too).
- render (`render.json`): the paper and fork models rendering a generated ~2-minute polyphonic MIDI
  piece in which every note has its own latent (nothing deduplicated: the worst case), per precision,
  each in its own process so its peak RSS (VmHWM) is that run's.
- breakdown (`render_breakdown.json`, `render_breakdown_gpu.json` with `--device cuda`): where
  `Synth.generate`'s time goes per batch: G alone, decode alone, decode plus the copy to the CPU,
  for the paper and fork models per precision (random weights, one pitch).
- memory (`render_memory.json`): peak RSS rendering 2, 10 and 30-minute MIDI files (pretty_midi,
  one timbre) to a wav, streamed (`stream_mix` + `write_audio_stream`, what `generate` does) and
  whole in memory (`render_midi` + `write_audio`), each in its own process.

    python benchmarks/bench_render.py [--parts levers render breakdown memory] [--notes 24] [--device cpu] [--threads 2]
"""

from __future__ import annotations

import argparse
import copy
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

MODELS = {
    "paper": dict(codec=dict(sample_rate=16000, audio_length=4.0, channel_mode="mono", n_fft=2048,
                             hop_length=512, n_frames=128),
                  network=dict(num_blocks=7, start_shape=[2, 16], latent_dim=256, fmap_base=4096,
                               fmap_decay=1.0, fmap_max=256, attention_areas=[])),
    "fork": dict(codec=dict(sample_rate=44100, audio_length=1.5, channel_mode="stereo", n_fft=2048,
                            hop_length=512, n_frames=128),
                 network=dict(num_blocks=7, start_shape=[2, 16], latent_dim=256, fmap_base=4096,
                              fmap_decay=1.0, fmap_max=256, attention_areas=[8192])),
}
PIECE_SECONDS = 120.0
MEMORY_MINUTES = (2, 10, 30)
RESULTS = ROOT / "benchmarks" / "results"


def write_checkpoint(path: Path, model: str) -> None:
    import torch

    from gansynth.core.networks import Generator
    from gansynth.core.spectral import SpecgramCodec

    spec = MODELS[model]
    codec = SpecgramCodec(**spec["codec"])
    generator = Generator(image_shape=codec.image_shape, num_pitches=61, **spec["network"])
    torch.save({"hyper_parameters": {"codec": codec.to_dict(), "network": spec["network"],
                                     "pitch": {"low": 24, "high": 84, "counts": [1] * 61}},
                "state_dict": {f"ema_generator.{k}": v for k, v in generator.state_dict().items()}}, path)


def load_random(model: str, **settings):
    """A Synth of `model` with random weights, through the project's own loader."""
    from gansynth.inference.checkpoint import load_checkpoint

    with tempfile.TemporaryDirectory() as folder:
        ckpt = Path(folder) / f"{model}.ckpt"
        write_checkpoint(ckpt, model)
        return load_checkpoint(ckpt, **settings)


# ---------------------------------------------------------------------------------------------- levers


def naive_stack(generator):
    """The issue's baseline: plain Linear/Conv2d/LeakyReLU of G's shapes at its full stage, nothing else."""
    from torch import nn

    widths, (h, w) = generator.widths, generator.start_shape
    layers = [nn.Linear(generator.latent_dim + generator.num_pitches, widths[1] * h * w),
              nn.Unflatten(1, (widths[1], h, w)), nn.LeakyReLU(0.2)]
    for i in range(1, generator.num_blocks + 1):
        if i > 1:
            layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
        layers += [nn.Conv2d(widths[max(i - 1, 1)], widths[i], 3, padding=1), nn.LeakyReLU(0.2)]
        if i > 1:
            layers += [nn.Conv2d(widths[i], widths[i], 3, padding=1), nn.LeakyReLU(0.2)]
    layers += [nn.Conv2d(widths[-1], generator.image_channels, 1), nn.Tanh()]
    return nn.Sequential(*layers).eval().requires_grad_(False)


def lever_variants(synth, pitches, z) -> dict:
    """name -> (callable rendering the notes once, whether it includes the decode to audio)."""
    import torch

    from gansynth.core.synth import Synth

    from bench_codec import with_dense_mel_products

    def synth_with(network=None, batch_size=None, precision=None, codec=None):
        variant = copy.copy(synth)
        variant.network = synth.network if network is None else network
        variant.batch_size, variant.precision = batch_size or synth.batch_size, precision or synth.precision
        variant.codec = codec or synth.codec
        return variant

    fast = synth_with(precision="bf16")

    def no_grad(variant):
        def run():
            with torch.no_grad():
                Synth.generate.__wrapped__(variant, pitches, z)  # the method without its inference_mode
        return run

    def naive(channels_last: bool, bf16: bool):
        stack = naive_stack(synth.generator)
        stack = stack.to(memory_format=torch.channels_last) if channels_last else stack
        inputs = torch.cat([z, torch.nn.functional.one_hot(torch.tensor(
            [synth.vocab.index(p) for p in pitches]), synth.generator.num_pitches).float()], dim=1)

        @torch.inference_mode()
        def run():
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                for begin in range(0, len(inputs), synth.batch_size):
                    stack(inputs[begin:begin + synth.batch_size])
        return run

    def layers_alone():
        """The fast path's convolutions and linear maps, each run on the input it got in one real batch and
        nothing between them: what G would cost if every activation, norm and copy were free."""
        calls = []
        with torch.inference_mode(), fast._autocast():
            hooks = [layer.register_forward_hook(lambda layer, args, _: calls.append((layer, args)))
                     for layer in weighted_layers(fast.network)]
            fast.network(z[:fast.batch_size], torch.tensor([fast.vocab.index(p) for p in pitches[:fast.batch_size]]),
                         fast.blocks, fast.alpha)
            for hook in hooks:
                hook.remove()
        batches = -(-len(pitches) // fast.batch_size)

        @torch.inference_mode()
        def run():
            with fast._autocast():
                for _ in range(batches):
                    for layer, args in calls:
                        layer(*args)
        return run

    image = fast.network(z[:fast.batch_size], torch.zeros(fast.batch_size, dtype=torch.long), fast.blocks,
                         fast.alpha).detach().float()

    dense_codec = with_dense_mel_products(synth.codec)

    def decode_alone(codec):
        @torch.inference_mode()
        def run():
            for _ in range(-(-len(pitches) // fast.batch_size)):
                codec.decode(codec.denormalize(image))
        return run

    from gansynth.core.frozen import CompiledOrEager

    upsampling_apart = with_upsampling_apart(synth.network, synth.generator)
    folded_nchw = unfused(upsampling_apart).to(memory_format=torch.contiguous_format)
    folded_cl = unfused(upsampling_apart)
    compiled = synth_with(network=CompiledOrEager(synth.network))
    return {
        "naive stack fp32 (G only)": (naive(False, False), False),
        "naive stack bf16 + channels_last (G only): baseline": (naive(True, True), False),
        "training modules fp32 (before)": (lambda: synth_with(synth.generator, precision="fp32").generate(pitches, z), True),
        "training modules bf16 autocast (before)": (lambda: synth_with(synth.generator).generate(pitches, z), True),
        "+ scales folded, fp32": (lambda: synth_with(folded_nchw, precision="fp32").generate(pitches, z), True),
        "+ channels_last, fp32": (lambda: synth_with(folded_cl, precision="fp32").generate(pitches, z), True),
        "+ bf16 autocast": (lambda: synth_with(folded_cl).generate(pitches, z), True),
        "+ leaky ReLU and pixel norm fused in place": (lambda: synth_with(upsampling_apart).generate(pitches, z), True),
        "+ upsampling folded into each block's first conv (precision=bf16)": (lambda: fast.generate(pitches, z), True),
        "+ torch.compile (compile=true)": (lambda: compiled.generate(pitches, z), True),
        "  same with the dense mel products (before)": (
            lambda: synth_with(network=compiled.network, codec=dense_codec).generate(pitches, z), True),
        "  same in fp32 (precision=fp32)": (lambda: synth_with(precision="fp32").generate(pitches, z), True),
        "  same in fp32 with the dense mel products (before)": (
            lambda: synth_with(precision="fp32", codec=dense_codec).generate(pitches, z), True),
        "  same with no_grad instead of inference_mode": (no_grad(fast), True),
        **{f"  same with batch {b}": (lambda b=b: synth_with(batch_size=b).generate(pitches, z), True)
           for b in (2, 4, 16)},
        "ceiling: its convs and linear maps alone, each on its own input (G only)": (layers_alone(), False),
        "ceiling: decode alone": (decode_alone(synth.codec), True),
        "ceiling: decode alone, dense mel products (before)": (decode_alone(dense_codec), True),
    }


def weighted_layers(network):
    """The convolutions, transposed convolutions and linear maps of a frozen G."""
    from torch import nn

    from gansynth.core.layers import UpsamplingConv2d

    return [m for m in network.modules() if isinstance(m, (nn.Conv2d, nn.Linear, UpsamplingConv2d))]


def with_upsampling_apart(network, generator):
    """A copy of the frozen G whose blocks upsample and then convolve (the fast path before that lever): each
    block's first conv is the training conv's plain 3x3 form, folded, behind a 2x nearest upsampling."""
    import torch

    from bench_train_parts import upsampled_join
    from gansynth.core.layers import EqualizedConv2d

    class UpsampleThenConv(torch.nn.Module):
        def __init__(self, conv):
            super().__init__()
            self.conv = conv

        def forward(self, inputs):
            return self.conv(upsampled_join(inputs, channels_last=True))

    network = copy.deepcopy(network)
    for frozen_block, block in zip(network.blocks[1:], generator.blocks[1:]):
        plain = EqualizedConv2d.folded(block[0]).to(memory_format=torch.channels_last)  # not its upsampling form
        frozen_block[0] = UpsampleThenConv(plain)
    return network


def unfused(network):
    """A copy of the frozen G with its fused in-place steps split back into LeakyReLU + PixelNorm (the
    fast path before that lever)."""
    from torch import nn

    from gansynth.core.frozen import LeakyPixelNorm
    from gansynth.core.layers import PixelNorm

    network = copy.deepcopy(network)
    for module in list(network.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, LeakyPixelNorm):
                setattr(module, name, nn.Sequential(nn.LeakyReLU(child.slope), PixelNorm(child.eps)))
    return network


def run_levers(notes: int, batch_size: int, rounds: int, threads: int, freed_memory: str) -> dict:
    """Every variant timed `rounds` times, interleaved; the best round of each counts, and its spread (slowest
    round over fastest) says how far a shared machine moved it. `freed_memory`: "returned" (glibc's default) or
    "reused" (what the commands do, `gansynth.core.allocator`)."""
    import torch

    from machine import apply_freed_memory, machine_record

    freed_memory = apply_freed_memory(freed_memory)
    torch.set_num_threads(threads)
    synth = load_random("paper", batch_size=batch_size, precision="bf16")
    generator = torch.Generator().manual_seed(0)
    pitches = torch.randint(36, 85, (notes,), generator=generator).tolist()
    z = torch.randn(notes, synth.latent_dim, generator=generator)
    variants = lever_variants(synth, pitches, z)
    seconds = {name: [] for name in variants}
    warmup = {}
    for name, (run, _) in variants.items():
        started = time.perf_counter()
        run()  # warm-up: oneDNN primitives, allocator; compiling
        warmup[name] = time.perf_counter() - started
    for _ in range(rounds):
        for name, (run, _) in variants.items():
            started = time.perf_counter()
            run()
            seconds[name].append(time.perf_counter() - started)
            print(f"  {name}: {notes / seconds[name][-1]:.2f} notes/s", flush=True)
    best = {name: min(times) for name, times in seconds.items()}
    baseline = notes / next(best[name] for name in best if name.endswith("baseline"))
    rows = [dict(lever=name, freed_memory=freed_memory, decode=decode, notes_per_second=round(notes / best[name], 2),
                 vs_baseline=round(notes / best[name] / baseline, 2), first_call_s=round(warmup[name], 1),
                 spread=round(max(seconds[name]) / best[name], 2))
            for name, (_, decode) in variants.items()]
    return dict(machine_record("cpu", threads), model="paper", notes=notes, batch_size=batch_size,
                rounds=rounds, rows=rows)


def run_breakdown(notes: int, batch_size: int, device: str, threads: int) -> dict:
    """ms per batch of G alone, decode alone and decode + copy to CPU, against generate's ms per batch."""
    import torch

    from machine import machine_record

    torch.set_num_threads(threads)
    cuda = device.startswith("cuda")

    def timed(run, repeats: int = 3) -> float:
        run()  # warm-up
        if cuda:
            torch.cuda.synchronize()
        started = time.perf_counter()
        for _ in range(repeats):
            run()
        if cuda:
            torch.cuda.synchronize()
        return (time.perf_counter() - started) / repeats

    rows = []
    for model in MODELS:
        for precision in ("fp32", "bf16"):
            synth = load_random(model, device=device, batch_size=batch_size, precision=precision)
            z = torch.randn(notes, synth.latent_dim)
            z_batch = z[:batch_size].to(synth.device)
            pitch = torch.full((batch_size,), synth.vocab.index(60), device=synth.device)

            def generator_only():
                with torch.inference_mode(), synth._autocast():
                    return synth.network(z_batch, pitch, synth.blocks, synth.alpha)

            image = generator_only().float()

            def decode_only():
                with torch.inference_mode():
                    return synth.codec.decode(synth.codec.denormalize(image))

            generate = timed(lambda: synth.generate([60] * notes, z)) * batch_size / notes
            rows.append(dict(model=model, precision=precision, batch_size=batch_size,
                             generate_ms=round(1e3 * generate, 1), generator_ms=round(1e3 * timed(generator_only), 1),
                             decode_ms=round(1e3 * timed(decode_only), 1),
                             decode_and_copy_ms=round(1e3 * timed(lambda: decode_only().float().cpu()), 1),
                             notes_per_second=round(batch_size / generate, 1)))
            del synth
    return dict(machine_record(device, threads), notes=notes, rows=rows)


# ---------------------------------------------------------------------------------------------- render


def polyphonic_notes(count: int) -> list:
    """`count` notes over ~2 minutes: a 3-note chord every few seconds plus a melody between."""
    import numpy as np

    from gansynth.core.midi import Note

    rng = np.random.default_rng(0)
    chords = count // 2 // 3
    notes = []
    for i in range(chords):
        start = i * PIECE_SECONDS / chords
        root = int(rng.integers(40, 60))
        notes += [Note(start, start + 2.0, root + step, 90, 0, 0) for step in (0, 4, 7)]
    melody = count - len(notes)
    for i in range(melody):
        start = (i + 0.5) * PIECE_SECONDS / melody
        notes.append(Note(start, start + 0.4, int(rng.integers(60, 80)), int(rng.integers(40, 127)), 1, 1))
    return sorted(notes, key=lambda n: n.start)


def run_one(model: str, precision: str, compiled: bool, notes_count: int, device: str, threads: int,
            batch_size: int) -> dict:
    """Render once in this process and report its timings and peak RSS (with ``compiled``: generate.py's
    compile=true; its warm-up note pays the compiling)."""
    import numpy as np
    import torch

    from gansynth.inference.render import interpolate_anchors, random_anchors, render_midi

    torch.set_num_threads(threads)
    synth = load_random(model, device=device, batch_size=batch_size, precision=precision, compile=compiled)
    notes = polyphonic_notes(notes_count)
    end = max(n.end for n in notes)
    anchors = random_anchors(round(end) + 1, synth.latent_dim, seed=0)
    latents = interpolate_anchors(anchors, np.array([n.start / end for n in notes]))
    render_midi(synth, notes[:1], latents[:1])  # warm-up (allocator, kernels)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    started = time.perf_counter()
    audio = render_midi(synth, notes, latents)
    seconds = time.perf_counter() - started
    audio_seconds = audio.shape[1] / synth.sample_rate
    return dict(model=model, precision=precision, compile=compiled, device=device, notes=len(notes),
                batch_size=batch_size,
                audio_seconds=round(audio_seconds, 2), wall_seconds=round(seconds, 2),
                notes_per_second=round(len(notes) / seconds, 2), ms_per_note=round(1000 * seconds / len(notes), 1),
                real_time_factor=round(seconds / audio_seconds, 3), peak_rss_mib=peak_rss_mib())


# ---------------------------------------------------------------------------------------------- memory


def write_long_midi(path: Path, minutes: float) -> None:
    """A piece of `minutes`: an eighth-note melody over 12 pitches and a 3-note chord every 2 s."""
    import pretty_midi

    midi = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(program=0)
    seconds = 60.0 * minutes
    for step in range(int(seconds / 0.5)):
        start = 0.5 * step
        piano.notes.append(pretty_midi.Note(100, 60 + (step * 7) % 12, start, start + 0.45))
        if step % 4 == 0:
            piano.notes += [pretty_midi.Note(80, root, start, start + 1.8) for root in (48, 52, 55)]
    midi.instruments.append(piano)
    midi.write(str(path))


def memory_one(minutes: float, mode: str, threads: int) -> dict:
    """Render a `minutes` MIDI file to a wav in this process, streamed or whole; peak RSS."""
    import numpy as np
    import torch

    from gansynth.core.audio import write_audio, write_audio_stream
    from gansynth.core.midi import read_notes
    from gansynth.inference.render import random_anchors, render_midi, stream_mix

    torch.set_num_threads(threads)
    synth = load_random("paper", batch_size=8)
    with tempfile.TemporaryDirectory() as folder:
        midi, wav = Path(folder) / "piece.mid", Path(folder) / "piece.wav"
        write_long_midi(midi, minutes)
        notes = read_notes(midi)
        latents = np.repeat(random_anchors(1, synth.latent_dim, seed=0), len(notes), axis=0)
        before = current_rss_mib()
        started = time.perf_counter()
        if mode == "streamed":
            written = write_audio_stream(wav, stream_mix(synth, notes, latents), synth.sample_rate, "PCM_16", -1.0)
        else:
            written = write_audio(wav, render_midi(synth, notes, latents), synth.sample_rate, "PCM_16")
        seconds = time.perf_counter() - started
    mix_mib = written.frames * synth.channels * 4 / 2**20
    return dict(minutes=minutes, mode=mode, notes=len(notes), wall_seconds=round(seconds, 1),
                mix_float32_mib=round(mix_mib, 1), rss_before_render_mib=before, peak_rss_mib=peak_rss_mib(),
                growth_mib=round(peak_rss_mib() - before, 1))


def peak_rss_mib() -> float:
    """This process's own peak RSS: VmHWM, the high-water mark of its memory map. ru_maxrss is not that on
    Linux: a child forked from a big parent keeps the parent's peak through exec (measured: every child
    of the levers part reported the parent's 1,680 MiB)."""
    try:
        status = Path("/proc/self/status").read_text()
        kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(kib / 1024, 1)


def current_rss_mib() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return round(pages * resource.getpagesize() / 2**20, 1)


# ---------------------------------------------------------------------------------------------- tables


def markdown(rows: list[dict], columns: list[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    return "\n".join(lines + ["| " + " | ".join(str(r[c]) for c in columns) + " |" for r in rows])


def in_child(*arguments: str) -> dict:
    """This script run with `arguments` in a fresh process (its own peak RSS); its last line as JSON."""
    result = subprocess.run([sys.executable, __file__, *arguments], capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def save(path: Path, report: dict, columns: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2))
    print(f"{report['device_name']}, {report['threads']} threads, torch {report['torch']} -> {path}")
    print(markdown(report["rows"], columns), flush=True)


def main() -> None:
    from gansynth.core.allocator import reuse_freed_memory
    from machine import machine_record

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", choices=("levers", "render", "breakdown", "memory"),
                        default=["levers", "render", "breakdown", "memory"])
    parser.add_argument("--notes", type=int, default=48)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lever-notes", type=int, default=32, help="notes per timing of each lever")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds of the levers")
    parser.add_argument("--levers-output", type=Path, default=RESULTS / "render_levers.json")
    parser.add_argument("--minutes", type=float, nargs="+", default=list(MEMORY_MINUTES))
    parser.add_argument("--output", type=Path, default=RESULTS / "render.json")
    parser.add_argument("--one", nargs=3, metavar=("MODEL", "PRECISION", "COMPILE"), help=argparse.SUPPRESS)
    parser.add_argument("--memory-one", nargs=2, metavar=("MINUTES", "MODE"), help=argparse.SUPPRESS)
    parser.add_argument("--levers-one", choices=("returned", "reused"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.levers_one:
        print(json.dumps(run_levers(args.lever_notes, args.batch_size, args.rounds, args.threads, args.levers_one)))
        return
    reuse_freed_memory()  # as the generate command does
    if args.one:
        model, precision, compiled = args.one
        print(json.dumps(run_one(model, precision, compiled == "compile", args.notes, args.device, args.threads,
                                 args.batch_size)))
        return
    if args.memory_one:
        print(json.dumps(memory_one(float(args.memory_one[0]), args.memory_one[1], args.threads)))
        return
    cpu = args.device == "cpu"
    if "levers" in args.parts and cpu:
        # Keeping freed memory cannot be undone in a process: each allocator mode runs the levers in its own,
        # one after the other. Every row is also compared with the glibc default's baseline.
        common = ["--lever-notes", str(args.lever_notes), "--batch-size", str(args.batch_size),
                  "--rounds", str(args.rounds), "--threads", str(args.threads)]
        report, reused = (in_child("--levers-one", mode, *common) for mode in ("returned", "reused"))
        default_baseline = next(r["notes_per_second"] for r in report["rows"] if r["lever"].endswith("baseline"))
        report["rows"] += reused["rows"]
        for row in report["rows"]:
            row["vs_default_baseline"] = round(row["notes_per_second"] / default_baseline, 2)
        save(args.levers_output, report,
             ["lever", "freed_memory", "decode", "notes_per_second", "vs_baseline", "vs_default_baseline",
              "first_call_s", "spread"])
    if "render" in args.parts:
        common = ["--notes", str(args.notes), "--device", args.device, "--threads", str(args.threads),
                  "--batch-size", str(args.batch_size)]
        variants = (("fp32", "eager"), ("bf16", "eager"), ("bf16", "compile"))  # generate.py's precision, compile
        rows = [in_child("--one", model, precision, compiled, *common) for model in MODELS
                for precision, compiled in variants]
        report = dict(machine_record(args.device, args.threads), piece_seconds=PIECE_SECONDS, rows=rows)
        save(args.output, report, ["model", "precision", "compile", "notes", "ms_per_note", "notes_per_second",
                                   "real_time_factor", "peak_rss_mib"])
    if "breakdown" in args.parts:
        name = "render_breakdown.json" if cpu else "render_breakdown_gpu.json"
        save(RESULTS / name, run_breakdown(args.notes, args.batch_size, args.device, args.threads),
             ["model", "precision", "batch_size", "generator_ms", "decode_ms", "decode_and_copy_ms", "generate_ms",
              "notes_per_second"])
    if "memory" in args.parts and cpu:
        rows = [in_child("--memory-one", str(minutes), mode, "--threads", str(args.threads))
                for minutes in args.minutes for mode in ("streamed", "in memory")]
        report = dict(machine_record("cpu", args.threads), model="paper", rows=rows)
        save(RESULTS / "render_memory.json", report, ["minutes", "mode", "notes", "wall_seconds", "mix_float32_mib",
                                                      "rss_before_render_mib", "peak_rss_mib", "growth_mib"])


if __name__ == "__main__":
    main()

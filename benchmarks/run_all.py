"""Run every benchmark script, then write BENCHMARKS.md from all JSON in benchmarks/results/.

Each script runs in its own process (they set thread counts and read peak RSS per process).
``--quick`` passes each one smaller settings so the whole CPU run takes minutes; ``--device cuda``
runs the scripts that take a device on the GPU and writes their GPU file names (CPU-only
benchmarks are skipped there, so a GPU run never overwrites CPU results). CPU and GPU results of
one benchmark end up side by side in the same table.

    python benchmarks/run_all.py [--quick] [--device cpu|cuda] [--only train render] [--report-only]
"""

from __future__ import annotations

import argparse
import ast
import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
REPORT = ROOT / "BENCHMARKS.md"


# the training levers, each timed against the shipped paper config in one run
TRAIN_LEVERS = ["paper", "paper:model.channels_last=false", "paper:model.loss.gp_autocast=true",
                "fork:model.loss.gp_autocast=true"]
# name -> script, its arguments on each device (no "cuda": CPU only), extra arguments with --quick
SCRIPTS = {
    "codec": dict(script="bench_codec.py",
                  args={"cpu": ["--device", "cpu"], "cuda": ["--device", "cuda", "--out", str(RESULTS / "codec_cuda.json")]},
                  quick={"cpu": ["--min-seconds", "0.3", "--rounds", "1"], "cuda": ["--min-seconds", "0.3", "--rounds", "1"]}),
    "data": dict(script="bench_data.py", args={"cpu": []}, quick={"cpu": ["--repeats", "1"]}),
    "attention": dict(script="bench_attention.py",
                      args={"cpu": ["--device", "cpu"],
                            "cuda": ["--device", "cuda", "--output", str(RESULTS / "attention_cuda.json")]},
                      quick={"cpu": ["--repeats", "1"]}),
    "render": dict(script="bench_render.py",
                   args={"cpu": ["--device", "cpu"], "cuda": ["--device", "cuda", "--output", str(RESULTS / "render_gpu.json")]},
                   quick={"cpu": ["--notes", "8", "--lever-notes", "8", "--rounds", "1", "--minutes", "2"]}),
    "train": dict(script="bench_train.py", args={"cpu": ["--device", "cpu"], "cuda": ["--device", "cuda"]},
                  quick={"cpu": ["--iters", "1", "--stages", "0", "2", "4"]}),
    "train_levers": dict(script="bench_train.py",
                         args={"cpu": ["--device", "cpu", "--stages", "8", "12", "--configs", *TRAIN_LEVERS,
                                       "--output", str(RESULTS / "train_levers.json")]},
                         quick={"cpu": ["--iters", "1", "--stages", "4"]}),
    "train_allocator": dict(script="bench_train.py",
                            args={"cpu": ["--device", "cpu", "--stages", "8", "12", "--configs", "paper",
                                          "--precisions", "bf16", "--freed-memory", "returned", "reused",
                                          "--output", str(RESULTS / "train_allocator.json")]},
                            quick={"cpu": ["--iters", "1", "--stages", "4"]}),
    "train_precision": dict(script="bench_train.py",  # issue 12: bf16 against fp32 at every stage, one process
                            args={"cpu": ["--device", "cpu", "--configs", "paper",
                                          "--output", str(RESULTS / "train_precision.json")]},
                            quick={"cpu": ["--iters", "1", "--stages", "0", "4"]}),
    "double_backward": dict(script="bench_double_backward.py", args={"cpu": []}, quick={"cpu": ["--rounds", "1"]}),
    "train_parts": dict(script="bench_train_parts.py", args={"cpu": ["--steps", "3"]},
                        quick={"cpu": ["--configs", "paper:0", "tiny:8", "--rounds", "2", "--steps", "0"]}),
}
GPU_SUFFIXES = ("_cuda", "_gpu")


def run_scripts(names: list[str], device: str, quick: bool) -> list[str]:
    """Run the chosen scripts one after another; returns the names that failed."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    failed = []
    for name in names:
        spec = SCRIPTS[name]
        if device not in spec["args"]:
            print(f"== {name}: CPU only, skipped on {device}", flush=True)
            continue
        command = [sys.executable, str(HERE / spec["script"]), *spec["args"][device]]
        command += spec["quick"].get(device, []) if quick else []
        print(f"== {name}: {' '.join(command[1:])}", flush=True)
        if subprocess.run(command, cwd=ROOT, env=env).returncode != 0:
            failed.append(name)
    return failed


# ---------------------------------------------------------------- report
def fmt(value) -> str:
    """Three significant figures or so, without scientific notation for the usual ranges."""
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    size = abs(value)
    return f"{value:.0f}" if size >= 100 else f"{value:.1f}" if size >= 10 else f"{value:.2f}" if size >= 0.1 \
        else f"{value:.3g}"


def machine(data: dict, device: str) -> str:
    """What ran it, from whatever the script recorded (some files only know the host architecture)."""
    name, host = data.get("device_name"), data.get("machine")
    if name is None and "runs" in data:  # learning_curve.json: runs from several sessions and machines
        name = "each run's own (the CPU column)"
    parts = [name or f"{device} model not recorded" + (f" (host {host})" if host else "")]
    if data.get("threads"):
        parts.append(f"{data['threads']} threads")
    if data.get("torch"):
        parts.append(f"torch {data['torch']}")
    return ", ".join(parts)


def codec_table(data: dict):
    rows = [((name, "x".join(map(str, r["image_shape"])), product),
             (p["encode_images_per_s"], p["decode_images_per_s"], *r["spectrum_ms_per_batch"].values()))
            for name, r in data["geometries"].items() for product, p in r["products"].items()]
    first = next(iter(data["geometries"].values()))
    spectrum = [f"complex spectrum ms/batch, {way}" for way in first["spectrum_ms_per_batch"]]
    return (f"batch {first['batch']}, best of {data['rounds']} interleaved rounds", ["geometry", "image", "mel product"],
            ["encode img/s", "decode img/s", *spectrum], rows)


def data_table(data: dict):
    rows = [((name, r["notes"]), (r["cold_items_per_s"], r["cached_items_per_s"], r["cached_loader_items_per_s"]))
            for name, r in data["setups"].items()]
    setting = f"batch {data['batch']}, {data['workers']} workers, best of {next(iter(data['setups'].values()))['repeats']}"
    return setting, ["geometry", "notes"], ["cold items/s", "cached items/s", "loader only items/s"], rows


def attention_table(data: dict):
    rows = []
    for r in data["rows"]:
        values = (r["ms"], r["peak_mib"]) if r["status"] == "ok" else ("unsupported", "—")
        rows.append(((r["path"], r["dtype"], r["mode"]), values))
    shape = data["shape"]
    setting = (f"C={shape['channels']}, {shape['height']}x{shape['width']}, batch {shape['batch']}, "
               f"median of {data['repeats']}")
    return setting, ["path", "dtype", "mode"], ["ms", "peak MiB"], rows


def render_table(data: dict):
    rows = [((r["model"], r["precision"], "yes" if r.get("compile") else "no"),
             (r["ms_per_note"], r["notes_per_second"], r["real_time_factor"], r["peak_rss_mib"]))
            for r in data["rows"]]
    first = data["rows"][0]
    setting = f"{first['notes']} notes of a {data['piece_seconds']:g} s piece, batch {first['batch_size']}"
    return setting, ["model", "precision", "compile=true"], ["ms/note", "notes/s", "RTF (wall/audio)",
                                                             "peak RSS MiB"], rows


def render_levers_table(data: dict):
    rows = [((r["lever"], r.get("freed_memory", "returned"), "yes" if r["decode"] else "no"),
             (r["notes_per_second"], r["vs_baseline"], r.get("vs_default_baseline", "—"), r.get("first_call_s", "—"),
              r.get("spread", "—")))
            for r in data["rows"]]
    setting = (f"{data['model']} model, {data['notes']} notes, batch {data['batch_size']}, best of "
               f"{data['rounds']} interleaved rounds, one process per allocator mode; "
               f"bf16 units: {data.get('bf16_units', '—')}")
    return setting, ["lever", "freed memory", "decode included"], \
        ["notes/s", "× its process's baseline", "× glibc-default baseline", "first call s",
         "spread (slowest ÷ fastest round)"], rows


def render_memory_table(data: dict):
    rows = [((r["minutes"], r["mode"]), (r["notes"], r["wall_seconds"], r["mix_float32_mib"],
                                          r["rss_before_render_mib"], r["peak_rss_mib"], r["growth_mib"]))
            for r in data["rows"]]
    return f"{data['model']} model, one timbre, PCM_16 wav", ["minutes", "mode"], \
        ["notes", "wall s", "mix as float32 MiB", "RSS before MiB", "peak RSS MiB", "growth MiB"], rows


def render_breakdown_table(data: dict):
    rows = [((r["model"], r["precision"], r["batch_size"]),
             (r["generator_ms"], r["decode_ms"], r["decode_and_copy_ms"], r["generate_ms"], r["notes_per_second"]))
            for r in data["rows"]]
    return "ms per batch, random weights, one pitch", ["model", "precision", "batch"], \
        ["G ms", "decode ms", "decode + copy to CPU ms", "generate ms", "notes/s"], rows


def conv_speeds(by_layout: dict) -> str:
    """'channels_last fp32 350, bf16 2113; contiguous ...' from {layout: {dtype: {gflop_per_s}}}."""
    return "; ".join(f"{layout} " + ", ".join(f"{p} {by_dtype[p]['gflop_per_s']:.0f}" for p in ("fp32", "bf16")
                                              if p in by_dtype) for layout, by_dtype in by_layout.items())


def train_table(data: dict):
    def setting_of(r):  # what a bf16 row is compared with: the fp32 row of the same setting in the same run
        return r["config"], r.get("layout", "contiguous"), r.get("freed_memory", "returned"), r["stage"]

    fp32 = {setting_of(r): r["images_per_s"] for r in data["rows"] if r["precision"] == "fp32"}
    rows = [((r["config"], r["precision"], r.get("layout", "contiguous"), r.get("freed_memory", "returned"), r["stage"],
              "x".join(map(str, r["resolution"]))),
             (r["images_per_s"], r["ms_per_iter"], r["gflop_per_iter"], r["gflop_per_s"], r.get("reference_gflop_per_s", "—"),
              100 * r["peak_fraction"],
              round(r["images_per_s"] / fp32[setting_of(r)], 2) if r["precision"] == "bf16" and setting_of(r) in fp32
              else "—"))
            for r in data["rows"]]
    peak = data["conv_peak"]
    if "contiguous" not in peak:  # results written before the reference was measured per layout
        peak = {"contiguous": peak}
    setting = (f"batch {data['batch']}, 1 warm-up + {data['iters']} timed iterations; "
               f"conv 3x3 256→256 peak GFLOP/s: {conv_speeds(peak)}")
    if "narrow_conv_peak" in data:
        setting += f"; the 32→32 conv at 128x1024 alone: {conv_speeds(data['narrow_conv_peak'])}"
    return setting, ["config", "precision", "layout", "freed memory", "stage", "resolution"], \
        ["images/s", "ms/iter", "GFLOP/iter", "GFLOP/s", "its process's conv peak GFLOP/s", "% of conv peak",
         "bf16 ÷ fp32 images/s"], rows


def double_backward_table(data: dict):
    rows = [((r["ops"], r["precision"]), (r["ms"], r["speedup"])) for r in data["rows"]]
    height, width = data["shape"]
    setting = f"D's top block at {height}x{width}, batch {data['batch']}, channels_last, best of {data['rounds']} rounds"
    return setting, ["ops", "precision"], ["ms per penalty step", "× PyTorch's (same run)"], rows


def train_parts_table(data: dict):
    rows = []
    for r in data["rows"]:
        before, after = [(name, r[name]) for name in r if isinstance(r[name], dict)]
        for (name, times), speedup, step_speedup in ((before, 1.0, 1.0 if data["steps"] else None),
                                                     (after, r["speedup"], r.get("step_speedup"))):
            rows.append(((r["lever"], r["config"], "x".join(map(str, r["resolution"])), r["timed"], name),
                         (times["ms"], times["median_ms"], speedup, times.get("step_ms"), times.get("step_median_ms"),
                          step_speedup)))
    setting = (f"{data['precision']}, {data['layout']}, freed memory {data['freed_memory']}; best and median of "
               f"{data['rounds']} interleaved rounds of the lever's own pass, {data['steps']} of the whole training step")
    return setting, ["lever", "config", "resolution", "timed", "path"], \
        ["ms", "median", "× before", "step ms", "median", "× before"], rows


def learning_curve_table(data: dict):
    """One row per recorded run: its last measurement (docs/RESULTS.md has the curves)."""
    rows = []
    for name, run in data["runs"].items():
        last = run["records"][-1] if run["records"] else {}
        cpu = run.get("cpu") or f"{data.get('cpu', 'not recorded')} (the first runs' CPU)"
        rows.append(((name, cpu), (run.get("threads"), last.get("images_seen"), last.get("minutes"),
                                   last.get("pitch_accuracy"), last.get("coverage"), last.get("entropy"),
                                   last.get("nearest_real_ratio"))))
    return "each run's last LearningMonitor record, on the CPU it ran on", ["run", "CPU"], \
        ["threads", "images", "minutes", "PA", "coverage", "mix entropy", "nearest-real"], rows


def mel_matrix_table(data: dict):
    rows = []
    for name, geometry in data["geometries"].items():
        rows.append(((name, "(original notes)"), (None, None, None, geometry["original_pa"])))
        rows += [((name, variant), (r["magnitude_snr_db_mean"], r["magnitude_snr_db_min"],
                                    r["magnitude_snr_db_lowest_octave"], r["pa"]))
                 for variant, r in geometry["matrices"].items()]
    notes = next(iter(data["geometries"].values()))["notes"]
    spec = data["notes"]
    setting = (f"{notes} SoundFont notes per geometry (programs {spec['programs']}, "
               f"MIDI {spec['pitch_low']}-{spec['pitch_high']}); SNR of the codec's STFT magnitude")
    return setting, ["geometry", "mel matrix"], \
        ["magnitude SNR dB", "worst note dB", "MIDI 36-47 dB", "pitch accuracy"], rows


TABLES = {"codec": codec_table, "data": data_table, "attention": attention_table, "render": render_table,
          "render_levers": render_levers_table, "render_levers_no_bf16_units": render_levers_table,
          "render_memory": render_memory_table,
          "render_breakdown": render_breakdown_table, "train": train_table, "train_levers": train_table,
          "train_allocator": train_table,
          "train_precision": train_table, "train_no_bf16_units": train_table,
          "double_backward": double_backward_table, "train_parts": train_parts_table,
          "train_parts_adam": train_parts_table,
          "learning_curve": learning_curve_table,
          "mel_matrix": mel_matrix_table}
SOURCES = {"learning_curve": "learning_curve.py", "render_levers": "bench_render.py",
           "render_levers_no_bf16_units": "bench_render.py",
           "render_memory": "bench_render.py", "render_breakdown": "bench_render.py",
           "train_levers": "bench_train.py", "train_allocator": "bench_train.py",
           "train_precision": "bench_train.py", "train_no_bf16_units": "bench_train.py",
           "train_parts_adam": "bench_train_parts.py"}


def device_of(stem: str, data: dict) -> tuple[str, str]:
    """(benchmark name, "CPU" or "GPU") from the file name, checked against a recorded device."""
    base = stem
    for suffix in (*GPU_SUFFIXES, "_cpu"):
        if stem.endswith(suffix):
            base = stem[: -len(suffix)]
    recorded = str(data.get("device") or (data.get("rows") or [{}])[0].get("device", "cpu"))
    gpu = recorded.startswith("cuda") or stem.endswith(GPU_SUFFIXES)
    return base, "GPU" if gpu else "CPU"


def section(name: str, files: dict[str, tuple[Path, dict]]) -> list[str]:
    """One benchmark: what it measures, the machine per device, one table with devices side by side."""
    script = HERE / SOURCES.get(name, f"bench_{name}.py")
    summary = ast.get_docstring(ast.parse(script.read_text())).splitlines()[0] if script.exists() else ""
    lines = [f"## {name}", "", f"`benchmarks/{script.name}`: {summary}", ""]
    devices = sorted(files)  # CPU before GPU
    tables = {}
    for device in devices:
        path, data = files[device]
        setting, keys, values, rows = TABLES[name](data)
        tables[device] = rows
        lines.append(f"- **{device}** (`results/{path.name}`): {machine(data, device)}; {setting}")
    lines.append("")
    heads = [f"{v} {d}" if len(devices) > 1 else v for v in values for d in devices]
    lines += ["| " + " | ".join([*keys, *heads]) + " |", "|" + "---|" * (len(keys) + len(heads))]
    merged: dict[tuple, dict[str, tuple]] = {}
    for device in devices:
        for key, vals in tables[device]:
            merged.setdefault(key, {})[device] = vals
    for key, by_device in merged.items():
        cells = [fmt(by_device[d][i]) if d in by_device else "—" for i in range(len(values)) for d in devices]
        lines.append("| " + " | ".join([*map(str, key), *cells]) + " |")
    return lines + [""]


def write_report(path: Path = REPORT) -> None:
    grouped: dict[str, dict[str, tuple[Path, dict]]] = {}
    unknown = []
    for file in sorted(RESULTS.glob("*.json")):
        data = json.loads(file.read_text())
        name, device = device_of(file.stem, data)
        if name in TABLES:
            grouped.setdefault(name, {})[device] = (file, data)
        else:
            unknown.append(file.name)
    lines = ["# Benchmarks", "",
             f"Generated by `python benchmarks/run_all.py` from `benchmarks/results/*.json` "
             f"({datetime.date.today().isoformat()}); do not edit by hand. How to run: `benchmarks/README.md`.", ""]
    for name in TABLES:
        if name in grouped:
            lines += section(name, grouped[name])
    if unknown:
        lines += ["## Other results", "", "Not summarised: " + ", ".join(f"`{n}`" for n in unknown), ""]
    path.write_text("\n".join(lines))
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--quick", action="store_true", help="smaller settings per script (minutes on 2 cores)")
    parser.add_argument("--only", nargs="+", choices=tuple(SCRIPTS), default=list(SCRIPTS))
    parser.add_argument("--report-only", action="store_true", help="only regenerate BENCHMARKS.md from the JSON")
    args = parser.parse_args()
    failed = [] if args.report_only else run_scripts(args.only, args.device, args.quick)
    write_report()
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()

"""Pictures for the listening report, drawn with matplotlib's object API (no pyplot state, no display).

Spectrograms use matplotlib's own STFT on the channel mean: what a listener hears, not the model's
mel-IF image, so real and generated notes are drawn the same way whatever the codec.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from gansynth.core.files import atomic_write

CURVE_PANELS = (  # (title, metrics.jsonl keys)
    ("losses", ("g_loss", "d_loss")),
    ("pitch accuracy", ("pitch_accuracy",)),
    ("instruments: coverage, mix, category fidelity", ("coverage", "entropy", "category_fidelity")),
)


def spectrograms(clips: Sequence[tuple[str, np.ndarray]], sample_rate: int, columns: int) -> Figure:
    """One panel per (title, audio [ch, n]): time across, frequency up, dB as colour."""
    rows = math.ceil(len(clips) / columns)
    figure = Figure(figsize=(3.2 * columns, 2.4 * rows), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    n_fft = 2 ** int(round(math.log2(sample_rate * 0.032)))  # ~32 ms windows at any rate
    for ax, (title, audio) in zip(axes, clips):
        ax.specgram(audio.mean(0), NFFT=n_fft, Fs=sample_rate, noverlap=3 * n_fft // 4, cmap="magma",
                    vmin=-120, vmax=0)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("s", fontsize=8)
        ax.set_ylabel("Hz", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes[len(clips):]:
        ax.set_axis_off()
    return figure


def training_curves(records: Sequence[Mapping]) -> Figure:
    """metrics.jsonl against images seen: one panel per CURVE_PANELS entry; unrecorded keys are said so."""
    figure = Figure(figsize=(12, 3.2), layout="constrained")
    for ax, (title, keys) in zip(figure.subplots(1, len(CURVE_PANELS)), CURVE_PANELS):
        drawn = False
        for key in keys:
            points = [(r["images_seen"], r[key]) for r in records if r.get(key) is not None]
            if points:
                ax.plot(*zip(*points), marker="o", markersize=3, label=key)
                drawn = True
        if drawn:
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, "not recorded", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(title)
        ax.set_xlabel("images seen")
        ax.grid(alpha=0.3)
    return figure


def save_png(figure: Figure, path: Path) -> Path:
    """Write the figure as a PNG, atomically."""
    with atomic_write(path) as handle:
        figure.savefig(handle, format="png", dpi=80)
    return path

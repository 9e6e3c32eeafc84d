"""Training curves from a run folder (train.csv, val.csv) as one PNG."""

from __future__ import annotations

import csv
from itertools import product
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _rows(path: Path) -> list[dict[str, float]]:
    if not path.exists():
        return []
    with path.open() as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def plot_run(run: Path, out: Path) -> Path:
    """Training loss/bpp/PSNR against step, and validation bpp/PSNR per quality level."""
    train, val, ema = _rows(run / "train.csv"), _rows(run / "val.csv"), _rows(run / "val_ema.csv")
    if not train and not val:
        raise ValueError(f"no train.csv or val.csv in {run}")
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    if train:
        steps = [r["step"] for r in train]
        axes[0].plot(steps, [r["loss"] for r in train])
        axes[0].set(title="training loss", xlabel="step", yscale="log")
    for (source, style, suffix), t in product(((val, "-o", ""), (ema, "--x", ", moving average")),
                                              sorted({r["t"] for r in val + ema})):
        rows = [r for r in source if r["t"] == t]
        if rows:
            for ax, key in ((axes[1], "psnr"), (axes[2], "bpp")):
                ax.plot([r["step"] for r in rows], [r[key] for r in rows], style, label=f"t={t:g}{suffix}")
    axes[1].set(title="validation PSNR (dB)", xlabel="step")
    axes[2].set(title="validation bpp (estimated)", xlabel="step")
    for ax in axes[1:]:
        if val:
            ax.legend()
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out

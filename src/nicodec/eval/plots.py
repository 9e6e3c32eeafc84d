"""Rate-distortion plots (PNG, matplotlib Agg): live curves solid, published anchors dashed."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display; must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from nicodec.eval.bdrate import ms_ssim_db  # noqa: E402
from nicodec.eval.report import TEST_CODEC, Curve  # noqa: E402

# The published curves worth drawing (all of them go into the BD-rate table; 49 lines would not read).
PLOTTED_ANCHORS = ("jpeg", "webp", "jpeg2000", "bpg_444_x265_ycbcr", "av1", "vtm",
                   "compressai-bmshj2018-hyperprior_mse_cuda", "compressai-mbt2018-mean_mse_cuda",
                   "compressai-cheng2020-anchor_mse_cuda", "paper-elic2022_mse")
MAX_BPP = 2.0
YLABEL = {"psnr": "PSNR-RGB (dB)", "ms_ssim": "MS-SSIM (dB) = −10·log10(1 − MS-SSIM)"}


def _y(curve: Curve, metric: str) -> np.ndarray:
    return np.asarray(curve.psnr, float) if metric == "psnr" else ms_ssim_db(curve.ms_ssim)


def plot_rd(path: Path, metric: str, live: list[Curve], anchors: list[Curve], title: str) -> Path:
    """Quality vs bpp up to MAX_BPP, where the interesting range (0.1..1.5 bpp) is readable."""
    fig, ax = plt.subplots(figsize=(11, 6.5), dpi=110)
    ax.set_prop_cycle(color=plt.cm.tab20.colors)  # 20 distinct colours: live and published never share
    shown = []
    for curve in [c for c in anchors if c.name in PLOTTED_ANCHORS] + live:
        x, y = np.asarray(curve.bpp, float), _y(curve, metric)
        keep = np.isfinite(y)
        if not keep.any():
            continue
        is_test, is_live = curve.name == TEST_CODEC, curve.source == "live"
        ax.plot(x[keep], y[keep], "-" if is_live else "--", marker="o" if is_live else None,
                lw=2.6 if is_test else 1.3, ms=3.5, color="black" if is_test else None,
                zorder=3 if is_test else 2,
                label=curve.label + ("" if is_live else " (published)"))
        shown.append(y[keep][x[keep] <= MAX_BPP])
    ax.set_xlim(0, MAX_BPP)
    ys = np.concatenate(shown) if shown else np.array([])
    if ys.size:
        ax.set_ylim(ys.min() - 0.5, ys.max() + 0.5)
    ax.set_xlabel("bits per pixel (real file size)")
    ax.set_ylabel(YLABEL[metric])
    ax.set_title(f"{title}: {YLABEL[metric].split(' (')[0]} vs rate")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path

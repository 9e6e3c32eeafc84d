"""Bjøntegaard delta rate with PCHIP interpolation (the project's convention, see anchors README).

Written out rather than imported: it is a dozen lines over scipy, and the convention (log-rate as
a PCHIP function of quality, integrated exactly over the overlapping quality range) is then visible.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.interpolate import PchipInterpolator


def _log_rate_curve(rate: Sequence[float], quality: Sequence[float]) -> PchipInterpolator:
    r, d = np.asarray(rate, dtype=np.float64), np.asarray(quality, dtype=np.float64)
    keep = np.isfinite(r) & np.isfinite(d) & (r > 0)
    d, log_r = d[keep], np.log(r[keep])
    order = np.argsort(d, kind="stable")
    d, log_r = d[order], log_r[order]
    unique = np.concatenate([[True], np.diff(d) > 0])  # PCHIP needs strictly increasing x
    if unique.sum() < 2:
        raise ValueError("a curve needs at least two distinct quality values")
    return PchipInterpolator(d[unique], log_r[unique])


def bd_rate(anchor_rate: Sequence[float], anchor_quality: Sequence[float],
            test_rate: Sequence[float], test_quality: Sequence[float]) -> float:
    """Average rate difference of test vs anchor at equal quality, in percent (negative = fewer bits).

    NaN when the quality ranges do not overlap.
    """
    a = _log_rate_curve(anchor_rate, anchor_quality)
    t = _log_rate_curve(test_rate, test_quality)
    lo, hi = max(a.x[0], t.x[0]), min(a.x[-1], t.x[-1])
    if hi <= lo:
        return math.nan
    mean_diff = (t.integrate(lo, hi) - a.integrate(lo, hi)) / (hi - lo)
    return float((math.exp(mean_diff) - 1.0) * 100.0)


def ms_ssim_db(values: Sequence[float]) -> np.ndarray:
    """MS-SSIM as -10 log10(1 - MS-SSIM): spreads the high end, where codecs differ, for BD and plots."""
    v = np.asarray(values, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return -10.0 * np.log10(1.0 - v)

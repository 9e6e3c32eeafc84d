"""Integer probability tables, computed once at export and shipped with the weights.

A table is a row of integer counts over the symbols -offset..offset plus one escape symbol at
the end (for values outside the range, coded separately). Because tables are integers stored
in the weights file, encoder and decoder on any machine build identical models from them.
"""

from __future__ import annotations

import numpy as np

TOTAL = 1 << 16  # counts per table; every symbol gets at least one
SCALE_MIN, SCALE_MAX, SCALE_LEVELS = 0.11, 256.0, 64
TAIL_SIGMAS = 6.0


def quantize_pmf(pmf: np.ndarray) -> np.ndarray:
    """Float probabilities (last entry: escape) -> integer counts >= 1 summing to TOTAL."""
    pmf = np.maximum(pmf, 0) / pmf.sum()
    counts = np.maximum(1, np.round(pmf * (TOTAL - len(pmf)))).astype(np.int64)
    counts[np.argmax(counts)] += TOTAL - counts.sum()  # absorb the rounding drift in the mode
    return counts


def gaussian_scales() -> np.ndarray:
    """The scale ladder: SCALE_LEVELS log-spaced standard deviations."""
    return np.exp(np.linspace(np.log(SCALE_MIN), np.log(SCALE_MAX), SCALE_LEVELS))


def pack(rows: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Ragged count rows -> (padded [K, max_len] int32 array, lengths int32)."""
    lengths = np.array([len(r) for r in rows], dtype=np.int32)
    out = np.zeros((len(rows), lengths.max()), dtype=np.int32)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out, lengths


def gaussian_tables(scales: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Counts of the integers around a zero-mean Gaussian for every scale, plus escape (at export
    only: scipy is in the `train` extra)."""
    from scipy.special import ndtr

    rows = []
    for s in scales:
        offset = int(np.ceil(TAIL_SIGMAS * s)) + 1
        k = np.arange(-offset, offset + 1, dtype=np.float64)
        pmf = ndtr((k + 0.5) / s) - ndtr((k - 0.5) / s)
        rows.append(quantize_pmf(np.append(pmf, max(0.0, 1.0 - pmf.sum()))))
    return pack(rows)


def scale_thresholds(scales: np.ndarray, frac_bits: int) -> np.ndarray:
    """Integer decision thresholds (fixed point, `frac_bits`) between neighbouring scales."""
    mids = np.sqrt(scales[:-1] * scales[1:])
    return np.round(mids * (1 << frac_bits)).astype(np.int64)


def density_tables(pmf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel float pmfs [C, 2R+1] (from a learned density) -> integer tables with escape."""
    rows = [quantize_pmf(np.append(p, max(0.0, 1.0 - p.sum()))) for p in pmf]
    return pack(rows)

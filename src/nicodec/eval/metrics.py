"""Reconstruction metrics on 8-bit RGB arrays (H x W x 3 uint8)."""

from __future__ import annotations

import math

import numpy as np
import torch


def mse(a: np.ndarray, b: np.ndarray) -> float:
    """Mean squared error in 8-bit units over all pixels and channels."""
    return float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))


def psnr_rgb(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR over RGB jointly (peak 255); identical images give inf."""
    e = mse(a, b)
    return math.inf if e == 0 else 10 * math.log10(255.0**2 / e)


def ms_ssim_rgb(a: np.ndarray, b: np.ndarray) -> float:
    """MS-SSIM (pytorch-msssim, data range 255, 5 scales); NaN below 161 px, too small for it."""
    from pytorch_msssim import ms_ssim  # the `eval` extra; PSNR needs none (rate control uses it)

    if min(a.shape[:2]) <= 160:
        return math.nan
    ta = torch.from_numpy(a.astype(np.float32)).permute(2, 0, 1)[None]
    tb = torch.from_numpy(b.astype(np.float32)).permute(2, 0, 1)[None]
    return float(ms_ssim(ta, tb, data_range=255.0))


def bpp(num_bytes: int, width: int, height: int) -> float:
    return 8.0 * num_bytes / (width * height)

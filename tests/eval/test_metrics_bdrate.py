"""Metrics and BD-rate against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nicodec.eval.bdrate import bd_rate, ms_ssim_db
from nicodec.eval.metrics import bpp, ms_ssim_rgb, mse, psnr_rgb

ANCHOR_BPP = [0.25, 0.5, 1.0, 2.0]
ANCHOR_PSNR = [29.0, 32.5, 35.0, 38.5]


def test_mse_and_psnr_of_2x2_images():
    a = np.zeros((2, 2, 3), np.uint8)
    b = a.copy()
    b[0, 0, 0] = 4  # one error of 4 over 12 values: MSE 16/12
    assert mse(a, b) == pytest.approx(4 / 3)
    assert psnr_rgb(a, b) == pytest.approx(10 * math.log10(255**2 * 3 / 4))
    assert psnr_rgb(a, a) == math.inf
    c = np.full((2, 2, 3), 255, np.uint8)
    assert psnr_rgb(a, c) == pytest.approx(0.0)


def test_bpp_and_ms_ssim():
    assert bpp(1000, 100, 80) == pytest.approx(1.0)
    x = np.random.default_rng(0).integers(0, 256, (192, 192, 3), dtype=np.uint8)
    assert ms_ssim_rgb(x, x) == pytest.approx(1.0)
    assert math.isnan(ms_ssim_rgb(x[:100, :100], x[:100, :100]))
    assert ms_ssim_db([0.9, 0.99]) == pytest.approx([10.0, 20.0])


@pytest.mark.parametrize(("factor", "expected"), [(0.8, -20.0), (1.25, 25.0), (1.0, 0.0)])
def test_bd_rate_of_a_constant_rate_factor(factor, expected):
    test_bpp = [b * factor for b in ANCHOR_BPP]
    assert bd_rate(ANCHOR_BPP, ANCHOR_PSNR, test_bpp, ANCHOR_PSNR) == pytest.approx(expected, abs=1e-9)


def test_bd_rate_uses_only_the_overlap_and_any_point_order():
    # log-rate linear in PSNR (PCHIP reproduces it exactly): a partial, unsorted test curve at 0.8x
    # the rate covers 33..39 dB only and is still exactly -20 %
    anchor_bpp, anchor_psnr = [0.25, 0.5, 1.0, 2.0], [30.0, 33.0, 36.0, 39.0]
    rate, psnr = [0.8 * b for b in anchor_bpp[:0:-1]], anchor_psnr[:0:-1]
    assert bd_rate(anchor_bpp, anchor_psnr, rate, psnr) == pytest.approx(-20.0)
    assert math.isnan(bd_rate(anchor_bpp, anchor_psnr, [0.1, 0.2], [20.0, 22.0]))
    with pytest.raises(ValueError):
        bd_rate(anchor_bpp, anchor_psnr, [0.1], [30.0])

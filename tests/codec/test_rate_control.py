"""Rate control: `max_bytes` gives the highest quality that fits, `min_psnr` the lowest that reaches
its PSNR; both identical to a direct encode at the quality found."""

from __future__ import annotations

import numpy as np
import pytest

from nicodec import compress, decompress
from nicodec.codec.api import info
from nicodec.eval.metrics import psnr_rgb


def test_highest_quality_that_fits(crop):
    budget = len(compress(crop, quality=50)) + 40
    data = compress(crop, max_bytes=budget)
    chosen = info(data)["quality"]
    assert len(data) <= budget and chosen >= 50
    assert chosen == 100 or len(compress(crop, quality=chosen + 1)) > budget
    assert data == compress(crop, quality=chosen)  # the search encodes exactly like -q


def test_impossible_budget_is_a_clear_error(crop):
    with pytest.raises(ValueError, match="cannot fit in 100 bytes"):
        compress(crop, max_bytes=100)


def _psnr(crop, data: bytes) -> float:
    return psnr_rgb(np.asarray(crop), np.asarray(decompress(data)))


def test_min_psnr_gives_the_smallest_file_that_reaches_it(crop):
    target = _psnr(crop, compress(crop, quality=60)) - 0.1  # a target some quality near 60 just meets
    data = compress(crop, min_psnr=target)
    chosen = info(data)["quality"]
    assert _psnr(crop, data) >= target and chosen <= 60
    assert _psnr(crop, compress(crop, quality=chosen - 1)) < target  # one lower misses it
    assert data == compress(crop, quality=chosen)


def test_unreachable_psnr_and_two_targets_are_clear_errors(crop):
    with pytest.raises(ValueError, match=r"cannot reach 80 dB \(quality 100 gives \d\d\.\d\d\)"):
        compress(crop, min_psnr=80)
    with pytest.raises(ValueError, match="not both"):
        compress(crop, max_bytes=5000, min_psnr=30)

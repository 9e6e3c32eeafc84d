"""Rate control: `max_bytes` gives the highest quality that fits, identical to a direct encode."""

from __future__ import annotations

import pytest

from nicodec import compress
from nicodec.codec.api import info


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

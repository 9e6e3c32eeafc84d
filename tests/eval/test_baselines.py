"""Every baseline codec round-trips a real image crop at a mid setting."""

from __future__ import annotations

import numpy as np
import pytest

from nicodec.eval.baselines import baselines, nicodec_codec
from nicodec.eval.metrics import psnr_rgb


@pytest.mark.parametrize("name", list(baselines()))
def test_round_trip_keeps_the_size(name, crop_array):
    codec = baselines()[name]
    value = codec.values[len(codec.values) // 2]
    data = codec.encode(crop_array, value, 1)
    decoded = codec.decode(data, 1)
    assert decoded.shape == crop_array.shape and decoded.dtype == np.uint8
    assert 0 < len(data) < crop_array.nbytes * 2
    assert psnr_rgb(crop_array, decoded) > 25  # every setting used here is a usable picture
    if codec.lossless and name != "gif":
        assert np.array_equal(decoded, crop_array)


def test_cache_ids_differ_per_codec_and_settings():
    ids = [c.cache_id for c in baselines().values()]
    assert len(set(ids)) == len(ids)


def test_nicodec_effort_is_its_own_cached_codec(crop_array, monkeypatch):
    from nicodec.codec import refine

    monkeypatch.setitem(refine.EFFORT_ITERATIONS, 2, 2)
    plain, slow = nicodec_codec(), nicodec_codec(effort=2)
    assert slow.cache_id != plain.cache_id and "effort 2: 2 iterations" in slow.settings
    monkeypatch.setitem(refine.EFFORT_ITERATIONS, 2, 3)
    assert nicodec_codec(effort=2).cache_id != slow.cache_id  # other settings, other cached points
    data = slow.encode(crop_array, 50, 1)
    assert slow.decode(data, 1).shape == crop_array.shape

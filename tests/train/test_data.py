"""The crop cache: training crops larger than the step's crop give random offsets; validation keeps
its own fixed size."""

from __future__ import annotations

import numpy as np

from nicodec.train.data import CropCache, sample_batch


def test_larger_cached_crops_give_offsets_and_validation_keeps_its_size(tiny_folder, tmp_path):
    cache = CropCache.build(tiny_folder, tmp_path / "cache", size=96, per_image=1, val_every=3,
                            val_size=64)
    assert cache.train.shape[1:] == (96, 96, 3) and cache.val.shape[1:] == (64, 64, 3)
    one = cache.train[:1]
    rng = np.random.default_rng(0)
    batches = [sample_batch(one, 1, 64, rng)[0] for _ in range(20)]
    distinct = {b.tobytes() for b in batches}
    assert len(distinct) > 10  # offsets and symmetries, not one fixed crop
    # every sample is a window of the cached crop under one of the 8 symmetries of the square
    src = one[0].astype(np.float32) / 255.0
    windows = {src[y : y + 64, x : x + 64].transpose(2, 0, 1).tobytes()
               for y in range(33) for x in range(33)}

    def views(b: np.ndarray) -> list[np.ndarray]:
        flips = [b, b[:, :, ::-1], b[:, ::-1], b[:, ::-1, ::-1]]
        return flips + [f.transpose(0, 2, 1) for f in flips]

    matched = [[v.tobytes() in windows for v in views(b)] for b in batches]
    assert all(any(m) for m in matched)
    assert any(m[0] for m in matched) and any(not any(m[:4]) for m in matched)  # some transposed


def test_a_new_validation_size_recuts_the_cache(tiny_folder, tmp_path):
    CropCache.build(tiny_folder, tmp_path / "cache", size=64, per_image=1, val_every=3, val_size=64)
    again = CropCache.build(tiny_folder, tmp_path / "cache", size=64, per_image=1, val_every=3,
                            val_size=128)
    assert again.val.shape[1:] == (128, 128, 3)

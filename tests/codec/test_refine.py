"""Encoder-side latent refinement (effort 2 and 3): cheaper files that the same decoder reads."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from nicodec.codec import api, latent, refine
from nicodec.codec import image as imaging
from nicodec.models.base import rounded
from nicodec.models.pretrained import load_model


@pytest.fixture(scope="module")
def shipped():
    return load_model()


def real_cost(model, data: bytes, reference: np.ndarray) -> float:
    """The codec's own rate-distortion cost of a file: bits per pixel + lambda * 255^2 * MSE."""
    decoded = np.asarray(api.decompress(data, model=model)).astype(np.float64)
    h, w = reference.shape[:2]
    assert decoded.shape == reference.shape
    mse = ((decoded - reference) ** 2).mean() / 255**2
    t = latent.quality_level(model, api.info(data)["quality"])
    return 8 * len(data) / (h * w) + model.net.lam(t).item() * 255**2 * mse


def test_refined_files_cost_less_and_decode(shipped, crop, crop_array):
    torch.manual_seed(0)  # effort 2 at its real iteration count: fewer can end at the plain file's cost
    plain, refined = api.compress(crop, 50, model=shipped), api.compress(crop, 50, model=shipped, effort=2)
    assert refined != plain
    assert real_cost(shipped, refined, crop_array) < real_cost(shipped, plain, crop_array)


def test_refinement_never_worsens_the_model_estimate(shipped, crop_array):
    x = imaging.to_tensor(crop_array, 64)
    h, w = crop_array.shape[:2]
    mask = torch.zeros_like(x[:, :1])
    mask[..., :h, :w] = 1
    t = latent.quality_level(shipped, 20)
    with torch.no_grad():
        before = refine._objective(shipped.net, shipped.net.analyse(x, t), x, mask, t, rounded).item()
        torch.manual_seed(0)
        y = refine.refine(shipped.net, x, h, w, t, iterations=3)
        after = refine._objective(shipped.net, y, x, mask, t, rounded).item()
    assert after <= before and math.isfinite(after)


def test_tiles_and_padding(shipped, monkeypatch, train_dir):
    """An image of several refinement tiles, not a multiple of 64 pixels: the tiles stitch into
    the analysis transform's latent, and a refined file decodes to the image's size."""
    monkeypatch.setattr(refine, "TILE", 4)  # 64-pixel tiles: this image is 2 x 3 of them
    monkeypatch.setitem(refine.EFFORT_ITERATIONS, 2, 3)
    with Image.open(sorted(train_dir.glob("*.png"))[0]) as im:
        img = im.convert("RGB").crop((0, 0, 150, 100))
    x = imaging.to_tensor(np.asarray(img), 64)
    t = latent.quality_level(shipped, 75)
    with torch.no_grad():
        stitched = refine.refine(shipped.net, x, 100, 150, t, iterations=0)
        whole = shipped.net.analyse(x, t)
    assert stitched.shape == whole.shape == (1, whole.shape[1], 8, 12)
    assert (stitched - whole).abs().max().item() < 1e-3
    out = api.decompress(api.compress(img, 75, model=shipped, effort=2), model=shipped)
    assert out.size == (150, 100)


def test_effort_must_be_a_known_level(shipped, crop):
    with pytest.raises(ValueError, match="effort"):
        api.compress(crop, 50, model=shipped, effort=4)


def test_a_size_target_holds_with_refinement(shipped, crop, monkeypatch):
    monkeypatch.setitem(refine.EFFORT_ITERATIONS, 2, 3)
    plain = api.compress(crop, 60, model=shipped)
    data = api.compress(crop, model=shipped, max_bytes=len(plain), effort=2)
    assert len(data) <= len(plain) and api.info(data)["quality"] >= 60

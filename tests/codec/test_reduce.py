"""`decompress(data, reduce=r)`: a thumbnail from the exactly decoded latent and a synthesis stopped
at 1/r resolution (`models.draft`), close to the full decode box-downscaled."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from nicodec import compress, decompress
from nicodec.bitstream import container
from nicodec.bitstream.container import FormatError
from nicodec.codec import backend, latent, tiling
from nicodec.eval.metrics import psnr_rgb
from nicodec.models.pretrained import load_model
from tests.codec.test_backend import Recording
from tests.conftest import kodak_crop, with_threads

# Measured on this crop at q25/75/90 (dB against the full decode box-downscaled): checkerboard
# 34.4-35.6 (1/2), 35.0-35.2 (1/4), 37.2-37.7 (1/8); fast 35.2-35.3, 32.8-33.1, 30.4-32.3.
FLOOR = {"checkerboard": 31.0, "fast": 27.0}


@pytest.fixture(scope="module")
def coded(crop) -> dict[str, bytes]:
    return {name: compress(crop, 75, model=name) for name in FLOOR}


@pytest.mark.parametrize("name", FLOOR)
def test_a_reduced_decode_is_the_full_decode_downscaled(coded, name):
    full = decompress(coded[name])
    for r in (2, 4, 8):
        small = decompress(coded[name], reduce=r)
        assert small.size == (192 // r, 128 // r) and small.mode == "RGB"
        assert psnr_rgb(np.asarray(full.reduce(r)), np.asarray(small)) >= FLOOR[name], r


def test_sizes_round_up():
    image = kodak_crop(23, (300, 100, 401, 167))  # 101 x 67
    data = compress(image, 50, model="fast")
    for r, size in ((1, (101, 67)), (2, (51, 34)), (4, (26, 17)), (8, (13, 9))):
        assert decompress(data, reduce=r).size == size


def test_the_latent_is_decoded_exactly_as_for_a_full_decode(coded):
    """Only the synthesis stops early: the backend is handed the same latent."""
    spy = Recording(backend.named("torch"))
    decompress(coded["checkerboard"], reduce=4, backend=spy)
    decompress(coded["checkerboard"], backend=spy)
    assert torch.equal(*spy.latents)


def test_threads_and_tiles_do_not_change_pixels(monkeypatch):
    """In tiles of 16 reduced pixels (a margin on every side of each), 1 and 2 threads give the same
    pixels, within a value of a single tile's (float summation order)."""
    image = kodak_crop(5, (0, 0, 384, 256))
    data = compress(image, 60)
    whole = np.asarray(decompress(data, reduce=2)).astype(int)
    monkeypatch.setattr(tiling, "SYNTHESIS_TILE", 32)
    one = with_threads(1, decompress, data, reduce=2)
    two = with_threads(2, decompress, data, reduce=2)
    assert np.array_equal(np.asarray(one), np.asarray(two))
    assert np.abs(np.asarray(one).astype(int) - whole).max() <= 1


def test_bad_factors_are_refused_before_decoding(coded, monkeypatch):
    monkeypatch.setattr(latent, "decode_latents", lambda *_: pytest.fail("decoded"))
    for bad in (0, 3, 16, 2.5):
        with pytest.raises(ValueError, match="reduce must be one of 1, 2, 4, 8"):
            decompress(coded["fast"], reduce=bad)


def test_a_model_without_read_outs_is_a_clear_error(crop, monkeypatch):
    """Not a FormatError: the file is fine, this model cannot decode it small."""
    data = compress(crop, 50, model="hyperprior")
    monkeypatch.setattr(latent, "decode_latents", lambda *_: pytest.fail("decoded"))
    with pytest.raises(ValueError, match="no reduced decode at 1/2") as err:
        decompress(data, reduce=2)
    assert not isinstance(err.value, FormatError)


def test_alpha_and_grayscale_are_reduced_too(crop):
    rgba = crop.convert("RGBA")
    alpha = np.tile(np.linspace(0, 255, 192).astype(np.uint8), (128, 1))
    alpha[:40, :50] = 0
    rgba.putalpha(Image.fromarray(alpha))
    small = decompress(compress(rgba, 60, model="fast"), reduce=4)
    assert small.mode == "RGBA" and small.size == (48, 32)
    assert np.array_equal(np.asarray(small)[:, :, 3], np.asarray(Image.fromarray(alpha).reduce(4)))
    gray = decompress(compress(crop.convert("LA"), 60, model="fast"), reduce=8)
    assert gray.mode == "LA" and gray.size == (24, 16)


def test_the_header_limit_still_applies(coded):
    header, _ = container.unpack(coded["fast"])
    with pytest.raises(FormatError, match="too large"):
        decompress(coded["fast"], reduce=8, max_pixels=header.width * header.height - 1)


def test_a_model_object_decodes_small_too(coded):
    model = load_model("fast")
    assert np.array_equal(np.asarray(decompress(coded["fast"], model=model, reduce=2)),
                          np.asarray(decompress(coded["fast"], reduce=2)))

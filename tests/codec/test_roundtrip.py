"""Round trips through the shipped model: sizes, modes, quality monotonicity."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from nicodec import compress, decompress
from nicodec.codec.image import DroppedWarning
from nicodec.eval.metrics import psnr_rgb
from tests.conftest import kodak_crop


@pytest.mark.parametrize("quality", [10, 50, 95])
def test_roundtrip_keeps_size_and_mode(crop, quality):
    data = compress(crop, quality=quality)
    out = decompress(data)
    assert out.size == crop.size and out.mode == "RGB"
    assert psnr_rgb(np.asarray(crop), np.asarray(out)) > 18


def test_rate_and_quality_increase_with_quality():
    img = kodak_crop(19, (200, 300, 456, 556))  # 256x256 of a different image
    ref = np.asarray(img)
    sizes, psnrs = [], []
    for q in (5, 25, 50, 75, 95):
        data = compress(img, quality=q)
        sizes.append(len(data))
        psnrs.append(psnr_rgb(ref, np.asarray(decompress(data))))
    assert sizes == sorted(sizes) and len(set(sizes)) == len(sizes), sizes
    assert psnrs == sorted(psnrs), psnrs


@pytest.mark.parametrize("size", [(1, 1), (3, 2000), (17, 513), (65, 64)])
def test_odd_sizes_roundtrip_exactly(size):
    w, h = size
    full = np.asarray(kodak_crop(5, (0, 0, 768, 512)))
    arr = np.resize(full, (h, w, 3)).astype(np.uint8)
    out = decompress(compress(arr, quality=50))
    assert out.size == (w, h)


def test_grayscale_decodes_as_grayscale(crop):
    gray = crop.convert("L")
    out = decompress(compress(gray, quality=75))
    assert out.mode == "L" and out.size == gray.size
    assert psnr_rgb(np.asarray(gray)[..., None], np.asarray(out)[..., None]) > 20


def test_rgba_keeps_alpha_losslessly(crop_array):
    h, w = crop_array.shape[:2]
    alpha = (np.arange(h * w).reshape(h, w) % 251).astype(np.uint8)
    rgba = np.dstack([crop_array, alpha])
    out = decompress(compress(rgba, quality=60))
    assert out.mode == "RGBA"
    assert np.array_equal(np.asarray(out)[..., 3], alpha)


def test_palette_and_16bit_inputs(crop):
    pal = crop.quantize(64)
    assert decompress(compress(pal, quality=50)).mode == "RGB"
    arr16 = (np.asarray(crop).astype(np.uint16) * 257)
    with pytest.warns(DroppedWarning, match="16-bit input rounded to 8 bits"):
        data = compress(arr16, quality=50)
    from nicodec.codec.api import info

    assert info(data)["bit_depth"] == 16
    assert decompress(data).size == crop.size


def test_exif_orientation_is_applied(crop):
    buf = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW on display
    crop.save(buf, format="JPEG", exif=exif, quality=95)
    img = Image.open(io.BytesIO(buf.getvalue()))
    out = decompress(compress(img, quality=50))
    assert out.size == (crop.height, crop.width)


def test_bad_quality_is_rejected(crop):
    for q in (0, 101, 2.5):
        with pytest.raises(ValueError, match="quality"):
            compress(crop, quality=q)


def test_animation_keeps_its_first_frame_and_says_so():
    frames = [kodak_crop(i, (0, 0, 64, 64)) for i in (5, 6)]
    buf = io.BytesIO()
    frames[0].save(buf, format="WEBP", save_all=True, append_images=frames[1:], lossless=True)
    with pytest.warns(DroppedWarning, match="first of its 2 frames"):
        data = compress(Image.open(buf), quality=90)
    decoded = np.asarray(decompress(data).convert("RGB"), dtype=np.float64)  # animated WebP: RGBA
    errors = [np.mean((decoded - np.asarray(f, dtype=np.float64)) ** 2) for f in frames]
    assert errors[0] < errors[1] / 4  # the first frame, not the second


def test_16bit_rgb_png_is_said_to_be_read_as_8_bits(crop):
    import imagecodecs

    from nicodec.codec.image import open_image

    deep = imagecodecs.png_encode(np.asarray(crop).astype(np.uint16) * 257)  # Pillow reads RGB;16 as RGB
    with pytest.warns(DroppedWarning, match="16-bit input read as 8 bits"):
        image = open_image(deep)
    assert image.mode == "RGB" and np.array_equal(np.asarray(image), np.asarray(crop))

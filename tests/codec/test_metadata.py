"""ICC profile, EXIF and XMP survive compress/decompress (and saving), like libjxl and cwebp keep them."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageOps, PngImagePlugin

from nicodec import compress, decompress, info
from nicodec.codec.image import save_options
from nicodec.eval.metrics import psnr_rgb
from tests.conftest import EXIF_DATE, EXIF_IFD, EXIF_MAKE, EXIF_MODEL, EXIF_ORIENTATION, XMP, srgb_icc


def _exif(data: bytes) -> Image.Exif:
    exif = Image.Exif()
    exif.load(data)
    return exif


def icc_of(image_bytes: bytes) -> bytes:
    return Image.open(io.BytesIO(image_bytes)).info["icc_profile"]


def _kinds(nic: bytes) -> set[str]:
    return {s["kind"] for s in info(nic)["sections"]}


def test_phone_photo_keeps_profile_and_exif_and_is_rotated_once(tagged, crop):
    nic = compress(Image.open(io.BytesIO(tagged)), quality=75)
    assert {"icc", "exif", "xmp"} <= _kinds(nic)
    out = decompress(nic)
    assert out.info["icc_profile"] == icc_of(tagged)
    exif = _exif(out.info["exif"])
    assert exif[EXIF_MAKE] == "nicodec" and exif[EXIF_MODEL] == "Test Phone 1"
    assert exif.get_ifd(EXIF_IFD)[EXIF_DATE] == "2024:05:06 07:08:09"
    assert exif.get(EXIF_ORIENTATION, 1) == 1
    assert b"tiff:Make" in out.info["xmp"] and b"Orientation" not in out.info["xmp"]
    # Rotated exactly once, 90 degrees clockwise as Orientation 6 says; a viewer adds no rotation.
    assert out.size == (crop.height, crop.width)
    assert psnr_rgb(np.asarray(crop.transpose(Image.Transpose.ROTATE_270)), np.asarray(out)) > 25
    assert ImageOps.exif_transpose(out).size == out.size


def test_strip_and_arrays_carry_no_metadata(tagged, crop):
    img = Image.open(io.BytesIO(tagged))
    kept, stripped = compress(img, quality=50), compress(img, quality=50, metadata=False)
    assert not _kinds(stripped) & {"icc", "exif", "xmp"}
    assert len(stripped) + len(icc_of(tagged)) < len(kept)
    assert not decompress(stripped).info
    assert not decompress(compress(np.asarray(crop), quality=50)).info


def test_rate_control_counts_the_metadata(tagged):
    img = Image.open(io.BytesIO(tagged))
    budget = len(compress(img, quality=50))
    data = compress(img, max_bytes=budget)
    assert len(data) <= budget and data == compress(img, quality=info(data)["quality"])
    stripped = compress(img, max_bytes=budget, metadata=False)
    assert info(stripped)["quality"] > info(data)["quality"]  # the profile's bytes went to pixels


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_metadata_from_png_and_webp(crop, fmt):
    exif = Image.Exif()
    exif[EXIF_MAKE], exif[EXIF_ORIENTATION] = "nicodec", 1  # upright, yet the tag goes all the same
    xmp = XMP.replace(b' tiff:Orientation="6"', b"")  # (an XMP orientation would be applied too)
    icc = srgb_icc()
    options = {"icc_profile": icc, "exif": exif}
    if fmt == "PNG":  # XMP in a tEXt chunk, as exiftool writes it
        options["pnginfo"] = PngImagePlugin.PngInfo()
        options["pnginfo"].add_text("XML:com.adobe.xmp", xmp.decode())
    else:
        options.update(xmp=xmp, lossless=True)
    buf = io.BytesIO()
    crop.save(buf, format=fmt, **options)
    out = decompress(compress(Image.open(buf), quality=50))
    assert out.info["icc_profile"] == icc and _exif(out.info["exif"])[EXIF_MAKE] == "nicodec"
    assert out.info["exif"].startswith(b"Exif\0\0")  # as JPEG's writer needs it (WebP omits it)
    assert EXIF_ORIENTATION not in _exif(out.info["exif"])
    assert out.info["xmp"] == xmp and out.size == crop.size


def test_a_profile_for_other_pixels_is_dropped(crop):
    buf = io.BytesIO()
    crop.convert("L").save(buf, format="PNG", icc_profile=srgb_icc())  # an RGB profile on gray pixels
    out = decompress(compress(Image.open(buf), quality=50))
    assert out.mode == "L" and "icc_profile" not in out.info


@pytest.mark.parametrize("fmt,kept", [("PNG", {"icc_profile", "exif", "xmp"}),
                                      ("WEBP", {"icc_profile", "exif", "xmp"}),
                                      ("JPEG", {"icc_profile", "exif", "xmp"}),
                                      ("TIFF", {"icc_profile", "exif"}), ("BMP", set())])
def test_decoded_image_saves_its_metadata(tagged, fmt, kept):
    out = decompress(compress(Image.open(io.BytesIO(tagged)), quality=50))
    buf = io.BytesIO()
    out.save(buf, format=fmt, **save_options(out, fmt))
    saved = Image.open(buf)
    assert (saved.info.get("icc_profile") == icc_of(tagged)) == ("icc_profile" in kept)
    assert (saved.getexif().get(EXIF_MAKE) == "nicodec") == ("exif" in kept)
    assert (b"tiff:Make" in saved.info.get("xmp", b"")) == ("xmp" in kept)
    assert saved.getexif().get(EXIF_ORIENTATION, 1) == 1

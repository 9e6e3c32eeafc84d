"""A file's preview (`compress(preview=True)`, `codec.preview`): the image at 1/8 of its size, which
`decompress(reduce=8)` decodes without a model; the rest of the file is unchanged."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from nicodec import compress, decompress, info
from nicodec.bitstream import container
from nicodec.bitstream.container import FormatError, Kind, Section
from nicodec.eval.metrics import psnr_rgb
from tests.conftest import kodak_crop

# kodim23's 192x128 crop at q75 (measured): its preview (195 bytes, 13 % of this tiny file) is 30.3 dB
# from the full decode box-downscaled (the read-out's thumbnail: 37.7 dB) and 30.3 dB from the original
# box-downscaled.
FLOOR_DB = 27.0


@pytest.fixture(scope="module")
def pair(crop) -> tuple[bytes, bytes]:
    return compress(crop, 75), compress(crop, 75, preview=True)


def _kinds(data: bytes) -> list[str]:
    return [s["kind"] for s in info(data)["sections"]]


def test_the_preview_is_one_more_section(pair):
    plain, shown = pair
    header, sections = container.unpack(shown)
    assert _kinds(shown) == [*_kinds(plain), "preview"]
    assert container.pack(header, [s for s in sections if s.kind != Kind.PREVIEW]) == plain
    assert np.array_equal(np.asarray(decompress(shown)), np.asarray(decompress(plain)))


def test_reduce_8_decodes_the_preview(pair, crop):
    plain, shown = pair
    thumb = decompress(shown, reduce=8)
    assert thumb.size == (24, 16) and thumb.mode == "RGB"
    stored = Image.open(io.BytesIO(container.unpack(shown)[1][-1].data))
    assert stored.format == "WEBP" and np.array_equal(np.asarray(thumb), np.asarray(stored.convert("RGB")))
    assert psnr_rgb(np.asarray(decompress(plain).reduce(8)), np.asarray(thumb)) > FLOOR_DB
    assert psnr_rgb(np.asarray(crop.reduce(8)), np.asarray(thumb)) > FLOOR_DB
    assert decompress(shown, reduce=4).size == decompress(plain, reduce=4).size == (48, 32)  # read-outs


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA"])
def test_the_preview_keeps_the_mode_and_alpha(mode):
    image = kodak_crop(3, (0, 0, 136, 72)).convert(mode)  # 136 / 8 = 17: sizes that round up
    if "A" in mode:
        image.putalpha(Image.linear_gradient("L").resize(image.size))
    thumb = decompress(compress(image, 60, preview=True), reduce=8)
    assert thumb.mode == mode and thumb.size == (17, 9)
    if "A" in mode:  # alpha is coded losslessly, then box-downscaled
        assert np.array_equal(np.asarray(thumb.getchannel("A")), np.asarray(image.getchannel("A").reduce(8)))


def test_rate_control_counts_the_preview(crop):
    data = compress(crop, max_bytes=2500, preview=True)
    assert len(data) <= 2500 and "preview" in _kinds(data)


def _with_preview(data: bytes, payload: bytes) -> bytes:
    header, sections = container.unpack(data)
    return container.pack(header, [s for s in sections if s.kind != Kind.PREVIEW]
                          + [Section(Kind.PREVIEW, payload)])


def _webp(size: tuple[int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 10, 10)).save(buf, format="WEBP")
    return buf.getvalue()


@pytest.mark.parametrize("payload, message", [
    (b"not an image", "not a readable WebP image"),
    (_webp((25, 16)), "RGB 25x16 WebP, not 24x16"),
    (_webp((24, 16))[:40], "not a readable WebP image"),
])
def test_a_bad_preview_is_a_one_line_error(pair, payload, message):
    bad = _with_preview(pair[1], payload)
    with pytest.raises(FormatError, match=message):
        decompress(bad, reduce=8)
    assert np.array_equal(np.asarray(decompress(bad)), np.asarray(decompress(pair[0])))  # still decodes


def test_a_preview_over_the_pixel_limit_is_refused(pair):
    with pytest.raises(FormatError, match="preview too large"):
        decompress(pair[1], reduce=8, max_pixels=300)

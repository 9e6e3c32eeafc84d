"""The Pillow plugin opens and saves .nic like any other format."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

import nicodec
import nicodec.plugins.pillow  # noqa: F401  (registers the format)
from nicodec.bitstream.container import FormatError
from nicodec.eval.metrics import psnr_rgb
from nicodec.models.pretrained import load_model
from tests.conftest import EXIF_MAKE, kodak_crop


def test_save_and_open(crop, tmp_path):
    path = tmp_path / "x.nic"
    crop.save(path, quality=80)
    with Image.open(path) as im:
        assert im.format == "NIC" and im.size == crop.size and im.info["quality"] == 80
        pixels = np.asarray(im.convert("RGB"))
    assert psnr_rgb(np.asarray(crop), pixels) > 20


def test_save_with_a_model(crop, tmp_path):
    path = tmp_path / "x.nic"
    crop.save(path, quality=75, model="fast")
    assert path.read_bytes() == nicodec.compress(crop, 75, model="fast")
    with Image.open(path) as im:  # the file names its model: opening needs no name
        assert im.info["model_id"] == load_model("fast").model_id
        pixels = np.asarray(im.convert("RGB"))
    assert pixels.shape == np.asarray(crop).shape
    assert np.array_equal(pixels, np.asarray(nicodec.decompress(path.read_bytes(), model="fast")))


def test_save_with_effort(crop, monkeypatch):
    from nicodec.codec import api, refine

    monkeypatch.setitem(refine.EFFORT_ITERATIONS, 3, 2)
    efforts = []

    def compress(*args, **kwargs):
        efforts.append(kwargs["effort"])
        return api.compress(*args, **kwargs)

    monkeypatch.setattr(nicodec.plugins.pillow, "compress", compress)
    slow = io.BytesIO()
    crop.save(slow, format="NIC", quality=60, effort=3)
    assert efforts == [3]
    slow.seek(0)
    with Image.open(slow) as im:
        assert im.size == crop.size and im.info["quality"] == 60


def test_save_to_a_size(crop):
    buf = io.BytesIO()
    crop.save(buf, format="NIC", max_bytes=2000)
    assert len(buf.getvalue()) <= 2000
    buf.seek(0)
    with Image.open(buf) as im:
        assert im.info["quality"] > 1


def test_grayscale_and_buffers(crop):
    buf = io.BytesIO()
    crop.convert("L").save(buf, format="NIC", quality=40)
    buf.seek(0)
    with Image.open(buf) as im:
        assert im.mode == "L"
        im.load()


def test_damaged_file_is_rejected(crop):
    buf = io.BytesIO()
    crop.save(buf, format="NIC")
    with pytest.raises(FormatError):
        Image.open(io.BytesIO(buf.getvalue()[:-10]))


def test_metadata_is_saved_and_shown_before_decoding(tagged):
    photo = Image.open(io.BytesIO(tagged))
    kept, bare = io.BytesIO(), io.BytesIO()
    photo.save(kept, format="NIC", quality=50)
    photo.save(bare, format="NIC", quality=50, metadata=False)
    with Image.open(kept) as im:
        assert im.info["icc_profile"] == photo.info["icc_profile"] and "xmp" in im.info
        assert im.getexif()[EXIF_MAKE] == "nicodec"  # all before load(): no pixels decoded yet
        im.load()
        assert im.size == (128, 192) and "icc_profile" in im.info
    with Image.open(bare) as im:
        assert not {"icc_profile", "exif", "xmp"} & im.info.keys()


def test_save_with_a_target_psnr(crop):
    buf = io.BytesIO()
    crop.save(buf, format="NIC", min_psnr=31.0)
    with Image.open(io.BytesIO(buf.getvalue())) as im:
        assert psnr_rgb(np.asarray(crop), np.asarray(im.convert("RGB"))) >= 31.0
        chosen = im.info["quality"]
    lower = io.BytesIO()
    crop.save(lower, format="NIC", quality=chosen - 1)
    assert psnr_rgb(np.asarray(crop), np.asarray(Image.open(lower).convert("RGB"))) < 31.0


def test_register_nic_opener_as_pillow_heif_users_know(crop, tmp_path):
    Image.OPEN.pop("NIC")  # as if never registered
    Image.SAVE.pop("NIC")
    with pytest.raises(KeyError):
        crop.save(tmp_path / "x.nic")
    nicodec.register_nic_opener()
    crop.save(tmp_path / "x.nic", quality=40)
    with Image.open(tmp_path / "x.nic") as im:
        assert im.format == "NIC" and im.size == crop.size


@pytest.fixture(scope="module")
def wide() -> bytes:
    """A 384x256 Kodak crop (lighthouse) as a .nic file of the default model."""
    return nicodec.compress(kodak_crop(19, (100, 200, 484, 456)), 75)


def _reductions(monkeypatch) -> list[int]:
    """The `reduce` of every decode the plugin runs from now on."""
    seen = []

    def decompress(data, **kwargs):
        seen.append(kwargs.get("reduce", 1))
        return nicodec.decompress(data, **kwargs)

    monkeypatch.setattr(nicodec.plugins.pillow, "decompress", decompress)
    return seen


@pytest.mark.parametrize("size, reduce", [((48, 32), 8), ((50, 32), 4), ((100, 70), 2), ((96, 65), 2),
                                          ((200, 100), 1), ((1000, 1000), 1), (None, 1)])
def test_draft_picks_the_largest_reduction_still_as_large(wide, monkeypatch, size, reduce):
    """As Pillow's JPEG plugin: ceil(384 / r) x ceil(256 / r) with r the largest of 1, 2, 4, 8
    dividing both sides down to at least `size`; the box is the original image's in the reduced
    one; `load()` decodes at r, exactly `decompress(data, reduce=r)`."""
    seen = _reductions(monkeypatch)
    with Image.open(io.BytesIO(wide)) as im:
        assert im.draft("RGB", size) == ("RGB", (0, 0, 384 / reduce, 256 / reduce))
        assert im.size == (384 // reduce, 256 // reduce)
        assert im.draft("RGB", (10, 10)) is None  # once only, as JPEG
        pixels = np.asarray(im)
    assert seen == [reduce]
    assert np.array_equal(pixels, np.asarray(nicodec.decompress(wide, reduce=reduce)))


def test_thumbnail_decodes_small(wide, monkeypatch):
    """`Image.thumbnail` asks `draft` for twice its size (Pillow's reducing_gap), then resizes what
    was decoded: close to the thumbnail of the full decode."""
    seen = _reductions(monkeypatch)
    with Image.open(io.BytesIO(wide)) as im:
        im.thumbnail((48, 32))  # draft(None, (96, 64)): 1/4
        assert im.size == (48, 32) and seen == [4]
        small = np.asarray(im)
    full = nicodec.decompress(wide)
    full.thumbnail((48, 32))
    assert psnr_rgb(np.asarray(full), small) > 35  # measured 41.5


def test_draft_after_load_changes_nothing(wide):
    with Image.open(io.BytesIO(wide)) as im:
        im.load()
        assert im.draft("RGB", (48, 32)) is None and im.size == (384, 256)


def test_draft_of_odd_sizes_and_alpha(crop):
    """101 x 67 with alpha: the alpha plane is box-downscaled to the reduced size, rounded up."""
    image = crop.crop((0, 0, 101, 67)).convert("RGBA")
    alpha = np.full((67, 101), 255, np.uint8)
    alpha[10:30, 20:70] = 0
    image.putalpha(Image.fromarray(alpha))
    buf = io.BytesIO()
    image.save(buf, format="NIC", quality=60, model="fast")
    with Image.open(buf) as im:
        assert im.draft(None, (20, 12)) == ("RGBA", (0, 0, 101 / 4, 67 / 4))
        assert im.size == (26, 17) and im.mode == "RGBA"
        assert np.array_equal(np.asarray(im)[:, :, 3], np.asarray(Image.fromarray(alpha).reduce(4)))


def test_draft_of_a_model_without_read_outs_decodes_whole(crop, monkeypatch):
    seen = _reductions(monkeypatch)
    buf = io.BytesIO()
    crop.save(buf, format="NIC", quality=50, model="hyperprior")
    with Image.open(buf) as im:
        assert im.draft("RGB", (24, 16)) == ("RGB", (0, 0, 192, 128))
        im.thumbnail((24, 16))
        assert im.size == (24, 16) and seen == [1]


def test_thumbnail_of_a_file_with_a_preview_decodes_the_preview(monkeypatch):
    """A file saved with `preview=True`: a draft at 1/8 is its preview, decoded without the model."""
    seen = _reductions(monkeypatch)
    buf = io.BytesIO()
    kodak_crop(19, (100, 200, 484, 456)).save(buf, format="NIC", quality=75, preview=True)
    with Image.open(buf) as im:
        im.thumbnail((24, 16))  # draft(None, (48, 32)): 1/8
        assert im.size == (24, 16) and seen == [8]
    with Image.open(buf) as im:
        assert im.draft("RGB", (48, 32)) == ("RGB", (0, 0, 48, 32))
        assert np.array_equal(np.asarray(im), np.asarray(nicodec.decompress(buf.getvalue(), reduce=8)))

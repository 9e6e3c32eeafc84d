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
from tests.conftest import EXIF_MAKE


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

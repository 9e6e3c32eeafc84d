"""Shared fixtures: real images from the shared data sets (small crops keep tests fast)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageCms

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("NICODEC_SHARED", REPO.parent / "shared"))
KODAK = SHARED / "data" / "kodak"
TRAIN = SHARED / "data" / "train"


@pytest.fixture(scope="session")
def kodak_dir() -> Path:
    if not KODAK.is_dir():
        pytest.fail(f"shared data not found at {KODAK} (set NICODEC_SHARED)")
    return KODAK


@pytest.fixture(scope="session")
def train_dir() -> Path:
    return TRAIN


def kodak_crop(index: int, box: tuple[int, int, int, int]) -> Image.Image:
    with Image.open(KODAK / f"kodim{index:02d}.png") as im:
        return im.convert("RGB").crop(box)


@pytest.fixture(scope="session")
def crop() -> Image.Image:
    """A 192x128 detailed crop of kodim23 (parrots)."""
    return kodak_crop(23, (256, 128, 448, 256))


@pytest.fixture(scope="session")
def crop_array(crop: Image.Image) -> np.ndarray:
    return np.asarray(crop)


def with_threads(n: int, fn, *args, **kwargs):
    """fn(*args, **kwargs) with torch limited to n threads."""
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        return fn(*args, **kwargs)
    finally:
        torch.set_num_threads(old)


def srgb_icc() -> bytes:
    """A real ICC profile (LittleCMS's built-in sRGB), as cameras and phones embed one. It records
    its creation time, so compare with the bytes an image was made with, not a fresh call."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


EXIF_MAKE, EXIF_MODEL, EXIF_ORIENTATION, EXIF_IFD, EXIF_DATE = 0x010F, 0x0110, 0x0112, 0x8769, 0x9003
XMP = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-'
       b'syntax-ns#"><rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Make="nicodec" '
       b'tiff:Orientation="6"/></rdf:RDF></x:xmpmeta>')


def tagged_jpeg(image: Image.Image) -> bytes:
    """`image` as a phone stores a portrait photo: JPEG pixels in sensor order with EXIF Orientation 6
    (display rotated 90 degrees clockwise), Make/Model/DateTimeOriginal, an sRGB ICC profile and XMP."""
    exif = Image.Exif()
    exif[EXIF_MAKE], exif[EXIF_MODEL], exif[EXIF_ORIENTATION] = "nicodec", "Test Phone 1", 6
    exif.get_ifd(EXIF_IFD)[EXIF_DATE] = "2024:05:06 07:08:09"
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=95, exif=exif, icc_profile=srgb_icc(), xmp=XMP)
    return buf.getvalue()


@pytest.fixture(scope="session")
def tagged(crop) -> bytes:
    """The parrots crop as a tagged phone JPEG (see `tagged_jpeg`)."""
    return tagged_jpeg(crop)


def optional_modules() -> set[str]:
    """The top-level modules of every extra in pyproject.toml (what a core install lacks)."""
    import re
    import tomllib

    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    names = {re.match(r"[\w.-]+", req)[0] for reqs in extras.values() for req in reqs}
    return {name.lower().replace("-", "_") for name in names} - {"nicodec"}


# Run in a fresh interpreter: makes every optional package unimportable, as in a core-only install.
BLOCK_OPTIONAL = """
import importlib.abc, sys
class _Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
sys.meta_path.insert(0, _Block())
"""

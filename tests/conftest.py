"""Shared fixtures: real images from the shared data sets (small crops keep tests fast)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

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


def with_threads(n: int, fn, *args):
    """fn(*args) with torch limited to n threads."""
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        return fn(*args)
    finally:
        torch.set_num_threads(old)

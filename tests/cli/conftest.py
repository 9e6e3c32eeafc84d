"""Fixtures of the CLI tests: a small real image and its .nic."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from nicodec import compress
from tests.conftest import REPO

SAMPLE = REPO / "src" / "nicodec" / "assets" / "sample.png"


@pytest.fixture(scope="module")
def small_png(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "small.png"
    with Image.open(SAMPLE) as im:
        im.crop((100, 50, 229, 150)).save(path)
    return path


@pytest.fixture(scope="module")
def small_nic(small_png) -> bytes:
    return compress(Image.open(small_png), quality=50)

"""A tiny training folder (small crops of real training photos, one broken file)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from nicodec.train.config import TrainConfig
from tests.conftest import TRAIN

TINY_MODEL = {"N": 16, "M": 16}


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tiny_train")
    names = sorted(p for p in TRAIN.glob("*.png"))[:6]
    for i, path in enumerate(names):
        with Image.open(path) as im:
            im.convert("RGB").crop((0, 0, 96, 80 if i == 0 else 96)).save(folder / path.name)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nthis is not a png")
    return folder


@pytest.fixture
def tiny_config(tiny_folder, tmp_path):
    def make(**overrides) -> TrainConfig:
        values = dict(data=str(tiny_folder), out=str(tmp_path / "run"), cache=str(tmp_path / "cache"),
                      model_config=TINY_MODEL, crop=64, cache_crop=64, val_crop=64, crops_per_image=2,
                      batch=2, lr=1e-3, precision="fp32", compile=False, threads=1, validate_steps=0,
                      log_steps=2, progress=False, val_every_nth_file=3)
        values.update(overrides)
        return TrainConfig.load(None, **values)
    return make

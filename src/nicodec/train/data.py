"""Training data: decode the image folder once into a uint8 memory-mapped crop cache.

Decoding PNGs every step would eat a large share of 2 cores; random sub-crops and flips of a
pre-cut cache cost almost nothing. A small, name-hashed share of the folder is held out for
validation (never Kodak).
"""

from __future__ import annotations

import json
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".ppm"}


def list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def is_validation(path: Path, every: int) -> bool:
    """Deterministic hold-out: about 1/every of the files, chosen by a hash of the name."""
    return every > 0 and zlib.crc32(path.name.encode()) % every == 0


def _pad_to(img: np.ndarray, size: int) -> np.ndarray:
    """Mirror-pad images smaller than the crop rather than dropping them."""
    h, w = img.shape[:2]
    return np.pad(img, ((0, max(0, size - h)), (0, max(0, size - w)), (0, 0)), mode="reflect")


def _crops(img: np.ndarray, size: int, count: int, rng: np.random.Generator) -> list[np.ndarray]:
    img = _pad_to(img, size)
    h, w = img.shape[:2]
    out = []
    for _ in range(count):
        y, x = rng.integers(0, h - size + 1), rng.integers(0, w - size + 1)
        out.append(img[y : y + size, x : x + size])
    return out


def _center(img: np.ndarray, size: int) -> np.ndarray:
    img = _pad_to(img, size)
    y, x = (img.shape[0] - size) // 2, (img.shape[1] - size) // 2
    return img[y : y + size, x : x + size]


@dataclass
class CropCache:
    """Uint8 crops [N, S, S, 3] on disk, plus validation crops."""

    train: np.ndarray
    val: np.ndarray

    @classmethod
    def build(cls, folder: Path, cache_dir: Path, size: int = 256, per_image: int = 4,
              val_every: int = 50, seed: int = 0, val_size: int = 256) -> CropCache:
        """Cut the cache if it is missing or was cut from other settings, then open it.

        Validation crops have their own size, so a cache of larger training crops (which gives
        the sampler room for random offsets) still validates on the same pixels as before.
        """
        cache_dir.mkdir(parents=True, exist_ok=True)
        files = list_images(folder)
        meta = {"folder": str(folder.resolve()), "files": len(files), "size": size,
                "per_image": per_image, "val_every": val_every, "seed": seed, "val_size": val_size}
        meta_path = cache_dir / "meta.json"
        if not meta_path.exists() or json.loads(meta_path.read_text()) != meta:
            cls._cut(files, cache_dir, meta)
            meta_path.write_text(json.dumps(meta))
        return cls.open(cache_dir)

    @classmethod
    def open(cls, cache_dir: Path) -> CropCache:
        return cls(np.load(cache_dir / "train.npy", mmap_mode="r"),
                   np.load(cache_dir / "val.npy", mmap_mode="r"))

    @staticmethod
    def _cut(files: list[Path], cache_dir: Path, meta: dict) -> None:
        rng = np.random.default_rng(meta["seed"])
        size, train, val, skipped = meta["size"], [], [], []
        for path in files:
            try:
                with Image.open(path) as im:
                    img = np.asarray(im.convert("RGB"))
            except (OSError, ValueError) as err:
                skipped.append(path.name)
                print(f"nicodec train: skipping unreadable image {path}: {err}", file=sys.stderr)
                continue
            if is_validation(path, meta["val_every"]):
                val.append(_center(img, meta["val_size"]))
            else:
                train.extend(_crops(img, size, meta["per_image"], rng))
        if not train:
            raise ValueError(f"no readable training images in {meta['folder']}")
        if not val:  # tiny folders: validate on a training crop rather than not at all
            val.append(train[0])
        np.save(cache_dir / "train.npy", np.stack(train))
        np.save(cache_dir / "val.npy", np.stack(val))
        (cache_dir / "skipped.txt").write_text("\n".join(skipped))


def draw_views(count: int, crops: int, cache_size: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """`count` random views of a crop cache, [count, 4] int64 rows (crop, row, column, symmetry):
    a sub-crop's place and one of the square's 8 symmetries (bits: flip columns, flip rows,
    transpose), as in super-resolution training on small sets.

    The training folder is small (843 images of ~0.12 megapixels), so every view of it the
    network has not memorized is worth having; a convolutional codec has no preferred axis.
    """
    out = np.empty((count, 4), dtype=np.int64)
    out[:, 0] = rng.integers(0, crops, count)
    for i in range(count):
        out[i, 1:3] = rng.integers(0, cache_size - size + 1, 2)
        out[i, 3] = sum(bit for bit in (1, 2, 4) if rng.random() < 0.5)
    return out


def views(crops: np.ndarray, drawn: np.ndarray, size: int) -> np.ndarray:
    """The views `drawn` (`draw_views`) as float32 NCHW in [0, 1]."""
    out = np.empty((len(drawn), size, size, 3), dtype=np.uint8)
    for i, (k, y, x, symmetry) in enumerate(drawn):
        c = crops[k, y : y + size, x : x + size]
        if symmetry & 1:
            c = c[:, ::-1]
        if symmetry & 2:
            c = c[::-1]
        if symmetry & 4:
            c = c.transpose(1, 0, 2)
        out[i] = c
    return out.transpose(0, 3, 1, 2).astype(np.float32) / 255.0


def sample_batch(crops: np.ndarray, batch: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """A batch of random views (`draw_views`), as float32 NCHW in [0, 1]."""
    return views(crops, draw_views(batch, crops.shape[0], crops.shape[1], size, rng), size)

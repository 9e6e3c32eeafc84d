"""Run codecs over a folder of images and measure every (image, codec, setting) point, with a cache.

Each point is measured once per image content, codec build/settings and (for nicodec) model_id, then
served from a JSON file under the cache directory, so a re-run only computes what changed.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from nicodec.eval.baselines import Codec
from nicodec.eval.metrics import bpp, ms_ssim_rgb, mse, psnr_rgb
from nicodec.storage.folder import in_shard

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".ppm", ".pgm", ".bmp", ".tif", ".tiff", ".webp"}
CACHE_VERSION = 1  # bump when the measured fields change


def list_images(folder: Path, limit: int | None = None, shard: tuple[int, int] = (0, 1)) -> list[Path]:
    """The first `limit` images of the folder, then those in `shard` (k, N) by name hash, so N
    processes or machines sharing a cache can split a slow evaluation without talking."""
    if not folder.is_dir():
        raise FileNotFoundError(f"no such folder: {folder}")
    images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise ValueError(f"no images in {folder}")
    images = [p for p in images[: limit or None] if in_shard(Path(p.name), shard)]
    if not images:
        raise ValueError(f"no images of {folder} in shard {shard[0]}/{shard[1]}")
    return images


def load_rgb(path: Path) -> np.ndarray:
    """8-bit RGB (alpha dropped): every codec is compared on the same three channels."""
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def content_hash(rgb: np.ndarray) -> str:
    """Hash of the pixels and shape, so renamed or re-saved files still hit the cache."""
    h = hashlib.sha256(f"{rgb.shape}".encode())
    h.update(np.ascontiguousarray(rgb).tobytes())
    return h.hexdigest()[:24]


class PointCache:
    """One JSON file per point: <root>/<codec.cache_id>/<image hash>/<setting>.json."""

    def __init__(self, root: Path):
        self.root = root

    def _path(self, codec: Codec, image_hash: str, value: float) -> Path:
        return self.root / f"v{CACHE_VERSION}" / codec.cache_id / image_hash / f"{value:g}.json"

    def get(self, codec: Codec, image_hash: str, value: float) -> dict | None:
        path = self._path(codec, image_hash, value)
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return None

    def put(self, codec: Codec, image_hash: str, value: float, point: dict) -> None:
        path = self._path(codec, image_hash, value)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part")
        tmp.write_text(json.dumps(point))  # json writes inf/nan as Infinity/NaN and reads them back
        tmp.replace(path)


def measure(codec: Codec, rgb: np.ndarray, value: float, threads: int = 1) -> dict:
    """Encode, decode and score one image at one setting; bpp and ratios from the real file size."""
    start = time.perf_counter()
    data = codec.encode(rgb, value, threads)
    encode_s = time.perf_counter() - start
    start = time.perf_counter()
    decoded = codec.decode(data, threads)
    decode_s = time.perf_counter() - start
    if decoded.shape != rgb.shape:
        raise ValueError(f"{codec.name} decoded {decoded.shape}, expected {rgb.shape}")
    h, w = rgb.shape[:2]
    raw = w * h * 3
    return {
        "codec": codec.name, "setting": value, "width": w, "height": h, "bytes": len(data),
        "bpp": bpp(len(data), w, h), "ratio_compressed_to_raw": len(data) / raw,
        "ratio_raw_to_compressed": raw / len(data), "mse": mse(rgb, decoded),
        "psnr": psnr_rgb(rgb, decoded), "ms_ssim": ms_ssim_rgb(rgb, decoded),
        "encode_s": encode_s, "decode_s": decode_s,
    }


def evaluate(images: list[Path], codecs: Iterable[Codec], cache: PointCache | None,
             threads: int = 1, progress: bool = True) -> tuple[list[dict], int]:
    """All points for all images, codecs and settings; also returns how many came from the cache."""
    codecs = list(codecs)
    total = len(images) * sum(len(c.values) for c in codecs)
    points, hits = [], 0
    with tqdm(total=total, desc="eval", unit="pt", disable=not progress) as bar:
        for path in images:
            rgb = load_rgb(path)
            digest = content_hash(rgb)
            for codec in codecs:
                for value in codec.values:
                    bar.set_postfix_str(f"{path.name} {codec.name} {value:g}", refresh=False)
                    point = cache.get(codec, digest, value) if cache else None
                    if point is None:
                        point = measure(codec, rgb, value, threads)
                        if cache:
                            cache.put(codec, digest, value, point)
                    else:
                        hits += 1
                    points.append({"image": path.name, **point, "codec": codec.name})  # cache: shared
                    bar.update()
    return points, hits


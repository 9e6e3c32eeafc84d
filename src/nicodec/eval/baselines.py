"""Every codec the evaluation runs, nicodec and the baselines, behind one small interface.

One table (`BASELINES`) describes the baselines as data, so the runner, the speed benchmark and
`nicodec compare` never special-case a codec, and the report can print exactly which library
version and which fixed settings produced each curve.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import imagecodecs
import numpy as np
import PIL
from PIL import AvifImagePlugin, Image, features

Encoder = Callable[[np.ndarray, float, int], bytes]  # (rgb uint8 HxWx3, setting, threads) -> file bytes
Decoder = Callable[[bytes, int], np.ndarray]  # (file bytes, threads) -> rgb uint8 HxWx3


@dataclass(frozen=True)
class Codec:
    """A codec at fixed settings, swept over one knob (`values` of `knob`)."""

    name: str  # command-line / cache / table id, e.g. "jpeg-420"
    family: str  # display name, e.g. "JPEG"
    library: str  # library and version actually linked
    settings: str  # the fixed settings, human readable
    knob: str  # what `values` are: "quality", "ratio", or "-" for lossless
    values: tuple[float, ...]
    encode: Encoder
    decode: Decoder
    lossless: bool = False
    search: tuple[int, int] | None = None  # integer knob range for size matching (compare)
    cache_tag: str = ""  # overrides the settings digest in the cache key (nicodec: model_id)

    @property
    def cache_id(self) -> str:
        """Changes whenever the library version or settings change, so stale cache entries are never hit."""
        tag = self.cache_tag or hashlib.sha256(f"{self.library}|{self.settings}".encode()).hexdigest()[:12]
        return f"{self.name.split(':')[0]}-{tag}"  # "nicodec:MODEL" shares nicodec's points (tag: model id)


def _pillow(fmt: str, params: Callable[[float, int], dict]) -> Encoder:
    def encode(rgb: np.ndarray, value: float, threads: int) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, format=fmt, **params(value, threads))
        return buf.getvalue()

    return encode


def _pillow_decode(data: bytes, threads: int) -> np.ndarray:
    # Pillow reads the AVIF decoder's thread count only from this module global.
    AvifImagePlugin.DEFAULT_MAX_THREADS = threads
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


def _jxl_encode(rgb: np.ndarray, value: float, threads: int) -> bytes:
    return bytes(imagecodecs.jpegxl_encode(rgb, level=value, numthreads=threads))


def _jxl_decode(data: bytes, threads: int) -> np.ndarray:
    return imagecodecs.jpegxl_decode(data, numthreads=threads)


def _avif_library() -> str:
    from PIL import _avif

    return f"libavif {features.version('avif')} + {_avif.codec_versions()} (Pillow {PIL.__version__})"


LOSSY_QUALITIES = (5, 10, 15, 20, 30, 40, 50, 60, 70, 80, 90, 95)
AVIF_QUALITIES = (10, 20, 30, 40, 50, 60, 70, 80, 90)
J2K_RATIOS = (192, 128, 96, 64, 48, 32, 24, 16, 12, 8)  # raw 24 bpp / ratio = 0.125 .. 3 bpp


@cache
def baselines() -> dict[str, Codec]:
    """The live baseline codecs by name (built lazily: it queries library versions)."""
    pil = f"Pillow {PIL.__version__}"
    jpeg = f"libjpeg-turbo {features.version('libjpeg_turbo')} ({pil})"
    webp = f"libwebp {features.version('webp')} ({pil})"
    table = [
        Codec("jpeg-420", "JPEG 4:2:0", jpeg, "subsampling 4:2:0, optimized Huffman", "quality",
              LOSSY_QUALITIES, _pillow("JPEG", lambda q, t: {"quality": int(q), "subsampling": 2,
                                                            "optimize": True}),
              _pillow_decode, search=(1, 100)),
        Codec("jpeg-444", "JPEG 4:4:4", jpeg, "subsampling 4:4:4, optimized Huffman", "quality",
              LOSSY_QUALITIES, _pillow("JPEG", lambda q, t: {"quality": int(q), "subsampling": 0,
                                                            "optimize": True}),
              _pillow_decode, search=(1, 100)),
        Codec("webp", "WebP", webp, "lossy, method 6 (slowest, best)", "quality", LOSSY_QUALITIES,
              _pillow("WEBP", lambda q, t: {"quality": int(q), "method": 6}), _pillow_decode,
              search=(0, 100)),
        Codec("avif", "AVIF", _avif_library(), "Pillow defaults: 4:2:0, speed 6, aom default tune",
              "quality", AVIF_QUALITIES,
              _pillow("AVIF", lambda q, t: {"quality": int(q), "max_threads": t}), _pillow_decode,
              search=(0, 100)),
        Codec("avif-444-psnr", "AVIF 4:4:4 tune=psnr", _avif_library(),
              "4:4:4, speed 6, aom tune=psnr", "quality", AVIF_QUALITIES,
              _pillow("AVIF", lambda q, t: {"quality": int(q), "subsampling": "4:4:4",
                                            "advanced": {"tune": "psnr"}, "max_threads": t}),
              _pillow_decode, search=(0, 100)),
        Codec("jxl", "JPEG XL", f"{imagecodecs.jpegxl_version()} (imagecodecs "
              f"{imagecodecs.__version__})", "effort 7 (default), level = quality", "quality",
              LOSSY_QUALITIES, _jxl_encode, _jxl_decode, search=(1, 100)),
        Codec("jpeg2000", "JPEG 2000", f"OpenJPEG {features.version('jpg_2000')} ({pil})",
              "irreversible 9/7 wavelet, colour transform (mct), one layer at a compression ratio",
              "ratio", J2K_RATIOS,
              _pillow("JPEG2000", lambda r, t: {"quality_mode": "rates", "quality_layers": [r],
                                                "irreversible": True, "mct": 1}),
              _pillow_decode),
        Codec("png", "PNG", f"zlib {features.version('zlib')} ({pil})", "optimize (zlib level 9)", "-",
              (0,), _pillow("PNG", lambda v, t: {"optimize": True}), _pillow_decode, lossless=True),
        Codec("webp-lossless", "WebP lossless", webp, "lossless, quality 100, method 5", "-", (0,),
              _pillow("WEBP", lambda v, t: {"lossless": True, "quality": 100, "method": 5}),
              _pillow_decode, lossless=True),
        Codec("gif", "GIF", pil, "256-colour adaptive palette (lossy for RGB photos)", "-", (0,),
              _pillow("GIF", lambda v, t: {}), _pillow_decode, lossless=True),
    ]
    return {c.name: c for c in table}


def nicodec_codec(model: str | None = None, effort: int = 1) -> Codec:
    """nicodec through its public API, with the model loaded once; cached by model_id, the file
    format version and the encoder's revision (sizes change with each), and by the effort level
    above 1, whose points
    are slow enough that a cache is what lets a long evaluation be split over several runs."""
    from nicodec.bitstream.container import VERSION
    from nicodec.codec import refine
    from nicodec.codec.api import compress, decompress
    from nicodec.codec.latent import ENCODER_REVISION
    from nicodec.models.pretrained import load_model

    m = load_model(model)

    def encode(rgb: np.ndarray, value: float, threads: int) -> bytes:
        return compress(rgb, int(value), model=m, effort=effort)

    def decode(data: bytes, threads: int) -> np.ndarray:
        image = decompress(data, model=m)
        return np.asarray(image if image.mode == "RGB" else image.convert("RGB"))

    slow = f", {refine.describe(effort)}" if effort > 1 else ""
    tag = f"-{hashlib.sha256(slow.encode()).hexdigest()[:8]}" if slow else ""
    return Codec("nicodec", "nicodec", f"nicodec model {m.model_id}{slow}", f"model {m.model_id}{slow}",
                 "quality", (5, 10, 20, 35, 50, 65, 75, 85, 90, 95), encode, decode, search=(1, 100),
                 cache_tag=f"{m.model_id}-v{VERSION}-e{ENCODER_REVISION}{tag}")

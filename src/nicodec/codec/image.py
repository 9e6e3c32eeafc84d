"""Images as users have them -> the 8-bit RGB planes the network codes, and back.

Rules (documented in README): EXIF orientation is applied; palette images become RGB or RGBA;
grayscale is coded as gray RGB and decodes as grayscale; alpha is kept losslessly (PNG-coded);
16-bit input is rounded to 8 bits (v * 255 / 65535) and the header records the original depth;
CMYK, YCbCr and other modes are converted to RGB.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError


@dataclass
class Planes:
    rgb: np.ndarray  # H x W x 3 uint8
    alpha: np.ndarray | None  # H x W uint8
    mode: str  # L, RGB, RGBA or LA: what decoding returns
    bit_depth: int


def open_image(source: str | Path | bytes) -> Image.Image:
    """Open an image file (or its bytes) with a one-line error for anything unreadable."""
    try:
        im = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
        im.load()
    except FileNotFoundError:
        raise
    except UnidentifiedImageError:
        raise ValueError("cannot read image: not a supported image format") from None
    except (OSError, ValueError, SyntaxError) as err:
        raise ValueError(f"cannot read image: {err}") from None
    return im


def _to_8bit(a: np.ndarray) -> np.ndarray:
    return ((a.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def from_array(a: np.ndarray) -> Planes:
    """uint8 or uint16 arrays: H x W (gray), H x W x 2 (gray+alpha), x 3 (RGB), x 4 (RGBA)."""
    if a.dtype not in (np.uint8, np.uint16, np.bool_):
        raise ValueError(f"unsupported array dtype {a.dtype} (use uint8 or uint16)")
    depth = 16 if a.dtype == np.uint16 else 8
    a = _to_8bit(a) if depth == 16 else a.astype(np.uint8) * (255 if a.dtype == np.bool_ else 1)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 2, 3, 4) or 0 in a.shape:
        raise ValueError(f"unsupported array shape {a.shape} (use H x W or H x W x 1..4)")
    channels = a.shape[2]
    color = a[:, :, :3] if channels >= 3 else np.repeat(a[:, :, :1], 3, axis=2)
    alpha = a[:, :, -1] if channels in (2, 4) else None
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[channels]
    return Planes(np.ascontiguousarray(color), alpha, mode, depth)


def from_pil(im: Image.Image) -> Planes:
    """Apply EXIF orientation and reduce any Pillow mode to Planes."""
    im = ImageOps.exif_transpose(im) or im
    if im.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        a = np.asarray(im).astype(np.int64)
        depth16 = im.mode != "I" or a.max(initial=0) > 255
        if depth16:
            return from_array(np.clip(a, 0, 65535).astype(np.uint16))
        return from_array(np.clip(a, 0, 255).astype(np.uint8))
    if im.mode == "F":
        return from_array(np.clip(np.asarray(im), 0, 255).round().astype(np.uint8))
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif im.mode == "PA":
        im = im.convert("RGBA")
    elif im.mode == "1":
        im = im.convert("L")
    elif im.mode not in ("L", "LA", "RGB", "RGBA"):
        im = im.convert("RGBA" if "A" in im.mode else "RGB")
    return from_array(np.asarray(im))


def to_planes(image: Image.Image | np.ndarray) -> Planes:
    if isinstance(image, np.ndarray):
        return from_array(image)
    if isinstance(image, Image.Image):
        return from_pil(image)
    raise TypeError(f"expected a PIL image or a numpy array, not {type(image).__name__}")


def to_tensor(rgb: np.ndarray, multiple: int) -> torch.Tensor:
    """[1, 3, H', W'] float in [0, 1], edge-padded so H' and W' are multiples of `multiple`."""
    x = torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float() / 255.0
    h, w = rgb.shape[:2]
    ph, pw = -h % multiple, -w % multiple
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
    return x


def to_uint8(x: torch.Tensor, height: int, width: int) -> np.ndarray:
    """Crop the padded reconstruction back to the original size, as H x W x 3 uint8."""
    a = x[0, :, :height, :width].permute(1, 2, 0).mul(255).round().clamp(0, 255)
    return a.to(torch.uint8).numpy()


def encode_alpha(alpha: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(alpha, "L").save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def decode_alpha(data: bytes, height: int, width: int) -> np.ndarray:
    try:
        a = np.asarray(Image.open(io.BytesIO(data)).convert("L"))
    except (OSError, ValueError, UnidentifiedImageError):
        raise ValueError("corrupt alpha section") from None
    if a.shape != (height, width):
        raise ValueError("corrupt alpha section (wrong size)")
    return a


def assemble(rgb: np.ndarray, alpha: np.ndarray | None, mode: str) -> Image.Image:
    """Decoded planes -> a PIL image in the original mode."""
    if mode in ("L", "LA"):
        gray = ((rgb.astype(np.uint16).sum(axis=2) + 1) // 3).astype(np.uint8)
        planes = gray[:, :, None] if alpha is None else np.dstack([gray, alpha])
    else:
        planes = rgb if alpha is None else np.dstack([rgb, alpha])
    return Image.fromarray(planes.squeeze(2) if planes.shape[2] == 1 else planes, mode)

"""Images as users have them -> the 8-bit RGB planes the network codes, and back.

Rules (documented in README): EXIF orientation is applied; palette images become RGB or RGBA;
grayscale is coded as gray RGB and decodes as grayscale; alpha is kept losslessly (PNG-coded);
16-bit input is rounded to 8 bits (v * 255 / 65535) and the header records the original depth;
CMYK, YCbCr and other modes are converted to RGB; an animation keeps its first frame (the last two
said as a `DroppedWarning`, never silently); the ICC profile, EXIF and XMP are kept (EXIF
without its Orientation tag, as the pixels are upright now), except an ICC profile that no longer
fits the coded pixels (a CMYK profile on pixels converted to RGB).
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image, ImageOps, PngImagePlugin, UnidentifiedImageError

from nicodec.bitstream.container import FormatError

if TYPE_CHECKING:
    import torch


@dataclass
class Planes:
    rgb: np.ndarray  # H x W x 3 uint8
    alpha: np.ndarray | None  # H x W uint8
    mode: str  # L, RGB, RGBA or LA: what decoding returns
    bit_depth: int
    metadata: dict[str, bytes] = field(default_factory=dict)  # METADATA_KEYS present in the input


class DroppedWarning(UserWarning):
    """Part of the input that a .nic file cannot hold was dropped (the CLI prints it on stderr)."""


METADATA_KEYS = ("icc_profile", "exif", "xmp")  # as Pillow names them in `info` and `save`
_ORIENTATION = 0x0112  # EXIF tag
_EXIF_PREFIX = b"Exif\x00\x00"
_ICC_SPACE = {"L": b"GRAY", "LA": b"GRAY", "RGB": b"RGB ", "RGBA": b"RGB "}
# The metadata each Pillow writer stores, by save keyword (BMP, PPM, GIF, ... have nowhere for it).
_SAVE_KEYS = {"PNG": METADATA_KEYS, "TIFF": ("icc_profile", "exif"), "WEBP": METADATA_KEYS,
              "JPEG": METADATA_KEYS, "AVIF": METADATA_KEYS}


def open_image(source: str | Path | bytes) -> Image.Image:
    """Open an image file (or its bytes) with a one-line error for anything unreadable."""
    try:
        im = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
        if im.mode in ("RGB", "RGBA") and any(";16" in str(t.args) for t in im.tile):
            warnings.warn("16-bit input read as 8 bits", DroppedWarning, stacklevel=2)  # by Pillow
        im.load()
    except FileNotFoundError:
        raise
    except UnidentifiedImageError:
        raise ValueError("cannot read image: not a supported image format") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise ValueError(f"cannot read image: {err}") from None
    return im


def _to_8bit(a: np.ndarray) -> np.ndarray:
    return ((a.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def from_array(a: np.ndarray) -> Planes:
    """uint8 or uint16 arrays: H x W (gray), H x W x 2 (gray+alpha), x 3 (RGB), x 4 (RGBA)."""
    if a.dtype not in (np.uint8, np.uint16, np.bool_):
        raise ValueError(f"unsupported array dtype {a.dtype} (use uint8 or uint16)")
    depth = 16 if a.dtype == np.uint16 else 8
    if depth == 16:
        warnings.warn("16-bit input rounded to 8 bits", DroppedWarning, stacklevel=2)
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
    """Apply EXIF orientation, reduce any Pillow mode to Planes and keep the metadata."""
    if getattr(im, "n_frames", 1) > 1:
        warnings.warn(f"animated image: only the first of its {im.n_frames} frames is coded",
                      DroppedWarning, stacklevel=2)
    im = ImageOps.exif_transpose(im) or im
    planes = _pixels(im)
    return replace(planes, metadata=_metadata(im, planes.mode))


def _pixels(im: Image.Image) -> Planes:
    """The pixels in one of the modes nicodec codes (L, LA, RGB, RGBA), whatever Pillow gave."""
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


def _metadata(im: Image.Image, mode: str) -> dict[str, bytes]:
    """ICC profile, EXIF and XMP of `im`, whose EXIF orientation is already applied to its pixels."""
    xmp = im.info.get("xmp") or im.info.get("XML:com.adobe.xmp")  # PNG tEXt XMP: only the latter
    meta = {"icc_profile": im.info.get("icc_profile"), "xmp": xmp.encode() if isinstance(xmp, str) else xmp}
    if (raw := im.info.get("exif")) and (exif := _parsed_exif(raw)) is not None:
        exif.pop(_ORIENTATION, None)  # the pixels are upright now: viewers must not rotate them again
        meta["exif"] = exif.tobytes()  # "Exif\0\0" + TIFF, as JPEG's writer needs
    return {k: v for k, v in meta.items() if v and metadata_fits(k, v, mode)}


def _parsed_exif(raw: bytes) -> Image.Exif | None:
    """EXIF as Pillow reads it, or None if Pillow cannot write it back (its writers, e.g. TIFF's,
    would then fail on it when the decoded image is saved)."""
    exif = Image.Exif()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one warning per damaged tag it skips
        try:
            exif.load(raw)
            exif.tobytes()
        except Exception:  # whatever a damaged IFD makes Pillow's parser raise
            return None
    return exif


def metadata_fits(key: str, value: bytes, mode: str) -> bool:
    """Whether `value` can be `key` for pixels of `mode`: an ICC profile must describe their colour
    space (viewers would mis-render them otherwise), EXIF must have tags and be what Pillow's
    writers accept."""
    if key == "icc_profile":
        return value[36:40] == b"acsp" and value[16:20] == _ICC_SPACE.get(mode)
    if key == "exif":
        return value.startswith(_EXIF_PREFIX) and len(_parsed_exif(value) or ()) > 0
    return True


def save_options(image: Image.Image, fmt: str) -> dict[str, Any]:
    """Keywords for `image.save(..., format=fmt)` that write the metadata in `image.info` (as
    `decompress` restores it): Pillow writes EXIF and XMP only when asked, and only some formats."""
    fmt = fmt.upper()
    options = {k: image.info[k] for k in _SAVE_KEYS.get(fmt, ())
               if image.info.get(k) and metadata_fits(k, image.info[k], image.mode)}
    if fmt == "PNG" and "xmp" in options:  # Pillow's PNG writer takes XMP as an iTXt chunk
        options["pnginfo"] = PngImagePlugin.PngInfo()
        options["pnginfo"].add_itxt("XML:com.adobe.xmp", options.pop("xmp"))
    return options


def to_planes(image: Image.Image | np.ndarray) -> Planes:
    if isinstance(image, np.ndarray):
        return from_array(image)
    if isinstance(image, Image.Image):
        return from_pil(image)
    raise TypeError(f"expected a PIL image or a numpy array, not {type(image).__name__}")


def to_tensor(rgb: np.ndarray, multiple: int) -> torch.Tensor:
    """[1, 3, H', W'] float in [0, 1], edge-padded so H' and W' are multiples of `multiple`."""
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float() / 255.0
    h, w = rgb.shape[:2]
    ph, pw = -h % multiple, -w % multiple
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
    return x


def to_uint8(x: torch.Tensor, height: int, width: int) -> np.ndarray:
    """Crop the padded reconstruction back to the original size, as H x W x 3 uint8."""
    import torch

    a = x[0, :, :height, :width].permute(1, 2, 0).mul(255).round().clamp(0, 255)
    return a.to(torch.uint8).numpy()


def encode_alpha(alpha: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(alpha, "L").save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def decode_alpha(data: bytes, height: int, width: int) -> np.ndarray:
    """The alpha plane, which `encode_alpha` wrote as an 8-bit grayscale PNG."""
    return np.asarray(open_section(data, "alpha", "PNG", (width, height), ("L",)))


def open_section(data: bytes, name: str, fmt: str, size: tuple[int, int],
                 modes: tuple[str, ...]) -> Image.Image:
    """The image a section (`name`) stores in `fmt`, loaded: any other format, another size or a
    mode not in `modes` is a crafted section, refused before its pixels are decompressed (an image
    claiming a huge size is a decompression bomb), as is a damaged one."""
    width, height = size
    try:
        im = Image.open(io.BytesIO(data), formats=(fmt.upper(),))
    except Image.DecompressionBombError:
        raise FormatError(f"corrupt {name} section (a {fmt} far larger than {width}x{height})") from None
    except (OSError, ValueError, SyntaxError):
        raise FormatError(f"corrupt {name} section (not a readable {fmt} image)") from None
    if im.size != size or im.mode not in modes:
        wanted = f"{modes[0]} {width}x{height}" if len(modes) == 1 else f"{width}x{height}"
        raise FormatError(f"corrupt {name} section ({im.mode} {im.width}x{im.height} {fmt}, not {wanted})")
    try:
        im.load()
    except (OSError, ValueError, SyntaxError, EOFError):
        raise FormatError(f"corrupt {name} section (damaged {fmt})") from None
    return im


def assemble(rgb: np.ndarray, alpha: np.ndarray | None, mode: str) -> Image.Image:
    """Decoded planes -> a PIL image in the original mode."""
    if mode in ("L", "LA"):
        gray = ((rgb.astype(np.uint16).sum(axis=2) + 1) // 3).astype(np.uint8)
        planes = gray[:, :, None] if alpha is None else np.dstack([gray, alpha])
    else:
        planes = rgb if alpha is None else np.dstack([rgb, alpha])
    return Image.fromarray(planes.squeeze(2) if planes.shape[2] == 1 else planes, mode)

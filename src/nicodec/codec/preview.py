"""A preview: the image at 1/8 of its size, WebP-coded in an ancillary section of the .nic file
(`compress(preview=True)`, `encode --preview`), as HEIF and EXIF carry thumbnails.

Why: a thumbnail decoded from the latent (`models.draft`) still entropy-decodes the whole latent
with the exact entropy model, about half of a full decode, so it is at most 1.4-1.8x faster. A
preview needs neither the model nor PyTorch: `decompress(reduce=8)`, Pillow's `draft` and
`thumbnail` decode it in milliseconds. It is made from the input (box-downscaled, sizes rounded
up, as `Image.reduce`) and WebP-coded at the file's quality, which costs about 3 % of a file at
quality 75 (`benchmarks/results/draft.md`); older readers skip the section.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from nicodec.bitstream.container import FormatError, Header
from nicodec.codec.image import Planes, assemble, open_section
from nicodec.models.draft import size

REDUCE = 8  # a preview is the `reduce=8` image
WEBP_MAX_SIDE = 16383  # WebP's limit: images over 131,064 pixels wide or high get no preview


def encode(planes: Planes, quality: int) -> bytes:
    """The WebP bytes of the planes (RGB, and alpha if any) box-downscaled by REDUCE."""
    rgb = planes.rgb if planes.alpha is None else np.dstack([planes.rgb, planes.alpha])
    small = Image.fromarray(rgb).reduce(REDUCE)
    if max(small.size) > WEBP_MAX_SIDE:
        raise ValueError(f"no preview for an image over {WEBP_MAX_SIDE * REDUCE} pixels on a side "
                         f"(WebP's limit is {WEBP_MAX_SIDE})")
    buf = io.BytesIO()
    small.save(buf, format="WEBP", quality=quality, method=6, alpha_quality=100)
    return buf.getvalue()


def decode(data: bytes, header: Header, max_pixels: int | None) -> Image.Image:
    """The preview of a file with this header, in the header's mode; anything but a WebP of the
    preview's size is a FormatError, raised before its pixels are decoded, as is a preview over
    `max_pixels` (None: no limit). (libwebp may drop an alpha plane that is all opaque: its
    absence means 255.)"""
    height, width = size(header.height, header.width, REDUCE)
    if max_pixels is not None and height * width > max_pixels:
        raise FormatError(f"preview too large ({width}x{height} = {width * height:,} pixels, over the "
                          f"limit of {max_pixels:,}; raise max_pixels for such images)")
    mode = "RGBA" if header.mode in ("RGBA", "LA") else "RGB"
    im = open_section(data, "preview", "WebP", (width, height), ("RGB", "RGBA"))
    pixels = np.asarray(im.convert(mode))
    return assemble(pixels[:, :, :3], pixels[:, :, 3] if mode == "RGBA" else None, header.mode)

"""Side-by-side crops: original, nicodec at a quality, and baselines at the same file size.

Baselines are matched on size (largest file not above nicodec's), not on quality number, because the
question a viewer asks is "what does each codec look like for the same bytes?".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from nicodec import progress
from nicodec.eval.baselines import Codec, baselines, nicodec_codec
from nicodec.eval.metrics import bpp, psnr_rgb

COMPARED = ("jpeg-420", "webp", "avif")
GAP, LABEL_HEIGHT, DEFAULT_CROP = 4, 30, 256


@dataclass
class Panel:
    codec: str  # display name, or "original"
    pixels: np.ndarray  # the full decoded image
    quality: int | None = None  # the codec's quality setting, None for the original
    size: int | None = None  # compressed bytes, None for the original
    psnr: float | None = None

    @property
    def title(self) -> str:
        return self.codec if self.quality is None else f"{self.codec} q{self.quality}"


def match_size(codec: Codec, rgb: np.ndarray, target: int) -> tuple[int, bytes]:
    """Binary search of the integer quality for the largest file not above `target` bytes.

    Falls back to the lowest quality when even that is larger (its label then shows more bytes).
    """
    lo, hi = codec.search
    best = (lo, codec.encode(rgb, lo, 1))
    while lo <= hi:
        mid = (lo + hi) // 2
        data = codec.encode(rgb, mid, 1)
        if len(data) <= target:
            best, lo = (mid, data), mid + 1
        else:
            hi = mid - 1
    return best


def parse_crop(text: str | None, width: int, height: int) -> tuple[int, int, int, int]:
    """'x,y,w,h' to a PIL box inside the image; default a centred DEFAULT_CROP square."""
    if text is None:
        w, h = min(DEFAULT_CROP, width), min(DEFAULT_CROP, height)
        x, y = (width - w) // 2, (height - h) // 2
    else:
        try:
            x, y, w, h = (int(v) for v in text.split(","))
        except ValueError:
            raise ValueError(f"--crop must be x,y,w,h integers, not '{text}'") from None
    if w <= 0 or h <= 0 or x < 0 or y < 0 or x + w > width or y + h > height:
        raise ValueError(f"crop {x},{y},{w},{h} is not inside the {width}x{height} image")
    return x, y, x + w, y + h


def panels(rgb: np.ndarray, quality: int, model: str | None = None, data: bytes | None = None
           ) -> list[Panel]:
    """Encode the whole image (sizes are whole-file sizes) with nicodec at `quality` (or take its
    .nic file as `data`, e.g. from rate control) and the size-matched baselines."""
    from nicodec.codec.api import info

    with progress.bar(1 + len(COMPARED), "compare", "codec") as shown:
        nic = nicodec_codec(model)
        data = nic.encode(rgb, quality, 1) if data is None else data
        result = [Panel("original", rgb),
                  Panel("nicodec", nic.decode(data, 1), info(data)["quality"], len(data))]
        shown.update()
        for name in COMPARED:
            codec = baselines()[name]
            q, matched = match_size(codec, rgb, len(data))
            result.append(Panel(codec.family, codec.decode(matched, 1), q, len(matched)))
            shown.update()
    for p in result[1:]:
        p.psnr = psnr_rgb(rgb, p.pixels)
    return result


def render(items: list[Panel], box: tuple[int, int, int, int]) -> Image.Image:
    """The crops in a row, each under a label with codec, bytes, bpp and PSNR of the whole image."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    full_h, full_w = items[0].pixels.shape[:2]
    sheet = Image.new("RGB", (len(items) * w + (len(items) - 1) * GAP, h + LABEL_HEIGHT), "white")
    draw, font = ImageDraw.Draw(sheet), ImageFont.load_default()
    for i, p in enumerate(items):
        left = i * (w + GAP)
        sheet.paste(Image.fromarray(p.pixels[y0:y1, x0:x1]), (left, LABEL_HEIGHT))
        detail = (f"{p.size} B  {bpp(p.size, full_w, full_h):.3f} bpp  {p.psnr:.2f} dB"
                  if p.size is not None else f"{full_w}x{full_h}")
        draw.text((left + 2, 2), f"{p.title}\n{detail}", fill="black", font=font)
    return sheet

"""The Python API: `compress(image, quality) -> bytes`, `decompress(bytes) -> PIL.Image`."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from nicodec.bitstream import container
from nicodec.bitstream.container import Header, Kind, Section
from nicodec.codec import image as imaging

if TYPE_CHECKING:  # torch-backed: imported where used (the import rule in nicodec/__init__.py)
    from nicodec.models.pretrained import InferenceModel

DEFAULT_QUALITY = 75
MAX_PIXELS = 1 << 28  # decoder refuses larger claims (a crafted header must not exhaust memory)
METADATA_KINDS = dict(zip((Kind.ICC, Kind.EXIF, Kind.XMP), imaging.METADATA_KEYS, strict=True))


def _model(model: str | InferenceModel | None) -> InferenceModel:
    from nicodec.models.pretrained import InferenceModel, load_model

    return model if isinstance(model, InferenceModel) else load_model(model)


def compress(image: Image.Image | np.ndarray, quality: int = DEFAULT_QUALITY,
             model: str | InferenceModel | None = None, max_bytes: int | None = None,
             metadata: bool = True, effort: int = 1, min_psnr: float | None = None) -> bytes:
    """Encode a PIL image or uint8/uint16 array into the bytes of a .nic file.

    With `max_bytes`, `quality` is ignored: the file is the highest quality that fits in that many
    bytes, metadata included (found by bisection, about 7 encodes); with `min_psnr` (dB, RGB, as
    `cwebp -psnr`) the lowest quality whose decoded image reaches it, i.e. the smallest such file.
    The image's ICC profile, EXIF and XMP are stored unless `metadata` is False.
    `effort` above 1 refines the latent for this image (`codec.refine`): smaller files at the same
    quality, for many times the encoding time; any nicodec decodes them.
    """
    from nicodec.codec import latent, refine

    if not isinstance(quality, int | np.integer) or not 1 <= quality <= 100:
        raise ValueError(f"quality must be an integer in 1..100, not {quality!r}")
    if effort not in refine.EFFORT_ITERATIONS:
        raise ValueError(f"effort must be one of {sorted(refine.EFFORT_ITERATIONS)}, not {effort!r}")
    m = _model(model)
    planes = imaging.to_planes(image)
    h, w = planes.rgb.shape[:2]
    iterations = refine.EFFORT_ITERATIONS[effort]
    extra = [Section(Kind.ALPHA, imaging.encode_alpha(planes.alpha))] if planes.alpha is not None else []
    if metadata:
        extra += [Section(kind, planes.metadata[key]) for kind, key in METADATA_KINDS.items()
                  if key in planes.metadata]

    def psnr_of(data: bytes) -> float:
        from nicodec.eval.metrics import psnr_rgb

        return psnr_rgb(planes.rgb, imaging.to_planes(decompress(data, model=m)).rgb)

    def encode_at(q: int, iterations: int = 0) -> bytes:
        header = Header(m.model_id, q, w, h, planes.mode, planes.bit_depth)
        if iterations:
            x = imaging.to_tensor(planes.rgb, m.net.downsampling)
            y = refine.refine(m.net, x, h, w, latent.quality_level(m, q), iterations)
            return container.pack(header, latent.encode_latent(m, y) + extra)
        return container.pack(header, latent.encode(m, planes.rgb, q) + extra)

    if max_bytes is not None and min_psnr is not None:
        raise ValueError("give max_bytes or min_psnr, not both")
    if max_bytes is None and min_psnr is None:
        return encode_at(int(quality), iterations)

    def accept(data: bytes) -> bool:  # monotone in quality: size grows with it, and PSNR
        return len(data) <= max_bytes if max_bytes is not None else psnr_of(data) >= min_psnr

    # the highest quality that fits in max_bytes, or the lowest (smallest file) that reaches min_psnr
    best, probe = _bisect(encode_at, accept, highest=max_bytes is not None)
    if best is None and max_bytes is not None:
        raise ValueError(f"cannot fit in {max_bytes} bytes (quality 1 needs {len(probe)})")
    if best is None:
        raise ValueError(f"cannot reach {min_psnr:g} dB (quality 100 gives {psnr_of(probe):.2f})")
    if iterations:  # refine only the quality found: refinement rarely misses the target, but check
        refined = encode_at(container.unpack(best)[0].quality, iterations)
        best = refined if accept(refined) else best
    return best


def _bisect(encode_at: Callable[[int], bytes], accept: Callable[[bytes], bool],
            highest: bool) -> tuple[bytes | None, bytes]:
    """The file at the highest (or lowest) quality 1..100 that `accept`s it, found by bisection
    (about 7 encodes; `accept` must be monotone in quality), and the last file probed."""
    from nicodec import progress

    lo, hi, best = 1, 100, None
    with progress.bar(7, "rate control", "encode") as shown:
        while lo <= hi:
            mid = (lo + hi) // 2
            data = encode_at(mid)
            shown.update()
            if accept(data):
                best = data
                lo, hi = (mid + 1, hi) if highest else (lo, mid - 1)
            else:
                lo, hi = (lo, mid - 1) if highest else (mid + 1, hi)
    return best, data


def decompress(data: bytes, model: str | InferenceModel | None = None) -> Image.Image:
    """Decode .nic bytes to a PIL image of the original size and mode (L, LA, RGB or RGBA), with
    the stored metadata in its `info` ("icc_profile", "exif", "xmp")."""
    from nicodec.codec import latent
    from nicodec.models.pretrained import find_model

    header, sections = container.unpack(data)
    if header.width * header.height > MAX_PIXELS:
        raise container.FormatError(f"image too large ({header.width}x{header.height} exceeds "
                                    f"the {MAX_PIXELS >> 20}-megapixel limit)")
    m = _model(model) if model is not None else find_model(header.model_id)
    if m.model_id != header.model_id:
        raise ValueError(f"file was written by model {header.model_id}, not {m.model_id}")
    by_kind = {s.kind: s.data for s in sections if s.tile == 0}
    metadata = metadata_of(header, sections)
    try:
        rgb = latent.decode(m, by_kind, header.height, header.width, header.quality)
    except container.FormatError:  # e.g. a missing section: already says what is wrong
        raise
    except (ValueError, RuntimeError, IndexError) as err:
        raise container.FormatError(f"corrupt payload ({err})") from None
    alpha = None
    if header.mode in ("RGBA", "LA"):
        if Kind.ALPHA not in by_kind:
            raise container.FormatError("corrupt file (missing alpha section)")
        alpha = imaging.decode_alpha(by_kind[Kind.ALPHA], header.height, header.width)
    image = imaging.assemble(rgb, alpha, header.mode)
    image.info.update(metadata)
    return image


def metadata_of(header: Header, sections: list[Section]) -> dict[str, bytes]:
    """The stored metadata under Pillow's `info` keys; a section no writer would produce (which
    the CRC cannot catch in a crafted file) is a FormatError, not a broken image later."""
    meta = {}
    for s in sections:
        if s.kind in METADATA_KINDS:
            if not imaging.metadata_fits(METADATA_KINDS[s.kind], s.data, header.mode):
                raise container.FormatError(f"corrupt {s.kind.name.lower()} section")
            meta[METADATA_KINDS[s.kind]] = s.data
    return meta


def info(data: bytes) -> dict[str, Any]:
    """Everything the header says, plus section sizes (does not decode pixels)."""
    header, sections = container.unpack(data)
    return {
        "format_version": header.version, "model_id": header.model_id,
        "quality": header.quality, "width": header.width, "height": header.height,
        "mode": header.mode, "bit_depth": header.bit_depth,
        "tiles": 1 if not header.tile_width else None, "file_bytes": len(data),
        "bpp": 8 * len(data) / (header.width * header.height),
        "sections": [{"kind": s.kind.name.lower(), "tile": s.tile, "bytes": len(s.data)}
                     for s in sections],
        "checksum": "crc32 ok",
    }

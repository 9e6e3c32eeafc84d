"""The Python API: `compress(image, quality) -> bytes`, `decompress(bytes) -> PIL.Image`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from nicodec.bitstream import container
from nicodec.bitstream.container import Header, Kind, Section
from nicodec.codec import image as imaging

if TYPE_CHECKING:  # torch-backed: imported where used (the import rule in nicodec/__init__.py)
    from nicodec.codec.backend import Backend
    from nicodec.models.pretrained import InferenceModel

DEFAULT_QUALITY = 75
MAX_PIXELS = 89_478_485  # Pillow's MAX_IMAGE_PIXELS (a 24-bit 256 MiB image): larger padded sizes
# are refused unless the caller raises the limit (a crafted header must not exhaust memory)
# to a multiple of this (64), what the largest model's decoder allocates
METADATA_KINDS = dict(zip((Kind.ICC, Kind.EXIF, Kind.XMP), imaging.METADATA_KEYS, strict=True))
BACKENDS = {  # where the float transforms run (`codec.backend`): pixels may differ, files parse alike
    "torch": "PyTorch on the CPU",
    "cuda": "PyTorch on a CUDA GPU",
    "onnx": "ONNX Runtime on the CPU (the onnx extra; graphs built once per model)",
}


def _model(model: str | InferenceModel | None) -> InferenceModel:
    from nicodec.models.pretrained import InferenceModel, load_model

    return model if isinstance(model, InferenceModel) else load_model(model)


def compress(image: Image.Image | np.ndarray, quality: int = DEFAULT_QUALITY,
             model: str | InferenceModel | None = None, max_bytes: int | None = None,
             metadata: bool = True, effort: int = 1, min_psnr: float | None = None,
             backend: str | Backend = "torch", preview: bool = False) -> bytes:
    """Encode a PIL image or uint8/uint16 array into the bytes of a .nic file.

    With `max_bytes`, `quality` is ignored: the file is the highest quality that fits in that many
    bytes, metadata included (found by bisection, about 7 encodes); with `min_psnr` (dB, RGB, as
    `cwebp -psnr`) the lowest quality whose decoded image reaches it, i.e. the smallest such file.
    The image's ICC profile, EXIF and XMP are stored unless `metadata` is False. With `preview`
    the file also holds the image at 1/8 of its size (`codec.preview`, about 3 % of the file), so
    `decompress(reduce=8)` and Pillow's `thumbnail` need no model.
    `effort` above 1 refines the latent for this image (`codec.refine`): smaller files at the same
    quality, for many times the encoding time; any nicodec decodes them (its refinement runs in
    PyTorch on the CPU whatever the `backend`, a name in BACKENDS or a `codec.backend.Backend`,
    which runs the analysis and rate control's decodes).
    """
    from nicodec.codec import latent, refine
    from nicodec.codec import preview as previews

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

        return psnr_rgb(planes.rgb, imaging.to_planes(decompress(data, model=m, backend=backend)).rgb)

    def encode_at(q: int, iterations: int = 0) -> bytes:
        header = Header(m.model_id, q, w, h, planes.mode, planes.bit_depth)
        shown = [Section(Kind.PREVIEW, previews.encode(planes, q))] if preview else []
        if iterations:
            x = imaging.to_tensor(planes.rgb, m.net.downsampling)
            y = refine.refine(m.net, x, h, w, latent.quality_level(m, q), iterations)
            return container.pack(header, latent.encode_latent(m, y) + extra + shown)
        return container.pack(header, latent.encode(m, planes.rgb, q, backend=backend) + extra + shown)

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


def decompress(data: bytes, model: str | InferenceModel | None = None,
               max_pixels: int | None = MAX_PIXELS, backend: str | Backend = "torch",
               reduce: int = 1) -> Image.Image:
    """Decode .nic bytes to a PIL image of the original size and mode (L, LA, RGB or RGBA), with
    the stored metadata in its `info` ("icc_profile", "exif", "xmp").

    A damaged or hostile file raises FormatError with a one-line message, whatever part of it is
    wrong. An image whose padded size (what the decoder allocates) is over `max_pixels` is
    refused before anything is decoded; None lifts the limit. `backend` (a name in BACKENDS or a
    `codec.backend.Backend`) runs the synthesis: it may change pixels, never the decoded latent.

    `reduce` 2, 4 or 8 decodes a thumbnail, ceil(width / reduce) x ceil(height / reduce), for a
    fraction of the synthesis (`models.draft`: close to the full decode box-downscaled; the alpha
    plane is box-downscaled). A factor other than 1, 2, 4 or 8, or one the file's model has no
    read-out for, is a ValueError raised before the payload is decoded. At 8, a file with a
    preview (`compress(preview=True)`) decodes that instead, without a model or PyTorch.
    """
    from nicodec.codec import preview
    from nicodec.models import draft

    draft.check(reduce)
    if isinstance(backend, str) and backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    header, sections = container.unpack(data)
    by_kind = {s.kind: s.data for s in sections}
    metadata = metadata_of(header, sections)
    if reduce == preview.REDUCE and Kind.PREVIEW in by_kind:
        image = preview.decode(by_kind[Kind.PREVIEW], header, max_pixels)
        image.info.update(metadata)
        return image

    from nicodec.codec import latent
    from nicodec.codec.backend import resolve
    from nicodec.models.registry import MODELS

    engine = resolve(backend)
    pad = max(cls.downsampling for cls in MODELS.values())  # the limit counts the padded size
    ph, pw = -(-header.height // pad) * pad, -(-header.width // pad) * pad
    if max_pixels is not None and ph * pw > max_pixels:  # checked before a model is even loaded
        raise container.FormatError(
            f"image too large ({header.width}x{header.height}, padded to {pw}x{ph} = {pw * ph:,} "
            f"pixels, over the limit of {max_pixels:,}; raise max_pixels for such images)")
    alpha = None
    if header.mode in ("RGBA", "LA"):  # checked before a model is loaded
        if Kind.ALPHA not in by_kind:
            raise container.FormatError("corrupt file (missing alpha section)")
        alpha = imaging.decode_alpha(by_kind[Kind.ALPHA], header.height, header.width)
    m = _decoder(header.model_id, model)
    draft.check(reduce, m.model_id)
    with _payload_errors(header):
        y_hat = latent.decode_latents(m, by_kind, *latent.padded(m, header.height, header.width))
    engine.prepare(m)  # after the latent (a bomb builds nothing), outside: not a corrupt file
    with _payload_errors(header):
        rgb = latent.synthesize(m, y_hat, header.quality, draft.size(header.height, header.width, reduce),
                                backend=engine, reduce=reduce)
    del y_hat  # gone before the image is assembled: a big image's peak memory is at the end
    if alpha is not None and reduce != 1:
        alpha = np.asarray(Image.fromarray(alpha).reduce(reduce))  # box filter, sizes rounded up
    image = imaging.assemble(rgb, alpha, header.mode)
    image.info.update(metadata)
    return image


@contextmanager
def _payload_errors(header: Header) -> Iterator[None]:
    """Whatever a crafted payload makes the decoder raise, as a FormatError (a MemoryError says
    it is one: a legitimate huge image may not fit)."""
    try:
        yield
    except container.FormatError:  # e.g. a missing section: already says what is wrong
        raise
    except Exception as err:  # noqa: BLE001 - whatever a crafted payload makes the decoder raise
        if isinstance(err, MemoryError) or "can't allocate memory" in str(err):  # torch's allocator
            raise MemoryError(f"out of memory decoding a {header.width}x{header.height} image") from None
        raise container.FormatError(f"corrupt payload ({_one_line(err)})") from None


def _decoder(model_id: str, model: str | InferenceModel | None) -> InferenceModel:
    """The model that decodes a file naming `model_id`: the shipped one, or `model` if it is that
    one; a model file's id (name and hash) is checked before a network is built from it."""
    from nicodec.models import validate
    from nicodec.models.pretrained import file_metadata, file_sha256, find_model, manifest

    if model is None:
        try:
            return find_model(model_id)
        except ValueError as err:  # the file names weights this nicodec does not have
            raise container.FormatError(str(err)) from None
    if isinstance(model, str) and model not in manifest()["models"] and Path(model).is_file():
        path = Path(model)
        given = validate.model_id(file_metadata(path).get("model", ""), file_sha256(path))
    else:
        model = _model(model)
        given = model.model_id
    if given != model_id:
        raise container.FormatError(f"file was written by model {model_id}, not {given}")
    return _model(model)


def _one_line(err: Exception) -> str:
    """An exception's message as one printable line (library messages may span several)."""
    return container.printable(" ".join(str(err).split()) or type(err).__name__)


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
        "tiles": 1, "file_bytes": len(data),
        "bpp": 8 * len(data) / (header.width * header.height),
        "sections": [{"kind": s.kind.name.lower(), "tile": s.tile, "bytes": len(s.data)}
                     for s in sections],
        "checksum": "crc32 ok",
    }

"""Pillow plugin: `Image.open("x.nic")` and `image.save("x.nic", quality=75, model="fast")`.

Importing this module registers the format. Decoding happens on `load()` (Pillow's lazy
convention), so `Image.open` only parses and verifies the header; the stored ICC profile, EXIF
and XMP are in `info` right away, as other formats put them. `draft()` works as for JPEG, so
`Image.thumbnail()` decodes at 1/2, 1/4 or 1/8 of the size, for a fraction of the synthesis
(`models.draft`), or at 1/8 from the file's preview if it has one (`codec.preview`: no model).
"""

from __future__ import annotations

from typing import IO

from PIL import Image, ImageFile

from nicodec.bitstream.container import MAGIC, Kind, unpack
from nicodec.codec.api import DEFAULT_QUALITY, compress, decompress, metadata_of

FORMAT = "NIC"


class NicImageFile(ImageFile.ImageFile):
    format = FORMAT
    format_description = "nicodec learned image"

    def _open(self) -> None:
        self._data = self.fp.read()
        header, sections = unpack(self._data)  # raises a one-line FormatError on any damage
        self._size = (header.width, header.height)
        self._mode = header.mode
        self.info["quality"] = header.quality
        self.info["model_id"] = header.model_id
        self.info.update(metadata_of(header, sections))
        self.tile = []
        self._reduce: int | None = None  # set by `draft`
        self._preview = any(s.kind == Kind.PREVIEW for s in sections)

    def draft(self, mode: str | None,
              size: tuple[int, int] | None) -> tuple[str, tuple[int, int, float, float]] | None:
        """As Pillow's JPEG plugin: the largest reduction (of those the file's model has a read-out
        for, and 8 with a preview) whose image is still at least `size` on both sides,
        ceil(width / r) x ceil(height / r); `load()` then decodes at it. The mode never changes.
        Returns (mode, the original image's box in the reduced one), or None once drafted or loaded."""
        if self._im is not None or self._reduce is not None:
            return None
        from nicodec.codec import preview
        from nicodec.models import draft

        width, height = self.size
        self._reduce = 1
        if size:
            fits = min(width // max(size[0], 1), height // max(size[1], 1))
            shown = self._preview and fits >= preview.REDUCE  # the preview: no read-outs looked up
            able = (preview.REDUCE,) if shown else draft.reductions(self.info["model_id"])
            self._reduce = max(r for r in able if r <= max(fits, 1))
            self._size = draft.size(height, width, self._reduce)[::-1]
        return self.mode, (0, 0, width / self._reduce, height / self._reduce)

    def load(self):
        if self._im is None:
            self.im = decompress(self._data, reduce=self._reduce or 1).im
        return Image.Image.load(self)


def _save(im: Image.Image, fp: IO[bytes], filename: str | bytes) -> None:
    """`quality=` as for JPEG; `max_bytes=` for the highest quality that fits, `min_psnr=` for the
    smallest file that reaches that PSNR; `metadata=False` leaves out the image's ICC profile, EXIF
    and XMP; `effort=` 2 or 3 for a slower, smaller file; `preview=True` stores the image at 1/8 of
    its size too, for thumbnails without the model; `model=` a shipped model's name or a model file
    (default: the manifest's; `Image.open` finds a shipped model from the file's model id)."""
    fp.write(compress(im, int(im.encoderinfo.get("quality", DEFAULT_QUALITY)),
                      model=im.encoderinfo.get("model"), max_bytes=im.encoderinfo.get("max_bytes"),
                      min_psnr=im.encoderinfo.get("min_psnr"),
                      metadata=bool(im.encoderinfo.get("metadata", True)),
                      effort=int(im.encoderinfo.get("effort", 1)),
                      preview=bool(im.encoderinfo.get("preview", False))))


def register_nic_opener() -> None:
    """Teach Pillow to open and save .nic files (importing this module already does), under the
    name pillow-heif and pillow-avif-plugin users know (`register_heif_opener`)."""
    Image.register_open(FORMAT, NicImageFile, lambda prefix: prefix[: len(MAGIC)] == MAGIC)
    Image.register_save(FORMAT, _save)
    Image.register_extension(FORMAT, ".nic")
    Image.register_mime(FORMAT, "image/x-nicodec")


register_nic_opener()

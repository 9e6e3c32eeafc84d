"""The .nic file: magic, version, header, a table of sections, payloads, CRC32.

Layout (little-endian):
    magic   8 bytes  89 'NIC' 0D 0A 1A 0A   (PNG-style: catches text-mode mangling)
    version u8
    header  u16 length, then: quality u8, width u32, height u32, mode u8, bit depth u8,
            tile width u32, tile height u32 (0 = one tile, the whole image), model id (u8 length
            + UTF-8)
    table   u16 count, then per section: kind u8, tile u32, length u32
    payload the sections' bytes, in table order
    crc32   u32 over everything before it

Section kinds: z, z_escapes, y, y_escapes (hyper-latent and latent ANS words and their escapes),
y2, y2_escapes (the checkerboard model's second pass), alpha (PNG-coded), and the input's
metadata, stored for the decoder to hand back: icc (ICC colour profile), exif
("Exif\\0\\0" + TIFF-structured EXIF, without the Orientation tag) and xmp (XMP packet), each
written only when the input has it (and not with `--strip`).

Kinds below 128 are critical (needed to decode the pixels): a reader rejects one it does not know.
Kinds from 128 up are ancillary (PNG's rule): a reader skips one it does not know, so later
versions can add metadata without breaking older readers. (Readers older than the metadata kinds
rejected every unknown kind.)

Every coded section names its tile, so a later version can split huge images into independently
decodable tiles (bounded memory, parallel decoding) with the same container; version-1 writers
emit a single tile 0.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from enum import IntEnum

MAGIC = b"\x89NIC\r\n\x1a\n"
VERSION = 1
ANCILLARY = 128  # section kinds from here up may be skipped by readers that do not know them


class FormatError(ValueError):
    """A file that is not a valid .nic file; the message names the problem."""


class Kind(IntEnum):
    Z = 1  # hyper-latent ANS words
    Z_ESCAPES = 2
    Y = 3  # latent ANS words
    Y_ESCAPES = 4
    ALPHA = 5  # alpha channel, PNG-coded (lossless)
    Y2 = 6  # second coding pass of the latent (checkerboard non-anchors)
    Y2_ESCAPES = 7
    ICC = 128  # ancillary from here on: ICC colour profile of the input, verbatim
    EXIF = 129  # EXIF of the input as Pillow re-writes it, without the Orientation tag (pixels are upright)
    XMP = 130  # XMP packet of the input, verbatim


MODES = ("L", "RGB", "RGBA", "LA")


@dataclass
class Header:
    model_id: str
    quality: int
    width: int
    height: int
    mode: str  # decoded image mode: one of MODES
    bit_depth: int = 8  # of the original image (decoded output is 8-bit)
    tile_width: int = 0
    tile_height: int = 0
    version: int = VERSION


@dataclass
class Section:
    kind: Kind
    data: bytes
    tile: int = 0


_FIXED = struct.Struct("<BIIBBII")
_ENTRY = struct.Struct("<BII")


def pack(header: Header, sections: list[Section]) -> bytes:
    mid = header.model_id.encode()
    body = _FIXED.pack(header.quality, header.width, header.height, MODES.index(header.mode),
                       header.bit_depth, header.tile_width, header.tile_height)
    body += struct.pack("<B", len(mid)) + mid
    out = bytearray(MAGIC + struct.pack("<BH", VERSION, len(body)) + body)
    out += struct.pack("<H", len(sections))
    for s in sections:
        out += _ENTRY.pack(int(s.kind), s.tile, len(s.data))
    for s in sections:
        out += s.data
    out += struct.pack("<I", zlib.crc32(out))
    return bytes(out)


def _take(data: bytes, pos: int, n: int) -> tuple[bytes, int]:
    if pos + n > len(data):
        raise FormatError(f"truncated file ({len(data)} bytes, header or payload cut short)")
    return data[pos : pos + n], pos + n


def unpack(data: bytes) -> tuple[Header, list[Section]]:
    """Parse and verify a .nic file; raises FormatError naming what is wrong."""
    if not data.startswith(MAGIC):
        if MAGIC.startswith(data):
            raise FormatError("truncated file (shorter than the magic bytes)")
        raise FormatError("not a .nic file (bad magic bytes)")
    pos = len(MAGIC)
    raw, pos = _take(data, pos, 3)
    version, hlen = struct.unpack("<BH", raw)
    if version != VERSION:
        raise FormatError(f"unsupported .nic format version {version} (this nicodec reads "
                          f"version {VERSION})")
    body, pos = _take(data, pos, hlen)
    if hlen < _FIXED.size + 1:
        raise FormatError("corrupt header (too short)")
    q, w, h, mode, depth, tw, th = _FIXED.unpack_from(body)
    (mlen,) = struct.unpack_from("<B", body, _FIXED.size)
    mid = body[_FIXED.size + 1 : _FIXED.size + 1 + mlen]
    raw, pos = _take(data, pos, 2)
    (count,) = struct.unpack("<H", raw)
    entries = []
    for _ in range(count):
        raw, pos = _take(data, pos, _ENTRY.size)
        entries.append(_ENTRY.unpack(raw))
    sections = []
    for kind, tile, length in entries:
        payload, pos = _take(data, pos, length)
        sections.append((kind, tile, payload))
    crc_raw, pos = _take(data, pos, 4)
    if pos != len(data):
        raise FormatError(f"corrupt file ({len(data) - pos} unexpected trailing bytes)")
    if struct.unpack("<I", crc_raw)[0] != zlib.crc32(data[: pos - 4]):
        raise FormatError("checksum mismatch: the file is corrupt")
    if mode >= len(MODES) or len(mid) != mlen or not (w and h):
        raise FormatError("corrupt header")
    known = {k.value for k in Kind}
    unknown = sorted({k for k, _, _ in sections if k not in known and k < ANCILLARY})
    if unknown:
        raise FormatError(f"unknown section kind {unknown[0]} (written by a newer nicodec?)")
    parsed = [Section(Kind(k), p, t) for k, t, p in sections if k in known]
    try:
        model_id = mid.decode()
    except UnicodeDecodeError:
        raise FormatError("corrupt header (model id)") from None
    header = Header(model_id, q, w, h, MODES[mode], depth, tw, th, version)
    return header, parsed

"""The .nic file: magic, version, header, a table of sections, payloads, CRC32.

Layout of version 2 (what this nicodec writes; "varint" is unsigned LEB128, integers are
little-endian):
    magic   8 bytes  89 'NIC' 0D 0A 1A 0A   (PNG-style: catches text-mode mangling)
    version u8
    header  varint length, then varints: quality, width, height, mode, bit depth, tile width,
            tile height (0 = one tile, the whole image), model id length; then the model id (UTF-8)
    table   varint count, then per section: varint kind, varint tile, varint length
    payload the sections' bytes, in table order
    crc32   u32 over everything before it

Version 1 (still read) had the same parts in fixed-width fields: header u16 length, quality u8,
width u32, height u32, mode u8, bit depth u8, tile width u32, tile height u32, model id u8 length
+ UTF-8; table u16 count, then kind u8, tile u32, length u32 per section. Its 120 bytes of
framing were 2-4 % of a small file; version 2 needs 66 with the shipped model's id.

Section kinds: z, z_escapes, y, y_escapes (hyper-latent and latent ANS words and their escapes),
y2, y2_escapes (the checkerboard model's second pass), alpha (PNG-coded), and the input's
metadata, stored for the decoder to hand back: icc (ICC colour profile), exif
("Exif\\0\\0" + TIFF-structured EXIF, without the Orientation tag) and xmp (XMP packet), each
written only when the input has it (and not with `--strip`), and preview (the image at 1/8 of
its size, WebP-coded, written with `--preview`: `codec.preview`). An escape section is written only
when it is not empty: a missing one means no escapes.

Kinds below 128 are critical (needed to decode the pixels): a reader rejects one it does not know.
Kinds from 128 up are ancillary (PNG's rule): a reader skips one it does not know, so later
versions can add metadata without breaking older readers. (Readers older than the metadata kinds
rejected every unknown kind.)

Every coded section names its tile, so a later version can split huge images into independently
decodable tiles (bounded memory, parallel decoding) with the same container; current writers
emit a single tile 0, so this reader rejects a tile size, a tile other than 0 and a section
kind that appears twice: no writer of versions 1 and 2 produces them, only a damaged or crafted
file does. The model id must be printable text (it is shown by `info` and in errors).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from enum import IntEnum

from nicodec.bitstream.varint import read_uvarint, write_uvarint

MAGIC = b"\x89NIC\r\n\x1a\n"
VERSION = 2
READABLE = (1, 2)  # format versions this reader parses
ANCILLARY = 128  # section kinds from here up may be skipped by readers that do not know them
MAX_MODEL_ID = 255  # bytes (version 1's u8 length; ids are a name and 17 characters)


class FormatError(ValueError):
    """A file that is not a valid .nic file; the message names the problem."""


def printable(text: str) -> str:
    """`text` with control and other non-printable characters escaped (\\n, \\x1b, \\u202e): text
    from a file or a library error must not reach a terminal or a log as control bytes or lines."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


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
    PREVIEW = 131  # the image at 1/8 of its size, WebP (`codec.preview`): thumbnails without the model


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


_FIXED_V1 = struct.Struct("<BIIBBII")
_ENTRY_V1 = struct.Struct("<BII")


def pack(header: Header, sections: list[Section]) -> bytes:
    """The file bytes (always the current VERSION, whatever `header.version` says)."""
    mid = header.model_id.encode()
    fields = (header.quality, header.width, header.height, MODES.index(header.mode), header.bit_depth,
              header.tile_width, header.tile_height, len(mid))
    body = b"".join(map(write_uvarint, fields)) + mid
    out = bytearray(MAGIC + bytes([VERSION]) + write_uvarint(len(body)) + body)
    out += write_uvarint(len(sections))
    for s in sections:
        out += write_uvarint(int(s.kind)) + write_uvarint(s.tile) + write_uvarint(len(s.data))
    for s in sections:
        out += s.data
    out += struct.pack("<I", zlib.crc32(out))
    return bytes(out)


class _Cursor:
    """Reads a file front to back; running out of bytes is a truncated file."""

    def __init__(self, data: bytes, pos: int) -> None:
        self.data, self.pos = data, pos

    def _truncated(self) -> FormatError:
        return FormatError(f"truncated file ({len(self.data)} bytes, header or payload cut short)")

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise self._truncated()
        self.pos += n
        return self.data[self.pos - n : self.pos]

    def varint(self) -> int:
        try:
            value, self.pos = read_uvarint(self.data, self.pos)
        except ValueError:
            raise self._truncated() from None
        return value


Entry = tuple[int, int, int]  # a table entry: kind, tile, length


def _header_and_table(cur: _Cursor, version: int) -> tuple[tuple[int, ...], bytes, list[Entry]]:
    """(quality, width, height, mode, bit depth, tile width, tile height), model id bytes and
    (kind, tile, length) per section, in either version's encoding."""
    if version == 1:
        (hlen,) = struct.unpack("<H", cur.take(2))
        body = cur.take(hlen)
        if hlen < _FIXED_V1.size + 1:
            raise FormatError("corrupt header (too short)")
        fields = _FIXED_V1.unpack_from(body)
        mid = body[_FIXED_V1.size + 1 : _FIXED_V1.size + 1 + body[_FIXED_V1.size]]
        if len(mid) != body[_FIXED_V1.size]:
            raise FormatError("corrupt header")
        (count,) = struct.unpack("<H", cur.take(2))
        return fields, mid, [_ENTRY_V1.unpack(cur.take(_ENTRY_V1.size)) for _ in range(count)]
    head = _Cursor(cur.take(cur.varint()), 0)
    try:
        *fields, mlen = (head.varint() for _ in range(8))
        mid = head.take(mlen)
    except FormatError:
        raise FormatError("corrupt header (too short)") from None
    if head.pos != len(head.data):
        raise FormatError("corrupt header (unexpected bytes)")
    return tuple(fields), mid, [(cur.varint(), cur.varint(), cur.varint()) for _ in range(cur.varint())]


def unpack(data: bytes) -> tuple[Header, list[Section]]:
    """Parse and verify a .nic file (format version 1 or 2); raises FormatError naming what is wrong."""
    if not data.startswith(MAGIC):
        if MAGIC.startswith(data):
            raise FormatError("truncated file (shorter than the magic bytes)")
        raise FormatError("not a .nic file (bad magic bytes)")
    cur = _Cursor(data, len(MAGIC))
    version = cur.take(1)[0]
    if version not in READABLE:
        raise FormatError(f"unsupported .nic format version {version} (this nicodec reads "
                          f"versions {', '.join(map(str, READABLE))})")
    (q, w, h, mode, depth, tw, th), mid, entries = _header_and_table(cur, version)
    sections = [(kind, tile, cur.take(length)) for kind, tile, length in entries]
    crc_raw = cur.take(4)
    if cur.pos != len(data):
        raise FormatError(f"corrupt file ({len(data) - cur.pos} unexpected trailing bytes)")
    if struct.unpack("<I", crc_raw)[0] != zlib.crc32(data[: cur.pos - 4]):
        raise FormatError("checksum mismatch: the file is corrupt")
    if mode >= len(MODES) or not (w and h) or not 1 <= q <= 100 or depth > 255:
        raise FormatError("corrupt header")
    if len(mid) > MAX_MODEL_ID:
        raise FormatError(f"corrupt header (model id of {len(mid)} bytes, over {MAX_MODEL_ID})")
    if tw or th:
        raise FormatError(f"unsupported tiling ({tw}x{th} tiles; this nicodec reads one-tile files)")
    known = {k.value for k in Kind}
    unknown = sorted({k for k, _, _ in sections if k not in known and k < ANCILLARY})
    if unknown:
        raise FormatError(f"unknown section kind {unknown[0]} (written by a newer nicodec?)")
    parsed = [Section(Kind(k), p, t) for k, t, p in sections if k in known]
    seen = set()
    for s in parsed:
        if s.tile:
            raise FormatError(f"corrupt file ({s.kind.name.lower()} section of tile {s.tile}, "
                              "this nicodec writes tile 0 only)")
        if s.kind in seen:
            raise FormatError(f"corrupt file (duplicate {s.kind.name.lower()} section)")
        seen.add(s.kind)
    try:
        model_id = mid.decode()
    except UnicodeDecodeError:
        raise FormatError("corrupt header (model id is not UTF-8)") from None
    if not model_id.isprintable():
        raise FormatError(f"corrupt header (model id '{printable(model_id)}' is not printable text)")
    header = Header(model_id, q, w, h, MODES[mode], depth, tw, th, version)
    return header, parsed

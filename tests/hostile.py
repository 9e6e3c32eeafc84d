"""Crafted .nic files an attacker would send, and a mutator: shared by the decoder's tests, the
fuzz test and `benchmarks/fuzz.py`.

Every file here is built from a real small encode, re-packed with a valid CRC, so that it gets
past the checksum to the part of the decoder it targets.
"""

from __future__ import annotations

import io
import random
import struct
import zlib
from collections.abc import Callable

import numpy as np
from PIL import Image

from nicodec import compress, decompress
from nicodec.bitstream.container import MAGIC, FormatError, Kind, Section, pack, unpack


def png_claiming(width: int, height: int) -> bytes:
    """A 1x1 grayscale PNG whose IHDR (CRC fixed) claims width x height: a decompression bomb."""
    buf = io.BytesIO()
    Image.new("L", (1, 1)).save(buf, format="PNG")
    png = bytearray(buf.getvalue())
    png[16:24] = struct.pack(">II", width, height)
    png[29:33] = struct.pack(">I", zlib.crc32(bytes(png[12:29])))
    return bytes(png)


def with_header(data: bytes, **fields: object) -> bytes:
    """`data` re-packed with header fields replaced (a valid CRC)."""
    header, sections = unpack(data)
    for key, value in fields.items():
        setattr(header, key, value)
    return pack(header, sections)


def with_sections(data: bytes, edit: Callable[[list[Section]], list[Section]]) -> bytes:
    header, sections = unpack(data)
    return pack(header, edit(sections))


def replaced(kind: Kind, payload: bytes) -> Callable[[list[Section]], list[Section]]:
    return lambda sections: [Section(kind, payload) if s.kind == kind else s for s in sections]


def seeds(image: Image.Image) -> dict[str, bytes]:
    """Valid files to mutate: RGB and RGBA encodes of `image` (small: each decode is fast)."""
    rgba = np.dstack([np.asarray(image.convert("RGB")), np.tile(np.arange(image.width, dtype=np.uint8),
                                                                  (image.height, 1))])
    return {"rgb": compress(image, quality=50), "rgba": compress(rgba, quality=50)}


def crafted(seed: dict[str, bytes]) -> dict[str, bytes]:
    """Hostile files by name: header bombs, padded bombs, alpha bombs, duplicate sections, huge
    escapes, hostile model ids."""
    rgb, rgba = seed["rgb"], seed["rgba"]
    h = unpack(rgb)[0]
    return {
        "header_bomb_2048": with_header(rgb, width=2048, height=2048),
        "header_bomb_8192": with_header(rgb, width=8192, height=8192),
        "header_bomb_max": with_header(rgb, width=(1 << 32) - 1, height=(1 << 32) - 1),
        "padded_bomb_1xN": with_header(rgb, width=1, height=1 << 26),
        "padded_bomb_Nx1": with_header(rgb, width=1 << 26, height=1),
        "alpha_bomb": with_sections(rgba, replaced(Kind.ALPHA, png_claiming(60000, 60000))),
        "alpha_wrong_size": with_sections(rgba, replaced(Kind.ALPHA, png_claiming(3, 3))),
        "alpha_not_png": with_sections(rgba, replaced(Kind.ALPHA, b"GIF89a" + bytes(40))),
        "alpha_missing": with_sections(rgba, lambda s: [x for x in s if x.kind != Kind.ALPHA]),
        "duplicate_y": with_sections(rgb, lambda s: s + [x for x in s if x.kind == Kind.Y]),
        "tile_1": with_sections(rgb, lambda s: [Section(x.kind, x.data, 1) for x in s]),
        "huge_escapes": with_sections(rgb, lambda s: s + [Section(Kind.Y_ESCAPES, b"\xff" * 9 + b"\x7f")]),
        "many_escapes": with_sections(rgb, lambda s: s + [Section(Kind.Y_ESCAPES, b"\x80\x01" * 50000)]),
        "model_id_ansi": with_header(rgb, model_id=h.model_id + "\x1b[31m\x07"),
        "model_id_newline": with_header(rgb, model_id="checkerboard-\nFAKE"),
        "model_id_unknown": with_header(rgb, model_id="checkerboard-0123456789abcdef"),
        "model_id_long": with_header(rgb, model_id="x" * 100_000),
        "empty_payloads": with_sections(rgb, lambda s: [Section(x.kind, b"") for x in s]),
        "quality_0": with_header(rgb, quality=0),
        "quality_255": with_header(rgb, quality=255),
        "lying_length": rgb[:len(MAGIC) + 1] + b"\xff" * 10 + rgb[len(MAGIC) + 11:],
    }


def mutate(data: bytes, rng: random.Random) -> bytes:
    """A random mutation of a file: half the time of its parsed sections and header fields
    (re-packed, so that the decoder behind the parser is reached), else of its bytes (bit flips,
    byte changes, cuts, insertions, big varints), usually with the CRC recomputed."""
    if rng.random() < 0.5:
        try:
            return _mutate_sections(data, rng)
        except FormatError:  # a crafted file the parser refuses: mutate its bytes
            pass
    buf = bytearray(data[:-4])
    for _ in range(rng.choice((1, 1, 2, 4, 16))):
        if len(buf) <= len(MAGIC) + 1:  # cut down to its magic by earlier deletions: grow again
            buf.append(rng.randrange(256))
        op, at = rng.randrange(5), rng.randrange(len(MAGIC) + 1, len(buf))
        if op == 0:
            buf[at] ^= 1 << rng.randrange(8)
        elif op == 1:
            buf[at] = rng.choice((0, 0x7F, 0x80, 0xFF, rng.randrange(256)))
        elif op == 2:
            del buf[at:at + rng.randrange(1, 16)]
        elif op == 3:
            buf[at:at] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 8)))
        else:
            buf[at:at + 1] = b"\xff" * rng.randrange(1, 10) + b"\x01"  # a big varint
    if rng.random() < 0.1:
        return bytes(buf) + data[-4:]  # stale CRC: the checksum must catch it
    return bytes(buf) + struct.pack("<I", zlib.crc32(bytes(buf)))


def outcome(data: bytes, max_pixels: int | None) -> str:
    """What decoding `data` did: "decoded", "FormatError", "MemoryError" (says so, one line), or
    "CRASH <type>: <message>" for anything else (a bug: every hostile file is a FormatError)."""
    try:
        decompress(data, max_pixels=max_pixels)
    except FormatError as err:
        return "FormatError" if "\n" not in str(err) and str(err).isprintable() else "CRASH unprintable"
    except MemoryError:
        return "MemoryError"
    except Exception as err:  # noqa: BLE001 - the point is to find them
        return f"CRASH {type(err).__name__}: {str(err)[:200]}"
    return "decoded"


def _mutate_sections(data: bytes, rng: random.Random) -> bytes:
    header, sections = unpack(data)
    if sections:
        section = rng.choice(sections)
        payload = bytearray(section.data)
        for _ in range(rng.choice((1, 2, 8)) if payload else 0):
            payload[rng.randrange(len(payload))] ^= 1 << rng.randrange(8)
        if rng.random() < 0.3:
            del payload[rng.randrange(len(payload) + 1):]
        section.data = bytes(payload)
    if rng.random() < 0.2:
        field = rng.choice(("width", "height", "quality", "mode"))
        size = rng.randrange(1, 1 << rng.randrange(1, 16))
        value = {"width": size, "height": size, "quality": rng.randrange(1, 101),
                 "mode": rng.choice(("L", "RGB", "RGBA", "LA"))}[field]
        setattr(header, field, value)
    return pack(header, sections)

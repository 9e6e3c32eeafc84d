"""The .nic container rejects every kind of damage with a message naming it."""

from __future__ import annotations

import io
import re
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from nicodec import compress, decompress
from nicodec.bitstream.container import MAGIC, VERSION, FormatError, Header, Kind, Section, pack, unpack
from nicodec.bitstream.varint import read_varints

V1_FILE = Path(__file__).parent / "data" / "v1_hyperprior_48x32.nic"  # written by the version-1 writer


@pytest.fixture(scope="module")
def nic(crop) -> bytes:
    return compress(crop, quality=50)


def test_pack_unpack_roundtrip():
    header = Header("m-0123", 42, 17, 5, "LA", 16)
    sections = [Section(Kind.Z, b"abc"), Section(Kind.Y, b""), Section(Kind.ALPHA, b"x")]
    h, s = unpack(pack(header, sections))
    assert h == header and s == sections


@pytest.mark.parametrize("header,sections,message", [
    (Header("m-1", 50, 64, 64, "RGB"), [Section(Kind.Z, b"a"), Section(Kind.Z, b"b")], "duplicate z section"),
    (Header("m-1", 50, 64, 64, "RGB"), [Section(Kind.Y, b"a", tile=3)], "y section of tile 3"),
    (Header("m-1", 50, 64, 64, "RGB", tile_width=64, tile_height=64), [], "unsupported tiling"),
    (Header("m-1\x1b[2J\n", 50, 64, 64, "RGB"), [], "model id 'm-1\\x1b[2J\\n' is not printable"),
    (Header("m-\u202e1", 50, 64, 64, "RGB"), [], "not printable"),
])
def test_sections_and_fields_no_writer_produces_are_rejected(header, sections, message):
    with pytest.raises(FormatError, match=re.escape(message)):
        unpack(pack(header, sections))


def test_an_escape_value_over_64_bits_is_a_corrupt_stream():
    with pytest.raises(ValueError, match="corrupt escape stream"):
        read_varints(b"\xff" * 9 + b"\x7f", 1)  # 70 bits
    assert read_varints(b"\xff" * 9 + b"\x01", 1)[0] == -(1 << 63)  # 64 bits: the extreme int64


def test_framing_is_small_and_empty_escape_sections_are_left_out(nic):
    """Everything but the payloads (magic, header with the model id, table, CRC) stays near 60
    bytes: at 0.1 bpp a 768x512 image is 4.9 kB, and version 1's 120 bytes were 2.4 % of it."""
    header, sections = unpack(nic)
    assert header.version == VERSION == 2
    assert all(s.data for s in sections)
    assert {s.kind for s in sections} >= {Kind.Z, Kind.Y, Kind.Y2}
    assert len(nic) - sum(len(s.data) for s in sections) <= 36 + len(header.model_id)


def test_version_1_files_still_decode():
    old = V1_FILE.read_bytes()
    header, sections = unpack(old)
    assert (header.version, header.model_id.split("-")[0], header.quality, header.width,
            header.height, header.mode) == (1, "hyperprior", 50, 48, 32, "RGB")
    assert [s.kind for s in sections] == [Kind.Z, Kind.Z_ESCAPES, Kind.Y, Kind.Y_ESCAPES]
    assert sections[1].data == sections[3].data == b""
    new = pack(header, [s for s in sections if s.data])
    assert unpack(new)[1] == [s for s in sections if s.data] and unpack(new)[0].version == 2
    assert len(old) - len(new) >= 40  # 232 -> 188 bytes
    img = decompress(old)
    assert img.size == (48, 32) and img.tobytes() == decompress(new).tobytes()


def test_cut_or_crafted_version_1_files_are_rejected():
    old = V1_FILE.read_bytes()
    for n in range(len(old)):
        with pytest.raises(FormatError):
            unpack(old[:n])
    body = bytearray(old[:-4])
    body[len(MAGIC) + 1 : len(MAGIC) + 3] = struct.pack("<H", 3)  # header too short for its fields
    with pytest.raises(FormatError, match="corrupt header|truncated"):
        unpack(bytes(body) + struct.pack("<I", zlib.crc32(body)))


def test_wrong_magic(nic):
    with pytest.raises(FormatError, match="bad magic"):
        unpack(b"GIF89a" + nic[6:])


def test_unknown_version(nic):
    bad = bytearray(nic)
    bad[len(MAGIC)] = 9
    with pytest.raises(FormatError, match="version 9"):
        unpack(bytes(bad))


def test_bad_checksum(nic):
    bad = bytearray(nic)
    bad[len(bad) // 2] ^= 0x40
    with pytest.raises(FormatError, match="checksum|corrupt"):
        unpack(bytes(bad))


def test_every_truncation_is_rejected(nic):
    for n in range(0, len(nic), max(1, len(nic) // 97)):
        with pytest.raises(FormatError):
            decompress(nic[:n])


def test_unknown_model(nic):
    header, sections = unpack(nic)
    header.model_id = "hyperprior-0000000000000000"
    with pytest.raises(FormatError, match="unknown model"):
        decompress(pack(header, sections))


def test_corrupt_payload_with_valid_crc_fails_cleanly(nic):
    header, sections = unpack(nic)
    for s in sections:
        if s.kind == Kind.Y:
            s.data = s.data[:-4]
    data = pack(header, sections)
    try:
        img = decompress(data)  # ANS may decode garbage without noticing; that is allowed
    except FormatError:
        return
    assert img.size == (header.width, header.height)


def test_trailing_bytes_are_rejected(nic):
    body = nic[:-4] + b"\0"
    with pytest.raises(FormatError):
        unpack(body + struct.pack("<I", zlib.crc32(body)))


def test_absurd_dimensions_are_refused_before_decoding(nic):
    header, sections = unpack(nic)
    header.width = header.height = 100_000
    with pytest.raises(FormatError, match="too large"):
        decompress(pack(header, sections))


def test_section_kinds_keep_their_numbers():
    """Kinds are on disk: new ones are appended, never renumbered (in every format version)."""
    assert {k.name: k.value for k in Kind} == {
        "Z": 1, "Z_ESCAPES": 2, "Y": 3, "Y_ESCAPES": 4, "ALPHA": 5, "Y2": 6, "Y2_ESCAPES": 7,
        "ICC": 128, "EXIF": 129, "XMP": 130, "PREVIEW": 131}


def test_unknown_ancillary_kinds_are_skipped_unknown_critical_ones_rejected(nic, crop):
    header, sections = unpack(nic)
    later = pack(header, [*sections, Section(200, b"a future version's metadata")])
    assert [s.kind for s in unpack(later)[1]] == [s.kind for s in sections]
    assert decompress(later).tobytes() == decompress(nic).tobytes()
    with pytest.raises(FormatError, match="unknown section kind 60"):
        unpack(pack(header, [*sections, Section(60, b"needed to decode")]))


@pytest.fixture(scope="module")
def tagged_nic(tagged) -> bytes:
    return compress(Image.open(io.BytesIO(tagged)), quality=50)


@pytest.mark.parametrize("kind", [Kind.ICC, Kind.EXIF, Kind.XMP])
def test_damaged_or_cut_metadata_is_rejected(tagged_nic, kind):
    at = tagged_nic.index(next(s.data for s in unpack(tagged_nic)[1] if s.kind == kind)) + 3
    flipped = bytearray(tagged_nic)
    flipped[at] ^= 0x10
    with pytest.raises(FormatError, match="checksum"):
        decompress(bytes(flipped))
    with pytest.raises(FormatError, match="truncated"):
        decompress(tagged_nic[:at])


@pytest.mark.parametrize("kind,data", [(Kind.ICC, b"not a profile"), (Kind.EXIF, b"Exif\0\0II*\0garbage"),
                                       (Kind.EXIF, b"MM\0*\0\0\0\x08\0\0")])
def test_crafted_metadata_with_a_valid_crc_is_a_format_error(tagged_nic, kind, data):
    header, sections = unpack(tagged_nic)
    for s in sections:
        if s.kind == kind:
            s.data = data
    with pytest.raises(FormatError, match=f"corrupt {kind.name.lower()} section"):
        decompress(pack(header, sections))


@pytest.mark.parametrize("kind", [Kind.Z, Kind.Y, Kind.Y2])
def test_a_missing_coded_section_is_named(nic, kind):
    header, sections = unpack(nic)
    with pytest.raises(FormatError, match=f"missing {kind.name.lower()} section"):
        decompress(pack(header, [s for s in sections if s.kind != kind]))

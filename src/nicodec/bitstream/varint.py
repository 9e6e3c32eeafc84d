"""LEB128 varints: the container's header fields and the zigzag-coded escape side stream."""

from __future__ import annotations

import numpy as np


def write_uvarint(u: int) -> bytes:
    """An unsigned integer in 7-bit groups, low group first; small values take one byte."""
    if u < 0:
        raise ValueError(f"uvarint of a negative number: {u}")
    out = bytearray()
    while u >= 0x80:
        out.append((u & 0x7F) | 0x80)
        u >>= 7
    out.append(u)
    return bytes(out)


def read_uvarint(data: bytes, pos: int) -> tuple[int, int]:
    """(value, position after it); a cut-short or over-long (> 64-bit) varint raises ValueError."""
    u = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated or over-long varint")
        byte = data[pos]
        pos += 1
        u |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            if u >> 64:
                raise ValueError("over-long varint (more than 64 bits)")
            return u, pos


def write_varints(values: np.ndarray) -> bytes:
    """Signed values, zigzag-mapped (0, -1, 1, -2, ... -> 0, 1, 2, 3, ...) so small magnitudes stay short."""
    return b"".join(write_uvarint(2 * v if v >= 0 else -2 * v - 1) for v in values.tolist())


def read_varints(data: bytes, count: int) -> np.ndarray:
    """Exactly `count` values; a short or over-long stream is a corrupt file (values fit int64:
    `read_uvarint` stops at 64 bits)."""
    values, pos = [], 0
    try:
        for _ in range(count):
            u, pos = read_uvarint(data, pos)
            values.append((u >> 1) ^ -(u & 1))
    except ValueError:
        raise ValueError("corrupt escape stream") from None
    if pos != len(data):
        raise ValueError("corrupt escape stream: trailing bytes")
    return np.array(values, dtype=np.int64)

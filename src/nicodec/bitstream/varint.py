"""Zigzag LEB128 varints: the escape side stream (rare, so simplicity beats density)."""

from __future__ import annotations

import numpy as np


def write_varints(values: np.ndarray) -> bytes:
    out = bytearray()
    for v in values.tolist():
        u = 2 * v if v >= 0 else -2 * v - 1
        while u >= 0x80:
            out.append((u & 0x7F) | 0x80)
            u >>= 7
        out.append(u)
    return bytes(out)


def read_varints(data: bytes, count: int) -> np.ndarray:
    """Exactly `count` values; a short or over-long stream is a corrupt file."""
    values, pos = [], 0
    for _ in range(count):
        u = shift = 0
        while True:
            if pos >= len(data) or shift > 63:
                raise ValueError("corrupt escape stream")
            byte = data[pos]
            pos += 1
            u |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        values.append((u >> 1) ^ -(u & 1))
    if pos != len(data):
        raise ValueError("corrupt escape stream: trailing bytes")
    return np.array(values, dtype=np.int64)

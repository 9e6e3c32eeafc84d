"""Give freed memory back to the operating system between the steps of a large image.

glibc's malloc keeps freed blocks in its arenas (one for each thread that allocates), and the
next step's buffers often land beside them rather than in them: the tiles, bands and passes of
a 24-megapixel image left a decoding process holding hundreds of MB it no longer used (peak
1,566 MB; 1,234 MB with a trim after each tile and pass: `docs/DESIGN.md`, item 7). `malloc_trim`
returns the free pages of every arena without changing how anything is allocated; where there
is no glibc it is a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS, Windows)
        return None


_TRIM = _malloc_trim()
# Only a large image is worth it (a trim costs page faults later): one of this many tiles, or a
# coding pass of this many symbols (a 24 MP image has ~100 synthesis tiles and 15M-symbol passes;
# a Kodak image 2 tiles and 250k-symbol passes).
MANY_TILES = 8
BIG_PASS = 1 << 22


def release() -> None:
    """Return the free memory of every malloc arena to the operating system (glibc)."""
    if _TRIM is not None:
        _TRIM(0)

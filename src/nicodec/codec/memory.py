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
import os
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
# Growth of the resident set since the last trim that a tile may leave before the next trim: a
# trim costs page faults when the memory is used again (after each of `fast`'s 24 MP synthesis
# tiles, which free about 20 MB that the next tile reuses, it cost ~1 s); the default model's
# larger tiles reach it sooner.
RETAINED = 96 << 20
_resident_after_trim = [0]


def _resident() -> int:
    """Resident bytes of this process (Linux; 0 elsewhere)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def release(retained: int = 0) -> None:
    """Return the free memory of every malloc arena to the operating system (glibc); with
    `retained`, only once the process has grown by that much since the last trim."""
    if _TRIM is None:
        return
    if retained and _resident() < _resident_after_trim[0] + retained:
        return
    _TRIM(0)
    _resident_after_trim[0] = _resident()

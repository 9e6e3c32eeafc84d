"""Progress bars for long single-image work (effort levels, rate control, `compare`).

The library is silent unless a caller turns bars on with `shown(True)`; the CLI does so only for a
terminal without `--json`, so scripts and pipes never see them. Bars go to stderr (tqdm's default).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tqdm import tqdm

_SHOWN: ContextVar[bool] = ContextVar("nicodec_progress", default=False)
# Encoding seconds per megapixel by effort level: speed.md (24 MP, 2 threads) and effort.md (1 thread).
ENCODE_SECONDS_PER_MEGAPIXEL = {1: 8.3, 2: 440.0, 3: 880.0}


@contextmanager
def shown(on: bool) -> Iterator[None]:
    """Show the bars of the work done inside this block (when `on`)."""
    token = _SHOWN.set(on)
    try:
        yield
    finally:
        _SHOWN.reset(token)


def bar(total: int, desc: str, unit: str = "it") -> tqdm:
    """A tqdm bar that draws only inside `shown(True)` (a disabled tqdm costs nothing)."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, leave=False, disable=not _SHOWN.get())


def expected_encode_seconds(pixels: int, effort: int) -> float:
    return pixels / 1e6 * ENCODE_SECONDS_PER_MEGAPIXEL[effort]

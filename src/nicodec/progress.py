"""Progress bars for long single-image work (effort levels, rate control, `compare`, and the
tiles and entropy-model bands of a large image).

The library is silent unless a caller turns bars on with `shown(True)`; the CLI does so only for a
terminal without `--json`, so scripts and pipes never see them. Bars go to stderr (tqdm's default);
those of tiles and bands appear only once their work has taken a second (`DELAY_SECONDS`), so a
small image shows none.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from tqdm import tqdm

T = TypeVar("T")
_SHOWN: ContextVar[bool] = ContextVar("nicodec_progress", default=False)
DELAY_SECONDS = 1.0
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


def bar(total: int, desc: str, unit: str = "it", delay: float = 0.0) -> tqdm:
    """A tqdm bar that draws only inside `shown(True)` (a disabled tqdm costs nothing), once its
    work has taken `delay` seconds."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, leave=False, delay=delay, disable=not _SHOWN.get())


def tracked(items: Iterable[T], total: int, desc: str, unit: str = "it") -> Iterator[T]:
    """`items` as they come, counted on a `bar` that a small image's quick work never draws
    (call from the thread that made the `shown` block). Outside `shown(True)` no bar is made at
    all: a disabled tqdm still takes tqdm's process-wide lock as it opens and closes."""
    if not _SHOWN.get():
        yield from items
        return
    with bar(total, desc, unit, DELAY_SECONDS) as shown:
        for item in items:
            yield item
            shown.update()


def expected_encode_seconds(pixels: int, effort: int) -> float:
    return pixels / 1e6 * ENCODE_SECONDS_PER_MEGAPIXEL[effort]

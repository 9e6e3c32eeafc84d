"""Tile-by-tile analysis and synthesis, so memory stays bounded whatever the image size, and
tiles run in parallel, one thread each.

The transforms are convolutional: an output position depends only on a small window of the input.
`run_tiles` cuts the output into a grid of tiles and has a backend (`codec.backend`) compute each
from just the input it needs (with `torch`, layer by layer: `models.stages`). The grid depends on
the image size only, and every tile runs on one thread, so decoded pixels are a function of the
file, the machine and the backend, never of how many tiles run at once. That thread limit is set
per worker thread (OpenMP's setting is per thread), so the caller's own torch thread setting is
never touched and `decompress` may be called from several threads at once.

`apply_tiled` is the older scheme for code that needs a whole model per tile (encoder-side
refinement, with gradients): tiles on the latent grid, each run with a margin of overlap wide
enough to cover its window, only the inner part kept.
"""

from __future__ import annotations

import ctypes
import glob
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import TypeVar

import numpy as np
import torch

from nicodec import progress
from nicodec.codec import memory
from nicodec.models.stages import Window

SYNTHESIS_TILE = 512  # output pixels per tile side (at most): ~150 MB of activations per tile
ANALYSIS_TILE = 32  # latent positions per tile side (512 pixels)

TILE = 96  # latent positions per tile side: 1536 pixels, about 1.5 GB of activations at most
MARGIN = 2  # overlap per side: four stride-2 layers with 5x5 kernels reach under 2 positions
# (a model with residual blocks needs more: its `tile_margin`)

Box = tuple[int, int, int, int]  # top, bottom, left, right
T = TypeVar("T")


def tiles(height: int, width: int, tile: int = TILE, margin: int = MARGIN) -> Iterator[tuple[Box, Box]]:
    """(outer, inner) windows on a height x width latent grid: inner tiles partition the grid,
    each outer window is its inner tile grown by `margin` and clipped to the grid."""
    for top in range(0, height, tile):
        for left in range(0, width, tile):
            inner = (top, min(top + tile, height), left, min(left + tile, width))
            outer = (max(top - margin, 0), min(top + tile + margin, height),
                     max(left - margin, 0), min(left + tile + margin, width))
            yield outer, inner


def apply_tiled(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, grid: tuple[int, int],
                scale_in: int, scale_out: int, tile: int = TILE, margin: int = MARGIN) -> torch.Tensor:
    """fn applied to x in overlapping tiles of a `grid`-sized latent grid; x and the output are
    `scale_in` and `scale_out` pixels per grid position (stride, 1 for analysis; 1, stride for
    synthesis)."""
    out = None
    for (t0, b0, l0, r0), (t1, b1, l1, r1) in tiles(*grid, tile, margin):
        part = fn(x[..., t0 * scale_in:b0 * scale_in, l0 * scale_in:r0 * scale_in])
        if out is None:
            out = part.new_empty(*part.shape[:2], grid[0] * scale_out, grid[1] * scale_out)
        out[..., t1 * scale_out:b1 * scale_out, l1 * scale_out:r1 * scale_out] = part[
            ..., (t1 - t0) * scale_out:(b1 - t0) * scale_out, (l1 - l0) * scale_out:(r1 - l0) * scale_out]
    assert out is not None
    return out


def split(length: int, target: int) -> list[tuple[int, int]]:
    """[0, length) in the fewest near-equal parts of at most `target`."""
    parts = -(-length // target)
    bounds = [round(i * length / parts) for i in range(parts + 1)]
    return list(zip(bounds, bounds[1:], strict=False))


def tensor_source(x: torch.Tensor) -> Callable[[Window], torch.Tensor]:
    return lambda w: x[..., w[0][0]:w[0][1], w[1][0]:w[1][1]]


def image_source(x: torch.Tensor | np.ndarray, multiple: int) -> tuple[Callable[[Window], torch.Tensor],
                                                                       tuple[int, int]]:
    """(window -> [1, 3, h, w] float in [0, 1], padded size): a padded image tensor as it is, or
    H x W x 3 uint8 pixels, edge-padded to a multiple of `multiple` only where a window reads
    (`image.to_tensor` pads the same way), so no padded float copy of a large image exists."""
    if isinstance(x, torch.Tensor):
        return tensor_source(x), tuple(x.shape[2:])
    h, w = x.shape[:2]

    def source(win: Window) -> torch.Tensor:
        rows = np.minimum(np.arange(*win[0]), h - 1)
        cols = np.minimum(np.arange(*win[1]), w - 1)
        part = torch.from_numpy(x[rows[:, None], cols[None, :]])
        return (part.permute(2, 0, 1)[None].float() / 255.0).contiguous(memory_format=torch.channels_last)

    return source, (-(-h // multiple) * multiple, -(-w // multiple) * multiple)


@cache
def _openmp() -> ctypes.CDLL | None:
    """The OpenMP runtime torch runs on (its thread setting is per calling thread)."""
    for name in ("libgomp*.so*", "libiomp5*.so*", "libomp*.so*"):
        for path in glob.glob(os.path.join(os.path.dirname(torch.__file__), "lib", name)):
            try:
                return ctypes.CDLL(path)
            except OSError:
                continue
    return None


def _one_thread() -> None:
    """Worker initializer: torch's per-thread set-up first (it would reset the setting), then
    one OpenMP thread for this worker thread alone."""
    torch.get_num_threads()
    _openmp().omp_set_num_threads(1)


def on_one_thread(fn: Callable[[], T]) -> T:
    """fn() on a worker thread with one OpenMP thread, as a tile runs: what it computes does not
    depend on the caller's thread setting, and small work does not wait on idle threads (a 128x128
    eigendecomposition took 0.9 s on two threads beside a busy process, 1 ms alone)."""
    if _openmp() is None:
        return fn()
    with ThreadPoolExecutor(1, initializer=_one_thread) as pool:
        return pool.submit(fn).result()


def run_tiles(compute: Callable[[Window], torch.Tensor], out_size: tuple[int, int], tile: int,
              threads: int | None = None, to_pixels: bool = False, desc: str = "tiles"
              ) -> torch.Tensor | np.ndarray:
    """A transform's output over [0, out_size) (a crop of its full output), `compute(window)` tile
    by tile (`codec.backend`), as many tiles at once as `threads` (default: torch's setting), each
    on one thread; a large image's tiles are counted on a progress bar named `desc`.

    Returns a float tensor [1, C, H, W], or with `to_pixels` H x W x C uint8 (values in [0, 1]
    scaled and rounded tile by tile, so no float copy of the whole image exists)."""
    windows = [(r, c) for r in split(out_size[0], tile) for c in split(out_size[1], tile)]
    out = None
    allocate = threading.Lock()

    def work(win: Window) -> None:
        nonlocal out
        with torch.no_grad():
            part = compute(win)
        if to_pixels:
            part = part[0].permute(1, 2, 0).mul(255).round().clamp(0, 255).to(torch.uint8).numpy()
        with allocate:
            if out is None:
                out = (np.empty((*out_size, part.shape[2]), np.uint8) if to_pixels
                       else part.new_empty(*part.shape[:2], *out_size))
        if to_pixels:
            out[win[0][0]:win[0][1], win[1][0]:win[1][1]] = part
        else:
            out[..., win[0][0]:win[0][1], win[1][0]:win[1][1]] = part
        del part
        if len(windows) >= memory.MANY_TILES:
            memory.release(memory.RETAINED)  # the tile's buffers, before the next tile's land beside them

    if _openmp() is None:  # no per-thread setting to be had: one tile at a time, torch's threads
        for _ in progress.tracked(map(work, windows), len(windows), desc, "tile"):
            pass
        return out
    with ThreadPoolExecutor(min(threads or torch.get_num_threads(), len(windows)),
                            initializer=_one_thread) as pool:
        for _ in progress.tracked(pool.map(work, windows), len(windows), desc, "tile"):
            pass  # counted here, in the caller's thread, where its progress setting lives
    return out

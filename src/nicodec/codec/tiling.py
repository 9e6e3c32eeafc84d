"""Tile-by-tile analysis and synthesis, so memory stays bounded whatever the image size.

The transforms are convolutional: an output position depends only on a small window of the input.
Each tile is therefore run with a margin of overlap wide enough to cover that window, and only its
inner part is kept. The tiling grid is fixed (it depends on the image size only), so the decoded
pixels are a function of the file alone. Tiles are defined on the latent grid; one latent position
covers `stride` x `stride` pixels.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch

TILE = 96  # latent positions per tile side: 1536 pixels, about 1.5 GB of activations at most
MARGIN = 2  # overlap per side: four stride-2 layers with 5x5 kernels reach under 2 positions
# (a model with residual blocks needs more: its `tile_margin`)

Window = tuple[int, int, int, int]  # top, bottom, left, right


def tiles(height: int, width: int, tile: int = TILE, margin: int = MARGIN) -> Iterator[tuple[Window, Window]]:
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

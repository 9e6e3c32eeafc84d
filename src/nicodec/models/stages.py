"""A transform as a chain of stages with known geometry, so any window of its output can be
computed exactly from just the input it depends on.

Tiling a convolutional transform by cutting its input into overlapping tiles recomputes the whole
overlap at every layer: with the 4-position margin the synthesis needs, a 512-pixel tile costs
56 % more than its own pixels. Here each stage knows which input window an output window needs
(its kernel, stride and 'same' padding), so a tile asks every layer for only the rows and columns
that the next layer uses: the overlap shrinks layer by layer and costs a few percent. A window that
reaches past the border of the image gets the zero padding the whole-image layer would have used,
so a tile's pixels are those of the whole-image transform (up to float summation order).

Transposed convolutions have 'same' geometry: they upsample exactly by their stride, padding
kernel // 2 (`layers.deconv`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F
from torch import nn

from nicodec.models.layers import GDN, ChannelwiseGDN, per_position

Interval = tuple[int, int]  # [start, stop) along one axis
Window = tuple[Interval, Interval]  # rows, columns
Fn = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Stage:
    """One step of a transform: `fn` maps an unpadded input window to its output.

    kind "point" (per position), "conv" (fn is the convolution without padding) or "deconv"
    (`fn(x, padding)` is the transposed convolution with that (rows, columns) padding: its output
    without padding or output padding, less `padding` on each side, which a convolution library
    then never computes); "residual" adds its input to the output of its `body` stages.
    """

    fn: Callable[..., torch.Tensor] | None = None
    kind: str = "point"
    kernel: int = 1
    stride: int = 1
    pad: int = 0  # zero padding of a convolution, on each side
    body: tuple[Stage, ...] = field(default=())

    def size(self, n: int) -> int:
        """Output length along one axis for input length n."""
        if self.kind == "conv":
            return (n + 2 * self.pad - self.kernel) // self.stride + 1
        if self.kind == "deconv":
            return n * self.stride
        return n

    def need(self, out: Interval) -> Interval:
        """The input interval (not clipped to the input) that output interval `out` depends on."""
        lo, hi = out
        k, s, p = self.kernel, self.stride, self.pad
        if self.kind == "conv":
            return s * lo - p, s * (hi - 1) - p + k
        if self.kind == "deconv":
            return -((k - 1 - lo - p) // s), (hi - 1 + p) // s + 1
        if self.kind == "residual":
            return chain_need(self.body, out)
        return out

    def run(self, x: torch.Tensor, have: Window, want: Window, sizes: tuple[int, int]) -> torch.Tensor:
        """Output window `want` from x, the input on window `have` (the clipped `need(want)`)."""
        if self.kind == "conv":
            (u0, u1), (v0, v1) = self.need(want[0]), self.need(want[1])
            pads = (have[1][0] - v0, v1 - have[1][1], have[0][0] - u0, u1 - have[0][1])
            return self.fn(F.pad(x, pads) if any(pads) else x)
        if self.kind == "deconv":  # its whole output starts at stride * start - pad on each axis
            lead = [w[0] - (self.stride * h[0] - self.pad) for w, h in zip(want, have, strict=True)]
            tail = [self.stride * (h[1] - h[0] - 1) + self.kernel - a - (w[1] - w[0])
                    for a, h, w in zip(lead, have, want, strict=True)]
            trim = tuple(map(min, lead, tail))  # dropped on both sides, so never computed
            r, c = (a - t for a, t in zip(lead, trim, strict=True))
            return self.fn(x, trim)[..., r:r + want[0][1] - want[0][0], c:c + want[1][1] - want[1][0]]
        if self.kind == "residual":
            y = run_chain(self.body, x, have, want, sizes)
            if y.untyped_storage().data_ptr() == x.untyped_storage().data_ptr():
                return _crop(x, have, want) + y
            return y.add_(_crop(x, have, want))  # no fresh window-sized tensor (mapped and faulted in)
        return self.fn(_crop(x, have, want))


def _crop(x: torch.Tensor, have: Window, want: Window) -> torch.Tensor:
    (r0, r1), (c0, c1) = ((w[0] - h[0], w[1] - h[0]) for w, h in zip(want, have, strict=True))
    return x[..., r0:r1, c0:c1]


def _clip(interval: Interval, n: int) -> Interval:
    return max(interval[0], 0), min(interval[1], n)


def chain_need(stages: Sequence[Stage], out: Interval) -> Interval:
    """Unclipped input interval of a chain (for geometry: how far a chain reaches)."""
    for stage in reversed(stages):
        out = stage.need(out)
    return out


def chain_size(stages: Sequence[Stage], n: int) -> int:
    for stage in stages:
        n = stage.size(n)
    return n


def plan(stages: Sequence[Stage], sizes: tuple[int, int], want: Window) -> list[Window]:
    """The window of every level (input first, `want` last), each clipped to its level's size."""
    levels = [sizes]
    for stage in stages:
        levels.append(tuple(stage.size(n) for n in levels[-1]))
    windows = [want]
    for stage, level in zip(reversed(stages), reversed(levels[:-1]), strict=True):
        windows.append(tuple(_clip(stage.need(w), n) for w, n in zip(windows[-1], level, strict=True)))
    return windows[::-1]


def run_chain(stages: Sequence[Stage], x: torch.Tensor, have: Window, want: Window,
              sizes: tuple[int, int]) -> torch.Tensor:
    """Output window `want` of the chain from x on window `have` of an input of `sizes`."""
    windows = plan(stages, sizes, want)
    if windows[0] != have:
        x = _crop(x, have, windows[0])
    level = sizes
    for stage, (a, b) in zip(stages, zip(windows, windows[1:], strict=False), strict=True):
        x = stage.run(x, a, b, level)
        level = tuple(stage.size(n) for n in level)
    return x


def run_window(stages: Sequence[Stage], source: Callable[[Window], torch.Tensor],
               sizes: tuple[int, int], want: Window) -> torch.Tensor:
    """Output window `want` of the chain over an input of `sizes`; `source(window)` returns that
    window of the input (so the whole input never has to exist at once)."""
    first = plan(stages, sizes, want)[0]
    return run_chain(stages, source(first), first, want, sizes)


def _spatial_stage(m: nn.Module) -> Stage:
    if isinstance(m, nn.ConvTranspose2d):  # its bias is a stage of its own (`stages_of`)
        return Stage(lambda x, trim: F.conv_transpose2d(x, m.weight, None, m.stride, trim), "deconv",
                     m.kernel_size[0], m.stride[0], m.padding[0])
    if isinstance(m, nn.MaxPool2d):
        return Stage(lambda x: F.max_pool2d(x, m.kernel_size, m.stride), "conv", m.kernel_size, m.stride,
                     m.padding)
    return Stage(lambda x: F.conv2d(x, m.weight, m.bias, m.stride), "conv", m.kernel_size[0], m.stride[0],
                 m.padding[0])


def _is_pointwise(m: nn.Module) -> bool:
    if isinstance(m, nn.Conv2d):
        return m.kernel_size == (1, 1) and m.stride == (1, 1)
    return not isinstance(m, nn.ConvTranspose2d | nn.MaxPool2d | nn.Sequential)


def stages_of(modules: Sequence[nn.Module]) -> list[Stage]:
    """Stages of float layers: (transposed) convolutions, residual blocks (a module with a
    `body`, computing x + body(x)) and per-position layers (1x1 convolutions, activations, GDN),
    consecutive ones merged into one stage; a 1x1 convolution as a matrix product and a GDN
    channel by channel where it can be (same values)."""
    out: list[Stage] = []
    points: list[nn.Module] = []

    def flush() -> None:
        if points:
            out.append(Stage(nn.Sequential(*points)))
            points.clear()

    for m in modules:
        if hasattr(m, "body"):
            flush()
            out.append(Stage(kind="residual", body=tuple(stages_of(m.body))))
        elif _is_pointwise(m):
            points.append(_Pointwise(m) if isinstance(m, nn.Conv2d)
                          else ChannelwiseGDN.of(m) if isinstance(m, GDN) else m)
        else:
            flush()
            out.append(_spatial_stage(m))
            if isinstance(m, nn.ConvTranspose2d) and m.bias is not None:
                # added to the kept window, in place (the deconvolution's own output): PyTorch's
                # channels-last transposed convolution is 1.3-3x slower with a bias than without
                points.append(_Bias(m.bias))
    flush()
    return out


CHUNK_POSITIONS = 4096  # positions a block of rows of a per-position run holds: ~2 MB at 128 channels


def merged(stages: Sequence[Stage]) -> list[Stage]:
    """The chain with each run of consecutive per-position stages (level-affine tables, GDN, a
    projection, the gain), and the convolution before it if there is one, merged into one stage
    that takes a window through them a block of output rows at a time: the run's temporaries stay
    in cache, and neither the convolution's output nor any of the run's is ever as large as the
    window (on a 512-pixel tile the first convolution's output alone is 33 MB, which glibc maps
    fresh, and faults in, at every call). Same values in blocks (float rounding of matrix products
    aside); the chain's geometry is unchanged."""
    out: list[Stage] = []
    run: list[Stage] = []  # a convolution or a per-position stage, then per-position stages

    def flush() -> None:
        if run and (len(run) > 1 or run[0].kind == "point"):
            head, fns = run[0], tuple(s.fn for s in run)
            out.append(replace(head, fn=_by_rows(fns, head.kernel, head.stride)))
        elif run:
            out.append(run[0])
        run.clear()

    for stage in stages:
        if stage.kind != "point":
            flush()
        if stage.kind in ("conv", "point"):
            run.append(stage)
        else:
            out.append(replace(stage, body=tuple(merged(stage.body))) if stage.kind == "residual" else stage)
    flush()
    return out


def _by_rows(fns: tuple[Fn, ...], kernel: int = 1, stride: int = 1) -> Fn:
    """fns in turn on blocks of output rows; the first may be an unpadded convolution (`kernel`,
    `stride`), whose output block [r, r1) reads input rows [stride r, stride (r1 - 1) + kernel)."""
    def run(x: torch.Tensor) -> torch.Tensor:
        height = (x.shape[-2] - kernel) // stride + 1
        width = (x.shape[-1] - kernel) // stride + 1
        step = max(1, CHUNK_POSITIONS // max(width, 1))
        out = None
        for r in range(0, height, step):
            r1 = min(r + step, height)
            y = x[..., r * stride:(r1 - 1) * stride + kernel, :]
            for fn in fns:
                y = fn(y)
            if r1 == height and out is None:  # one block: no copy
                return y
            if out is None:
                out = torch.empty((*y.shape[:2], height, width), dtype=y.dtype, device=y.device,
                                  memory_format=torch.channels_last)
            out[..., r:r1, :] = y
        return out

    return run


class _Pointwise(nn.Module):
    """A 1x1 convolution on a channels-last window as one matrix product (`layers.per_position`:
    a residual block's 128 -> 64 ran at 11 GMAC/s as a convolution)."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        self.weight = conv.weight[:, :, 0, 0].T
        self.bias = conv.bias
        self.conv = conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not x.is_contiguous(memory_format=torch.channels_last):
            return self.conv(x)
        return per_position(x, self.weight, self.bias)


class _Bias(nn.Module):
    """A transposed convolution's bias, added in place to the window its stage kept."""

    def __init__(self, bias: torch.Tensor) -> None:
        super().__init__()
        self.bias = bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.add_(self.bias[None, :, None, None])

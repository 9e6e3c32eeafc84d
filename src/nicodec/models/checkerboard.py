"""Mean-scale hyperprior with a checkerboard context (He et al. 2021): a parallel context model.

Latents split into anchors ((i + j) even) and the rest. Anchors are coded with parameters from
the hyperprior alone; the others additionally see their decoded anchor neighbours through a
masked 5x5 convolution. Both passes are fully parallel, unlike a raster-scan context model, and
both are evaluated exactly by integer networks at decode time.

The entropy network predicts a correction to the hyperprior's (mean, scale), and its last layer
starts at zero: a model warm-started from trained `hyperprior` weights (`nicodec train --init`)
begins exactly where that hyperprior is and only has to learn what the context adds.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nicodec import progress
from nicodec.models.base import LAMBDA_MAX, LAMBDA_MIN, LEVELS, Pass, Passes, Quantize
from nicodec.models.hyperprior import HyperpriorTwin, MeanScaleHyperprior
from nicodec.models.integer import FLOAT32_EXACT, ONE, IntegerSynthesis
from nicodec.models.layers import Conv2d, conv


def anchor_mask(h: int, w: int, device: torch.device | None = None) -> torch.Tensor:
    """1 at anchor positions ((i + j) even), 0 elsewhere, shape [1, 1, h, w]."""
    i = torch.arange(h, device=device)[:, None]
    j = torch.arange(w, device=device)[None, :]
    return ((i + j) % 2 == 0).float()[None, None]


def checkered(x: torch.Tensor, first: int) -> torch.Tensor:
    """The positions of x [rows, W, ...] on one colour of the checkerboard, in raster order, as
    [rows * W / 2, ...]: columns first, first + 2, ... of even rows, the others of odd rows. Two
    strided copies, where a boolean mask gathers position by position (W is even: latent widths
    are multiples of 4)."""
    out = x.new_empty(x.shape[0], x.shape[1] // 2, *x.shape[2:])
    out[0::2] = x[0::2, first::2]
    out[1::2] = x[1::2, 1 - first::2]
    return out.flatten(0, 1)


def place(dest: torch.Tensor, values: torch.Tensor, first: int) -> None:
    """`checkered`'s inverse: values [rows * W / 2, ...] into those positions of dest [rows, W, ...]."""
    v = values.unflatten(0, (dest.shape[0], dest.shape[1] // 2))
    dest[0::2, first::2] = v[0::2]
    dest[1::2, 1 - first::2] = v[1::2]


class CheckerboardConv(Conv2d):
    """5x5 convolution that only sees anchor neighbours of a non-anchor position."""

    def __init__(self, cin: int, cout: int, kernel: int = 5) -> None:
        super().__init__(cin, cout, kernel, padding=kernel // 2)
        k = torch.arange(kernel)
        self.register_buffer("mask", ((k[:, None] + k[None, :]) % 2 == 1).float()[None, None])

    @property
    def effective_weight(self) -> torch.Tensor:
        return self.weight * self.mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.effective_weight, self.bias)


LIVE_TAPS = [(i, j) for i in range(5) for j in range(5) if (i + j) % 2]  # taps that see anchors


class CheckerboardTwin(HyperpriorTwin):
    """Exact decode twin of `CheckerboardHyperprior.code_latent`: the same two passes, each
    network evaluated only where its pass needs it.

    Anchors: the entropy network on the anchor positions, its context input zero (so only the
    hyperprior half of its first layer is multiplied). Non-anchors: the masked context only at
    non-anchor positions and only on its 12 live taps (a matrix product per tap, summed), then
    the entropy network on those positions. Identical integers to the reference evaluation of whole-latent
    convolutions (`IntegerSynthesis.__call__`), for about half the work.
    """

    def __init__(self, integer: dict[str, IntegerSynthesis], thresholds: torch.Tensor) -> None:
        super().__init__(integer, thresholds)
        self.context_layer, = integer["context"].layers
        kernel = self.context_layer.weight.shape[3]
        self.context_weights = [self.context_layer.tap_weights[i * kernel + j] for i, j in LIVE_TAPS]
        self.entropy_net = integer["entropy_net"]
        # A last hyper-synthesis layer that is 1x1 on an 8-bit grid (`fast`'s) runs on each pass's
        # own positions: pass 2 keeps its input, a byte a channel, instead of its output (at 24
        # megapixels 12 MB instead of 120 MB, for the same products).
        last = integer["h_s"].layers[-1]
        self.hyper_last = last if last.grid is not None and last.weight.shape[2:] == (1, 1) else None

    def parameters(self, hyper: torch.Tensor, ctx: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
        """(mean, scale) rows: the hyperprior's, corrected from the context (None: zero)."""
        a = hyper if ctx is None else torch.cat([hyper, ctx.to(hyper.dtype)], 1)
        return (hyper.double() + self.entropy_net.rows(a)).chunk(2, dim=1)  # may pass 2**24

    def context(self, anchors: torch.Tensor, band: tuple[int, int], taken: bool = True) -> torch.Tensor:
        """Context rows at the non-anchor positions of `band` from the anchors [H, W, M]: the
        context layer's input (`taken`), or the rebuilt latent, whose anchors are float32 y_a / ONE
        and give that input exactly (a power-of-two division of an integer below 2**24 is exact in
        float32, and a larger one rounds to a value that `take` clamps alike). Only anchors are
        read: every live tap of a non-anchor position is one."""
        (r0, r1), h = band, anchors.shape[0]
        layer = self.context_layer
        rows = anchors[max(r0 - 2, 0):min(r1 + 2, h)]
        rows = F.pad(rows if taken else layer.take(rows.double() * ONE), (0, 0, 2, 2, max(2 - r0, 0),
                     max(r1 + 2 - h, 0))).to(layer.dtype)
        acc = None  # one product per tap, summed in place: no [positions, 12 M] copy
        for (i, j), weight in zip(LIVE_TAPS, self.context_weights, strict=True):
            tap = checkered(rows[i:i + r1 - r0, j:j + anchors.shape[1]], 1 - r0 % 2)
            acc = torch.addmm(layer.fast_bias, tap, weight) if acc is None else acc.addmm_(tap, weight)
        return layer.give(acc)

    def passes(self, z_hat: torch.Tensor, shape: torch.Size, scales: bool = False,
               rebuild: bool = True) -> Passes:
        _, m, h, w = shape
        is_anchor = anchor_mask(h, w)[0, 0].bool()
        bands = self.bands(h, w)
        hyper_n = []  # only the non-anchor rows of the hyperprior (or its last layer's input) are kept

        def anchor_rows(band: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
            last = self.hyper_last
            if last is None:
                rows = self.hyper(z_hat, band, w).unflatten(0, (band[1] - band[0], w))
                hyper_n.append(_compact(checkered(rows, 1 - band[0] % 2)))
                return self.parameters(checkered(rows, band[0] % 2), None)
            rows = self.hyper(z_hat, band, w, stop=-1).unflatten(0, (band[1] - band[0], w))
            taken = last.take(rows.to(last.dtype)).to(last.kept_dtype)
            hyper_n.append(checkered(taken, 1 - band[0] % 2))
            return self.parameters(last.product(checkered(taken, band[0] % 2)), None)

        step = self._pass(progress.tracked(map(anchor_rows, bands), len(bands), "entropy model, anchors",
                                           "band"), m, is_anchor, scales)
        # the anchors for the context: in the rebuilt latent (channels last, as the synthesis reads
        # it), or without one in the context layer's narrowest exact dtype (`Layer.kept_dtype`)
        y = torch.zeros(h, w, m) if rebuild else None
        grid = y if rebuild else torch.zeros(h, w, m, dtype=self.context_layer.kept_dtype)
        for c, y_a in _latent(step, (yield step)):
            if y is not None:
                place(y[:, :, c], (y_a / ONE).float().T, 0)
            else:
                place(grid[:, :, c], self.context_layer.take(y_a).T.to(grid.dtype), 0)
        del step

        def other_rows(i: int) -> tuple[torch.Tensor, torch.Tensor]:
            (r0, r1), hyper = bands[i], hyper_n[i]
            hyper_n[i] = None  # each band's rows are freed once used
            if self.hyper_last is not None:
                hyper = self.hyper_last.product(hyper)
            return self.parameters(hyper, self.context(grid, (r0, r1), taken=not rebuild))

        step = self._pass(progress.tracked(map(other_rows, range(len(bands))), len(bands),
                                           "entropy model, the rest", "band"), m, ~is_anchor, scales)
        grid = None  # read by every band already: freed before the symbols are decoded (encoder)
        symbols = yield step
        if y is None:
            return None
        for c, y_n in _latent(step, symbols):
            place(y[:, :, c], (y_n / ONE).float().T, 1)
        return y.permute(2, 0, 1)[None]

    def _pass(self, bands: Iterator[tuple[torch.Tensor, torch.Tensor]], m: int,
              where: torch.Tensor, scales: bool) -> Pass:
        """A pass from its bands' (mean, scale) rows, laid out in coding order as they come, so
        only one band's rows exist at a time (memory: the table index is one byte a symbol)."""
        count = int(where.sum())
        mean = torch.empty(m, count)  # float32 while that is exact (below 2**24), else float64
        index = torch.empty(m, count, dtype=torch.uint8)
        scale = torch.empty(m, count) if scales else None  # float32: estimates; tables come from index
        start = 0
        for band_mean, band_scale in bands:
            part = slice(start, start + band_mean.shape[0])
            if mean.dtype == torch.float32 and _compact(band_mean).dtype == torch.float64:
                mean = mean.double()
            mean[:, part] = band_mean.T
            index[:, part] = self.index(band_scale).T
            if scale is not None:
                scale[:, part] = band_scale.T
            start = part.stop
        return Pass(index.reshape(-1).numpy(), mean.reshape(-1), None if scale is None else scale.reshape(-1),
                    where)


LATENT_CHANNELS_AT_ONCE = 32  # float64 temporaries of the reconstructed latent, channels at a time


def _latent(step: Pass, symbols: np.ndarray) -> Iterator[tuple[slice, torch.Tensor]]:
    """The pass's fixed-point latent values (symbols * ONE + mean, float64, [channels, positions])
    a few channels at a time."""
    mean = step.mean.reshape(-1, int(step.where.sum()))
    values = torch.from_numpy(symbols).reshape(mean.shape)
    for c0 in range(0, mean.shape[0], LATENT_CHANNELS_AT_ONCE):
        c = slice(c0, c0 + LATENT_CHANNELS_AT_ONCE)
        yield c, values[c].double() * ONE + mean[c]


def _compact(rows: torch.Tensor) -> torch.Tensor:
    """Integer rows in float32 where that is exact (below 2**24), to halve what is kept."""
    if rows.dtype == torch.float64 and (not rows.numel() or rows.abs().max() < FLOAT32_EXACT):
        return rows.float()
    return rows


class CheckerboardHyperprior(MeanScaleHyperprior):
    name = "checkerboard"
    integer_nets = ("h_s", "context", "entropy_net")
    twin = CheckerboardTwin

    def __init__(self, N: int = 128, M: int = 192, levels: int = LEVELS,
                 lambda_min: float = LAMBDA_MIN, lambda_max: float = LAMBDA_MAX,
                 N_hyper: int | None = None, level_affine: bool = False,
                 res_blocks: int = 0) -> None:
        super().__init__(N, M, levels, lambda_min, lambda_max, N_hyper, level_affine, res_blocks)
        self.context = self.new_context(M)
        self.entropy_net = self.new_entropy_net(M, self.context[0].out_channels)
        nn.init.zeros_(self.entropy_net[-1].weight)
        nn.init.zeros_(self.entropy_net[-1].bias)

    @staticmethod
    def new_context(M: int) -> nn.Sequential:
        """Decoded anchors -> context features at the non-anchors (one masked 5x5 layer)."""
        return nn.Sequential(CheckerboardConv(M, 2 * M))

    @staticmethod
    def new_entropy_net(M: int, ctx: int) -> nn.Sequential:
        """(hyperprior's (mean, scale), context) -> correction of (mean, scale), 1x1 layers."""
        return nn.Sequential(conv(2 * M + ctx, 10 * M // 3, 1, 1), nn.ReLU(inplace=True),
                             conv(10 * M // 3, 8 * M // 3, 1, 1), nn.ReLU(inplace=True),
                             conv(8 * M // 3, 2 * M, 1, 1))

    def parameters_of(self, hyper: torch.Tensor, ctx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, scale): the hyperprior's, corrected from the anchor context."""
        return (hyper + self.entropy_net(torch.cat([hyper, ctx], 1)).float()).chunk(2, 1)

    def decoder_macs(self, height: int = 256, width: int = 256) -> dict[str, float]:
        """The twin's work (`CheckerboardTwin`): the context on its live taps at non-anchors, the
        entropy network once per position, without the context half of its input at anchors."""
        positions = (height // self.latent_stride) * (width // self.latent_stride)
        m, c = self.log_gain.shape[1], self.context[0].out_channels
        context = positions / 2 * len(LIVE_TAPS) * m * c
        layers = [layer for layer in self.entropy_net if isinstance(layer, nn.Conv2d)]
        entropy = positions * sum(layer.in_channels * layer.out_channels for layer in layers)
        entropy -= positions / 2 * c * layers[0].out_channels
        return super().decoder_macs(height, width) | {
            "context": context / (height * width), "entropy parameters": entropy / (height * width)}

    def code_latent(self, y: torch.Tensor, t: torch.Tensor, quantize: Quantize) -> dict[str, torch.Tensor]:
        z = self.h_a(y).float()
        z_lik_in, z_hat = quantize(z)
        hyper = self.h_s(z_hat).float()
        anchors = anchor_mask(y.shape[2], y.shape[3], y.device)
        no_context = hyper.new_zeros(hyper.shape[0], self.context[0].out_channels, *hyper.shape[2:])
        mean_a, scale_a = self.parameters_of(hyper, no_context)
        ctx = self.context((quantize(y - mean_a)[1] + mean_a) * anchors).float()
        mean_n, scale_n = self.parameters_of(hyper, ctx)
        mean = anchors * mean_a + (1 - anchors) * mean_n
        scale = anchors * scale_a + (1 - anchors) * scale_n
        y_lik_in, residual_hat = quantize(y - mean)
        x_hat = self.synthesize(residual_hat + mean, t)
        return self.bits(y_lik_in + self.rate_input(y), scale, z_lik_in) | {"x_hat": x_hat}

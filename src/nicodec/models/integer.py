"""Exact fixed-point twin of a (transposed-)conv + ReLU stack: the networks that pick tables.

Everything that picks a probability table must be bit-identical on every machine. Weights are
rounded to integers (WEIGHT_BITS fractional bits), activations are integers (ACT_BITS fractional
bits), and convolutions run in float64 on integer values: every product and partial sum is an
integer below 2**53, so the result is exact whatever the summation order, thread count, SIMD
width or BLAS. Rescaling is a floor-division by a power of two, also exact. Clamps bound the
magnitudes so the 2**53 guarantee holds for any input, not just typical ones.

A layer may instead take its input on an 8-bit grid (`eight_bit`, trained quantization-aware:
the float layer sees the same grid through a straight-through rounding). Its weights then get as
many fractional bits (at most WEIGHT_BITS) as keep every partial sum below 2**24, which the loader
checks again: such a layer runs in float32, about twice as fast and just as exact, on any
machine, in any summation order (a file that breaks the bound still decodes, in float64).

`__call__` is the plain reference evaluation, in float64. The codec runs the same arithmetic in
cheaper forms that give identical integers (tests compare them): `stages` for windows of a
convolution stack (row bands, so memory stays bounded), `rows` for a stack of 1x1 convolutions as
matrix products on just the positions that need them. Every layer runs as matrix products, never
through a convolution library (which may pick Winograd, whose transforms are not integer): one per
kernel tap on strided views of the input, one per output phase for transposed layers (`_taps`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from nicodec.models.layers import per_position
from nicodec.models.stages import Stage

WEIGHT_BITS = 12
ACT_BITS = 8
ONE = 1 << ACT_BITS  # 1.0 in fixed point
WEIGHT_LIMIT = (1 << 15) - 1  # |integer weight| fits int16 (|w| < 8)
ACT_LIMIT = 1 << 24  # |integer activation| <= 2**24 (|a| < 65536)
# per output: fan-in * 2**15 * 2**24 must stay below 2**53, so fan-in <= 2**14
MAX_FAN_IN = 1 << 14
FLOAT32_EXACT = 1 << 24  # integers, and sums of integers, below this are exact in float32


@dataclass(frozen=True)
class EightBit:
    """An input grid: values k * 2**-fraction with k in 0..255 (unsigned) or -127..127."""

    fraction: int
    signed: bool

    @property
    def limit(self) -> int:
        return 127 if self.signed else 255

    def clamp(self, k: torch.Tensor) -> torch.Tensor:
        return k.clamp(-self.limit if self.signed else 0, self.limit)

    def fake(self, x: torch.Tensor) -> torch.Tensor:
        """Training: x on the grid, rounding straight through (the twin's `take`, in float)."""
        k = x * (1 << self.fraction)
        return self.clamp(k + (torch.floor(k + 0.5) - k).detach()) / (1 << self.fraction)

    def take(self, a: torch.Tensor) -> torch.Tensor:
        """Decoding: a fixed-point activation (units 2**-ACT_BITS) as its grid integer k, in a's
        dtype: floor(a / step + 0.5) within the limits. a is first bounded to the limits' own
        activations (k's limit times the step, an integer), which gives the same k as clamping k
        afterwards, and keeps a / step + 0.5 exact in float32 too; one copy, then in place."""
        step = 2.0 ** (ACT_BITS - self.fraction)
        low = -self.limit if self.signed else 0
        return a.clamp(low * step, self.limit * step).div_(step).add_(0.5).floor_()


def eight_bit(layer: nn.Module, fraction: int, signed: bool) -> nn.Module:
    """`layer` with its input on an 8-bit grid, in training (a forward pre-hook) and decoding."""
    layer.grid = EightBit(fraction, signed)
    layer.register_forward_pre_hook(lambda m, args: (m.grid.fake(args[0]), *args[1:]))
    return layer


def _conv_layers(seq: nn.Sequential) -> list[tuple[nn.Module, bool]]:
    """(conv layer, followed by ReLU) pairs; anything else is not supported here."""
    layers: list[tuple[nn.Module, bool]] = []
    for m in seq:
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            layers.append((m, False))
        elif isinstance(m, nn.ReLU) and layers:
            layers[-1] = (layers[-1][0], True)
        else:
            raise TypeError(f"integer network cannot represent {type(m).__name__}")
    return layers


def _bound(weight: torch.Tensor, bias: torch.Tensor, grid: EightBit, transposed: bool) -> float:
    """The largest |partial sum| any input on `grid` can give: per output channel, the weights'
    absolute sum (over every tap, a safe excess for a transposed convolution) times the largest
    input, plus the bias."""
    per_output = weight.abs().sum(dim=(0, 2, 3) if transposed else (1, 2, 3))
    return float((per_output * grid.limit + bias.abs()).max())


@dataclass
class Layer:
    """One integer layer: its weights (integer-valued float64), input grid and arithmetic."""

    module: nn.Module
    weight: torch.Tensor
    bias: torch.Tensor
    relu: bool
    grid: EightBit | None  # None: the whole fixed-point input (clamped, float64)
    weight_bits: int

    def __post_init__(self) -> None:
        transposed = isinstance(self.module, nn.ConvTranspose2d)
        exact32 = (self.grid is not None
                   and _bound(self.weight, self.bias, self.grid, transposed) < FLOAT32_EXACT)
        self.dtype = torch.float32 if exact32 else torch.float64
        # output units: accumulator 2**-(weight_bits + input fraction) -> activation 2**-ACT_BITS
        fraction = self.grid.fraction if self.grid else ACT_BITS
        self.rescale = 2.0 ** (ACT_BITS - self.weight_bits - fraction)
        # float32 out too, where no output can reach 2**24 (the accumulator is only scaled down)
        self.out_dtype = torch.float32 if exact32 and self.rescale <= 1 else torch.float64
        self.fast_weight = self.weight.to(self.dtype)
        self.fast_bias = self.bias.to(self.dtype)
        if transposed:  # [in, (taps, out)]: a view where the weight is kept taps-major
            self.taps = self.fast_weight.permute(0, 2, 3, 1).flatten(1)
        elif self.weight.shape[2:] != (1, 1):  # [in, out] per tap in raster order, for `_taps`
            kh, kw = self.weight.shape[2:]
            self.tap_weights = [self.fast_weight[:, :, i, j].T for i in range(kh) for j in range(kw)]

    @property
    def kept_dtype(self) -> torch.dtype:
        """The narrowest dtype that holds `take`'s values exactly, for inputs kept across a pass:
        an 8-bit grid's integers, or clamped fixed point (|a| <= 2**24) in float32."""
        if self.grid is None:
            return torch.float32
        return torch.int8 if self.grid.signed else torch.uint8

    def take(self, a: torch.Tensor) -> torch.Tensor:
        """The layer's input from a fixed-point activation."""
        return self.grid.take(a) if self.grid else clamp(a)

    def product(self, taken: torch.Tensor) -> torch.Tensor:
        """A 1x1 layer's activation on [positions, channels] rows of its input as `take` gives it
        (or as kept in `kept_dtype`)."""
        return self.give(torch.addmm(self.fast_bias, taken.to(self.dtype), self.matrix))

    def give(self, acc: torch.Tensor) -> torch.Tensor:
        """The fixed-point activation from the accumulator (float64, or float32 where exact)."""
        a = acc.to(self.out_dtype).mul_(self.rescale).floor_()
        return a.clamp_min_(0) if self.relu else a


class IntegerSynthesis:
    """Fixed-point evaluation of `seq` from integer weights (see module docstring)."""

    def __init__(self, seq: nn.Sequential, tensors: dict[str, torch.Tensor]) -> None:
        self.layers: list[Layer] = []
        for i, (m, relu) in enumerate(_conv_layers(seq)):
            w = tensors[f"{i}.weight"]  # int16: checked and reordered before the float64 copy
            b = tensors[f"{i}.bias"].double()
            bits = int(tensors.get(f"{i}.weight_bits", torch.tensor(WEIGHT_BITS)))
            fan_in = w[0].numel() if isinstance(m, nn.Conv2d) else w[:, 0].numel()
            largest = max(int(w.max()), -int(w.min()))  # as Python ints: int16's abs(-32768) overflows
            if fan_in > MAX_FAN_IN or largest > WEIGHT_LIMIT or not 0 <= bits <= WEIGHT_BITS:
                raise ValueError("integer network exceeds its exactness bounds")
            if isinstance(m, nn.ConvTranspose2d):  # taps-major, so that `Layer.taps` is a view (memory)
                w = w.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)
            elif w.shape[2:] != (1, 1):  # [kh, kw, in, out] in memory: `Layer.tap_weights` are views
                w = w.permute(2, 3, 1, 0).contiguous().permute(3, 2, 0, 1)
            w = w.double()  # keeps the layout (dense strides are preserved)
            self.layers.append(Layer(m, w, b, relu, getattr(m, "grid", None), bits))
        # 1x1 layers as [in, out] matrices for `rows`
        self.matrices = [layer for layer in self.layers if layer.weight.shape[2:] == (1, 1)]
        for layer in self.matrices:
            layer.matrix = layer.fast_weight.flatten(1).T.contiguous()

    @staticmethod
    def quantize(seq: nn.Sequential) -> dict[str, torch.Tensor]:
        """Integer weights and biases of a trained float stack (done once, at export). A layer on
        an 8-bit grid gets the most weight bits that keep it exact in float32."""
        out = {}
        for i, (m, _) in enumerate(_conv_layers(seq)):
            weight = getattr(m, "effective_weight", m.weight).detach().double()  # masked: its mask
            grid = getattr(m, "grid", None)
            fraction = grid.fraction if grid else ACT_BITS
            for bits in range(WEIGHT_BITS, -1, -1):
                w = torch.round(weight * (1 << bits)).clamp(-WEIGHT_LIMIT, WEIGHT_LIMIT)
                b = torch.round(m.bias.detach().double() * 2.0 ** (bits + fraction))
                transposed = isinstance(m, nn.ConvTranspose2d)
                if grid is None or _bound(w, b, grid, transposed) < FLOAT32_EXACT:
                    break
            out[f"{i}.weight"] = w.to(torch.int16)
            out[f"{i}.bias"] = b.to(torch.int64)
            if grid is not None:
                out[f"{i}.weight_bits"] = torch.tensor(bits)
        return out

    @staticmethod
    def dequantize(seq: nn.Sequential, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Float state dict of `seq` from integer weights (for fine-tuning a shipped model)."""
        out = {}
        for i, (m, _) in enumerate(_conv_layers(seq)):
            name = next(k for k, v in seq.named_children() if v is m)
            bits = int(tensors.get(f"{i}.weight_bits", torch.tensor(WEIGHT_BITS)))
            grid = getattr(m, "grid", None)
            fraction = grid.fraction if grid else ACT_BITS
            out[f"{name}.weight"] = tensors[f"{i}.weight"].float() / (1 << bits)
            out[f"{name}.bias"] = tensors[f"{i}.bias"].double().div(2.0 ** (bits + fraction)).float()
        return out

    def __call__(self, x: torch.Tensor, fixed_point: bool = False) -> torch.Tensor:
        """Output in units of 2**-ACT_BITS, from an integer-valued input (e.g. the decoded
        hyper-latent) or, with `fixed_point`, from an input already in those units."""
        a = x.double() if fixed_point else x.double() * (1 << ACT_BITS)
        for layer in self.layers:
            m = layer.module
            if isinstance(m, nn.Conv2d):
                acc = F.conv2d(layer.take(a), layer.weight, layer.bias, stride=m.stride, padding=m.padding)
            else:
                acc = F.conv_transpose2d(layer.take(a), layer.weight, layer.bias, stride=m.stride,
                                         padding=m.padding, output_padding=m.output_padding)
            a = layer.give(acc).double()
        return a

    def stages(self) -> list[Stage]:
        """The stack as stages (`models.stages`) on a fixed-point input: any window of the
        output, computed from just the input it needs, equals that window of `__call__`'s."""
        out = []
        for layer in self.layers:
            m = layer.module
            kind = "conv" if isinstance(m, nn.Conv2d) else "deconv"
            def fn(a: torch.Tensor, trim: tuple[int, int] = (0, 0), layer: Layer = layer) -> torch.Tensor:
                return layer.give(_unpadded(layer, layer.take(a.to(layer.dtype)), trim))
            out.append(Stage(fn, kind, m.kernel_size[0], m.stride[0], m.padding[0]))
        return out

    def rows(self, a: torch.Tensor) -> torch.Tensor:
        """A stack of 1x1 layers on a fixed-point [positions, channels] input, as matrix products.

        The input may have fewer channels than the first layer takes: the missing last ones are
        zero, and their products are skipped."""
        for i, layer in enumerate(self.matrices):
            w = layer.matrix[: a.shape[1]] if i == 0 else layer.matrix
            a = layer.give(torch.addmm(layer.fast_bias, layer.take(a.to(layer.dtype)), w))
        return a


def _unpadded(layer: Layer, a: torch.Tensor, trim: tuple[int, int] = (0, 0)) -> torch.Tensor:
    """The layer's accumulator without padding (`Stage` pads; a transposed layer's output less
    `trim` rows and columns on each side, `Stage.fn`), in its exact dtype, channels last. 1x1
    layers are one matrix product on positions x channels, others a matrix product per tap
    (`_taps`): a float32 layer never goes through a convolution library, which may pick Winograd,
    whose transforms are not integer."""
    m = layer.module
    if isinstance(m, nn.ConvTranspose2d):
        return _transposed(layer, a, trim)
    if m.kernel_size == (1, 1) and m.stride == (1, 1):
        return per_position(a, layer.matrix, layer.fast_bias)
    (kh, kw), (s, _) = m.kernel_size, m.stride
    n, _, h, wd = a.shape
    rows = a.permute(0, 2, 3, 1).contiguous()
    out = torch.empty(n, (h - kh) // s + 1, (wd - kw) // s + 1, layer.fast_bias.shape[0], dtype=a.dtype)
    taps = list(zip((i * wd + j for i in range(kh) for j in range(kw)), layer.tap_weights, strict=True))
    for b in range(n):
        out[b] = _taps(rows[b], taps, layer.fast_bias, out.shape[1:3], s)
    return out.permute(0, 3, 1, 2)


def _taps(rows: torch.Tensor, taps: list[tuple[int, torch.Tensor]], bias: torch.Tensor,
          size: tuple[int, int], stride: int = 1) -> torch.Tensor:
    """Output [height, width, cout] of a convolution over rows [H, W, cin] (its input, padded),
    as one matrix product per tap (offset in the flattened input, [cin, cout] weight), added in
    place. Output position (r, c) reads flattened input row stride * (r * W + c) + offset, so each
    tap's rows are one strided slice of the input: no copy. The W - width positions between output
    rows are computed too and never read: a few percent for the stride-1 layers of the shipped
    networks (about half at stride 2, which none of them has)."""
    height, width = size
    flat = rows.flatten(0, 1)
    count = (height - 1) * rows.shape[1] + width  # from the first output position to the last
    acc = None
    for offset, weight in taps:
        x = flat[offset:].as_strided((count, flat.shape[1]), (stride * flat.shape[1], 1))
        acc = torch.addmm(bias, x, weight) if acc is None else acc.addmm_(x, weight)
    return acc.as_strided((height, width, acc.shape[1]), (rows.shape[1] * acc.shape[1], acc.shape[1], 1))


def _transposed(layer: Layer, a: torch.Tensor, trim: tuple[int, int]) -> torch.Tensor:
    """A transposed convolution as a convolution per output phase: output row stride * r + p
    takes input rows r - u on kernel rows p + stride * u (likewise for columns), a small
    convolution of the zero-padded input run by `_taps`. Only the output rows and columns kept
    after `trim` are computed; each phase is written to its strided positions of the output,
    channels last, which is what the next layer's matrix product reads."""
    m = layer.module
    (kh, kw), (s, _) = m.kernel_size, m.stride
    n, cin, h, wd = a.shape
    cout = layer.fast_weight.shape[1]
    pad = (max(kh, kw) + s - 1) // s - 1  # the most taps a phase has along an axis, less one
    rows = a.new_zeros(n, h + 2 * pad, wd + 2 * pad, cin)
    rows[:, pad:pad + h, pad:pad + wd] = a.permute(0, 2, 3, 1)
    full = ((h - 1) * s + kh, (wd - 1) * s + kw)
    keep = [(t, f - t) for t, f in zip(trim, full, strict=True)]
    out = a.new_empty(n, keep[0][1] - keep[0][0], keep[1][1] - keep[1][0], cout)
    width = rows.shape[2]

    def tap(k: int) -> torch.Tensor:  # kernel position k's [cin, cout] weight, a view
        return layer.taps[:, k * cout:(k + 1) * cout]

    for p in range(s):
        for q in range(s):
            # phase outputs r in [lo, hi) per axis: stride * r + phase within the kept interval
            (r0, r1), (c0, c1) = (((t - f + s - 1) // s, (u - f - 1) // s + 1)
                                  for (t, u), f in zip(keep, (p, q), strict=True))
            if r1 <= r0 or c1 <= c0:
                continue
            taps = [((pad - u + r0) * width + pad - v + c0, tap((p + s * u) * kw + q + s * v))
                    for u in range((kh - p + s - 1) // s) for v in range((kw - q + s - 1) // s)]
            for b in range(n):
                out[b, s * r0 + p - keep[0][0]::s, s * c0 + q - keep[1][0]::s] = _taps(
                    rows[b], taps, layer.fast_bias, (r1 - r0, c1 - c0))
    return out.permute(0, 3, 1, 2)


def clamp(a: torch.Tensor) -> torch.Tensor:
    """Bound activations, so that every product and partial sum stays below 2**53."""
    return a.clamp(-ACT_LIMIT, ACT_LIMIT)

"""Exact fixed-point twin of a (transposed-)conv + ReLU stack: the networks that pick tables.

Everything that picks a probability table must be bit-identical on every machine. Weights are
rounded to integers (WEIGHT_BITS fractional bits), activations are integers (ACT_BITS fractional
bits), and convolutions run in float64 on integer values: every product and partial sum is an
integer below 2**53, so the result is exact whatever the summation order, thread count, SIMD
width or BLAS. Rescaling is a floor-division by a power of two, also exact. Clamps bound the
magnitudes so the 2**53 guarantee holds for any input, not just typical ones.

`__call__` is the plain reference evaluation. The codec runs the same arithmetic in cheaper forms
that give identical integers (tests compare them): `stages` for windows of a convolution stack
(row bands, so memory stays bounded), `rows` for a stack of 1x1 convolutions as matrix products
on just the positions that need them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nicodec.models.stages import Stage

WEIGHT_BITS = 12
ACT_BITS = 8
ONE = 1 << ACT_BITS  # 1.0 in fixed point
WEIGHT_LIMIT = (1 << 15) - 1  # |integer weight| fits int16 (|w| < 8)
ACT_LIMIT = 1 << 24  # |integer activation| <= 2**24 (|a| < 65536)
# per output: fan-in * 2**15 * 2**24 must stay below 2**53, so fan-in <= 2**14
MAX_FAN_IN = 1 << 14


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


class IntegerSynthesis:
    """Fixed-point evaluation of `seq` from integer weights (see module docstring)."""

    def __init__(self, seq: nn.Sequential, tensors: dict[str, torch.Tensor]) -> None:
        self.layers = []
        for i, (m, relu) in enumerate(_conv_layers(seq)):
            w = tensors[f"{i}.weight"].double()
            b = tensors[f"{i}.bias"].double()
            fan_in = w[0].numel() if isinstance(m, nn.Conv2d) else w[:, 0].numel()
            if fan_in > MAX_FAN_IN or w.abs().max() > WEIGHT_LIMIT:
                raise ValueError("integer network exceeds its exactness bounds")
            self.layers.append((m, w, b, relu))
        # 1x1 layers as [in, out] matrices for `rows`
        self.matrices = [(w.flatten(1).T.contiguous(), b, relu) for m, w, b, relu in self.layers
                         if w.shape[2:] == (1, 1)]

    @staticmethod
    def quantize(seq: nn.Sequential) -> dict[str, torch.Tensor]:
        """Integer weights and biases of a trained float stack (done once, at export)."""
        out = {}
        for i, (m, _) in enumerate(_conv_layers(seq)):
            weight = getattr(m, "effective_weight", m.weight)  # masked convs quantize their mask
            w = torch.round(weight.detach().double() * (1 << WEIGHT_BITS))
            b = torch.round(m.bias.detach().double() * (1 << (WEIGHT_BITS + ACT_BITS)))
            out[f"{i}.weight"] = w.clamp(-WEIGHT_LIMIT, WEIGHT_LIMIT).to(torch.int16)
            out[f"{i}.bias"] = b.to(torch.int64)
        return out

    @staticmethod
    def dequantize(seq: nn.Sequential, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Float state dict of `seq` from integer weights (for fine-tuning a shipped model)."""
        out = {}
        for i, (m, _) in enumerate(_conv_layers(seq)):
            name = next(k for k, v in seq.named_children() if v is m)
            out[f"{name}.weight"] = tensors[f"{i}.weight"].float() / (1 << WEIGHT_BITS)
            out[f"{name}.bias"] = tensors[f"{i}.bias"].double().div(
                1 << (WEIGHT_BITS + ACT_BITS)).float()
        return out

    def __call__(self, x: torch.Tensor, fixed_point: bool = False) -> torch.Tensor:
        """Output in units of 2**-ACT_BITS, from an integer-valued input (e.g. the decoded
        hyper-latent) or, with `fixed_point`, from an input already in those units."""
        a = x.double() if fixed_point else x.double() * (1 << ACT_BITS)
        for m, w, b, relu in self.layers:
            a = clamp(a)
            if isinstance(m, nn.Conv2d):
                acc = F.conv2d(a, w, b, stride=m.stride, padding=m.padding)
            else:
                acc = F.conv_transpose2d(a, w, b, stride=m.stride, padding=m.padding,
                                         output_padding=m.output_padding)
            a = requantize(acc, relu)
        return a

    def stages(self) -> list[Stage]:
        """The stack as stages (`models.stages`) on a fixed-point input: any window of the
        output, computed from just the input it needs, equals that window of `__call__`'s."""
        out = []
        for m, w, b, relu in self.layers:
            if isinstance(m, nn.Conv2d):
                def fn(a, w=w, b=b, m=m, relu=relu):
                    return requantize(F.conv2d(clamp(a), w, b, stride=m.stride), relu)
                out.append(Stage(fn, "conv", m.kernel_size[0], m.stride[0], m.padding[0]))
            else:
                def fn(a, w=w, b=b, m=m, relu=relu):
                    return requantize(F.conv_transpose2d(clamp(a), w, b, stride=m.stride), relu)
                out.append(Stage(fn, "deconv", m.kernel_size[0], m.stride[0], m.padding[0]))
        return out

    def rows(self, a: torch.Tensor) -> torch.Tensor:
        """A stack of 1x1 layers on a fixed-point [positions, channels] input, as matrix products.

        The input may have fewer channels than the first layer takes: the missing last ones are
        zero, and their products are skipped."""
        for i, (w, b, relu) in enumerate(self.matrices):
            w = w[: a.shape[1]] if i == 0 else w
            a = requantize(torch.addmm(b, clamp(a), w), relu)
        return a


def clamp(a: torch.Tensor) -> torch.Tensor:
    """Bound activations, so that every product and partial sum stays below 2**53."""
    return a.clamp(-ACT_LIMIT, ACT_LIMIT)


def requantize(acc: torch.Tensor, relu: bool) -> torch.Tensor:
    """Accumulator (units 2**-(WEIGHT_BITS + ACT_BITS)) -> activation (units 2**-ACT_BITS)."""
    a = torch.floor(acc / (1 << WEIGHT_BITS))
    return a.clamp_min(0) if relu else a

"""Exact fixed-point twin of a (transposed-)conv + ReLU stack: the hyper-synthesis at decode time.

Everything that picks a probability table must be bit-identical on every machine. Weights are
rounded to integers (WEIGHT_BITS fractional bits), activations are integers (ACT_BITS fractional
bits), and convolutions run in float64 on integer values: every product and partial sum is an
integer below 2**53, so the result is exact whatever the summation order, thread count, SIMD
width or BLAS. Rescaling is a floor-division by a power of two, also exact. Clamps bound the
magnitudes so the 2**53 guarantee holds for any input, not just typical ones.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

WEIGHT_BITS = 12
ACT_BITS = 8
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
            a = a.clamp(-ACT_LIMIT, ACT_LIMIT)
            if isinstance(m, nn.Conv2d):
                acc = F.conv2d(a, w, b, stride=m.stride, padding=m.padding)
            else:
                acc = F.conv_transpose2d(a, w, b, stride=m.stride, padding=m.padding,
                                         output_padding=m.output_padding)
            a = torch.floor(acc / (1 << WEIGHT_BITS))
            if relu:
                a = a.clamp_min(0)
        return a

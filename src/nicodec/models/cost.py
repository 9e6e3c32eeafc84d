"""Multiply-accumulates per pixel: what a decoder costs, independent of the machine.

Times drift by 20 % between runs and machines; MACs do not. Each model family states what its
decoder evaluates (`VariableRateModel.decoder_macs`), counted here layer by layer from the shapes
a forward pass sees, so a test can hold a model to its budget.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


def conv_macs(net: nn.Module, run: Callable[[], object]) -> int:
    """MACs of the convolutions of `net` that `run()` calls (a transposed convolution scatters
    each input position into kernel-size outputs; a convolution gathers them)."""
    total = 0

    def count(m: nn.Module, inputs: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal total
        k = m.weight.shape[2] * m.weight.shape[3]
        if isinstance(m, nn.ConvTranspose2d):
            total += inputs[0][0, 0].numel() * m.in_channels * m.out_channels // m.groups * k
        else:
            total += out[0, 0].numel() * m.out_channels * m.in_channels // m.groups * k

    hooks = [m.register_forward_hook(count) for m in net.modules()
             if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]
    try:
        with torch.no_grad():
            run()
    finally:
        for h in hooks:
            h.remove()
    return total

"""Decoder budgets in MACs per pixel, which do not drift with the machine (issue 35)."""

from __future__ import annotations

import torch

from nicodec.models.cost import conv_macs
from nicodec.models.layers import conv, deconv
from nicodec.models.pretrained import load_model


def test_conv_macs_counts_gathering_and_scattering_layers():
    seq = torch.nn.Sequential(conv(3, 8, 3, 1), deconv(8, 4, 5, 2))
    x = torch.zeros(1, 3, 10, 12)
    # 3x3 conv: 10*12 outputs * 8 * 3 * 9; 5x5 transposed conv: 10*12 inputs * 8 * 4 * 25
    assert conv_macs(seq, lambda: seq(x)) == 120 * 8 * 3 * 9 + 120 * 8 * 4 * 25


def test_the_fast_model_keeps_its_decoder_budget():
    """Synthesis <= 10 k, entropy model (hyper-synthesis, context, entropy parameters) <= 10 k,
    whole decoder <= 20 k MACs per pixel: the shipped model costs about six times as much."""
    fast = load_model("fast").net.decoder_macs()
    shipped = load_model("checkerboard").net.decoder_macs()
    assert fast["synthesis"] <= 10_000
    assert sum(fast.values()) - fast["synthesis"] <= 10_000
    assert sum(fast.values()) <= 20_000
    assert sum(shipped.values()) > 5 * sum(fast.values())
    assert set(fast) == {"synthesis", "hyper-synthesis", "context", "entropy parameters"}

"""The integer networks that select entropy tables: exact whatever the threads, batch or padding."""

from __future__ import annotations

import torch

from nicodec.models.pretrained import load_model
from tests.conftest import with_threads


def test_entropy_parameters_are_batch_and_padding_invariant():
    m = load_model()
    n = m.net.config["N"]
    gen = torch.Generator().manual_seed(0)
    z1 = torch.randint(-6, 7, (1, n, 3, 4), generator=gen).double()
    z2 = torch.randint(-6, 7, (1, n, 3, 4), generator=gen).double()
    hyper = m.integer["h_s"]  # mean and scale, fixed point: all that selects tables
    single = hyper(z1)
    batched = with_threads(2, hyper, torch.cat([z2, z1]))
    assert torch.equal(single, batched[1:])
    # zero padding on the right and bottom leaves outputs away from that border unchanged
    padded = hyper(torch.nn.functional.pad(z1, (0, 4, 0, 4)))
    interior = (slice(None), slice(None), slice(0, 4), slice(0, 8))
    assert torch.equal(single[interior], padded[interior])


def test_extreme_inputs_stay_exact():
    m = load_model()
    for name, net in m.integer.items():  # h_s, and the context networks of a checkerboard model
        layer, weight = net.layers[0][:2]
        channels = weight.shape[1] if isinstance(layer, torch.nn.Conv2d) else weight.shape[0]
        x = torch.full((1, channels, 3, 3), float(1 << 26), dtype=torch.float64)  # beyond the clamp
        x[:, ::2] *= -1
        out1 = with_threads(1, net, x, fixed_point=True)
        out2 = with_threads(2, net, x, fixed_point=True)
        assert torch.equal(out1, out2), name
        assert torch.equal(out1, torch.round(out1)) and out1.abs().max() < 2**53, name

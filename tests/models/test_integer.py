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


def test_extreme_hyper_latents_stay_exact():
    m = load_model()
    n = m.net.config["N"]
    z = torch.full((1, n, 2, 2), 1000.0, dtype=torch.float64)
    z[:, ::2] = -1000
    out1 = with_threads(1, m.integer["h_s"], z)
    out2 = with_threads(2, m.integer["h_s"], z)
    assert torch.equal(out1, out2)
    assert torch.equal(out1, torch.round(out1))

"""Shared layers (`models.layers`): the codec's channels-last paths compute what training's do."""

from __future__ import annotations

import threading

import pytest
import torch

from nicodec.models import stages
from nicodec.models.layers import GDN, ChannelwiseGDN, ResidualBottleneck, conv, deconv, without_random_init
from nicodec.models.pretrained import load_model


@pytest.mark.parametrize("inverse", [False, True])
@pytest.mark.parametrize("cross_channel", [False, True])
def test_gdn_on_channels_last_tiles_matches_the_convolution(inverse, cross_channel):
    """The codec's forms of a GDN (channel by channel where gamma is diagonal, as every shipped
    one is, else a matrix product over channels-last positions) give the 1x1 convolution's values."""
    torch.manual_seed(0)
    gdn = GDN(16, inverse=inverse)
    with torch.no_grad():
        gdn.beta_sqrt.uniform_(0.5, 2.0)
        diagonal = torch.rand(16) * torch.randint(0, 2, (16,))  # some channels without a term
        gdn.gamma_sqrt.copy_(torch.rand(16, 16) - 0.5 if cross_channel else torch.diag(diagonal))
        x = torch.randn(1, 16, 9, 7) * 3
        plain = gdn(x)
        codec = ChannelwiseGDN.of(gdn)
        tiled = codec(x.contiguous(memory_format=torch.channels_last))
    assert isinstance(codec, ChannelwiseGDN) != cross_channel
    assert torch.allclose(tiled, plain, rtol=1e-5, atol=1e-6)


def test_shipped_gdns_have_no_cross_channel_term():
    """What the per-channel path relies on for its speed (not for its values)."""
    for name in ("checkerboard", "fast"):
        gdns = [m for m in load_model(name).net.modules() if isinstance(m, GDN)]
        assert gdns
        for gdn in gdns:
            gamma = gdn.gamma_sqrt.clamp_min(0) ** 2
            assert torch.equal(torch.diag(torch.diagonal(gamma)), gamma)


def test_residual_block_stages_match_the_module():
    """A residual block's 1x1 convolutions run as matrix products on channels-last windows and its
    sum is taken in place: the values of `forward`."""
    torch.manual_seed(1)
    block = ResidualBottleneck(8)
    with torch.no_grad():
        block.body[-1].weight.normal_(0, 0.2)
        x = torch.randn(1, 8, 10, 12)
        chain = stages.stages_of([block])
        whole = ((0, 10), (0, 12))
        out = stages.run_window(chain, lambda w: x.contiguous(memory_format=torch.channels_last)[
            ..., w[0][0]:w[0][1], w[1][0]:w[1][1]], (10, 12), whole)
        assert torch.allclose(out, block(x), rtol=1e-5, atol=1e-6)
        assert x.abs().sum() > 0 and not torch.equal(out, x)  # the input is not what came back


def test_without_random_init_draws_nothing_in_its_thread_only():
    """Inside, convolutions are built without drawing weights (the RNG is untouched); a thread
    started meanwhile, and the code after, draw them as usual."""
    rng = torch.get_rng_state()
    with without_random_init():
        conv(8, 16), deconv(16, 8)
        assert torch.equal(torch.get_rng_state(), rng)
        other = []
        worker = threading.Thread(target=lambda: other.append(conv(8, 16)))
        worker.start()
        worker.join()
        assert other[0].weight.std() > 0
    assert not torch.equal(torch.get_rng_state(), rng)  # the thread drew
    rng = torch.get_rng_state()
    conv(8, 16)
    assert not torch.equal(torch.get_rng_state(), rng)

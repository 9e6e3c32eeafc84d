"""The integer networks that select entropy tables: exact whatever the threads, batch or padding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nicodec.codec import latent
from nicodec.models import hyperprior
from nicodec.models.pretrained import load_model
from tests.conftest import with_threads

CHECKERBOARD_MODELS = ["checkerboard", "fast"]  # shipped models with the checkerboard twin


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


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_table_index_by_lookup_is_the_threshold_search(dtype):
    """Every scale from below zero to past the last threshold gets the searched table."""
    twin = load_model().twin
    assert twin.lookup is not None
    scale = torch.arange(-300, int(twin.thresholds[-1]) + 300, dtype=dtype)
    searched = torch.searchsorted(twin.thresholds, scale.long(), right=True).to(torch.uint8)
    assert torch.equal(twin.index(scale), searched)
    assert twin.index(scale).max() == len(twin.thresholds)


@pytest.mark.parametrize("name", CHECKERBOARD_MODELS)
def test_extreme_inputs_stay_exact(name):
    m = load_model(name)
    for name, net in m.integer.items():  # h_s, and the context networks of a checkerboard model
        layer, weight = net.layers[0].module, net.layers[0].weight
        channels = weight.shape[1] if isinstance(layer, torch.nn.Conv2d) else weight.shape[0]
        x = torch.full((1, channels, 3, 3), float(1 << 26), dtype=torch.float64)  # beyond the clamp
        x[:, ::2] *= -1
        out1 = with_threads(1, net, x, fixed_point=True)
        out2 = with_threads(2, net, x, fixed_point=True)
        assert torch.equal(out1, out2), name
        assert torch.equal(out1, torch.round(out1)) and out1.abs().max() < 2**53, name


def _reference_passes(m, z_hat, symbols_a):
    """The plain evaluation: whole-latent convolutions, as the decoder before the fast twin did."""
    from nicodec.models.checkerboard import anchor_mask
    from nicodec.models.integer import ONE

    hyper = m.integer["h_s"](z_hat)
    en = m.integer["entropy_net"]
    context_channels = m.integer["context"].layers[0].weight.shape[0]
    no_context = torch.cat([hyper, hyper.new_zeros(1, context_channels, *hyper.shape[2:])], 1)
    mean_a, scale_a = (hyper + en(no_context, fixed_point=True)).chunk(2, 1)
    anchors = anchor_mask(*mean_a.shape[2:]).bool().expand_as(mean_a)
    full = torch.zeros_like(mean_a)
    full[anchors] = symbols_a
    ctx = m.integer["context"](torch.where(anchors, full * ONE + mean_a, 0), fixed_point=True)
    mean_n, scale_n = (hyper + en(torch.cat([hyper, ctx], 1), fixed_point=True)).chunk(2, 1)
    return [(mean_a[anchors], scale_a[anchors]), (mean_n[~anchors], scale_n[~anchors])]


def _fast_passes(m, z_hat, shape, symbols_a, symbols_n):
    passes = m.twin.passes(z_hat, shape, scales=True)
    first = next(passes)
    second = passes.send(symbols_a.long().numpy())
    try:
        passes.send(symbols_n.long().numpy())
    except StopIteration as done:
        y_hat = done.value
    return [(first.mean, first.scale, first.index), (second.mean, second.scale, second.index)], y_hat


def _compare(m, z_hat, shape, seed, limit=20):
    gen = torch.Generator().manual_seed(seed)
    n_half = shape[1] * shape[2] * shape[3]
    symbols_a = torch.randint(-limit, limit + 1, (n_half - n_half // 2,), generator=gen).double()
    symbols_n = torch.randint(-limit, limit + 1, (n_half // 2,), generator=gen).double()
    reference = _reference_passes(m, z_hat, symbols_a)
    fast, y_hat = _fast_passes(m, z_hat, shape, symbols_a, symbols_n)
    for (mean, scale), (fmean, fscale, findex) in zip(reference, fast, strict=True):
        assert torch.equal(mean, fmean) and torch.equal(scale.float(), fscale)  # float32: estimates
        assert np.array_equal(m.twin.index(scale).numpy(), findex)
    # the rebuilt latent: each pass's symbols plus its means, at that pass's positions
    from nicodec.models.checkerboard import anchor_mask
    from nicodec.models.integer import ONE

    anchors = anchor_mask(*shape[2:]).bool().expand(shape)
    expected = torch.empty(shape)
    for where, symbols, (mean, _) in zip((anchors, ~anchors), (symbols_a, symbols_n), reference, strict=True):
        fixed_point = symbols.reshape(shape[1], -1) * ONE + mean.reshape(shape[1], -1)
        expected[where] = (fixed_point / ONE).float().reshape(-1)
    assert torch.equal(y_hat, expected)
    return fast


@pytest.mark.parametrize("name", CHECKERBOARD_MODELS)
@pytest.mark.parametrize("size", [(2, 3), (3, 5)])
def test_fast_twin_matches_the_reference_on_random_latents(size, name, monkeypatch):
    """Entropy network only on each pass's positions, context only on live taps at non-anchors,
    in row bands or whole: identical integers to whole-latent convolutions."""
    m = load_model(name)
    gen = torch.Generator().manual_seed(1)
    z_hat = torch.randint(-8, 9, (1, m.net.hyper_channels, *size), generator=gen).double()
    shape = torch.Size((1, m.net.config["M"], 4 * size[0], 4 * size[1]))
    whole = _compare(m, z_hat, shape, seed=2)
    for rows in (2, 3):  # bands of 2 latent rows, and of 3 (bands that start on odd rows)
        monkeypatch.setattr(hyperprior, "BAND_POSITIONS", rows * shape[3])
        assert len(m.twin.bands(shape[2], shape[3])) > 1
        banded = _compare(m, z_hat, shape, seed=2)
        for a, b in zip(whole, banded, strict=True):
            assert all(torch.equal(torch.as_tensor(x), torch.as_tensor(y)) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("name", CHECKERBOARD_MODELS)
def test_fast_twin_matches_the_reference_on_symbols_past_the_clamp(name):
    """Anchors whose fixed-point values pass 2**24 (a crafted file): the context reads them from
    the rebuilt float32 latent, where they are rounded, and still gets the reference's clamped
    integers."""
    m = load_model(name)
    z_hat = torch.randint(-8, 9, (1, m.net.hyper_channels, 2, 3), generator=torch.Generator().manual_seed(6))
    shape = torch.Size((1, m.net.config["M"], 8, 12))
    _compare(m, z_hat.double(), shape, seed=7, limit=1 << 17)  # |symbol| * ONE up to 2**25


@pytest.mark.parametrize("name", CHECKERBOARD_MODELS)
def test_fast_twin_matches_the_reference_on_a_real_latent(crop_array, name):
    m = load_model(name)
    y = latent.analyse(m, crop_array, 60)
    z_hat = torch.round(m.net.h_a(y)).double()
    _compare(m, z_hat, y.shape, seed=3)


def test_eight_bit_layers_run_in_float32_only_within_the_bound():
    """The fast model's 8-bit-input layers run in float32; the same layer with weights that
    could push a partial sum past 2**24 (a hostile file) falls back to float64, still exact."""
    from nicodec.models.integer import FLOAT32_EXACT, IntegerSynthesis

    m = load_model("fast")
    layers = [layer for net in m.integer.values() for layer in net.layers]
    assert all((layer.dtype == torch.float32) == (layer.grid is not None) for layer in layers)
    seq = m.net.entropy_net
    tensors = IntegerSynthesis.quantize(seq)
    tensors["1.weight"] = torch.full_like(tensors["1.weight"], 4000)  # 256 * 4000 * 255 > 2**24
    assert 256 * 4000 * 255 > FLOAT32_EXACT
    bold = IntegerSynthesis(seq, tensors)
    assert bold.layers[0].dtype == torch.float32 and bold.layers[1].dtype == torch.float64
    gen = torch.Generator().manual_seed(4)
    a = torch.randint(-4000, 4000, (50, seq[0].in_channels), generator=gen).double()
    reference = bold(a[:, :, None, None], fixed_point=True)[:, :, 0, 0]
    assert torch.equal(bold.rows(a).double(), reference)


def test_the_grid_rounds_alike_in_training_and_decoding():
    from nicodec.models.integer import ONE, EightBit

    grid = EightBit(3, signed=True)
    a = torch.arange(-20 * ONE, 20 * ONE, dtype=torch.float64)  # every fixed-point value in range
    k = grid.take(a)
    assert torch.equal(k, grid.fake(a / ONE) * 8)
    assert k.min() == -127 and k.max() == 127
    assert torch.equal(grid.take(a.float()).double(), k)  # float32 decoding, same integers


@pytest.mark.parametrize("eight", [False, True])
def test_every_window_of_an_integer_stack_is_the_reference(eight):
    """Per-tap and per-phase matrix products on a batch (strided convolutions, transposed ones of
    strides 2 and 3, float64 and 8-bit float32 layers): any output window, computed from just the
    input it needs, has the reference evaluation's integers."""
    from torch import nn

    from nicodec.models.integer import IntegerSynthesis, eight_bit
    from nicodec.models.layers import conv, deconv
    from nicodec.models.stages import run_window

    torch.manual_seed(5)
    layers = [deconv(6, 5), nn.ReLU(), conv(5, 7, 3, 1), nn.ReLU(), deconv(7, 4, 3), nn.ReLU(),
              conv(4, 6, 5, 2), nn.ReLU(), deconv(6, 3, 5, 3), nn.ReLU(), conv(3, 5, 3, 1)]
    if eight:
        layers = [eight_bit(m, 4, signed=False) if i and isinstance(m, nn.Conv2d | nn.ConvTranspose2d)
                  else m for i, m in enumerate(layers)]
    seq = nn.Sequential(*layers)
    net = IntegerSynthesis(seq, IntegerSynthesis.quantize(seq))
    assert any(layer.dtype == torch.float32 for layer in net.layers) == eight
    x = torch.randint(-9, 10, (2, 6, 5, 7)).double()  # a batch of two
    reference = net(x)
    assert reference.shape[2:] == (30, 42)
    stages = net.stages()
    source = x * (1 << 8)
    for window in [((0, 30), (0, 42)), ((3, 17), (5, 30)), ((0, 1), (41, 42)), ((20, 30), (0, 9))]:
        out = run_window(stages, lambda w: source[..., slice(*w[0]), slice(*w[1])], (5, 7), window)
        assert torch.equal(out.double(), reference[..., slice(*window[0]), slice(*window[1])]), window


@pytest.mark.parametrize("value", [-32768, 32767])
def test_integer_weights_past_their_limit_are_refused(value):
    """A model file's integer weight of magnitude over WEIGHT_LIMIT (checked as int16, where
    abs(-32768) overflows to itself) is refused, not computed inexactly."""
    from nicodec.models.integer import WEIGHT_LIMIT, IntegerSynthesis

    seq = load_model("fast").net.entropy_net
    tensors = IntegerSynthesis.quantize(seq)
    tensors["0.weight"][0, 0, 0, 0] = value
    if abs(value) <= WEIGHT_LIMIT:
        IntegerSynthesis(seq, tensors)  # at the limit: fine
        tensors["0.weight"] = tensors["0.weight"].int() * 2  # past it (no longer int16)
    with pytest.raises(ValueError, match="exactness bounds"):
        IntegerSynthesis(seq, tensors)

"""Widening a trained model (latent, transforms, residual blocks) keeps what it computes and lets
what is new learn."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nicodec.models.pretrained import load_model
from nicodec.models.registry import build_model
from nicodec.models.widen import index_map, widen_state


def test_index_map_grows_latent_blocks_and_hidden_tails():
    assert index_map(6, 6, 3, 5).tolist() == list(range(6))
    assert index_map(6, 10, 3, 5).tolist() == [0, 1, 2, 5, 6, 7]  # (mean, scale) halves of 2M
    assert index_map(4, 7, 3, 5).tolist() == [0, 1, 2, 3]  # a hidden width
    with pytest.raises(ValueError, match="cannot shrink"):
        index_map(7, 4, 3, 5)


def test_widened_shipped_model_computes_the_same(crop):
    shipped = load_model().net
    m = shipped.config["M"]
    wide = build_model(shipped.name, **{**shipped.config, "M": m + 8})
    wide.load_state_dict(widen_state(shipped.state_dict(), shipped.config, wide))
    x = torch.from_numpy(np.array(crop)[:128, :128]).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        for level in (0.0, 4.5, shipped.levels - 1.0):
            t = torch.tensor([level])
            before, after = shipped.eval()(x, t, noise=False), wide.eval()(x, t, noise=False)
            assert torch.allclose(before["x_hat"], after["x_hat"], atol=1e-5)
            # the 8 new channels cost well under a thousandth of a bit each position
            assert 0 <= float(after["bits"] - before["bits"]) < 1e-3 * 8 * 8 * 8
            assert torch.equal(after["bits_z"], before["bits_z"])
    assert torch.count_nonzero(wide.g_a[-1].weight[m:]) == 0  # new latent channels start at zero
    assert torch.count_nonzero(wide.g_s[0].weight[m:]) > 0  # and are read by random weights


def test_wider_transforms_compute_the_same_and_learn(crop):
    shipped = load_model().net
    n = shipped.config["N"]
    wide = build_model(shipped.name, **{**shipped.config, "N": n + 8, "N_hyper": n})
    wide.load_state_dict(widen_state(shipped.state_dict(), shipped.config, wide))
    wide.to(memory_format=torch.channels_last)  # the shipped net's layout: the same kernels
    x = torch.from_numpy(np.array(crop)[:128, :128]).permute(2, 0, 1)[None].float() / 255
    t = torch.tensor([7.0])
    with torch.no_grad():
        before, after = shipped.eval()(x, t, noise=False), wide.eval()(x, t, noise=False)
    assert torch.allclose(before["x_hat"], after["x_hat"], atol=1e-5)
    assert torch.equal(before["bits"], after["bits"])
    assert wide.z_prior.biases[0].shape[0] == n  # the hyper-latent keeps its width
    out = wide.train()(x, t)
    (out["bits"].sum() / 1e3 + ((out["x_hat"] - x) ** 2).sum()).backward()
    assert torch.count_nonzero(wide.g_a[2].weight[:n, n:]) == 0  # old units read new ones by zeros
    assert wide.g_a[2].weight.grad[:, n:].abs().sum() > 0  # which learn from the first step
    assert wide.g_s[2].weight.grad[n:].abs().sum() > 0


def test_new_channels_get_a_gradient(crop):
    old = build_model("checkerboard", N=16, M=12, levels=5)
    wide = build_model("checkerboard", N=16, M=20, levels=5)
    wide.load_state_dict(widen_state(old.state_dict(), old.config, wide))
    x = torch.from_numpy(np.array(crop)[:64, :128]).permute(2, 0, 1)[None].float() / 255
    out = wide(x, torch.tensor([3.0]))
    (out["bits"].sum() / 1e3 + ((out["x_hat"] - x) ** 2).sum()).backward()
    assert wide.g_a[-1].weight.grad[12:].abs().sum() > 0
    for other in ({"N": 24, "M": 20}, {"N": 16, "M": 8}):  # not the hyper-latent; only up
        with pytest.raises(ValueError, match="only the widths N and M may grow"):
            widen_state(old.state_dict(), old.config, build_model("checkerboard", **other, levels=5))


def test_residual_blocks_start_as_the_identity_and_learn(crop):
    base = build_model("checkerboard", N=32, M=48, levels=5, level_affine=True)  # without blocks
    deep = build_model(base.name, **{**base.config, "res_blocks": 2})
    deep.load_state_dict(widen_state(base.state_dict(), base.config, deep))
    assert sorted(deep.g_a_res) == ["3", "5"] and sorted(deep.g_s_res) == ["1", "3"]  # 1/4, 1/8
    x = torch.from_numpy(np.array(crop)[:128, :128]).permute(2, 0, 1)[None].float() / 255
    t = torch.tensor([6.0])
    with torch.no_grad():
        before, after = base.eval()(x, t, noise=False), deep.eval()(x, t, noise=False)
    assert torch.equal(before["x_hat"], after["x_hat"]) and torch.equal(before["bits"], after["bits"])
    out = deep.train()(x, t)
    (out["bits"].sum() / 1e3 + ((out["x_hat"] - x) ** 2).sum()).backward()
    for blocks in (deep.g_a_res, deep.g_s_res):
        for block in blocks.values():
            assert block[0].body[-1].weight.grad.abs().sum() > 0  # the zero layer learns at once
    with pytest.raises(ValueError, match="res_blocks be added"):  # not taken away
        widen_state(deep.state_dict(), deep.config, build_model(base.name, **base.config))

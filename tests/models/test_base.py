"""The transforms run in parts: a prefix, then the rest from where it stopped."""

from __future__ import annotations

import torch

from nicodec.models.registry import build_model


def test_a_transform_split_anywhere_is_the_whole_transform():
    torch.manual_seed(0)
    model = build_model("checkerboard", N=16, M=16, levels=3, level_affine=True, res_blocks=1)
    with torch.no_grad():  # non-trivial level-affine rows, so that skipping or repeating one shows
        model.g_a_log_scale.normal_(0, 0.3)
        model.g_a_shift.normal_(0, 0.3)
    x, t = torch.rand(2, 3, 64, 64), torch.tensor([0.3, 1.7])
    with torch.no_grad():
        whole = model.analyse(x, t)
        for k in range(1, len(model.g_a)):
            head = model.transform("g_a", x, t, stop=k)
            split = model.transform("g_a", head, t, start=k).float() * model.gain(t)
            torch.testing.assert_close(split, whole, rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(model.analyse(x, t, frozen=k), whole, rtol=1e-5, atol=1e-5)

"""The encoder's subspace shortcut (`models.subspace`): fewer multiply-adds, nearly the same latent."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from nicodec.codec import latent, tiling
from nicodec.models import subspace
from nicodec.models.pretrained import load_model
from nicodec.models.registry import build_model
from nicodec.models.stages import run_window


@pytest.mark.parametrize("name", ["checkerboard", "fast"])
def test_a_shipped_analysis_gets_an_orthonormal_basis_once_per_level(name):
    model = load_model(name)
    net, level = model.net, latent.quality_level(model, 75)
    bases = subspace.bases(net, level)
    (index, basis), = bases.items()
    assert index == subspace.widest(net.g_a) == 2  # the convolution after the first GDN
    assert basis.shape == (net.g_a[2].in_channels, subspace.RANK)
    assert torch.allclose(basis.T @ basis, torch.eye(subspace.RANK), atol=1e-4)
    assert subspace.bases(net, level) is bases
    other = subspace.bases(net, latent.quality_level(model, 20))
    assert not torch.allclose(other[index].abs(), basis.abs(), atol=1e-3)  # fitted per level


def test_a_transform_without_gdn_keeps_its_full_analysis():
    net = build_model("seed-ae").eval()
    assert subspace.widest(net.g_a) is None
    assert subspace.bases(net, torch.tensor([1.0])) == {}


@pytest.mark.parametrize("name", ["checkerboard", "fast"])
def test_the_projected_analysis_costs_less_for_nearly_the_same_latent(name, crop_array):
    """On a real photo: under 82 % of the multiply-adds, the latent within 0.5 % (relative), and
    all but a handful of its symbols rounded as the full analysis rounds them."""
    model = load_model(name)
    net, level = model.net, latent.quality_level(model, 75)
    source, size = tiling.image_source(crop_array, net.downsampling)
    whole = ((0, size[0] // 16), (0, size[1] // 16))
    out, macs = {}, {}
    for kind, bases in (("full", None), ("subspace", subspace.bases(net, level))):
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            out[kind] = run_window(net.analysis_stages(level, bases), source, size, whole)
        macs[kind] = counter.get_total_flops() / 2 / (size[0] * size[1])
    assert macs["full"] > 45_000 and macs["subspace"] < 0.82 * macs["full"]  # GDNs: per channel, no MACs
    full, fast = out["full"], out["subspace"]
    assert (fast - full).norm() < 0.005 * full.norm()
    assert (fast.round() == full.round()).float().mean() > 0.998

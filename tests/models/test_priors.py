"""The latent likelihood's scale floor: a floor in value, not a trap for the gradient."""

from __future__ import annotations

import torch

from nicodec.models.priors import SCALE_MIN, gaussian_likelihood


def _scale_gradient(residual: float, scale: float) -> torch.Tensor:
    s = torch.tensor([scale], requires_grad=True)
    (-torch.log2(gaussian_likelihood(torch.tensor([residual]), s))).sum().backward()
    return s.grad


def test_scale_below_the_floor_counts_as_the_floor():
    r = torch.tensor([0.0, 0.7, 3.0])
    assert torch.equal(gaussian_likelihood(r, torch.full((3,), -1.0)),
                       gaussian_likelihood(r, torch.full((3,), SCALE_MIN)))


def test_gradient_lifts_a_scale_stuck_below_the_floor():
    # a residual the floor makes expensive: the gradient says "raise the scale", and passes
    assert _scale_gradient(0.7, -0.2) < 0
    # a residual the floor already fits best: nothing pushes the scale further down
    assert _scale_gradient(0.0, -0.2) == 0
    # above the floor, the ordinary gradient in both directions
    assert _scale_gradient(0.0, 0.5) > 0 and _scale_gradient(3.0, 0.5) < 0

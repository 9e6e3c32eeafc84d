"""Differentiable probability models of quantized latents (used for training and rate estimates).

The codec never evaluates these at decode time: `nicodec.entropy.tables` turns them into
integer tables once, at export, so decoding cannot depend on float rounding.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

LIKELIHOOD_FLOOR = 1e-9
SCALE_MIN = 0.11


def _std_normal_cdf(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * torch.erfc(-x / math.sqrt(2.0))


class LowerBound(torch.autograd.Function):
    """max(x, bound), whose gradient still passes where it would raise x (Ballé et al.).

    A plain clamp has no gradient below the bound, so a scale pushed there can never come back:
    a latent channel whose predicted scale sits at the floor then stays unused for good (as the
    channels added by widening the latent did).
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, bound: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.bound = bound
        return x.clamp_min(bound)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (x,) = ctx.saved_tensors
        return grad * ((x >= ctx.bound) | (grad < 0)).to(grad.dtype), None


def gaussian_likelihood(residual: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """P(integer bin around `residual`) under N(0, scale); symmetric form for tail accuracy."""
    scale = LowerBound.apply(scale, SCALE_MIN)
    r = residual.abs()
    upper = _std_normal_cdf((0.5 - r) / scale)
    lower = _std_normal_cdf((-0.5 - r) / scale)
    return (upper - lower).clamp_min(LIKELIHOOD_FLOOR)


class FactorizedDensity(nn.Module):
    """Per-channel learned cumulative density (Ballé et al. 2018, appendix 6.1) for the hyper-latent."""

    def __init__(self, channels: int, filters: tuple[int, ...] = (3, 3, 3), init_scale: float = 10.0):
        super().__init__()
        dims = (1, *filters, 1)
        scale = init_scale ** (1 / (len(filters) + 1))
        self.matrices = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.factors = nn.ParameterList()
        for i in range(len(filters) + 1):
            init = math.log(math.expm1(1 / scale / dims[i + 1]))
            self.matrices.append(nn.Parameter(torch.full((channels, dims[i + 1], dims[i]), init)))
            self.biases.append(nn.Parameter(torch.rand(channels, dims[i + 1], 1) - 0.5))
            if i < len(filters):
                self.factors.append(nn.Parameter(torch.zeros(channels, dims[i + 1], 1)))

    def logits_cdf(self, x: torch.Tensor) -> torch.Tensor:
        """Logit of the CDF at `x`, shape [C, 1, N] in and out, computed in x's dtype."""
        with torch.autocast(x.device.type, enabled=False):
            for i, (matrix, bias) in enumerate(zip(self.matrices, self.biases, strict=True)):
                x = torch.matmul(F.softplus(matrix.to(x.dtype)), x) + bias.to(x.dtype)
                if i < len(self.factors):
                    x = x + torch.tanh(self.factors[i].to(x.dtype)) * torch.tanh(x)
        return x

    def likelihood(self, z: torch.Tensor) -> torch.Tensor:
        """P(integer bin around z) for z of shape [B, C, H, W]."""
        b, c, h, w = z.shape
        v = z.permute(1, 0, 2, 3).reshape(c, 1, -1).float()
        lower = self.logits_cdf(v - 0.5)
        upper = self.logits_cdf(v + 0.5)
        sign = -torch.sign(lower + upper).detach()
        lik = (torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower)).abs()
        lik = lik.reshape(c, b, h, w).permute(1, 0, 2, 3)
        return lik.clamp_min(LIKELIHOOD_FLOOR)

    @torch.no_grad()
    def pmf(self, support: torch.Tensor) -> torch.Tensor:
        """Probabilities of the integers in `support` (1-D) for every channel: [C, len(support)]."""
        c = self.matrices[0].shape[0]
        v = support.double().reshape(1, 1, -1).expand(c, 1, -1)
        lower = self.logits_cdf(v - 0.5)
        upper = self.logits_cdf(v + 0.5)
        sign = -torch.sign(lower + upper)
        return (torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower)).abs()[:, 0, :]

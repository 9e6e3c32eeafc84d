"""Mean-scale hyperprior with a checkerboard context (He et al. 2021): a parallel context model.

Latents split into anchors ((i + j) even) and the rest. Anchors are coded with parameters from
the hyperprior alone; the others additionally see their decoded anchor neighbours through a
masked 5x5 convolution. Both passes are fully parallel, unlike a raster-scan context model, and
both are evaluated exactly by integer networks at decode time.

The entropy network predicts a correction to the hyperprior's (mean, scale), and its last layer
starts at zero: a model warm-started from trained `hyperprior` weights (`nicodec train --init`)
begins exactly where that hyperprior is and only has to learn what the context adds.
"""

from __future__ import annotations

import torch
from torch import nn

from nicodec.models.base import LAMBDA_MAX, LAMBDA_MIN, LEVELS, Quantize
from nicodec.models.hyperprior import MeanScaleHyperprior
from nicodec.models.layers import conv


def anchor_mask(h: int, w: int, device: torch.device | None = None) -> torch.Tensor:
    """1 at anchor positions ((i + j) even), 0 elsewhere, shape [1, 1, h, w]."""
    i = torch.arange(h, device=device)[:, None]
    j = torch.arange(w, device=device)[None, :]
    return ((i + j) % 2 == 0).float()[None, None]


class CheckerboardConv(nn.Conv2d):
    """5x5 convolution that only sees anchor neighbours of a non-anchor position."""

    def __init__(self, cin: int, cout: int, kernel: int = 5) -> None:
        super().__init__(cin, cout, kernel, padding=kernel // 2)
        k = torch.arange(kernel)
        self.register_buffer("mask", ((k[:, None] + k[None, :]) % 2 == 1).float()[None, None])

    @property
    def effective_weight(self) -> torch.Tensor:
        return self.weight * self.mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.effective_weight, self.bias)


class CheckerboardHyperprior(MeanScaleHyperprior):
    name = "checkerboard"
    integer_nets = ("h_s", "context", "entropy_net")

    def __init__(self, N: int = 128, M: int = 192, levels: int = LEVELS,
                 lambda_min: float = LAMBDA_MIN, lambda_max: float = LAMBDA_MAX,
                 N_hyper: int | None = None, level_affine: bool = False,
                 res_blocks: int = 0) -> None:
        super().__init__(N, M, levels, lambda_min, lambda_max, N_hyper, level_affine, res_blocks)
        self.context = nn.Sequential(CheckerboardConv(M, 2 * M))
        self.entropy_net = nn.Sequential(conv(4 * M, 10 * M // 3, 1, 1), nn.ReLU(inplace=True),
                                         conv(10 * M // 3, 8 * M // 3, 1, 1), nn.ReLU(inplace=True),
                                         conv(8 * M // 3, 2 * M, 1, 1))
        nn.init.zeros_(self.entropy_net[-1].weight)
        nn.init.zeros_(self.entropy_net[-1].bias)

    def parameters_of(self, hyper: torch.Tensor, ctx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, scale): the hyperprior's, corrected from the anchor context."""
        return (hyper + self.entropy_net(torch.cat([hyper, ctx], 1)).float()).chunk(2, 1)

    def code_latent(self, y: torch.Tensor, t: torch.Tensor, quantize: Quantize) -> dict[str, torch.Tensor]:
        z = self.h_a(y).float()
        z_lik_in, z_hat = quantize(z)
        hyper = self.h_s(z_hat).float()
        anchors = anchor_mask(y.shape[2], y.shape[3], y.device)
        mean_a, scale_a = self.parameters_of(hyper, torch.zeros_like(hyper))
        ctx = self.context((quantize(y - mean_a)[1] + mean_a) * anchors).float()
        mean_n, scale_n = self.parameters_of(hyper, ctx)
        mean = anchors * mean_a + (1 - anchors) * mean_n
        scale = anchors * scale_a + (1 - anchors) * scale_n
        y_lik_in, residual_hat = quantize(y - mean)
        x_hat = self.synthesize(residual_hat + mean, t)
        return self.bits(y_lik_in + self.rate_input(y), scale, z_lik_in) | {"x_hat": x_hat}

"""Mean-scale hyperprior (Minnen et al. 2018, without context): the base of the default `checkerboard`."""

from __future__ import annotations

import torch
from torch import nn

from nicodec.models.base import LAMBDA_MAX, LAMBDA_MIN, LEVELS, VariableRateModel, ste_round
from nicodec.models.layers import conv, deconv, gdn_analysis, gdn_synthesis
from nicodec.models.priors import FactorizedDensity, gaussian_likelihood


class MeanScaleHyperprior(VariableRateModel):
    """Analysis/synthesis transforms, a hyper-autoencoder predicting (mean, scale) of the latent."""

    name = "hyperprior"
    entropy = "hyperprior"
    downsampling = 64
    integer_nets = ("h_s",)

    def __init__(self, N: int = 128, M: int = 192, levels: int = LEVELS,
                 lambda_min: float = LAMBDA_MIN, lambda_max: float = LAMBDA_MAX,
                 N_hyper: int | None = None) -> None:
        """`N_hyper` (the hyper-latent's width, N unless given) is separate so that the
        transforms can be widened without adding hyper-latent channels, which would cost bits."""
        H = N if N_hyper is None else N_hyper
        super().__init__(M, levels, lambda_min, lambda_max, N=N, M=M,
                         **({} if H == N else {"N_hyper": H}))
        self.hyper_channels = H
        self.g_a = gdn_analysis(N, M)
        self.g_s = gdn_synthesis(N, M)
        self.h_a = nn.Sequential(conv(M, H, 3, 1), nn.LeakyReLU(inplace=True), conv(H, H),
                                 nn.LeakyReLU(inplace=True), conv(H, H))
        self.h_s = nn.Sequential(deconv(H, M), nn.ReLU(inplace=True), deconv(M, M * 3 // 2),
                                 nn.ReLU(inplace=True), conv(M * 3 // 2, 2 * M, 3, 1))
        self.z_prior = FactorizedDensity(H)
        # share of the rate's gradient each latent channel passes back to the encoder (training)
        self.register_buffer("rate_grad", torch.ones(M), persistent=False)

    def rate_input(self, y: torch.Tensor) -> torch.Tensor:
        """y as the rate term sees it: the encoder gets `rate_grad` of the rate's gradient per
        channel, the entropy model all of it (`nicodec train --wake-channels`)."""
        keep = self.rate_grad[None, :, None, None]
        return keep * y + (1 - keep) * y.detach()

    def forward(self, x: torch.Tensor, t: torch.Tensor, noise: bool = True) -> dict[str, torch.Tensor]:
        """Training/evaluation pass: reconstruction and the bits each sample costs."""
        y = self.analyse(x, t)
        z = self.h_a(y).float()
        z_hat = ste_round(z)
        z_lik_in = z + torch.empty_like(z).uniform_(-0.5, 0.5) if noise else z_hat
        mean, scale = self.h_s(z_hat).float().chunk(2, dim=1)
        residual = y - mean
        y_lik_in = (self.rate_input(y) - mean + torch.empty_like(y).uniform_(-0.5, 0.5) if noise
                    else torch.round(residual))
        y_hat = ste_round(residual) + mean
        x_hat = self.synthesize(y_hat, t)
        bits_y = -torch.log2(gaussian_likelihood(y_lik_in, scale)).sum(dim=(1, 2, 3))
        bits_z = -torch.log2(self.z_prior.likelihood(z_lik_in)).sum(dim=(1, 2, 3))
        return {"x_hat": x_hat, "bits": bits_y + bits_z, "bits_y": bits_y, "bits_z": bits_z}

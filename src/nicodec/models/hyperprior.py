"""Mean-scale hyperprior (Minnen et al. 2018, without context): the base of the default `checkerboard`."""

from __future__ import annotations

import torch
from torch import nn

from nicodec.models.base import LAMBDA_MAX, LAMBDA_MIN, LEVELS, Quantize, VariableRateModel
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
                 N_hyper: int | None = None, level_affine: bool = False,
                 res_blocks: int = 0) -> None:
        """`N_hyper` (the hyper-latent's width, N unless given) is separate so that the
        transforms can be widened without adding hyper-latent channels, which would cost bits.
        `level_affine` adds per-level scales and shifts in the transforms, `res_blocks` that many
        residual blocks per stage at 1/4 and 1/8 resolution (`base`)."""
        H = N if N_hyper is None else N_hyper
        super().__init__(M, levels, lambda_min, lambda_max, N=N, M=M,
                         **({} if H == N else {"N_hyper": H}))
        self.hyper_channels = H
        self.g_a = gdn_analysis(N, M)
        self.g_s = gdn_synthesis(N, M)
        if level_affine:
            self.add_level_affine()
        if res_blocks:
            self.add_residual_blocks(res_blocks)
        self.h_a = nn.Sequential(conv(M, H, 3, 1), nn.LeakyReLU(inplace=True), conv(H, H),
                                 nn.LeakyReLU(inplace=True), conv(H, H))
        self.h_s = nn.Sequential(deconv(H, M), nn.ReLU(inplace=True), deconv(M, M * 3 // 2),
                                 nn.ReLU(inplace=True), conv(M * 3 // 2, 2 * M, 3, 1))
        self.z_prior = FactorizedDensity(H)
        # share of the rate's gradient each latent channel passes back to the encoder (training)
        self.register_buffer("rate_grad", torch.ones(M), persistent=False)

    def rate_input(self, y: torch.Tensor) -> torch.Tensor:
        """A zero whose gradient takes back from the encoder all but `rate_grad` of the rate's
        gradient per channel; the entropy model keeps all of it (`nicodec train --wake-channels`)."""
        drop = 1 - self.rate_grad[None, :, None, None]
        return drop * (y.detach() - y)

    def code_latent(self, y: torch.Tensor, t: torch.Tensor, quantize: Quantize) -> dict[str, torch.Tensor]:
        z = self.h_a(y).float()
        z_lik_in, z_hat = quantize(z)
        mean, scale = self.h_s(z_hat).float().chunk(2, dim=1)
        y_lik_in, residual_hat = quantize(y - mean)
        x_hat = self.synthesize(residual_hat + mean, t)
        return self.bits(y_lik_in + self.rate_input(y), scale, z_lik_in) | {"x_hat": x_hat}

    def bits(self, residual: torch.Tensor, scale: torch.Tensor, z: torch.Tensor) -> dict[str, torch.Tensor]:
        """Bits per sample of the quantized latent residual and hyper-latent."""
        bits_y = -torch.log2(gaussian_likelihood(residual, scale)).sum(dim=(1, 2, 3))
        bits_z = -torch.log2(self.z_prior.likelihood(z)).sum(dim=(1, 2, 3))
        return {"bits": bits_y + bits_z, "bits_y": bits_y, "bits_z": bits_z}

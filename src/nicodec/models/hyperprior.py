"""Mean-scale hyperprior (Minnen et al. 2018, without context) with gain units for variable rate.

One network covers the whole quality range: a continuous level t in [0, L-1] selects, by
log-linear interpolation, a per-channel gain applied to the latent before quantization and its
learned inverse applied before synthesis (Cui et al. 2021). Training draws t per sample with
lambda(t) interpolated geometrically, so every intermediate quality is a trained operating point.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from nicodec.models.layers import GDN, conv, deconv
from nicodec.models.priors import FactorizedDensity, gaussian_likelihood

LAMBDA_MIN = 0.0018
LAMBDA_MAX = 0.25
LEVELS = 8


def ste_round(x: torch.Tensor) -> torch.Tensor:
    """Round in the forward pass, identity gradient in the backward pass."""
    return x + (torch.round(x) - x).detach()


class MeanScaleHyperprior(nn.Module):
    """Analysis/synthesis transforms, a hyper-autoencoder predicting (mean, scale) of the latent."""

    name = "hyperprior"
    downsampling = 64

    def __init__(self, N: int = 128, M: int = 192, levels: int = LEVELS,
                 lambda_min: float = LAMBDA_MIN, lambda_max: float = LAMBDA_MAX) -> None:
        super().__init__()
        self.config = {"N": N, "M": M, "levels": levels,
                       "lambda_min": lambda_min, "lambda_max": lambda_max}
        self.levels = levels
        self.lambda_min, self.lambda_max = lambda_min, lambda_max
        self.g_a = nn.Sequential(conv(3, N), GDN(N), conv(N, N), GDN(N), conv(N, N), GDN(N),
                                 conv(N, M))
        self.g_s = nn.Sequential(deconv(M, N), GDN(N, inverse=True), deconv(N, N),
                                 GDN(N, inverse=True), deconv(N, N), GDN(N, inverse=True),
                                 deconv(N, 3))
        self.h_a = nn.Sequential(conv(M, N, 3, 1), nn.LeakyReLU(inplace=True), conv(N, N),
                                 nn.LeakyReLU(inplace=True), conv(N, N))
        self.h_s = nn.Sequential(deconv(N, M), nn.ReLU(inplace=True), deconv(M, M * 3 // 2),
                                 nn.ReLU(inplace=True), conv(M * 3 // 2, 2 * M, 3, 1))
        self.z_prior = FactorizedDensity(N)
        # Quantization step ~ 1/sqrt(lambda) for MSE: start the gains there so training starts
        # from a sensible rate ladder.
        ratio = torch.linspace(-0.5, 0.5, levels) * math.log(lambda_max / lambda_min)
        self.log_gain = nn.Parameter(ratio[:, None].repeat(1, M) * 0.5)
        self.log_inv_gain = nn.Parameter(-ratio[:, None].repeat(1, M) * 0.5)

    def lam(self, t: torch.Tensor) -> torch.Tensor:
        """Rate-distortion trade-off of level t (geometric interpolation)."""
        frac = t / (self.levels - 1)
        return self.lambda_min * (self.lambda_max / self.lambda_min) ** frac

    def _interp(self, table: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        i0 = t.floor().clamp(0, self.levels - 2).long()
        a = (t - i0).unsqueeze(1)
        log_g = (1 - a) * table[i0] + a * table[i0 + 1]
        return torch.exp(log_g)[:, :, None, None]

    def analyse(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Gained latent y (float32, before quantization)."""
        return self.g_a(x).float() * self._interp(self.log_gain, t)

    def synthesize(self, y_hat: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.g_s(y_hat * self._interp(self.log_inv_gain, t)).float()

    def entropy_parameters(self, z_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Float (mean, scale) prediction; the codec uses its integer twin (`IntegerHyperSynthesis`)."""
        mean, scale = self.h_s(z_hat).float().chunk(2, dim=1)
        return mean, scale

    def forward(self, x: torch.Tensor, t: torch.Tensor, noise: bool = True) -> dict[str, torch.Tensor]:
        """Training/evaluation pass: reconstruction and the bits each sample costs."""
        y = self.analyse(x, t)
        z = self.h_a(y).float()
        z_hat = ste_round(z)
        z_lik_in = z + torch.empty_like(z).uniform_(-0.5, 0.5) if noise else z_hat
        mean, scale = self.entropy_parameters(z_hat)
        residual = y - mean
        y_lik_in = residual + torch.empty_like(y).uniform_(-0.5, 0.5) if noise else torch.round(residual)
        y_hat = ste_round(residual) + mean
        x_hat = self.synthesize(y_hat, t)
        bits_y = -torch.log2(gaussian_likelihood(y_lik_in, scale)).sum(dim=(1, 2, 3))
        bits_z = -torch.log2(self.z_prior.likelihood(z_lik_in)).sum(dim=(1, 2, 3))
        return {"x_hat": x_hat, "bits": bits_y + bits_z, "bits_y": bits_y, "bits_z": bits_z}

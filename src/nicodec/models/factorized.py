"""Models whose latent has a learned factorized (per-channel) density: no side information.

`factorized` is the Ballé et al. (2017/2018) baseline with GDN transforms. `seed-ae` is the seed
design's plain convolutional autoencoder (conv + max-pool encoder, transposed-conv decoder,
sigmoid output) with its bottleneck quantized and entropy-coded the same way, so users can see
what transforms and the hyperprior buy.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from nicodec.models.base import LAMBDA_MAX, LAMBDA_MIN, LEVELS, Pass, Passes, Quantize, VariableRateModel
from nicodec.models.layers import conv, deconv, gdn_analysis, gdn_synthesis
from nicodec.models.priors import FactorizedDensity


class FactorizedTwin:
    """Exact coding procedure of a factorized latent: one pass, each channel its own shipped table."""

    def __init__(self, *_: object) -> None:
        """Nothing to build: no network picks the tables."""

    def passes(self, z_hat: None, shape: torch.Size, scales: bool = False,
               rebuild: bool = True) -> Passes:
        _, m, h, w = shape
        index = np.repeat(np.arange(m, dtype=np.uint16), h * w)
        symbols = yield Pass(index, torch.zeros(len(index), dtype=torch.float64), None,
                             torch.ones(h, w, dtype=torch.bool))
        return torch.from_numpy(symbols).float().reshape(1, m, h, w) if rebuild else None


class FactorizedModel(VariableRateModel):
    """Shared forward pass: gained latent, rounding, per-channel density."""

    entropy = "factorized"
    twin = FactorizedTwin

    def __init__(self, latent_channels: int, levels: int, lambda_min: float, lambda_max: float,
                 **arch: int) -> None:
        super().__init__(latent_channels, levels, lambda_min, lambda_max, **arch)
        self.y_prior = FactorizedDensity(latent_channels)

    def code_latent(self, y: torch.Tensor, t: torch.Tensor, quantize: Quantize) -> dict[str, torch.Tensor]:
        y_lik_in, y_hat = quantize(y)
        bits = -torch.log2(self.y_prior.likelihood(y_lik_in)).sum(dim=(1, 2, 3))
        return {"x_hat": self.synthesize(y_hat, t), "bits": bits}


class FactorizedPrior(FactorizedModel):
    name = "factorized"

    def __init__(self, N: int = 128, M: int = 192, levels: int = LEVELS,
                 lambda_min: float = LAMBDA_MIN, lambda_max: float = LAMBDA_MAX) -> None:
        super().__init__(M, levels, lambda_min, lambda_max, N=N, M=M)
        self.g_a = gdn_analysis(N, M)
        self.g_s = gdn_synthesis(N, M)


class SeedAutoencoder(FactorizedModel):
    name = "seed-ae"

    def __init__(self, N: int = 64, M: int = 128, levels: int = LEVELS,
                 lambda_min: float = LAMBDA_MIN, lambda_max: float = LAMBDA_MAX) -> None:
        super().__init__(M, levels, lambda_min, lambda_max, N=N, M=M)
        down = []
        for cin, cout in ((3, N), (N, N), (N, N), (N, M)):
            down += [conv(cin, cout, 3, 1), nn.ReLU(inplace=True), nn.MaxPool2d(2)]
        self.g_a = nn.Sequential(*down[:-2], down[-1])  # no ReLU on the bottleneck
        up = []
        for cin, cout in ((M, N), (N, N), (N, N)):
            up += [deconv(cin, cout, 3, 2), nn.ReLU(inplace=True)]
        self.g_s = nn.Sequential(*up, deconv(N, 3, 3, 2), nn.Sigmoid())

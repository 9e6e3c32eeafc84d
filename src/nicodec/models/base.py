"""What every model in the zoo shares: gain units for one-network variable rate.

A continuous level t in [0, levels-1] selects, by log-linear interpolation, a per-channel gain
applied to the latent before quantization and a learned inverse gain applied before synthesis
(Cui et al. 2021). Training draws t per sample with lambda(t) interpolated geometrically, so every
intermediate quality is a trained operating point.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

LAMBDA_MIN = 0.0018
LAMBDA_MAX = 0.25
LEVELS = 8
GAIN_TABLES = ("log_gain", "log_inv_gain")  # the parameters indexed by level

Ladder = tuple[int, float, float]  # (levels, lambda_min, lambda_max)


def regrid(table: torch.Tensor, old: Ladder, new: Ladder) -> torch.Tensor:
    """Re-sample a per-level table [levels, C] from one lambda ladder onto another.

    Linear in log lambda (the gains are log-linear in it), extrapolating past the old ends: a
    trained model can widen its rate range and keep every trained level exactly where it was.
    """
    (n_old, lo_old, hi_old), (n_new, lo_new, hi_new) = old, new
    log_lam = torch.linspace(math.log(lo_new), math.log(hi_new), n_new, dtype=torch.float64)
    pos = (log_lam - math.log(lo_old)) / math.log(hi_old / lo_old) * (n_old - 1)
    pos = torch.where((pos - pos.round()).abs() < 1e-6, pos.round(), pos)  # exact on old levels
    i0 = pos.floor().clamp(0, n_old - 2).long()
    a = (pos - i0).unsqueeze(1).to(table.dtype)
    return (1 - a) * table[i0] + a * table[i0 + 1]


def ste_round(x: torch.Tensor) -> torch.Tensor:
    """Round in the forward pass, identity gradient in the backward pass."""
    return x + (torch.round(x) - x).detach()


Quantize = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
"""v -> (what the rate is measured on, what the decoder sees): the one place where a model's
pass differs between training, evaluation and encoder-side refinement (`codec.refine`)."""


def noisy(v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Training: uniform noise for the rate, straight-through rounding for the decoder (the
    mixed quantization of Minnen & Singh 2020)."""
    return v + torch.empty_like(v).uniform_(-0.5, 0.5), ste_round(v)


def rounded(v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Evaluation: what the codec does, rounding for both."""
    r = ste_round(v)
    return r, r


class VariableRateModel(nn.Module):
    """Subclasses define `g_a`, `g_s`, `name`, `entropy` ("hyperprior" or "factorized")."""

    name = ""
    entropy = ""
    downsampling = 16  # the image is padded to a multiple of this
    latent_stride = 16  # pixels per latent position along each axis
    integer_nets: tuple[str, ...] = ()  # sub-networks evaluated exactly at decode time

    def __init__(self, latent_channels: int, levels: int = LEVELS, lambda_min: float = LAMBDA_MIN,
                 lambda_max: float = LAMBDA_MAX, **architecture: int) -> None:
        super().__init__()
        # everything needed to rebuild the model from a weights file
        self.config = {**architecture, "levels": levels, "lambda_min": lambda_min,
                       "lambda_max": lambda_max}
        self.levels = levels
        self.lambda_min, self.lambda_max = lambda_min, lambda_max
        # Quantization step ~ 1/sqrt(lambda) for MSE: start the gains there.
        ratio = torch.linspace(-0.5, 0.5, levels) * math.log(lambda_max / lambda_min)
        self.log_gain = nn.Parameter(ratio[:, None].repeat(1, latent_channels) * 0.5)
        self.log_inv_gain = nn.Parameter(-ratio[:, None].repeat(1, latent_channels) * 0.5)

    @property
    def ladder(self) -> Ladder:
        return self.levels, self.lambda_min, self.lambda_max

    def lam(self, t: torch.Tensor) -> torch.Tensor:
        """Rate-distortion trade-off of level t (geometric interpolation)."""
        frac = t / (self.levels - 1)
        return self.lambda_min * (self.lambda_max / self.lambda_min) ** frac

    def _interp(self, table: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        i0 = t.floor().clamp(0, self.levels - 2).long()
        a = (t - i0).unsqueeze(1)
        log_g = (1 - a) * table[i0] + a * table[i0 + 1]
        return torch.exp(log_g)[:, :, None, None]

    def gain(self, t: torch.Tensor) -> torch.Tensor:
        """Per-channel latent gain of level t, [B, C, 1, 1]."""
        return self._interp(self.log_gain, t)

    def analyse(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Gained latent y (float32, before quantization)."""
        return self.g_a(x).float() * self.gain(t)

    def synthesize(self, y_hat: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.g_s(y_hat * self._interp(self.log_inv_gain, t)).float()

    def forward(self, x: torch.Tensor, t: torch.Tensor, noise: bool = True) -> dict[str, torch.Tensor]:
        """Training/evaluation pass: reconstruction and the bits each sample costs."""
        return self.code_latent(self.analyse(x, t), t, noisy if noise else rounded)

    def code_latent(self, y: torch.Tensor, t: torch.Tensor, quantize: Quantize) -> dict[str, torch.Tensor]:
        """Quantize the gained latent y, measure its bits, decode it: {"x_hat", "bits", ...}."""
        raise NotImplementedError

"""Latent coding: padded image tensor <-> ANS-coded sections, for both entropy families.

Decoding is exact by construction. Hyperprior: the hyper-latent is decoded with shipped integer
tables; the integer hyper-synthesis (`models.integer`) turns it into fixed-point means and integer
table indices; the latent is decoded with shipped integer tables. Factorized: each channel has
its shipped table. No float result ever decides a table.
"""

from __future__ import annotations

import numpy as np
import torch

from nicodec.bitstream.container import Kind, Section
from nicodec.entropy import coder
from nicodec.models.integer import ACT_BITS
from nicodec.models.pretrained import InferenceModel
from nicodec.models.priors import gaussian_likelihood


def quality_level(model: InferenceModel, quality: int) -> torch.Tensor:
    """Quality 1..100 -> continuous level t in [0, levels-1] (monotone, like JPEG's -q)."""
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be in 1..100, not {quality}")
    return torch.tensor([(quality - 1) / 99 * (model.net.levels - 1)], dtype=torch.float32)


def entropy_parameters(model: InferenceModel, z_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact (mean, table index) for the latent from the integer hyper-latent."""
    out = model.hyper(z_hat)
    mean_fixed, scale_fixed = out.chunk(2, dim=1)
    mean = mean_fixed / (1 << ACT_BITS)  # exact: a power-of-two division of an integer
    index = torch.searchsorted(model.y_thresholds, scale_fixed.long().contiguous(), right=True)
    return mean, index


def _channel_index(shape: torch.Size) -> np.ndarray:
    b, c, h, w = shape
    return np.broadcast_to(np.arange(c)[None, :, None, None], (b, c, h, w)).reshape(-1)


@torch.no_grad()
def encode(model: InferenceModel, x: torch.Tensor, quality: int) -> list[Section]:
    """x: [1, 3, H, W] in [0, 1], H and W multiples of the model's downsampling."""
    t = quality_level(model, quality)
    y = model.net.analyse(x, t)
    if model.net.entropy == "factorized":
        y_hat = torch.round(y)
        words, esc = coder.encode(y_hat.long().numpy().reshape(-1), _channel_index(y_hat.shape),
                                  model.y_tables)
        return [Section(Kind.Y, words), Section(Kind.Y_ESCAPES, esc)]
    z_hat = torch.round(model.net.h_a(y))
    mean, index = entropy_parameters(model, z_hat)
    symbols = torch.round(y.double() - mean)
    z_words, z_esc = coder.encode(z_hat.long().numpy().reshape(-1), _channel_index(z_hat.shape),
                                  model.z_tables)
    y_words, y_esc = coder.encode(symbols.long().numpy().reshape(-1), index.numpy().reshape(-1),
                                  model.y_tables)
    return [Section(Kind.Z, z_words), Section(Kind.Z_ESCAPES, z_esc),
            Section(Kind.Y, y_words), Section(Kind.Y_ESCAPES, y_esc)]


@torch.no_grad()
def decode_latents(model: InferenceModel, sections: dict[Kind, bytes], height: int,
                   width: int) -> torch.Tensor:
    """The exact latent y_hat (float64) of a padded height x width image."""
    if model.net.entropy == "factorized":
        ds = model.net.downsampling
        shape = torch.Size((1, model.net.config["M"], height // ds, width // ds))
        y = coder.decode(sections[Kind.Y], sections[Kind.Y_ESCAPES], _channel_index(shape),
                         model.y_tables)
        return torch.from_numpy(y).double().reshape(shape)
    n = model.net.config["N"]
    ds = model.net.downsampling
    z_shape = torch.Size((1, n, height // ds, width // ds))
    z = coder.decode(sections[Kind.Z], sections[Kind.Z_ESCAPES], _channel_index(z_shape),
                     model.z_tables)
    z_hat = torch.from_numpy(z).double().reshape(z_shape)
    mean, index = entropy_parameters(model, z_hat)
    symbols = coder.decode(sections[Kind.Y], sections[Kind.Y_ESCAPES], index.numpy().reshape(-1),
                           model.y_tables)
    return torch.from_numpy(symbols).double().reshape(mean.shape) + mean


@torch.no_grad()
def decode(model: InferenceModel, sections: dict[Kind, bytes], height: int, width: int,
           quality: int) -> torch.Tensor:
    """Reconstruction [1, 3, height, width] in [0, 1]."""
    y_hat = decode_latents(model, sections, height, width)
    return model.net.synthesize(y_hat.float(), quality_level(model, quality)).clamp(0, 1)


@torch.no_grad()
def estimate_bits(model: InferenceModel, x: torch.Tensor, quality: int) -> float:
    """The model's own rate estimate (continuous densities, no tables) for the padded image x.

    Uses the same integer-network means and scales as the codec, but the exact Gaussian and the
    learned hyper-latent density instead of the quantized tables: comparing it with the real
    payload size measures what table snapping, count quantization and ANS overhead cost.
    """
    t = quality_level(model, quality)
    y = model.net.analyse(x, t)
    if model.net.entropy == "factorized":
        return float(-torch.log2(model.net.y_prior.likelihood(torch.round(y)).double()).sum())
    z_hat = torch.round(model.net.h_a(y))
    out = model.hyper(z_hat)
    mean_fixed, scale_fixed = out.chunk(2, dim=1)
    residual = torch.round(y.double() - mean_fixed / (1 << ACT_BITS))
    lik_y = gaussian_likelihood(residual, scale_fixed / (1 << ACT_BITS))
    lik_z = model.net.z_prior.likelihood(z_hat)
    return float(-torch.log2(lik_y).sum() - torch.log2(lik_z.double()).sum())

"""Encoder-side latent refinement: the slow, opt-in effort levels (like `cjxl -e 9`).

The analysis transform is amortized: one pass guesses a latent for every image. Optimizing the
latent of the image at hand against the model's own rate + lambda * MSE finds a better one, and
the decoder is untouched, so files written this way decode with any nicodec. Rounding is relaxed
by stochastic Gumbel annealing (Yang et al. 2020, "Improving inference for neural image
compression"): a soft, random rounding that hardens as its temperature falls.

Only the latent y is optimized; the hyper-latent follows it through h_a, which keeps the two
consistent and lets the image be refined in independent overlapping tiles (`codec.tiling`), so
memory stays bounded whatever the image size. The best iterate under real rounding is kept, the
analysis transform's own latent included, so refinement never makes the model's estimate worse.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from nicodec import progress
from nicodec.codec.tiling import apply_tiled
from nicodec.models.base import Quantize, VariableRateModel, rounded
from nicodec.models.precision import bf16_pays

EFFORT_ITERATIONS = {1: 0, 2: 100, 3: 200}  # effort level -> refinement iterations
LEARNING_RATE = 0.002  # Adam; 0.01 drifts on the many near-deterministic latents of M=320
TAU_START, TAU_END = 0.5, 0.05  # annealing temperature, falling exponentially over the run
CHECK_EVERY = 10  # iterations between evaluations of the current latent under real rounding
TILE = 48  # latent positions per tile side (768 pixels): a Kodak image is one tile
MARGIN = 4  # a multiple of 4 keeps the hyper-latent grid and the checkerboard aligned


def describe(effort: int) -> str:
    """The settings of an effort level, as reports show them (and caches key them)."""
    if not EFFORT_ITERATIONS[effort]:
        return f"effort {effort}"
    return (f"effort {effort}: {EFFORT_ITERATIONS[effort]} iterations, Adam lr {LEARNING_RATE:g}, "
            f"temperature {TAU_START:g} to {TAU_END:g}")


def annealed_rounding(tau: float) -> Quantize:
    """Stochastic Gumbel annealing: v rounds down or up at random, softly, with odds that favour
    the nearer integer more as tau falls; rate and decoder see the same sample."""

    def quantize(v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        low = torch.floor(v)
        frac = (v - low).clamp(1e-4, 1 - 1e-4)
        logits = torch.stack([-torch.atanh(frac), -torch.atanh(1 - frac)], -1) / tau
        soft = low + F.gumbel_softmax(logits, tau=tau, hard=False)[..., 1]
        return soft, soft

    return quantize


def _objective(net: VariableRateModel, y: torch.Tensor, x: torch.Tensor, mask: torch.Tensor,
               t: torch.Tensor, quantize: Quantize) -> torch.Tensor:
    """Bits per real pixel + lambda * 255^2 * MSE over real pixels (the training loss)."""
    out = net.code_latent(y, t, quantize)
    pixels = mask.sum().clamp(min=1)
    mse = ((out["x_hat"] - x) ** 2 * mask).sum() / (3 * pixels)
    return out["bits"].sum() / pixels + net.lam(t).sum() * 255**2 * mse


def _refine_tile(net: VariableRateModel, xm: torch.Tensor, t: torch.Tensor, iterations: int) -> torch.Tensor:
    x, mask = xm[:, :3], xm[:, 3:]
    with torch.no_grad():
        y = net.analyse(x, t)
        best, best_y = _objective(net, y, x, mask, t, rounded).item(), y.clone()
    y.requires_grad_(True)
    optimizer = torch.optim.Adam([y], lr=LEARNING_RATE)
    with progress.bar(iterations, "effort: refining the latent", "iter") as shown:
        for i in range(1, iterations + 1):
            tau = TAU_START * (TAU_END / TAU_START) ** (i / iterations)
            # as in training: ~1.6x faster where bf16 has fast kernels (`models/precision.py`)
            with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16_pays(x.device)):
                loss = _objective(net, y, x, mask, t, annealed_rounding(tau))
            optimizer.zero_grad(set_to_none=True)
            loss.backward(inputs=[y])  # the weights' gradients are never computed
            optimizer.step()
            if i % CHECK_EVERY == 0 or i == iterations:
                with torch.no_grad():
                    j = _objective(net, y, x, mask, t, rounded).item()
                if j < best:
                    best, best_y = j, y.detach().clone()
            shown.update()
    return best_y


def refine(net: VariableRateModel, x: torch.Tensor, height: int, width: int, t: torch.Tensor,
           iterations: int) -> torch.Tensor:
    """The refined gained latent y of a padded image x [1, 3, H, W] whose real content is its top
    left height x width, at level t."""
    mask = torch.zeros_like(x[:, :1])
    mask[..., :height, :width] = 1
    stride = net.latent_stride
    grid = (x.shape[2] // stride, x.shape[3] // stride)
    with torch.enable_grad():
        return apply_tiled(lambda part: _refine_tile(net, part, t, iterations), torch.cat([x, mask], 1),
                           grid, stride, 1, tile=TILE, margin=MARGIN)

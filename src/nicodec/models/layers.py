"""Building blocks shared by the model zoo."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import torch
import torch.nn.functional as F
from torch import nn

_RANDOM_INIT: ContextVar[bool] = ContextVar("random_init", default=True)


@contextmanager
def without_random_init() -> Iterator[None]:
    """Convolutions built inside (in this thread or task) skip PyTorch's random initial weights,
    for a caller that loads every weight right after: drawing them took 0.14 s of the default
    model's 0.6 s build, paid by every one-shot decode. Their memory is left as allocated."""
    token = _RANDOM_INIT.set(False)
    try:
        yield
    finally:
        _RANDOM_INIT.reset(token)


class Conv2d(nn.Conv2d):
    """nn.Conv2d that `without_random_init` can build without drawing initial weights."""

    def reset_parameters(self) -> None:
        if _RANDOM_INIT.get():
            super().reset_parameters()


class ConvTranspose2d(nn.ConvTranspose2d):
    """nn.ConvTranspose2d that `without_random_init` can build without drawing initial weights."""

    def reset_parameters(self) -> None:
        if _RANDOM_INIT.get():
            super().reset_parameters()


def conv(cin: int, cout: int, kernel: int = 5, stride: int = 2) -> nn.Conv2d:
    """'Same' convolution that downsamples by `stride`."""
    return Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2)


def deconv(cin: int, cout: int, kernel: int = 5, stride: int = 2) -> nn.ConvTranspose2d:
    """Transposed convolution that upsamples exactly by `stride`."""
    return ConvTranspose2d(cin, cout, kernel, stride=stride, padding=kernel // 2, output_padding=stride - 1)


def per_position(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """A 1x1 convolution (weight [cin, cout]) of x [N, cin, H, W] as one matrix product over its
    positions, which a channels-last x gives without a copy: PyTorch's batch-1, one-thread path
    for such a convolution runs at about a quarter of a matrix product's speed."""
    n, c, h, w = x.shape
    rows = x.permute(0, 2, 3, 1).reshape(n * h * w, c)
    out = rows @ weight if bias is None else torch.addmm(bias, rows, weight)
    return out.view(n, h, w, -1).permute(0, 3, 1, 2)


class GDN(nn.Module):
    """Generalized divisive normalization (Ballé 2016), or its inverse.

    Parameters are stored as square roots so gamma and beta stay non-negative
    under plain gradient descent, which is what keeps the divisor well defined.
    """

    def __init__(self, channels: int, inverse: bool = False) -> None:
        super().__init__()
        self.inverse = inverse
        self.beta_sqrt = nn.Parameter(torch.ones(channels))
        self.gamma_sqrt = nn.Parameter(torch.eye(channels) * 0.1**0.5)

    def terms(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(beta, gamma): the divisor is sqrt(beta + gamma @ x**2)."""
        return self.beta_sqrt.clamp_min(1e-3) ** 2, self.gamma_sqrt.clamp_min(0.0) ** 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        beta, gamma = self.terms()
        if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last):
            # the codec's tiles: the 1x1 convolution as one matrix product (the GDN costs 0.6x as
            # long, same values)
            norm = per_position(x * x, gamma.T, beta).sqrt_()
            return x * norm if self.inverse else x / norm
        norm = torch.sqrt(F.conv2d(x * x, gamma[:, :, None, None], beta))
        return x * norm if self.inverse else x / norm


class ChannelwiseGDN(nn.Module):
    """A GDN whose gamma has no cross-channel term, channel by channel with no matrix product: the
    codec's form of every shipped GDN (an off-diagonal entry clamped at zero in training gets no
    gradient and never comes back). Same values as the GDN."""

    def __init__(self, gdn: GDN) -> None:
        super().__init__()
        self.beta, gamma = gdn.terms()
        self.diagonal = torch.diagonal(gamma)
        self.inverse = gdn.inverse

    @staticmethod
    def of(gdn: GDN) -> nn.Module:
        """This form of `gdn` where its gamma is diagonal, else `gdn` itself."""
        gamma = gdn.terms()[1]
        return ChannelwiseGDN(gdn) if torch.equal(torch.diag(torch.diagonal(gamma)), gamma) else gdn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xs = x.permute(0, 2, 3, 1)  # channels last: the per-channel terms broadcast along rows
        norm = (xs * xs).mul_(self.diagonal).add_(self.beta).sqrt_()
        return (norm.mul_(xs) if self.inverse else xs / norm).permute(0, 3, 1, 2)


class ResidualBottleneck(nn.Module):
    """x + 1x1 -> 3x3 -> 1x1 at half the width (He et al. 2016; as in ELIC's transforms).

    The last convolution starts at zero, so the block starts as the identity and can be added to
    a trained transform without changing what it computes; the bottleneck keeps it at about a
    sixth of the cost of two full-width 3x3 convolutions.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        mid = channels // 2
        self.body = nn.Sequential(conv(channels, mid, 1, 1), nn.LeakyReLU(inplace=True),
                                  conv(mid, mid, 3, 1), nn.LeakyReLU(inplace=True),
                                  conv(mid, channels, 1, 1))
        nn.init.zeros_(self.body[-1].weight)
        nn.init.zeros_(self.body[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def gdn_analysis(N: int, M: int) -> nn.Sequential:
    """Ballé et al. analysis transform: four 5x5 stride-2 convs with GDN, /16."""
    return nn.Sequential(conv(3, N), GDN(N), conv(N, N), GDN(N), conv(N, N), GDN(N), conv(N, M))


def gdn_synthesis(N: int, M: int) -> nn.Sequential:
    """Mirror of `gdn_analysis` with inverse GDN, x16."""
    return nn.Sequential(deconv(M, N), GDN(N, inverse=True), deconv(N, N), GDN(N, inverse=True),
                         deconv(N, N), GDN(N, inverse=True), deconv(N, 3))

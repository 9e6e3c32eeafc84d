"""Mean-scale hyperprior (Minnen et al. 2018, without context): the base of the default `checkerboard`."""

from __future__ import annotations

import torch
from torch import nn

from nicodec.models.base import LAMBDA_MAX, LAMBDA_MIN, LEVELS, Pass, Passes, Quantize, VariableRateModel
from nicodec.models.cost import conv_macs
from nicodec.models.integer import ONE, IntegerSynthesis
from nicodec.models.layers import conv, deconv, gdn_analysis, gdn_synthesis
from nicodec.models.priors import FactorizedDensity, gaussian_likelihood
from nicodec.models.stages import run_window

LOOKUP_LIMIT = 1 << 20  # largest last threshold given a lookup table (a byte an entry)
BAND_POSITIONS = 2048  # latent positions per band of the integer networks (memory per band)


class HyperpriorTwin:
    """Exact decode twin of `MeanScaleHyperprior.code_latent`: the integer hyper-synthesis picks
    each symbol's table and mean (`models.integer`), in row bands of the latent so that memory
    stays bounded; one pass over the whole latent."""

    def __init__(self, integer: dict[str, IntegerSynthesis], thresholds: torch.Tensor) -> None:
        self.integer = integer
        self.h_s = integer["h_s"].stages()
        self.thresholds = thresholds
        # every answer of `index` for scales 0..the last threshold, looked up instead of searched
        # (6x faster); a file whose thresholds reach further is searched
        top = int(thresholds[-1]) if len(thresholds) else 0
        self.lookup = (torch.searchsorted(thresholds, torch.arange(top + 1), right=True).to(torch.uint8)
                       if 0 <= top < LOOKUP_LIMIT else None)

    def bands(self, height: int, width: int) -> list[tuple[int, int]]:
        rows = max(2, BAND_POSITIONS // max(width, 1))
        return [(r, min(r + rows, height)) for r in range(0, height, rows)]

    def hyper(self, z_hat: torch.Tensor, band: tuple[int, int], width: int, stop: int | None = None
              ) -> torch.Tensor:
        """The hyper-synthesis (fixed-point mean and scale) on latent rows `band`, as
        [positions, 2M] in raster order; with `stop`, only its layers before that index (what that
        layer reads, where the layers after it are 1x1)."""
        z = z_hat.double()
        out = run_window(self.h_s[:stop], lambda w: z[..., slice(*w[0]), slice(*w[1])] * ONE,
                         tuple(z.shape[2:]), (band, (0, width)))
        return out[0].flatten(1).T

    def index(self, scale: torch.Tensor) -> torch.Tensor:
        """Table index of each fixed-point scale, by integer comparison with stored thresholds."""
        if self.lookup is not None:  # below 0 -> 0, above the last threshold -> the last index
            return self.lookup[scale.long().clamp_(0, len(self.lookup) - 1)]
        return torch.searchsorted(self.thresholds, scale.long().contiguous(), right=True).to(torch.uint8)

    def passes(self, z_hat: torch.Tensor, shape: torch.Size, scales: bool = False,
               rebuild: bool = True) -> Passes:
        _, m, h, w = shape
        params = torch.cat([self.hyper(z_hat, band, w) for band in self.bands(h, w)])  # [H*W, 2M]
        mean, scale = params[:, :m].T, params[:, m:].T
        symbols = yield Pass(self.index(scale).reshape(-1).numpy(), mean.reshape(-1),
                             scale.reshape(-1) if scales else None,
                             torch.ones(h, w, dtype=torch.bool))
        if not rebuild:
            return None
        return (torch.from_numpy(symbols).double() + mean.reshape(-1) / ONE).float().reshape(1, m, h, w)



class MeanScaleHyperprior(VariableRateModel):
    """Analysis/synthesis transforms, a hyper-autoencoder predicting (mean, scale) of the latent."""

    name = "hyperprior"
    entropy = "hyperprior"
    downsampling = 64
    integer_nets = ("h_s",)
    twin = HyperpriorTwin

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
        self.g_s = self.new_synthesis(N, M)
        if level_affine:
            self.add_level_affine()
        if res_blocks:
            self.add_residual_blocks(res_blocks)
        self.h_a = nn.Sequential(conv(M, H, 3, 1), nn.LeakyReLU(inplace=True), conv(H, H),
                                 nn.LeakyReLU(inplace=True), conv(H, H))
        self.h_s = self.new_hyper_synthesis(H, M)
        self.z_prior = FactorizedDensity(H)
        # share of the rate's gradient each latent channel passes back to the encoder (training)
        self.register_buffer("rate_grad", torch.ones(M), persistent=False)

    @staticmethod
    def new_synthesis(N: int, M: int) -> nn.Sequential:
        return gdn_synthesis(N, M)

    @staticmethod
    def new_hyper_synthesis(H: int, M: int) -> nn.Sequential:
        """z_hat -> fixed-point (mean, scale) of the latent, 2M channels."""
        return nn.Sequential(deconv(H, M), nn.ReLU(inplace=True), deconv(M, M * 3 // 2),
                             nn.ReLU(inplace=True), conv(M * 3 // 2, 2 * M, 3, 1))

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

    def decoder_macs(self, height: int = 256, width: int = 256) -> dict[str, float]:
        z_stride = 4 * self.latent_stride
        z = torch.zeros(1, self.hyper_channels, height // z_stride, width // z_stride)
        macs = conv_macs(self.h_s, lambda: self.h_s(z))
        return super().decoder_macs(height, width) | {"hyper-synthesis": macs / (height * width)}

    def bits(self, residual: torch.Tensor, scale: torch.Tensor, z: torch.Tensor) -> dict[str, torch.Tensor]:
        """Bits per sample of the quantized latent residual and hyper-latent."""
        bits_y = -torch.log2(gaussian_likelihood(residual, scale)).sum(dim=(1, 2, 3))
        bits_z = -torch.log2(self.z_prior.likelihood(z)).sum(dim=(1, 2, 3))
        return {"bits": bits_y + bits_z, "bits_y": bits_y, "bits_z": bits_z}

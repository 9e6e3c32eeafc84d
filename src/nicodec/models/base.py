"""What every model in the zoo shares: gain units for one-network variable rate.

A continuous level t in [0, levels-1] selects, by log-linear interpolation, a per-channel gain
applied to the latent before quantization and a learned inverse gain applied before synthesis
(Cui et al. 2021). Training draws t per sample with lambda(t) interpolated geometrically, so every
intermediate quality is a trained operating point.

Gains alone leave the transforms' nonlinearities the same at every rate. With `level_affine`,
each GDN layer's input is also scaled and shifted per channel by level-t tables (starting at the
identity), so the encoder and decoder can work differently at 0.1 and at 1.5 bpp: fine-tuning
only such tables at one level won 1.8 % of its loss in 250 steps where the gains alone won
nothing (docs/TRAINING_LOG.md, session 15).

With `res_blocks`, residual bottleneck blocks after the GDN layers at 1/4 and 1/8 resolution
add depth to both transforms; they start as the identity, so a trained model takes them on
without losing what it has learnt (`nicodec train --init`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from nicodec.models import subspace
from nicodec.models.cost import conv_macs
from nicodec.models.layers import GDN, ResidualBottleneck
from nicodec.models.stages import Stage, merged, stages_of

LAMBDA_MIN = 0.0018
LAMBDA_MAX = 0.25
LEVELS = 8
GAIN_TABLES = ("log_gain", "log_inv_gain")  # per-level latent gains
AFFINE_TABLES = tuple(f"{net}_{kind}" for net in ("g_a", "g_s") for kind in ("log_scale", "shift"))
LEVEL_TABLES = GAIN_TABLES + AFFINE_TABLES  # every parameter indexed by level
RES_BLOCKS = ("g_a_res", "g_s_res")  # residual blocks of the transforms (`add_residual_blocks`)

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


def affine_points(layers: nn.Sequential) -> list[tuple[int, int]]:
    """(index, channels) of the layers that level-affine tables precede: each GDN, or in a light
    transform without GDN each ReLU (its channels those of the convolution before it)."""
    if any(isinstance(m, GDN) for m in layers):
        return [(i, m.beta_sqrt.numel()) for i, m in enumerate(layers) if isinstance(m, GDN)]
    return [(i, layers[i - 1].out_channels) for i, m in enumerate(layers) if isinstance(m, nn.ReLU)]


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


@dataclass
class Pass:
    """One coding pass over the latent, as the integer twin computes it: the table `index`, and
    the fixed-point `mean` and `scale`, of each symbol in coding order: channel by channel, each
    over the positions of `where` (a boolean [H, W] mask, the same for every channel) in raster
    order. The scale is there only when the passes were asked for it (`passes(..., scales=True)`):
    rate estimates read it, coding never."""

    index: np.ndarray
    mean: torch.Tensor
    scale: torch.Tensor | None
    where: torch.Tensor


Passes = Generator[Pass, np.ndarray, torch.Tensor | None]
"""A twin's `passes(z_hat, shape, scales=False, rebuild=True)`: yields each pass, receives its
integer symbols (coding order), returns the latent y_hat (float32 [1, M, H, W]) once every pass
is done, or None with `rebuild=False` (an encoder already has its latent: no second copy)."""

def _affine(x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """x * scale + shift in one rounding (training's); in place where no gradient is recorded (the
    codec's tiles): the input is the convolution's own output, and a fresh tensor of a synthesis
    tile's size (33 MB at 1/2 resolution) would be mapped and faulted in at every tile."""
    return torch.addcmul(shift, x, scale, out=None if torch.is_grad_enabled() else x)


class VariableRateModel(nn.Module):
    """Subclasses define `g_a`, `g_s`, `name`, `entropy` ("hyperprior" or "factorized")."""

    name = ""
    entropy = ""
    downsampling = 16  # the image is padded to a multiple of this
    latent_stride = 16  # pixels per latent position along each axis
    integer_nets: tuple[str, ...] = ()  # sub-networks evaluated exactly at decode time
    twin: type  # its exact coding procedure, built from a model file's integer side (`pretrained`)
    # what a warm start takes from another zoo model's file (None: every network both have)
    inherits: tuple[str, ...] | None = None

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

    @property
    def tile_margin(self) -> int:
        """Latent positions of overlap that tiles need (`codec/tiling.py`): the four 5x5 stride-2
        layers reach under 2; a residual block adds a 3x3 convolution at 1/8 resolution (half a
        position) and one at 1/4 (a quarter), on each side of the latent."""
        return 2 + math.ceil(0.75 * self.config.get("res_blocks", 0))

    def lam(self, t: torch.Tensor) -> torch.Tensor:
        """Rate-distortion trade-off of level t (geometric interpolation)."""
        frac = t / (self.levels - 1)
        return self.lambda_min * (self.lambda_max / self.lambda_min) ** frac

    def _lerp(self, table: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Row t of a per-level table [levels, C] (linear between levels), as [B, C, 1, 1]."""
        i0 = t.floor().clamp(0, self.levels - 2).long()
        a = (t - i0).unsqueeze(1)
        return ((1 - a) * table[i0] + a * table[i0 + 1])[:, :, None, None]

    def _interp(self, table: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return torch.exp(self._lerp(table, t))

    def add_level_affine(self) -> None:
        """Per-level tables for the nonlinear layers of g_a and g_s, starting at the identity (call
        once the transforms exist)."""
        self.config["level_affine"] = True
        for net in ("g_a", "g_s"):
            width = sum(c for _, c in affine_points(getattr(self, net)))
            for kind in ("log_scale", "shift"):
                setattr(self, f"{net}_{kind}", nn.Parameter(torch.zeros(self.levels, width)))

    def add_residual_blocks(self, count: int) -> None:
        """`count` residual blocks after each GDN layer of g_a and g_s but the one at 1/2
        resolution, where they would cost four times as much (call once the transforms exist).
        They live in `g_a_res` / `g_s_res`, keyed by the layer they follow, so the transforms'
        own weights keep their names."""
        self.config["res_blocks"] = count
        for net, finest in (("g_a", 0), ("g_s", -1)):
            layers = getattr(self, net)
            gdns = [i for i, m in enumerate(layers) if isinstance(m, GDN)]
            if not gdns:  # a light transform (`fast`) has no blocks
                continue
            del gdns[finest]
            setattr(self, f"{net}_res", nn.ModuleDict({  # see RES_BLOCKS
                str(i): nn.Sequential(*(ResidualBottleneck(layers[i].beta_sqrt.numel())
                                        for _ in range(count)))
                for i in gdns}))

    def transform(self, net: str, x: torch.Tensor, t: torch.Tensor, stop: int | None = None,
                  start: int = 0) -> torch.Tensor:
        """Run g_a or g_s (with `stop`, only its layers before that index: what that layer reads;
        with `start`, only the layers from that index on, x being what that layer reads);
        with level-affine tables, each GDN layer's input first goes through its channels' scale
        and shift at level t; residual blocks follow the layers they name."""
        layers = getattr(self, net)
        affine = self.config.get("level_affine")
        blocks = getattr(self, f"{net}_res", None) if self.config.get("res_blocks") else None
        if stop is not None:
            layers = layers[:stop]
        if not affine and blocks is None:
            return layers[start:](x)
        if affine:
            log_scale, shift = getattr(self, f"{net}_log_scale"), getattr(self, f"{net}_shift")
        points, first = dict(affine_points(layers)), 0
        for i, layer in enumerate(layers):
            if affine and i in points:
                part = slice(first, first + points[i])
                first = part.stop
                if i >= start:
                    x = x * self._interp(log_scale[:, part], t) + self._lerp(shift[:, part], t)
            if i < start:
                continue
            x = layer(x)
            if blocks is not None and str(i) in blocks:
                x = blocks[str(i)](x)
        return x

    def stages(self, net: str, t: torch.Tensor, bases: dict[int, torch.Tensor] | None = None) -> list[Stage]:
        """`transform(net, ., t)` as stages (`models.stages`): what tiles of the codec run. A
        layer given a basis [C, r] reads its input projected onto it (`models.subspace`)."""
        layers = getattr(self, net)
        affine = self.config.get("level_affine")
        blocks = getattr(self, f"{net}_res", None) if self.config.get("res_blocks") else None
        out, start, points = [], 0, dict(affine_points(layers))
        for i, layer in enumerate(layers):
            if affine and i in points:
                part = slice(start, start + points[i])
                scale = self._interp(getattr(self, f"{net}_log_scale")[:, part], t)
                shift = self._lerp(getattr(self, f"{net}_shift")[:, part], t)
                out.append(Stage(lambda x, a=scale, b=shift: _affine(x, a, b)))
                start = part.stop
            if bases and i in bases:
                out += subspace.projected(layer, bases[i])
            else:
                out += stages_of([layer])
            if blocks is not None and str(i) in blocks:
                out += stages_of(blocks[str(i)])
        return out

    def analysis_stages(self, t: torch.Tensor, bases: dict[int, torch.Tensor] | None = None) -> list[Stage]:
        """`analyse` as stages (with `bases`, the encoder's faster approximation: `stages`)."""
        gain = self.gain(t)
        return merged([*self.stages("g_a", t, bases), Stage(lambda y: y.float() * gain)])

    def synthesis_stages(self, t: torch.Tensor) -> list[Stage]:
        """`synthesize` as stages."""
        inv_gain = self._interp(self.log_inv_gain, t)
        return [Stage(lambda y: y * inv_gain), *self.stages("g_s", t)]

    def gain(self, t: torch.Tensor) -> torch.Tensor:
        """Per-channel latent gain of level t, [B, C, 1, 1]."""
        return self._interp(self.log_gain, t)

    def analyse(self, x: torch.Tensor, t: torch.Tensor, frozen: int = 0) -> torch.Tensor:
        """Gained latent y (float32, before quantization). With `frozen`, g_a's layers before that
        index (their blocks and level-affine rows too) run without autograd: training then skips
        their backward pass, the finest layers' being most of a joint step's cost."""
        if frozen:
            with torch.no_grad():
                x = self.transform("g_a", x, t, stop=frozen)
        return self.transform("g_a", x, t, start=frozen).float() * self.gain(t)

    def synthesize(self, y_hat: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.transform("g_s", y_hat * self._interp(self.log_inv_gain, t), t).float()

    def forward(self, x: torch.Tensor, t: torch.Tensor, noise: bool = True,
                frozen: int = 0) -> dict[str, torch.Tensor]:
        """Training/evaluation pass: reconstruction and the bits each sample costs (`frozen`:
        `analyse`'s)."""
        return self.code_latent(self.analyse(x, t, frozen), t, noisy if noise else rounded)

    def code_latent(self, y: torch.Tensor, t: torch.Tensor, quantize: Quantize) -> dict[str, torch.Tensor]:
        """Quantize the gained latent y, measure its bits, decode it: {"x_hat", "bits", ...}."""
        raise NotImplementedError

    def decoder_macs(self, height: int = 256, width: int = 256) -> dict[str, float]:
        """MACs per pixel of what decoding an image of this size evaluates, by part."""
        m = self.log_gain.shape[1]
        y = torch.zeros(1, m, height // self.latent_stride, width // self.latent_stride)
        t = torch.zeros(1)
        return {"synthesis": conv_macs(self, lambda: self.synthesize(y, t)) / (height * width)}

"""Latent coding: padded image tensor <-> ANS-coded sections, for every model family.

Decoding is exact by construction. Hyperprior family: the hyper-latent is decoded with shipped
integer tables; integer networks (`models.integer`) turn it, and for the checkerboard model the
decoded anchors, into fixed-point means and integer table indices; the latent is decoded with
shipped integer tables. Factorized family: each channel has its shipped table. No float result
ever decides a table.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager

import numpy as np
import torch

from nicodec.bitstream.container import FormatError, Kind, Section
from nicodec.codec.tiling import apply_tiled
from nicodec.entropy import coder
from nicodec.models.checkerboard import anchor_mask
from nicodec.models.integer import ACT_BITS
from nicodec.models.pretrained import InferenceModel
from nicodec.models.priors import gaussian_likelihood

ONE = 1 << ACT_BITS  # 1.0 in the integer networks' fixed point
PASS_KINDS = ((Kind.Y, Kind.Y_ESCAPES), (Kind.Y2, Kind.Y2_ESCAPES))
Pass = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # (positions, mean, scale), fixed point


def quality_level(model: InferenceModel, quality: int) -> torch.Tensor:
    """Quality 1..100 -> continuous level t in [0, levels-1] (monotone, like JPEG's -q)."""
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be in 1..100, not {quality}")
    return torch.tensor([(quality - 1) / 99 * (model.net.levels - 1)], dtype=torch.float32)


@torch.no_grad()
def analyse(model: InferenceModel, x: torch.Tensor, quality: int) -> torch.Tensor:
    """The gained latent of a padded image x [1, 3, H, W] in [0, 1] at `quality`, tile by tile
    (a level-affine model's analysis differs per quality, so it runs once per quality)."""
    stride, t = model.net.latent_stride, quality_level(model, quality)
    return apply_tiled(lambda part: model.net.analyse(part, t), x,
                       (x.shape[2] // stride, x.shape[3] // stride), stride, 1, margin=model.net.tile_margin)


def _index(model: InferenceModel, scale_fixed: torch.Tensor) -> torch.Tensor:
    """Table index of each fixed-point scale, by integer comparison with stored thresholds."""
    return torch.searchsorted(model.y_thresholds, scale_fixed.long().contiguous(), right=True)


def _passes(model: InferenceModel, z_hat: torch.Tensor) -> Generator[Pass, torch.Tensor, None]:
    """Coding passes over the latent: yields (positions, mean, scale) of each pass, both in fixed
    point, and receives back that pass's symbols (full-shape), which later passes condition on."""
    hyper = model.integer["h_s"](z_hat)
    if "context" not in model.integer:
        mean, scale = hyper.chunk(2, dim=1)
        yield torch.ones_like(mean, dtype=torch.bool), mean, scale
        return

    def parameters_of(ctx: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The hyperprior's (mean, scale) corrected from the context (integer addition: exact)."""
        correction = model.integer["entropy_net"](torch.cat([hyper, ctx], 1), fixed_point=True)
        return (hyper + correction).chunk(2, dim=1)

    mean_a, scale_a = parameters_of(torch.zeros_like(hyper))
    anchors = anchor_mask(*mean_a.shape[2:]).bool().expand_as(mean_a)
    symbols = yield anchors, mean_a, scale_a
    y_hat_anchors = torch.where(anchors, symbols * ONE + mean_a, 0)  # exact fixed point
    mean_n, scale_n = parameters_of(model.integer["context"](y_hat_anchors, fixed_point=True))
    yield ~anchors, mean_n, scale_n


def _run_passes(model: InferenceModel, z_hat: torch.Tensor,
                code_pass: Callable[[int, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    """Drive `_passes`: code_pass(number, positions, mean, scale) returns that pass's symbols."""
    passes = _passes(model, z_hat)
    step = next(passes)
    for number in itertools.count():
        symbols = code_pass(number, *step)
        try:
            step = passes.send(symbols)
        except StopIteration:
            return


def _channel_index(shape: torch.Size) -> np.ndarray:
    b, c, h, w = shape
    return np.broadcast_to(np.arange(c)[None, :, None, None], (b, c, h, w)).reshape(-1)


def _coded(kind: Kind, escape_kind: Kind, words: bytes, escapes: bytes) -> list[Section]:
    """A coded stream's sections; its escape section only when there are escapes (most files
    have none, and every section costs a table entry)."""
    return [Section(kind, words)] + ([Section(escape_kind, escapes)] if escapes else [])


def _section(sections: dict[Kind, bytes], kind: Kind) -> bytes:
    if kind not in sections:
        raise FormatError(f"corrupt file (missing {kind.name.lower()} section)")
    return sections[kind]


def _stream(sections: dict[Kind, bytes], kind: Kind, escape_kind: Kind) -> tuple[bytes, bytes]:
    """A coded stream's words and escapes (a missing escape section means no escapes)."""
    return _section(sections, kind), sections.get(escape_kind, b"")


def encode(model: InferenceModel, x: torch.Tensor, quality: int) -> list[Section]:
    """The coded sections of a padded image x [1, 3, H, W] in [0, 1]."""
    return encode_latent(model, analyse(model, x, quality))


@torch.no_grad()
def encode_latent(model: InferenceModel, y: torch.Tensor) -> list[Section]:
    """The coded sections of a gained latent y (the analysis transform's, or a refined one)."""
    if model.net.entropy == "factorized":
        y_hat = torch.round(y)
        words, esc = coder.encode(y_hat.long().numpy().reshape(-1), _channel_index(y_hat.shape),
                                  model.y_tables)
        return _coded(Kind.Y, Kind.Y_ESCAPES, words, esc)
    z_hat = torch.round(model.net.h_a(y))
    z_words, z_esc = coder.encode(z_hat.long().numpy().reshape(-1), _channel_index(z_hat.shape),
                                  model.z_tables)
    sections = _coded(Kind.Z, Kind.Z_ESCAPES, z_words, z_esc)

    def code_pass(number: int, positions: torch.Tensor, mean: torch.Tensor,
                  scale: torch.Tensor) -> torch.Tensor:
        symbols = torch.round(y.double() - mean / ONE)
        words, esc = coder.encode(symbols[positions].long().numpy(),
                                  _index(model, scale)[positions].numpy(), model.y_tables)
        sections.extend(_coded(*PASS_KINDS[number], words, esc))
        return symbols

    _run_passes(model, z_hat, code_pass)
    return sections


@torch.no_grad()
def decode_latents(model: InferenceModel, sections: dict[Kind, bytes], height: int,
                   width: int) -> torch.Tensor:
    """The exact latent y_hat (float64) of a padded height x width image."""
    ds = model.net.downsampling
    if model.net.entropy == "factorized":
        shape = torch.Size((1, model.net.config["M"], height // ds, width // ds))
        y = coder.decode(*_stream(sections, Kind.Y, Kind.Y_ESCAPES), _channel_index(shape), model.y_tables)
        return torch.from_numpy(y).double().reshape(shape)
    z_shape = torch.Size((1, model.net.hyper_channels, height // ds, width // ds))
    z = coder.decode(*_stream(sections, Kind.Z, Kind.Z_ESCAPES), _channel_index(z_shape), model.z_tables)
    y_hat_fixed = torch.zeros(0)

    def code_pass(number: int, positions: torch.Tensor, mean: torch.Tensor,
                  scale: torch.Tensor) -> torch.Tensor:
        nonlocal y_hat_fixed
        values = coder.decode(*_stream(sections, *PASS_KINDS[number]),
                              _index(model, scale)[positions].numpy(), model.y_tables)
        symbols = torch.zeros_like(mean)
        symbols[positions] = torch.from_numpy(values).double()
        y_hat_fixed = torch.where(positions, symbols * ONE + mean, y_hat_fixed if number else 0)
        return symbols

    _run_passes(model, torch.from_numpy(z).double().reshape(z_shape), code_pass)
    return y_hat_fixed / ONE


@contextmanager
def _single_thread() -> Iterator[None]:
    """Float convolutions may sum in a thread-count-dependent order; one thread, always, makes
    the decoded pixels identical whatever the caller's thread setting."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@torch.no_grad()
def decode(model: InferenceModel, sections: dict[Kind, bytes], height: int, width: int,
           quality: int) -> torch.Tensor:
    """Reconstruction [1, 3, height, width] in [0, 1]."""
    y_hat = decode_latents(model, sections, height, width).float()
    t = quality_level(model, quality)
    with _single_thread():
        x_hat = apply_tiled(lambda part: model.net.synthesize(part, t), y_hat, tuple(y_hat.shape[2:]),
                            1, model.net.latent_stride, margin=model.net.tile_margin)
    return x_hat.clamp(0, 1)


@torch.no_grad()
def estimate_bits(model: InferenceModel, y: torch.Tensor) -> float:
    """The model's own rate estimate (continuous densities, no tables) of a gained latent y
    (`analyse`).

    Uses the same integer-network means and scales as the codec, but the exact Gaussian and the
    learned densities instead of the quantized tables: comparing it with the real payload size
    measures what table snapping, count quantization and ANS overhead cost.
    """
    if model.net.entropy == "factorized":
        return float(-torch.log2(model.net.y_prior.likelihood(torch.round(y)).double()).sum())
    z_hat = torch.round(model.net.h_a(y))
    bits = [-torch.log2(model.net.z_prior.likelihood(z_hat).double()).sum()]

    def code_pass(number: int, positions: torch.Tensor, mean: torch.Tensor,
                  scale: torch.Tensor) -> torch.Tensor:
        symbols = torch.round(y.double() - mean / ONE)
        lik = gaussian_likelihood(symbols[positions], scale[positions] / ONE)
        bits.append(-torch.log2(lik).sum())
        return symbols

    _run_passes(model, z_hat, code_pass)
    return float(sum(bits))

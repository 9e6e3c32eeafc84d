"""Latent coding: image <-> ANS-coded sections, for every model family.

This module orchestrates and knows no model by name. The family's integer twin (`model.twin`,
defined beside the family's training pass in `nicodec.models`) says, pass by pass, which table
and mean each latent symbol has; here the hyper-latent (for a model that has one) and the passes
are entropy-coded, and the transforms run tile by tile (`codec.tiling`) on a backend
(`codec.backend`), which the entropy coding never goes through.

Decoding is exact by construction: the hyper-latent is decoded with shipped integer tables,
integer networks turn it (and earlier passes) into table indices, and the latent is decoded
with shipped integer tables. No float result ever decides a table. Only the synthesis is float:
it may change pixels by a rounding between machines or backends, never how a file is parsed.
"""

from __future__ import annotations

import numpy as np
import torch

from nicodec.bitstream.container import FormatError, Kind, Section
from nicodec.codec import memory, tiling
from nicodec.codec.backend import Backend, resolve
from nicodec.entropy import coder
from nicodec.models import draft
from nicodec.models.base import Passes
from nicodec.models.integer import ONE
from nicodec.models.pretrained import InferenceModel
from nicodec.models.priors import gaussian_likelihood

PASS_KINDS = ((Kind.Y, Kind.Y_ESCAPES), (Kind.Y2, Kind.Y2_ESCAPES))
# Bumped whenever the encoder writes other bytes for the same image and model (2: the analysis's
# subspace shortcut, session 37): `eval`'s cache keys its nicodec points on it.
ENCODER_REVISION = 2


def quality_level(model: InferenceModel, quality: int) -> torch.Tensor:
    """Quality 1..100 -> continuous level t in [0, levels-1] (monotone, like JPEG's -q)."""
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be in 1..100, not {quality}")
    return torch.tensor([(quality - 1) / 99 * (model.net.levels - 1)], dtype=torch.float32)


@torch.no_grad()
def analyse(model: InferenceModel, x: torch.Tensor | np.ndarray, quality: int,
            threads: int | None = None, backend: str | Backend = "torch") -> torch.Tensor:
    """The gained latent [1, M, H/16, W/16] of an image at `quality`, tile by tile: a padded
    image tensor x [1, 3, H, W] in [0, 1], or the H x W x 3 uint8 pixels of an image, which are
    padded (edge replication) to a multiple of the model's downsampling as the tiles read them.
    (A level-affine model's analysis differs per quality, so it runs once per quality.)"""
    source, size = tiling.image_source(x, model.net.downsampling)
    stride = model.net.latent_stride
    compute = resolve(backend).analysis(model, quality_level(model, quality), source, size)
    return tiling.run_tiles(compute, (size[0] // stride, size[1] // stride), tiling.ANALYSIS_TILE, threads,
                             desc="analysis")


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


def _hyper_latent(model: InferenceModel, y: torch.Tensor) -> torch.Tensor | None:
    return torch.round(model.net.h_a(y)) if model.z_tables is not None else None


def _at(y: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
    """A pass's latent values in coding order: y [1, M, H, W] at the [H, W] positions `where`,
    channel by channel (a 2-D mask: a 3-D one would index through a 24-byte-a-symbol copy)."""
    return y[0][:, where].reshape(-1)


RESIDUALS_AT_ONCE = 1 << 20  # symbols computed per step: bounds the float64 temporaries


def _residuals(values: torch.Tensor, mean: torch.Tensor) -> np.ndarray:
    """The symbols round(y - mean) of a pass (int32, as the decoder's), a million at a time."""
    out = torch.empty(len(values), dtype=torch.int32)
    for i in range(0, len(values), RESIDUALS_AT_ONCE):
        part = slice(i, i + RESIDUALS_AT_ONCE)
        symbols = torch.round(values[part].double() - mean[part] / ONE)
        if len(symbols) and symbols.abs().max() > torch.iinfo(torch.int32).max:
            raise ValueError("latent out of range (not the analysis of an image)")
        out[part] = symbols
    return out.numpy()


def _drive(passes: Passes, code_pass) -> torch.Tensor:
    """Run a twin's passes: code_pass(number, pass) returns that pass's symbols; returns y_hat
    (None if the passes were built with `rebuild=False`)."""
    step, number = next(passes), 0
    while True:
        if len(step.index) >= memory.BIG_PASS:  # the pass's band temporaries are free by now
            memory.release()
        symbols = code_pass(number, step)
        del step  # a pass's tables and means go as soon as its symbols are coded (memory)
        if len(symbols) >= memory.BIG_PASS:
            memory.release()
        try:
            step = passes.send(symbols)
        except StopIteration as done:
            return done.value
        del symbols  # taken into the latent: not kept while the next pass is coded
        number += 1


def encode(model: InferenceModel, x: torch.Tensor | np.ndarray, quality: int,
           threads: int | None = None, backend: str | Backend = "torch") -> list[Section]:
    """The coded sections of an image (see `analyse` for what x may be)."""
    return encode_latent(model, analyse(model, x, quality, threads, backend))


@torch.no_grad()
def encode_latent(model: InferenceModel, y: torch.Tensor) -> list[Section]:
    """The coded sections of a gained latent y (the analysis transform's, or a refined one)."""
    sections: list[Section] = []
    z_hat = _hyper_latent(model, y)
    if z_hat is not None:
        z_words, z_esc = coder.encode(z_hat.long().numpy().reshape(-1), _channel_index(z_hat.shape),
                                      model.z_tables)
        sections += _coded(Kind.Z, Kind.Z_ESCAPES, z_words, z_esc)

    def code_pass(number, step):
        symbols = _residuals(_at(y, step.where), step.mean)
        sections.extend(_coded(*PASS_KINDS[number], *coder.encode(symbols, step.index, model.y_tables)))
        return symbols

    _drive(model.twin.passes(z_hat, y.shape, rebuild=False), code_pass)
    return sections


def padded(model: InferenceModel, height: int, width: int) -> tuple[int, int]:
    """The size an image is padded to (a multiple of the model's downsampling)."""
    ds = model.family.downsampling
    return -(-height // ds) * ds, -(-width // ds) * ds


def latent_shape(model: InferenceModel, height: int, width: int) -> torch.Size:
    """Shape of the latent of a padded height x width image."""
    stride = model.net.latent_stride
    return torch.Size((1, model.net.config["M"], height // stride, width // stride))


@torch.no_grad()
def decode_latents(model: InferenceModel, sections: dict[Kind, bytes], height: int,
                   width: int) -> torch.Tensor:
    """The exact latent y_hat (float32 [1, M, H/16, W/16], channels last) of a padded height x
    width image.

    The hyper-latent comes first and needs only the tables: a stream too short for its symbols
    (a header bomb's) is refused before the model's networks are even built."""
    z_hat = None
    if model.z_tables is not None:
        ds = model.family.downsampling
        z_shape = torch.Size((1, len(model.z_tables.models), height // ds, width // ds))
        z = coder.decode(*_stream(sections, Kind.Z, Kind.Z_ESCAPES), _channel_index(z_shape), model.z_tables)
        z_hat = torch.from_numpy(z).double().reshape(z_shape)

    def code_pass(number, step):
        return coder.decode(*_stream(sections, *PASS_KINDS[number]), step.index, model.y_tables)

    y_hat = _drive(model.twin.passes(z_hat, latent_shape(model, height, width)), code_pass)
    return y_hat.contiguous(memory_format=torch.channels_last)  # the synthesis's layout: no copy there


@torch.no_grad()
def decode(model: InferenceModel, sections: dict[Kind, bytes], height: int, width: int,
           quality: int, threads: int | None = None, backend: str | Backend = "torch",
           reduce: int = 1) -> np.ndarray:
    """The decoded image, height x width x 3 uint8 (the padded size is implied by the model); with
    `reduce` 2, 4 or 8, at that fraction of the size, rounded up (`models.draft`)."""
    y_hat = decode_latents(model, sections, *padded(model, height, width))
    return synthesize(model, y_hat, quality, draft.size(height, width, reduce), threads, backend, reduce)


def synthesize(model: InferenceModel, y_hat: torch.Tensor, quality: int, size: tuple[int, int],
               threads: int | None = None, backend: str | Backend = "torch", reduce: int = 1) -> np.ndarray:
    """Pixels (size[0] x size[1] x 3 uint8, cropped from the padded image, or with `reduce` from
    the padded image at 1/reduce of its size) of a latent.

    Tiles run one thread each, as many at once as `threads` (default: torch's setting): the
    tiling depends on the image size only, so the pixels never depend on the thread count. A
    reduced image's tiles read the same latent windows as a full decode's (1/reduce of its pixel
    size): a thumbnail runs as many tiles at once, each on no more memory. (Tiles of 256 pixels
    at any reduction left a Kodak image's 1/4 and 1/8 decodes one tile, on one thread.)"""
    y_hat = y_hat.contiguous(memory_format=torch.channels_last)
    compute = resolve(backend).synthesis(model, quality_level(model, quality), tiling.tensor_source(y_hat),
                                         tuple(y_hat.shape[2:]), reduce=reduce)
    tile = tiling.SYNTHESIS_TILE // reduce
    return tiling.run_tiles(compute, size, tile, threads, to_pixels=True, desc="synthesis")


@torch.no_grad()
def estimate_bits(model: InferenceModel, y: torch.Tensor) -> float:
    """The model's own rate estimate (continuous densities, no tables) of a gained latent y
    (`analyse`).

    Uses the same integer-network means and scales as the codec, but the exact Gaussian and the
    learned densities instead of the quantized tables: comparing it with the real payload size
    measures what table snapping, count quantization and ANS overhead cost.
    """
    z_hat = _hyper_latent(model, y)
    if z_hat is None:
        return float(-torch.log2(model.net.y_prior.likelihood(torch.round(y)).double()).sum())
    bits = [-torch.log2(model.net.z_prior.likelihood(z_hat).double()).sum()]

    def code_pass(number, step):
        symbols = torch.round(_at(y, step.where).double() - step.mean / ONE)
        bits.append(-torch.log2(gaussian_likelihood(symbols, step.scale / ONE)).sum())
        return symbols.long().numpy()

    _drive(model.twin.passes(z_hat, y.shape, scales=True, rebuild=False), code_pass)
    return float(sum(bits))

"""Reduced-scale decoding (`decompress(reduce=...)`, Pillow's `draft`): the synthesis stopped at
1/2, 1/4 or 1/8 resolution, then a learned linear read-out to RGB.

Each transposed convolution of a synthesis upsamples by 2. Once the layers of one resolution have
run (the nonlinearity, level-affine tables and residual blocks after its transposed convolution),
the features already describe the image at that resolution, so a 1x1 convolution (C -> 3, with
bias) maps them to pixels. It is fitted by least squares to the full decode box-downscaled by the
same factor (`train.draft`), so a thumbnail approximates what downscaling the full decode gives,
for the cost of the layers up to that resolution. The entropy decoding is unchanged: the whole
latent is still decoded, exactly.

The read-outs live in one small file beside the model files, keyed by model id
(`<model_id>.<reduce>.weight`, `.bias`): the model files never change, and weights re-exported
under a new id have no read-out until it is refitted (`tools/fit_drafts.py --model NAME`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache
from typing import TYPE_CHECKING

from nicodec.models import WEIGHTS_DIR

if TYPE_CHECKING:  # torch is imported where used: `check` and `size` serve a preview decode,
    import torch  # which loads no model (`codec.preview`)

    from nicodec.models.stages import Stage

REDUCTIONS = (1, 2, 4, 8)  # what `reduce` may be: 1 is the full decode
DRAFTS = WEIGHTS_DIR / "drafts.safetensors"


@cache
def stored() -> dict[str, torch.Tensor]:
    """Every shipped read-out, by tensor name (loaded once per process)."""
    from safetensors.torch import load_file

    return load_file(DRAFTS) if DRAFTS.exists() else {}


def reductions(model_id: str) -> tuple[int, ...]:
    """The factors a model can decode at: 1, and each one it has a fitted read-out for."""
    return tuple(r for r in REDUCTIONS if r == 1 or f"{model_id}.{r}.weight" in stored())


def check(reduce: int, model_id: str | None = None) -> None:
    """A clear ValueError for a factor that is not 1, 2, 4 or 8, or (given a model) one that model
    has no read-out for: `decompress` checks before it decodes anything."""
    if not isinstance(reduce, int) or reduce not in REDUCTIONS:
        raise ValueError(f"reduce must be one of {', '.join(map(str, REDUCTIONS))}, not {reduce!r}")
    if model_id is not None and reduce not in reductions(model_id):
        have = ", ".join(map(str, reductions(model_id)))
        raise ValueError(f"model {model_id} has no reduced decode at 1/{reduce} (it decodes at: {have}); "
                         f"decode at full size and resize")


def size(height: int, width: int, reduce: int) -> tuple[int, int]:
    """(height, width) of an image decoded at 1/reduce: rounded up, as Pillow's `reduce`."""
    return -(-height // reduce), -(-width // reduce)


def readout(model_id: str, reduce: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The read-out's weight [3, C, 1, 1] and bias [3] of a model at factor `reduce`."""
    check(reduce, model_id)
    tensors = stored()
    return tensors[f"{model_id}.{reduce}.weight"], tensors[f"{model_id}.{reduce}.bias"]


def truncate(stages: Sequence[Stage], reduce: int, latent_stride: int) -> list[Stage]:
    """The stages of a synthesis that compute its features at 1/reduce of the image's resolution:
    all those before the transposed convolution that would upsample past it."""
    factor = latent_stride  # the latent is at 1/latent_stride
    for i, stage in enumerate(stages):
        if stage.kind == "deconv":
            if factor == reduce:
                return list(stages[:i])
            factor //= stage.stride
    raise ValueError(f"the synthesis has no features at 1/{reduce} resolution")


def reduced(stages: Sequence[Stage], reduce: int, latent_stride: int, weight: torch.Tensor,
            bias: torch.Tensor) -> list[Stage]:
    """A synthesis's stages stopped at 1/reduce resolution, then the read-out: the reduced image."""
    import torch.nn.functional as F

    from nicodec.models.stages import Stage

    return [*truncate(stages, reduce, latent_stride), Stage(lambda x: F.conv2d(x, weight, bias))]


def replace(name: str, fitted: dict[str, torch.Tensor], record: dict) -> None:
    """Write `fitted` (this model's read-outs, named `<model_id>.<reduce>.weight` / `.bias`) into
    the shipped file in place of every earlier read-out of the model `name`, whatever its id
    (weights re-exported since), with `record` (how they were fitted) as that id's metadata."""
    from safetensors.torch import save

    from nicodec.models.pretrained import _metadata, _sorted_metadata

    def of_name(key: str) -> bool:
        return key.split(".")[0].rpartition("-")[0] == name

    tensors = {k: v for k, v in stored().items() if not of_name(k)}
    tensors.update({k: v.float().contiguous() for k, v in fitted.items()})
    meta = _metadata(DRAFTS.read_bytes()) if DRAFTS.exists() else {}
    meta = {k: v for k, v in meta.items() if not of_name(k)}
    meta[next(iter(fitted)).split(".")[0]] = json.dumps(record, sort_keys=True)
    DRAFTS.write_bytes(_sorted_metadata(save(dict(sorted(tensors.items())), metadata=meta)))
    stored.cache_clear()

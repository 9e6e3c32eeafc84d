"""Checks on a model file's metadata before a network is built from it.

A model file (`--model FILE`, `nicodec train --init`) names its architecture and a JSON config
that becomes the constructor's keywords. A crafted one could ask for unknown keywords (a
TypeError deep in a constructor) or for widths that allocate gigabytes before any weight is read,
so the config is checked against the constructor's own parameters and bounded first.
"""

from __future__ import annotations

import inspect
import json
import math

from nicodec.models.registry import MODELS

MAX_WIDTH = 2048  # channels (N, M, N_hyper): the shipped models use 128..320
# integer keywords and their range (shipped models: 11 levels, 2 residual blocks per stage)
_BOUNDS = {"N": (1, MAX_WIDTH), "M": (1, MAX_WIDTH), "N_hyper": (1, MAX_WIDTH), "levels": (1, 64),
           "res_blocks": (0, 8)}


def model_id(name: str, sha256: str) -> str:
    """A model file's id, as .nic files name it: model name and 16 hex digits of its sha256."""
    return f"{name}-{sha256[:16]}"


def checked_config(meta: dict[str, str]) -> dict:
    """The constructor keywords in a model file's metadata, once its model name and they are
    checked; ValueError naming the first thing wrong with them."""
    name = meta.get("model")
    if name not in MODELS:
        raise ValueError(f"model file names an unknown model {str(name)[:40]!r} "
                         f"(known: {', '.join(sorted(MODELS))})")
    try:
        config = json.loads(meta.get("config", "{}"))
    except json.JSONDecodeError:
        raise ValueError("model file has a config that is not JSON") from None
    if not isinstance(config, dict):
        raise ValueError("model file's config is not a JSON object")
    params = inspect.signature(MODELS[name].__init__).parameters
    unknown = sorted(set(config) - set(params) - {"self"})
    if unknown:
        raise ValueError(f"model file's config has unknown key {unknown[0][:40]!r} for {name}")
    for key, value in config.items():
        if value is None and params[key].default is None:  # N_hyper: "same as N"
            continue
        if key in _BOUNDS:
            lo, hi = _BOUNDS[key]
            if type(value) is not int or not lo <= value <= hi:
                raise ValueError(f"model file's config has {key} = {str(value)[:20]}, "
                                 f"not an integer in {lo}..{hi}")
        elif key in ("lambda_min", "lambda_max"):
            if type(value) not in (int, float) or not (math.isfinite(value) and value > 0):
                raise ValueError(f"model file's config has {key} = {str(value)[:20]}, "
                                 "not a positive number")
        elif type(value) is not bool:
            raise ValueError(f"model file's config has {key} = {str(value)[:20]}, not true/false")
    return config

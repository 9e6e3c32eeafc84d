"""A model file's config is checked against the model's constructor before anything is built."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save

from nicodec.models import pretrained


def model_file(model: object, config: str) -> bytes:
    return save({"x": torch.zeros(1)}, metadata={"model": model, "config": config})


@pytest.mark.parametrize("model,config,message", [
    ("nonsense", "{}", "unknown model 'nonsense'"),
    ("hyperprior", json.dumps({"N": 10**9}), "N = 1000000000, not an integer in 1..2048"),
    ("hyperprior", json.dumps({"M": "192"}), "M = 192, not an integer"),
    ("hyperprior", json.dumps({"levels": 0}), "levels = 0"),
    ("hyperprior", json.dumps({"res_blocks": 10**6}), "res_blocks = 1000000, not an integer in 0..8"),
    ("hyperprior", json.dumps({"lambda_min": float("nan")}), "lambda_min = nan, not a positive number"),
    ("hyperprior", json.dumps({"level_affine": 1}), "level_affine = 1, not true/false"),
    ("hyperprior", json.dumps({"__class__": 1}), "unknown key '__class__'"),
    ("seed-ae", json.dumps({"N_hyper": 64}), "unknown key 'N_hyper' for seed-ae"),
    ("hyperprior", "[1, 2]", "not a JSON object"),
    ("hyperprior", "{N: 1", "not JSON"),
])
def test_a_bad_config_is_refused_with_its_reason(model, config, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        pretrained.from_bytes(model_file(model, config))


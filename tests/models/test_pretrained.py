"""Model files: an export of the same weights is byte-identical, so its sha256 is reproducible."""

import hashlib

import torch

from nicodec.models import pretrained
from nicodec.models.registry import build_model


def test_model_file_bytes_are_reproducible() -> None:
    torch.manual_seed(0)
    net = build_model("hyperprior", N=16, M=24)
    record = {"step": 12, "wall_s": 3.5, "cpu_s": 7.0}
    hashes = {hashlib.sha256(pretrained.to_bytes(net, record)).hexdigest() for _ in range(8)}
    assert len(hashes) == 1
    data = pretrained.to_bytes(net, record)
    meta = pretrained._metadata(data)
    assert list(meta) == sorted(meta) == ["config", "model", "training"]
    model = pretrained.from_bytes(data)
    assert model.name == "hyperprior"
    assert model.model_id.endswith(hashes.pop()[:16])

"""Model files: an export of the same weights is byte-identical, so its sha256 is reproducible."""

import hashlib

import torch
from safetensors.torch import load, save

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


def test_a_model_file_builds_its_networks_with_its_own_weights() -> None:
    """The networks are built without random initial weights (`layers.without_random_init`: the
    file has every one), and with them where a file lacks a sub-network's: each parameter is the
    file's or a fresh draw, every buffer (the context's mask) what the build computes."""
    torch.manual_seed(0)
    net = build_model("checkerboard", N=16, M=24)
    data = pretrained.to_bytes(net)
    model = pretrained.from_bytes(data)
    built = model.net.state_dict()
    assert built.keys() == net.state_dict().keys()
    for name, value in net.state_dict().items():
        if name.split(".")[0] not in net.integer_nets or "mask" in name:  # those are integers in the file
            shipped = value.half().float() if value.numel() >= pretrained.HALF_MIN_NUMEL else value
            assert torch.equal(built[name], shipped), name

    tensors = {k: v for k, v in load(data).items() if not k.startswith("g_s.")}  # no synthesis
    smaller = pretrained.from_bytes(pretrained._sorted_metadata(save(tensors, pretrained._metadata(data))))
    kernels = [(n, v) for n, v in smaller.net.g_s.named_parameters() if v.dim() == 4]
    assert kernels and all(v.std() > 0 and v.abs().max() < 1 for _, v in kernels)  # drawn, not as allocated

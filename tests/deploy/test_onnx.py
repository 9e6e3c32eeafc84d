"""The ONNX graphs compute what the PyTorch transforms compute, at any size and quality."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
import torch

from nicodec.cli.main import main
from nicodec.codec import image as imaging
from nicodec.codec import latent
from nicodec.models import pretrained
from nicodec.models.base import AFFINE_TABLES
from nicodec.models.pretrained import load_model
from nicodec.models.registry import build_model


def _level_affine_file(folder) -> str:
    """A small checkerboard model whose level-affine tables are not the identity and whose
    residual blocks are at work (their last layers are not zero)."""
    torch.manual_seed(0)
    net = build_model("checkerboard", N=32, M=48, level_affine=True, res_blocks=1)
    with torch.no_grad():
        for name in AFFINE_TABLES:
            getattr(net, name).normal_(0, 0.2)
        for blocks in (net.g_a_res, net.g_s_res):
            for block in blocks.values():
                block[0].body[-1].weight.normal_(0, 0.05)
    path = folder / "affine.safetensors"
    path.write_bytes(pretrained.to_bytes(net))
    return str(path)


@pytest.fixture(scope="module", params=["hyperprior", "level-affine"])
def exported(request, tmp_path_factory):
    """Through the command line: `nicodec export-onnx -o DIR` (shipped and level-affine models)."""
    out = tmp_path_factory.mktemp("onnx")
    name = request.param if request.param == "hyperprior" else _level_affine_file(out)
    assert main(["export-onnx", "-o", str(out), "--model", name]) == 0
    model = load_model(name)
    paths = {"analysis": out / "analysis.onnx", "synthesis": out / "synthesis.onnx",
             "spec": out / "nicodec-onnx.json"}
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    sessions = {k: ort.InferenceSession(str(paths[k]), options) for k in ("analysis", "synthesis")}
    return model, sessions, json.loads(paths["spec"].read_text())


def test_spec_names_the_model(exported):
    model, _, spec = exported
    assert spec["model_id"] == model.model_id and spec["latent_stride"] == 16


@pytest.mark.parametrize("quality", [10, 90])
def test_onnx_decoder_matches_the_codec(exported, crop_array, quality):
    """Analysis in ONNX gives the encoder's latent; synthesis in ONNX of the decoded latent gives
    the codec's pixels (to float rounding), on an image whose size differs from the export's."""
    model, sessions, _ = exported
    x = imaging.to_tensor(crop_array, model.net.downsampling)
    level = latent.quality_level(model, quality)
    with torch.no_grad():
        y = model.net.analyse(x, level)
    (y_onnx,) = sessions["analysis"].run(None, {"image": x.numpy(), "level": level.numpy()})
    assert np.abs(y_onnx - y.numpy()).max() < 1e-3

    sections = {s.kind: s.data for s in latent.encode(model, x, quality)}
    y_hat = latent.decode_latents(model, sections, *x.shape[2:]).float()
    (image,) = sessions["synthesis"].run(None, {"y_hat": y_hat.numpy(), "level": level.numpy()})
    decoded = latent.decode(model, sections, *x.shape[2:], quality)
    pixels = np.clip(np.round(image[0].transpose(1, 2, 0) * 255), 0, 255)
    assert pixels.shape == decoded.shape
    assert np.abs(pixels - decoded).max() <= 1

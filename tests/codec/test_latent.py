"""Every model family's latent survives coding exactly: |y - y_hat| <= 1/2 everywhere."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nicodec.bitstream.container import Kind
from nicodec.codec import image as imaging
from nicodec.codec import latent
from nicodec.models import pretrained
from nicodec.models.checkerboard import CheckerboardTwin
from nicodec.models.registry import MODELS, build_model


@pytest.fixture(scope="module", params=sorted(MODELS))
def model(request):
    torch.manual_seed(0)
    return pretrained.from_bytes(pretrained.to_bytes(build_model(request.param, N=32, M=48)))


@pytest.mark.parametrize("quality", [1, 60, 100])
def test_decoded_latent_is_the_quantized_encoder_latent(model, crop_array, quality):
    x = imaging.to_tensor(crop_array, model.net.downsampling)
    sections = {s.kind: s.data for s in latent.encode(model, x, quality)}
    streams = {Kind.Y: Kind.Y_ESCAPES}
    if model.net.entropy == "hyperprior":
        streams[Kind.Z] = Kind.Z_ESCAPES
    if isinstance(model.twin, CheckerboardTwin):  # two passes: anchors, then the rest
        streams[Kind.Y2] = Kind.Y2_ESCAPES
    assert set(streams) <= set(sections) <= set(streams) | set(streams.values())
    assert all(sections.values()), "an escape section is written only when there are escapes"
    y_hat = latent.decode_latents(model, sections, *x.shape[2:])
    with torch.no_grad():
        y = model.net.analyse(x, latent.quality_level(model, quality)).double()
    assert y_hat.shape == y.shape
    assert (y - y_hat).abs().max().item() <= 0.5 + 1e-6
    bits = 8 * sum(len(v) for v in sections.values())
    assert 0.9 < bits / latent.estimate_bits(model, latent.analyse(model, x, quality)) < 1.1 or bits < 2000


def test_missing_second_pass_is_a_format_error(crop_array):
    model = pretrained.from_bytes(pretrained.to_bytes(build_model("checkerboard", N=32, M=48)))
    x = imaging.to_tensor(crop_array, model.net.downsampling)
    sections = {s.kind: s.data for s in latent.encode(model, x, 50)}
    del sections[Kind.Y2]
    with pytest.raises(ValueError, match="missing y2"):
        latent.decode_latents(model, sections, *x.shape[2:])
    assert np.isfinite(latent.estimate_bits(model, latent.analyse(model, x, 50)))


@pytest.mark.parametrize("name", ["checkerboard", "factorized"])
def test_values_beyond_the_tables_travel_in_escape_sections(name, crop_array):
    torch.manual_seed(0)
    model = pretrained.from_bytes(pretrained.to_bytes(build_model(name, N=32, M=48)))
    x = imaging.to_tensor(crop_array, model.net.downsampling)
    y = latent.analyse(model, x, 50) * 1e4  # far outside every table's range
    sections = {s.kind: s.data for s in latent.encode_latent(model, y)}
    assert sections[Kind.Y_ESCAPES]
    y_hat = latent.decode_latents(model, sections, *x.shape[2:])
    assert (y.double() - y_hat).abs().max().item() <= 0.5 + 1e-6

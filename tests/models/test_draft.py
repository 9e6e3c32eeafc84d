"""Reduced-decode read-outs (`models.draft`, fitted by `train.draft`): where the synthesis stops,
which models have them, how a refit replaces them, and the closed-form fit itself."""

from __future__ import annotations

import pytest
import torch

from nicodec.models import draft
from nicodec.models.pretrained import load_model
from nicodec.models.stages import run_window
from nicodec.train import draft as fitting


@pytest.mark.parametrize("name, channels", [("checkerboard", {2: 128, 4: 128, 8: 128}),
                                            ("fast", {2: 32, 4: 64, 8: 128})])
def test_the_synthesis_stops_at_each_resolution(name, channels):
    """Stopped before the transposed convolution that would go finer: C features on 1/r of the
    (padded) image, then the read-out makes them RGB; r = 1 is no truncation at all."""
    model = load_model(name)
    level = torch.tensor([5.0])
    stages = model.net.synthesis_stages(level)
    y = torch.randn(1, model.net.config["M"], 3, 5)
    for r, c in channels.items():
        part = draft.truncate(stages, r, model.net.latent_stride)
        assert stages[:len(part)] == part and stages[len(part)].kind == "deconv"
        assert run_window(part, lambda w: y[..., slice(*w[0]), slice(*w[1])], (3, 5),
                          ((0, 48 // r), (0, 80 // r))).shape == (1, c, 48 // r, 80 // r)
        whole = draft.reduced(stages, r, model.net.latent_stride, *draft.readout(model.model_id, r))
        assert run_window(whole, lambda w: y[..., slice(*w[0]), slice(*w[1])], (3, 5),
                          ((0, 48 // r), (0, 80 // r))).shape == (1, 3, 48 // r, 80 // r)
    with pytest.raises(ValueError, match="no features at 1/1"):
        draft.truncate(stages, 1, model.net.latent_stride)


def test_shipped_models_have_read_outs_for_their_own_weights():
    """Keyed by model id: weights re-exported under a new id have none until refitted
    (`python tools/fit_drafts.py --model NAME`), and `hyperprior` has none."""
    for name in ("checkerboard", "fast"):
        assert draft.reductions(load_model(name).model_id) == (1, 2, 4, 8), f"refit {name}'s read-outs"
    assert draft.reductions(load_model("hyperprior").model_id) == (1,)
    assert draft.DRAFTS.stat().st_size < 16_000


def test_bad_factors_are_clear_errors():
    for bad in (0, 3, 16, 2.0, "2"):
        with pytest.raises(ValueError, match="reduce must be one of 1, 2, 4, 8"):
            draft.check(bad)
    with pytest.raises(ValueError, match=r"no reduced decode at 1/4 \(it decodes at: 1\)"):
        draft.readout(load_model("hyperprior").model_id, 4)


def test_a_refit_replaces_every_read_out_of_that_model(tmp_path, monkeypatch):
    """Old ids of the refitted model go (its weights were re-exported), other models' stay."""
    monkeypatch.setattr(draft, "DRAFTS", tmp_path / "drafts.safetensors")
    draft.stored.cache_clear()
    try:
        def entries(model_id: str, value: float) -> dict[str, torch.Tensor]:
            return {f"{model_id}.8.weight": torch.full((3, 4, 1, 1), value),
                    f"{model_id}.8.bias": torch.zeros(3)}

        draft.replace("fast", entries("fast-0000000000000000", 1.0), {"fit": "old"})
        draft.replace("checkerboard", entries("checkerboard-1111111111111111", 2.0), {"fit": "cb"})
        draft.replace("fast", entries("fast-2222222222222222", 3.0), {"fit": "new"})
        assert draft.reductions("fast-0000000000000000") == (1,)
        assert draft.reductions("fast-2222222222222222") == (1, 8)
        assert float(draft.readout("checkerboard-1111111111111111", 8)[0].mean()) == 2.0
        data = draft.DRAFTS.read_bytes()
        draft.replace("fast", entries("fast-2222222222222222", 3.0), {"fit": "new"})
        assert draft.DRAFTS.read_bytes() == data  # a refit of the same fit writes the same bytes
    finally:
        draft.stored.cache_clear()


def test_the_closed_form_fit_recovers_a_linear_map():
    """Ridge least squares on accumulated normal equations: exact data give the map back."""
    gen = torch.Generator().manual_seed(0)
    weight, bias = torch.randn(3, 6, generator=gen, dtype=torch.float64), torch.randn(3, dtype=torch.float64)
    normal = fitting.Normal(6)
    for _ in range(3):  # in parts, as image by image
        x = torch.randn(500, 6, generator=gen, dtype=torch.float64)
        normal.add(x, x @ weight.T + bias)
    got_weight, got_bias, mse = normal.solve(1e-12)
    assert torch.allclose(got_weight, weight, atol=1e-8) and torch.allclose(got_bias, bias, atol=1e-8)
    assert abs(mse) < 1e-12


def test_read_outs_are_never_fitted_on_kodak(kodak_dir):
    with pytest.raises(ValueError, match="Kodak is the evaluation set"):
        fitting.crops(kodak_dir, 2, 64)


def test_training_crops_are_whole_multiples(train_dir):
    images = fitting.crops(train_dir, 3, 64)
    assert len(images) == 3
    for rgb in images:
        assert rgb.shape[0] % 64 == 0 and rgb.shape[1] % 64 == 0 and min(rgb.shape[:2]) >= 256

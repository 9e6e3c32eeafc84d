"""Training on cached latents of a frozen analysis: the same step as on pixels, reused while the
analysis is the same, refused while it still learns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from nicodec.models.base import noisy
from nicodec.models.registry import build_model
from nicodec.train.config import TrainConfig
from nicodec.train.latents import LatentCache, frozen_analysis
from nicodec.train.loop import Trainer, rd_loss

FROZEN = {"g_a": 0, "log_gain": 0}  # what the tiny hyperprior's analysis uses


def _trainer(tiny_config, steps: int, **overrides) -> Trainer:
    cfg = tiny_config(steps=steps, network_lr_scale=FROZEN, latent_samples=10, **overrides)
    trainer = Trainer(cfg)
    trainer.run()
    return trainer


def test_cached_latents_are_the_analysis_of_their_views(tiny_config):
    trainer = _trainer(tiny_config, steps=2)
    cache = trainer.latents
    assert cache.y.shape == (10, 16, 4, 4) and len(set(map(tuple, cache.drawn))) > 5
    assert 0 <= cache.t.min() and cache.t.max() <= trainer.model.levels - 1
    x, t, y = cache.batch(trainer.data.train, 4, 64, np.random.default_rng(1))
    with torch.no_grad():
        torch.testing.assert_close(y, trainer.model.analyse(x, t), rtol=1e-5, atol=1e-5)


def test_a_step_on_cached_latents_is_the_step_on_their_pixels(tiny_config):
    trainer = _trainer(tiny_config, steps=1)
    x, t, y = trainer.latents.batch(trainer.data.train, 3, 64, np.random.default_rng(2))
    losses = []
    for cached in (None, y):
        torch.manual_seed(0)  # the same noise in both
        out = trainer.model(x, t) if cached is None else trainer.model.code_latent(cached, t, noisy)
        losses.append(rd_loss(trainer.cfg, trainer.model, out, x, t)[0].item())
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)


def test_the_cache_is_reused_only_for_the_same_analysis(tiny_config):
    trainer = _trainer(tiny_config, steps=1)
    folder = Path(trainer.cfg.out) / "latents"
    made = (folder / "y.npy").stat().st_mtime_ns
    again = LatentCache.build(trainer.model, trainer.data.train, 10, 64, folder, np.random.default_rng(0))
    assert (folder / "y.npy").stat().st_mtime_ns == made
    np.testing.assert_array_equal(again.y, trainer.latents.y)
    with torch.no_grad():
        trainer.model.g_a[0].weight.mul_(1.5)  # another analysis: its latents are made again
    other = LatentCache.build(trainer.model, trainer.data.train, 10, 64, folder, np.random.default_rng(0))
    assert not np.array_equal(other.y, trainer.latents.y)


def test_resume_on_cached_latents_reproduces_an_uninterrupted_run(tiny_config, tmp_path):
    straight = _trainer(tiny_config, steps=4, out=str(tmp_path / "a"))
    _trainer(tiny_config, steps=2, out=str(tmp_path / "b"))
    resumed = Trainer(tiny_config(steps=4, out=str(tmp_path / "b"), network_lr_scale=FROZEN,
                                  latent_samples=10), resume=True)
    resumed.run()
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    fresh = Trainer(tiny_config(steps=0, out=str(tmp_path / "c"))).model.state_dict()
    assert not torch.equal(a["g_s.0.weight"], fresh["g_s.0.weight"])  # the decoder did learn


def test_a_learning_analysis_is_refused(tiny_config):
    with pytest.raises(ValueError, match="analysis frozen"):
        Trainer(tiny_config(steps=1, latent_samples=10)).run()


def test_the_fast_latents_recipe_freezes_what_the_analysis_uses():
    configs = Path(__file__).resolve().parents[2] / "configs"
    cfg = TrainConfig.load(configs / "fast-latents.toml")
    model = build_model(cfg.model, **cfg.model_config)
    assert not frozen_analysis(model)
    for name, scale in cfg.network_lr_scale.items():
        if scale == 0:
            getattr(model, name).requires_grad_(False)
    assert frozen_analysis(model) and cfg.latent_samples > 0
    assert any(p.requires_grad for p in model.g_s.parameters())  # the decoder side still learns

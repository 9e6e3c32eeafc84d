"""`analysis_frozen_layers`: the same step, but g_a's first layers take no gradient."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from nicodec.train.data import CropCache, sample_batch
from nicodec.train.loop import Trainer


def _first_step(tiny_config, tmp_path, frozen: int) -> tuple[Trainer, dict[str, torch.Tensor], float]:
    trainer = Trainer(tiny_config(steps=1, out=str(tmp_path / f"run{frozen}"), analysis_frozen_layers=frozen))
    cfg = trainer.cfg
    CropCache.build(Path(cfg.data), Path(cfg.cache), cfg.cache_crop, cfg.crops_per_image,
                    cfg.val_every_nth_file, val_size=cfg.val_crop)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    x = torch.from_numpy(sample_batch(CropCache.open(Path(cfg.cache)).train, 2, 64, np.random.default_rng(3)))
    torch.manual_seed(1)  # the same noise in both runs
    loss = trainer.train_step(x, torch.tensor([0.5, 3.0]))[0]
    return trainer, before, loss


def test_frozen_layers_keep_their_weights_and_the_step_its_loss(tiny_config, tmp_path):
    frozen, before_f, loss_f = _first_step(tiny_config, tmp_path, 2)
    full, before, loss = _first_step(tiny_config, tmp_path, 0)
    assert loss_f == pytest.approx(loss, rel=1e-6)  # the forward pass is the same
    for trainer, start, first_learning in ((frozen, before_f, 2), (full, before, 0)):
        now = dict(trainer.model.named_parameters())
        for i, layer in enumerate(trainer.model.g_a):
            for name, _ in layer.named_parameters():
                key = f"g_a.{i}.{name}"
                assert torch.equal(now[key], start[key]) == (i < first_learning), key
        assert not torch.equal(now["g_s.0.weight"], start["g_s.0.weight"])


def test_freezing_the_whole_analysis_this_way_is_refused(tiny_config):
    with pytest.raises(ValueError, match="analysis_frozen_layers"):
        Trainer(tiny_config(steps=1, analysis_frozen_layers=7))

"""Stage chains (`models.stages`): runs of per-position stages taken through a window in row blocks."""

from __future__ import annotations

import torch

from nicodec.codec import image as imaging
from nicodec.codec import latent, tiling
from nicodec.models import stages
from nicodec.models.pretrained import load_model


def test_runs_of_per_position_stages_are_merged_and_run_in_row_blocks_to_the_same_values(crop_array,
                                                                                          monkeypatch):
    model = load_model("fast")
    net, level = model.net, latent.quality_level(model, 60)
    chain = net.stages("g_a", level)
    merged = stages.merged(chain)
    kinds = [s.kind for s in merged]
    assert len(merged) < len(chain) and "residual" in kinds
    assert all(not (a == b == "point") for a, b in zip(kinds, kinds[1:], strict=False))
    x = imaging.to_tensor(crop_array, net.downsampling).contiguous(memory_format=torch.channels_last)
    whole = ((0, x.shape[2] // 16), (0, x.shape[3] // 16))
    monkeypatch.setattr(stages, "CHUNK_POSITIONS", 40)  # blocks of a row or two at every resolution
    with torch.no_grad():
        plain = stages.run_window(chain, tiling.tensor_source(x), tuple(x.shape[2:]), whole)
        blocks = stages.run_window(merged, tiling.tensor_source(x), tuple(x.shape[2:]), whole)
    assert blocks.is_contiguous(memory_format=torch.channels_last)
    assert (blocks - plain).abs().max() <= 1e-5 * plain.abs().max()

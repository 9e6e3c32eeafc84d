"""Tiled transforms: the tiles cover the image once, and tiling does not change the result."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nicodec.codec import image as imaging
from nicodec.codec import latent, tiling
from nicodec.codec.api import compress, decompress
from nicodec.models.base import VariableRateModel
from nicodec.models.pretrained import load_model
from nicodec.models.registry import build_model
from nicodec.models.widen import widen_state
from tests.conftest import kodak_crop


@pytest.mark.parametrize("grid", [(1, 1), (7, 5), (9, 16)])
def test_inner_tiles_partition_the_grid(grid):
    seen = np.zeros(grid, dtype=int)
    for (t0, b0, l0, r0), (t1, b1, l1, r1) in tiling.tiles(*grid, tile=4, margin=2):
        seen[t1:b1, l1:r1] += 1
        assert 0 <= t0 <= t1 < b1 <= b0 <= grid[0] and 0 <= l0 <= l1 < r1 <= r0 <= grid[1]
        assert t1 - t0 == min(2, t1) and b0 - b1 == min(2, grid[0] - b1)
    assert (seen == 1).all()


@pytest.fixture(scope="module")
def shipped():
    return load_model("hyperprior")


def with_working_residual_blocks(net: VariableRateModel) -> VariableRateModel:
    """`net` with 2 residual blocks per stage whose last layers are not (yet) zero."""
    deep = build_model(net.name, **{**net.config, "res_blocks": 2})
    deep.load_state_dict(widen_state(net.state_dict(), net.config, deep))
    torch.manual_seed(0)
    for blocks in (deep.g_a_res, deep.g_s_res):
        for block in blocks.values():
            for unit in block:
                torch.nn.init.normal_(unit.body[-1].weight, std=0.05)
    return deep


@pytest.mark.parametrize("residual", [False, True])
def test_tiled_transforms_match_whole_image_transforms(shipped, crop_array, residual):
    net, t = shipped.net, torch.tensor([3.0])
    if residual:
        net = with_working_residual_blocks(net)
        assert net.tile_margin == 4
    x = imaging.to_tensor(crop_array, net.downsampling)
    grid, margin = (x.shape[2] // 16, x.shape[3] // 16), net.tile_margin
    with torch.no_grad():
        y = net.analyse(x, t)
        y_tiled = tiling.apply_tiled(lambda p: net.analyse(p, t), x, grid, 16, 1, tile=3, margin=margin)
        x_hat = net.synthesize(torch.round(y), t)
        x_tiled = tiling.apply_tiled(lambda p: net.synthesize(p, t), torch.round(y), grid, 1, 16, tile=3,
                                     margin=margin)
    assert (y_tiled - y).abs().max() < 1e-3
    assert (x_tiled - x_hat).abs().max() < 1e-3


def test_image_wider_than_a_tile_round_trips(shipped):
    """A strip wider than several tiles is analysed and decoded tile by tile, without seams: the
    pixels are those of the whole-image synthesis (to float rounding)."""
    strip = np.concatenate([np.asarray(kodak_crop(i, (0, 200, 768, 264))) for i in (1, 5, 13)], axis=1)
    decoded = np.asarray(decompress(compress(strip, quality=75)), dtype=np.float64)
    assert decoded.shape == strip.shape
    assert 10 * np.log10(255**2 / np.mean((decoded - strip) ** 2)) > 25

    x = imaging.to_tensor(strip, shipped.net.downsampling)
    sections = {s.kind: s.data for s in latent.encode(shipped, strip, 75)}
    tiled = latent.decode(shipped, sections, *strip.shape[:2], 75)
    with torch.no_grad():
        whole = shipped.net.synthesize(latent.decode_latents(shipped, sections, *x.shape[2:]),
                                       latent.quality_level(shipped, 75))
    whole = imaging.to_uint8(whole.clamp(0, 1), *strip.shape[:2]).astype(int)
    assert np.abs(tiled.astype(int) - whole).max() <= 1


def test_split_covers_the_length_in_balanced_parts():
    assert tiling.split(768, 512) == [(0, 384), (384, 768)]
    assert tiling.split(512, 512) == [(0, 512)]
    parts = tiling.split(6016, 512)
    assert parts[0][0] == 0 and parts[-1][1] == 6016 and len(parts) == 12
    assert all(a[1] == b[0] for a, b in zip(parts, parts[1:], strict=False))
    assert max(b - a for a, b in parts) - min(b - a for a, b in parts) <= 1


def test_windows_of_a_max_pool_autoencoder_match_the_whole_transform(crop_array):
    """Stages also cover max pooling and sigmoid (the seed design)."""
    from nicodec.models.stages import run_window

    torch.manual_seed(0)
    net = build_model("seed-ae").eval()
    t = torch.tensor([2.0])
    x = imaging.to_tensor(crop_array, net.downsampling)
    with torch.no_grad():
        y = net.analyse(x, t)
        stages = net.analysis_stages(t)
        part = run_window(stages, tiling.tensor_source(x), tuple(x.shape[2:]), ((1, 5), (3, 9)))
        assert (part - y[..., 1:5, 3:9]).abs().max() < 1e-4
        x_hat = net.synthesize(y, t)
        part = run_window(net.synthesis_stages(t), tiling.tensor_source(y), tuple(y.shape[2:]),
                          ((10, 70), (33, 101)))
        assert (part - x_hat[..., 10:70, 33:101]).abs().max() < 1e-4


LARGE = """
import sys, numpy as np
from PIL import Image
import nicodec
tile = np.asarray(Image.open(sys.argv[1]).convert("RGB"))
image = np.tile(tile, (4, 4, 1))[:2000, :3000]
data = nicodec.compress(image, 50)
decoded = np.asarray(nicodec.decompress(data))
assert decoded.shape == image.shape
mse = np.mean((decoded.astype(float) - image) ** 2)
status = open("/proc/self/status").read()  # VmHWM: ru_maxrss would start at pytest's own peak
print(len(data), 10 * np.log10(255 ** 2 / mse), int(status.split("VmHWM:")[1].split()[0]) // 1024)
"""


def test_large_image_round_trips_in_bounded_memory(kodak_dir):
    """3000 x 2000: tiles and bands bound the memory of the whole process (torch and the model
    included)."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", LARGE, str(kodak_dir / "kodim07.png")], capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    size, psnr, peak_mb = (float(v) for v in done.stdout.split())
    assert psnr > 28 and size < 3000 * 2000 / 8
    assert peak_mb < 1800  # measured 1,347 MB for encode then decode, ~490 MB of it torch and the model

"""The encoder's widest convolution on the principal subspace of its input (an encoder speed-up).

Half of an analysis's multiply-adds are its second convolution (128 -> 128, 5x5, at 1/2
resolution: 25.6 of 52.1 kMAC per pixel). What it reads, the first GDN's output, lies almost
entirely in a few directions: on training photos, 64 of its 128 dimensions hold 99.94 % of its
energy. So the codec's analysis projects that input onto its top `RANK` principal directions (a
1x1 product, 128 -> 64) and runs the convolution on 64 channels, its weights multiplied by the
same basis: 25.6 -> 14.8 kMAC per pixel, the convolution ~40 % faster. Only the encoder's rounding
changes: the file can differ, never whether or how it decodes; on held-out photos the files
came out the same size at equal PSNR (BD-rate -0.01 %; docs/DESIGN.md, item 9).

The basis is fitted per quality level (the level-affine tables change what the GDN sees: one
basis pooled over levels moved 5-7 times as many symbols) on a crop of the image bundled with
the package, once per model and level in a process, so that every model, a user's own included,
gets it with no fitted file to ship or keep in step with the weights.
"""

from __future__ import annotations

import threading
import weakref
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from nicodec.models.layers import GDN, per_position
from nicodec.models.stages import Stage

RANK = 64  # 48 saves another 30 % of the convolution for files 0.15 % larger: not taken
CALIBRATION = Path(__file__).parents[1] / "assets" / "sample.png"
# 6,144 positions at the GDN: the symbols moved as few as with the whole 384x256 image (held-out
# photos, q 10/50/90: 0.001/0.016/0.11 % of them), for a quarter of the time (~10 ms a level)
CALIBRATION_SIZE = (128, 192)

Bases = dict[int, torch.Tensor]  # layer index -> basis [C, RANK]
_fitted: weakref.WeakKeyDictionary[nn.Module, dict[float, Bases]] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def widest(layers: nn.Sequential) -> int | None:
    """Index of the convolution after the first GDN, if its input is wider than `RANK`."""
    gdns = [i for i, m in enumerate(layers) if isinstance(m, GDN)]
    if not gdns or gdns[0] + 1 >= len(layers):
        return None
    conv = layers[gdns[0] + 1]
    return gdns[0] + 1 if isinstance(conv, nn.Conv2d) and conv.in_channels > RANK else None


def _calibration(device: torch.device) -> torch.Tensor:
    """The middle `CALIBRATION_SIZE` of the bundled image, [1, 3, h, w] in [0, 1]."""
    with Image.open(CALIBRATION) as im:
        (w, h), (ch, cw) = im.size, CALIBRATION_SIZE
        box = ((w - cw) // 2, (h - ch) // 2, (w + cw) // 2, (h + ch) // 2)
        rgb = np.asarray(im.convert("RGB").crop(box), dtype=np.float32) / 255.0
    image = torch.from_numpy(rgb).permute(2, 0, 1)[None].to(device)
    return image.contiguous(memory_format=torch.channels_last)


def bases(net: Any, t: torch.Tensor) -> Bases:
    """{layer index: orthonormal basis [C, RANK]} for `net.analysis_stages(t, ...)` (empty for a
    transform without such a layer): the top principal directions (uncentred: the convolution
    sees the raw values) of that layer's input on the calibration image, at level t."""
    i = widest(net.g_a)
    if i is None:
        return {}
    key = float(t.reshape(-1)[0])
    with _lock:
        known = _fitted.setdefault(net, {})
        if key in known:
            return known[key]
    with torch.no_grad():
        seen = net.transform("g_a", _calibration(t.device), t, stop=i)
        rows = seen.permute(0, 2, 3, 1).reshape(-1, seen.shape[1])
        _, vectors = torch.linalg.eigh((rows.T @ rows).double())  # ascending eigenvalues
    fitted = {i: vectors[:, -RANK:].float().contiguous()}
    with _lock:
        known[key] = fitted
    return fitted


def projected(layer: nn.Conv2d, basis: torch.Tensor) -> list[Stage]:
    """Stages computing `layer` on its input projected onto `basis` [C, r]: the projection (one
    matrix product over positions) and the convolution on r channels."""
    weight = torch.einsum("oikl,ir->orkl", layer.weight.detach(), basis).contiguous()
    bias = None if layer.bias is None else layer.bias.detach()

    return [Stage(lambda x: per_position(x, basis)),
            Stage(lambda x: F.conv2d(x, weight, bias, layer.stride), "conv", layer.kernel_size[0],
                  layer.stride[0], layer.padding[0])]

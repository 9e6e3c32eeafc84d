"""Fitting the read-outs of reduced decoding (`models.draft`), in closed form.

Each training image (a centre crop) is coded and decoded at a few qualities, as the codec does;
the synthesis's features at 1/2, 1/4 and 1/8 resolution (`draft.truncate`) are paired with the
full decode box-downscaled to that resolution, what a user would otherwise compute. The read-out
is linear (a 1x1 convolution), so least squares needs only the normal equations, accumulated in
float64 image by image (memory does not grow with the images) and solved with a small ridge: a
refit after new weights is one deterministic command (`tools/fit_drafts.py`), no training.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from nicodec.codec import latent, tiling
from nicodec.models import draft
from nicodec.models.pretrained import InferenceModel
from nicodec.models.stages import run_window
from nicodec.train.data import list_images

IMAGES = 16
CROP = 512  # largest crop side; every side is a multiple of the model's downsampling
QUALITIES = (25, 50, 75, 90)  # one read-out serves every rate
RIDGE = 1e-4  # times the features' mean energy: keeps the solve well posed, costs nothing measurable


def crops(folder: Path, count: int, multiple: int, crop: int = CROP) -> list[np.ndarray]:
    """`count` RGB centre crops from images spread evenly over the folder's sorted files (so over
    its sources), each side the largest multiple of `multiple` up to `crop` (no padding: the box
    downscale is exact); images with a side under 4 multiples are skipped."""
    if "kodak" in (part.lower() for part in folder.resolve().parts):
        raise ValueError("Kodak is the evaluation set: fit read-outs on training images")
    paths = list_images(folder)
    out: list[np.ndarray] = []
    for i in range(count):
        for path in paths[i * len(paths) // count:]:  # the first usable image from the i-th share
            with Image.open(path) as im:
                rgb = np.asarray(im.convert("RGB"))
            h, w = (min(n, crop) // multiple * multiple for n in rgb.shape[:2])
            if h >= 4 * multiple and w >= 4 * multiple:
                top, left = (rgb.shape[0] - h) // 2, (rgb.shape[1] - w) // 2
                out.append(np.ascontiguousarray(rgb[top:top + h, left:left + w]))
                break
    return out


@torch.no_grad()
def samples(model: InferenceModel, rgb: np.ndarray, quality: int,
            reductions: Sequence[int]) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
    """(features [n, C], target [n, 3] in [0, 1]) per factor, float64, for one image (sides a
    multiple of the model's downsampling) at one quality: the features the reduced decode computes
    from the exactly decoded latent, and the full decode's pixels box-downscaled."""
    h, w = rgb.shape[:2]
    sections = {s.kind: s.data for s in latent.encode(model, rgb, quality)}
    y_hat = latent.decode_latents(model, sections, h, w)
    full = torch.from_numpy(latent.synthesize(model, y_hat, quality, (h, w))).double() / 255
    stages = model.net.synthesis_stages(latent.quality_level(model, quality))
    out = {}
    for r in reductions:
        part = draft.truncate(stages, r, model.net.latent_stride)
        features = run_window(part, tiling.tensor_source(y_hat), tuple(y_hat.shape[2:]),
                              ((0, h // r), (0, w // r)))
        target = full.reshape(h // r, r, w // r, r, 3).mean((1, 3))
        out[r] = features[0].flatten(1).T.double(), target.reshape(-1, 3)
    return out


class Normal:
    """The normal equations of a linear read-out with bias: sums of [x 1]'[x 1], [x 1]'y and y'y."""

    def __init__(self, channels: int) -> None:
        self.xx = torch.zeros(channels + 1, channels + 1, dtype=torch.float64)
        self.xy = torch.zeros(channels + 1, 3, dtype=torch.float64)
        self.yy = 0.0
        self.n = 0

    def add(self, x: torch.Tensor, y: torch.Tensor) -> None:
        x1 = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], 1)
        self.xx += x1.T @ x1
        self.xy += x1.T @ y
        self.yy += float((y * y).sum())
        self.n += len(x)

    def solve(self, ridge: float) -> tuple[torch.Tensor, torch.Tensor, float]:
        """Weight [3, C], bias [3] and their mean squared error on the samples (the bias is not
        regularized)."""
        c = len(self.xx) - 1
        a = self.xx.clone()
        a.diagonal()[:c] += ridge * a.diagonal()[:c].mean()
        beta = torch.linalg.solve(a, self.xy)
        sse = self.yy - 2 * float((beta * self.xy).sum()) + float((beta * (self.xx @ beta)).sum())
        return beta[:c].T, beta[c], sse / (3 * self.n)


def fit(model: InferenceModel, images: Sequence[np.ndarray], qualities: Sequence[int] = QUALITIES,
        ridge: float = RIDGE, log: Callable[[str], None] = print) -> tuple[dict[str, torch.Tensor], dict]:
    """The model's read-outs at 1/2, 1/4 and 1/8 (tensors named for `draft.replace`) and a record
    of the fit: the images' sizes, qualities, ridge and each factor's PSNR on the samples."""
    reductions = [r for r in draft.REDUCTIONS if r != 1]
    normal: dict[int, Normal] = {}
    for i, rgb in enumerate(images):
        for q in qualities:
            for r, (x, y) in samples(model, rgb, q, reductions).items():
                normal.setdefault(r, Normal(x.shape[1])).add(x, y)
        log(f"{i + 1}/{len(images)}: {rgb.shape[1]}x{rgb.shape[0]}")
    tensors, psnr = {}, {}
    for r, equations in normal.items():
        weight, bias, mse = equations.solve(ridge)
        tensors[f"{model.model_id}.{r}.weight"] = weight[:, :, None, None].float()
        tensors[f"{model.model_id}.{r}.bias"] = bias.float()
        psnr[r] = round(-10 * math.log10(mse), 2)
    record = {"images": [f"{a.shape[1]}x{a.shape[0]}" for a in images], "qualities": list(qualities),
              "ridge": ridge, "fit_psnr_db": psnr}
    return tensors, record

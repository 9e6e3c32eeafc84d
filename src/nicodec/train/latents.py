"""Latents cached for training a decoder behind a frozen analysis (`latent_samples`).

With every network the analysis uses frozen (`network_lr_scale` 0), a sample's gained latent is a
fixed function of its pixels and level, and computing it afresh was over half of a training step
(`fast`, 6 crops of 256², two threads: 0.62 of 1.15 s). So such a run draws its samples once, each
a view of a training crop (`data.draw_views`) at one level t, keeps their latents in a float32
memory-mapped file in the run folder, and trains on batches of them: each step runs only
`code_latent` (quantization, entropy model, synthesis). The price is fewer distinct views than
drawing afresh every step (the samples, against 8 symmetries x offsets x levels of every crop),
which the validation curve watches.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from nicodec import progress
from nicodec.train.data import draw_views, views

BUILD_BATCH = 8  # samples analysed at a time while the cache is built


def frozen_analysis(model: nn.Module) -> bool:
    """Whether the analysis depends on no trainable parameter (so its latents can be kept)."""
    with torch.enable_grad():
        y = model.analyse(torch.zeros(1, 3, 64, 64), torch.zeros(1))
    return not y.requires_grad


def analysis_digest(model: nn.Module) -> str:
    """A hash of every frozen parameter and buffer: a cache is reused only for the same analysis."""
    h = hashlib.sha256()
    frozen = [(n, p) for n, p in model.named_parameters() if not p.requires_grad]
    for name, tensor in sorted([*frozen, *model.named_buffers()], key=lambda item: item[0]):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


@dataclass
class LatentCache:
    """`count` samples: their views [count, 4] (`data.draw_views`), levels [count] and gained
    latents [count, M, size / stride, size / stride] (float32, memory-mapped)."""

    drawn: np.ndarray
    t: np.ndarray
    y: np.ndarray

    @classmethod
    def build(cls, model: nn.Module, crops: np.ndarray, count: int, size: int, folder: Path,
              rng: np.random.Generator) -> LatentCache:
        """Open the cache in `folder` if it holds these samples of this analysis, else draw and
        analyse them (the metadata is written last: an interrupted build is redone)."""
        if not frozen_analysis(model):
            raise ValueError("latent_samples needs the analysis frozen: network_lr_scale 0 for every "
                             "network it uses (e.g. g_a, g_a_res, g_a_log_scale, g_a_shift, log_gain)")
        meta = {"analysis": analysis_digest(model), "count": count, "size": size,
                "crops": hashlib.sha256(np.ascontiguousarray(crops)).hexdigest()[:16]}
        meta_path = folder / "meta.json"
        if meta_path.exists() and json.loads(meta_path.read_text()) == meta:
            return cls.open(folder)
        folder.mkdir(parents=True, exist_ok=True)
        meta_path.unlink(missing_ok=True)
        print(f"nicodec train: analysing {count} samples once, into {folder}", file=sys.stderr)
        drawn = draw_views(count, crops.shape[0], crops.shape[1], size, rng)
        t = rng.uniform(0, model.levels - 1, count).astype(np.float32)
        stride = model.latent_stride
        shape = (count, model.log_gain.shape[1], size // stride, size // stride)
        y = np.lib.format.open_memmap(folder / "y.part.npy", "w+", np.float32, shape)
        with torch.no_grad():
            starts = range(0, count, BUILD_BATCH)
            for i in progress.tracked(starts, len(starts), "latents", "batch"):
                part = slice(i, min(i + BUILD_BATCH, count))
                x = torch.from_numpy(views(crops, drawn[part], size))
                y[part] = model.analyse(x, torch.from_numpy(t[part])).numpy()
        y.flush()
        del y
        (folder / "y.part.npy").replace(folder / "y.npy")  # a new file: open maps keep the old one
        np.save(folder / "drawn.npy", drawn)
        np.save(folder / "t.npy", t)
        meta_path.write_text(json.dumps(meta))
        return cls.open(folder)

    @classmethod
    def open(cls, folder: Path) -> LatentCache:
        return cls(np.load(folder / "drawn.npy"), np.load(folder / "t.npy"),
                   np.load(folder / "y.npy", mmap_mode="r"))

    def batch(self, crops: np.ndarray, batch: int, size: int, rng: np.random.Generator
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(pixels, levels, latents) of `batch` random samples."""
        pick = np.sort(rng.integers(0, len(self.t), batch))  # in file order: sequential reads
        return (torch.from_numpy(views(crops, self.drawn[pick], size)), torch.from_numpy(self.t[pick]),
                torch.from_numpy(np.ascontiguousarray(self.y[pick])))

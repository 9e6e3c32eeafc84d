"""How many latent channels a 1/8 thumbnail needs: a measurement for the design of a model whose
thumbnail decodes only part of the latent (`docs/DESIGN.md`, reduced-scale decoding).

    python tools/thumbnail_channels.py --model fast [--images 16] [--quality 75] [--threads 2]

Codes training images (never Kodak), ranks the latent's channels by mean |y| over them, keeps the
top k (the rest zeroed) and prints the mean PSNR of the 1/8 read-out (`models.draft`) against the
full decode box-downscaled, for k from 16 to all.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from nicodec.bitstream import container
from nicodec.codec import latent
from nicodec.codec.api import compress
from nicodec.eval.metrics import psnr_rgb
from nicodec.models.pretrained import load_model

TRAIN = Path(__file__).resolve().parents[2] / "shared" / "data" / "train"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="a shipped model's name (checkerboard, fast)")
    p.add_argument("--data", type=Path, default=TRAIN, help="training images (never Kodak)")
    p.add_argument("--images", type=int, default=16)
    p.add_argument("--quality", type=int, default=75)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    model = load_model(args.model)
    paths = sorted(args.data.glob("*.png"))[::50][: args.images]
    latents, fulls = [], []
    for path in paths:
        data = compress(Image.open(path).convert("RGB"), args.quality, model=model)
        header, sections = container.unpack(data)
        y = latent.decode_latents(model, {s.kind: s.data for s in sections},
                                  *latent.padded(model, header.height, header.width))
        size = (header.height, header.width)
        latents.append((y, size))
        fulls.append(np.asarray(Image.fromarray(latent.synthesize(model, y, args.quality, size)).reduce(8)))
    order = torch.argsort(sum(y.abs().mean(dim=(0, 2, 3)) for y, _ in latents), descending=True)
    print(f"{args.model}, {len(paths)} training images at q{args.quality}: channels kept -> 1/8 PSNR "
          "against the full decode box-downscaled")
    for k in (16, 32, 64, 128, len(order)):
        psnrs = []
        for (y, (h, w)), full in zip(latents, fulls, strict=True):
            kept = torch.zeros_like(y)
            kept[:, order[:k]] = y[:, order[:k]]
            thumb = latent.synthesize(model, kept, args.quality, (-(-h // 8), -(-w // 8)), reduce=8)
            psnrs.append(psnr_rgb(full, thumb))
        print(f"{k:4d} {np.mean(psnrs):6.2f} dB")


if __name__ == "__main__":
    main()

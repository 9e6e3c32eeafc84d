"""Refit a shipped model's reduced-decode read-outs (`models.draft`) and replace them in
src/nicodec/weights/drafts.safetensors: rerun after re-exporting that model's weights.

    python tools/fit_drafts.py --model fast [--images 16] [--qualities 25,50,75,90] [--threads 1]

Deterministic (closed-form least squares, `train.draft`); about a minute per image on one core.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from nicodec.models import draft
from nicodec.models.pretrained import load_model
from nicodec.train import draft as fitting

TRAIN = Path(__file__).resolve().parents[2] / "shared" / "data" / "train"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="a shipped model's name (checkerboard, fast)")
    p.add_argument("--data", type=Path, default=TRAIN, help="training images (never Kodak)")
    p.add_argument("--images", type=int, default=fitting.IMAGES)
    p.add_argument("--crop", type=int, default=fitting.CROP, help="largest crop side")
    p.add_argument("--qualities", default=",".join(map(str, fitting.QUALITIES)))
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    model = load_model(args.model)
    images = fitting.crops(args.data, args.images, model.net.downsampling, args.crop)
    start = time.perf_counter()
    tensors, record = fitting.fit(model, images, [int(q) for q in args.qualities.split(",")])
    draft.replace(model.name, tensors, record)
    print(f"{model.model_id}: fit PSNR {record['fit_psnr_db']} dB in {time.perf_counter() - start:.0f} s "
          f"-> {draft.DRAFTS}")


if __name__ == "__main__":
    main()

"""What does one variable-rate network cost against a single-lambda one trained for as long?

Trains two models of the same architecture for the same wall-clock budget on the training set:
(A) the variable-rate recipe (lambda drawn per sample over the whole ladder) and (B) a single
lambda, the one A uses at quality Q. Then codes DATASET with both at quality Q with the real codec
and records bpp, PSNR and the rate-distortion cost J = bpp + lambda * 255^2 * MSE.

    python benchmarks/variable_rate_cost.py --minutes 20 --quality 50
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

from nicodec import compress, decompress
from nicodec.eval.metrics import mse, psnr_rgb
from nicodec.models.pretrained import load_model
from nicodec.train.config import TrainConfig
from nicodec.train.data import list_images
from nicodec.train.export import export
from nicodec.train.loop import Trainer


def train(out: Path, minutes: float, base: dict, **overrides: object) -> Path:
    cfg = TrainConfig.load(None, **{**base, "out": str(out), "time_budget": f"{minutes}m", **overrides})
    Trainer(cfg, resume=(out / "checkpoint.pt").exists()).run()
    return export(out / "checkpoint.pt", out / "model.safetensors", ship=False)


def measure(weights: Path, images: list[Path], quality: int, lam: float) -> dict:
    model = load_model(str(weights))
    bpps, psnrs, costs = [], [], []
    for path in images:
        with Image.open(path) as im:
            ref = np.asarray(im.convert("RGB"))
        data = compress(ref, quality, model=model)
        dec = np.asarray(decompress(data, model=model))
        bpp = 8 * len(data) / (ref.shape[0] * ref.shape[1])
        bpps.append(bpp)
        psnrs.append(psnr_rgb(ref, dec))
        costs.append(bpp + lam * mse(ref, dec))  # mse is in 8-bit units: 255^2 * MSE[0,1]
    return {"bpp": float(np.mean(bpps)), "psnr": float(np.mean(psnrs)), "J": float(np.mean(costs))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=20)
    p.add_argument("--quality", type=int, default=50)
    p.add_argument("--dataset", default="../shared/data/kodak")
    p.add_argument("--limit", type=int, default=24)
    p.add_argument("--runs", default="runs/vr_cost")
    p.add_argument("--out", default="benchmarks/results/variable_rate_cost")
    p.add_argument("--model-config", type=json.loads, default={"N": 64, "M": 96})
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    base = {"model_config": args.model_config, "crop": 128, "batch": 8, "lr": 2e-4,
            "threads": args.threads, "progress": False, "validate_steps": 0, "log_steps": 50}
    cfg = TrainConfig.load(None, **base)
    levels = 8
    t = (args.quality - 1) / 99 * (levels - 1)
    lam = cfg.lambda_min * (cfg.lambda_max / cfg.lambda_min) ** (t / (levels - 1))
    runs = Path(args.runs)
    variable = train(runs / "variable", args.minutes, base)
    single = train(runs / "single", args.minutes, base, lambda_min=lam, lambda_max=lam)
    images = list_images(Path(args.dataset))[: args.limit]
    result = {"quality": args.quality, "lambda": lam, "minutes_each": args.minutes,
              "model_config": args.model_config, "images": len(images),
              "variable_rate": measure(variable, images, args.quality, lam),
              "single_lambda": measure(single, images, args.quality, lam)}
    v, s = result["variable_rate"], result["single_lambda"]
    result["J_increase_percent"] = 100 * (v["J"] / s["J"] - 1)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [f"# Variable-rate cost ({args.minutes:g} min each, {json.dumps(args.model_config)}, "
             f"quality {args.quality}, lambda {lam:.4f}, {len(images)} images of {args.dataset})", "",
             "| model | bpp | PSNR (dB) | J = bpp + lambda*255^2*MSE |", "|---|---:|---:|---:|",
             f"| variable rate (one network) | {v['bpp']:.4f} | {v['psnr']:.2f} | {v['J']:.4f} |",
             f"| single lambda | {s['bpp']:.4f} | {s['psnr']:.2f} | {s['J']:.4f} |", "",
             f"Variable rate costs {result['J_increase_percent']:+.1f} % in J at this point."]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

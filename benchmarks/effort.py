"""What the encoder's effort levels buy: rate at equal PSNR and encoding time, effort 2-3 vs 1.

    python benchmarks/effort.py [--images N] [--qualities 20,50,80] [--threads 1] [--out benchmarks/results]

Runs on the training folder's held-out images (crc32(name) % 50 == 0, never trained on; not Kodak,
so that tuning the refinement here cannot flatter the Kodak figures). Curves are means over images
per quality, as in `nicodec eval`; BD-rate is effort e against effort 1 (negative: fewer bits).
Writes effort.json and effort.md to --out.
"""

from __future__ import annotations

import argparse
import json
import time
import zlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from nicodec.codec.api import compress, decompress
from nicodec.codec.refine import EFFORT_ITERATIONS
from nicodec.eval.bdrate import bd_rate
from nicodec.eval.metrics import bpp, psnr_rgb
from nicodec.models.pretrained import load_model

TRAIN = Path(__file__).resolve().parents[2] / "shared" / "data" / "train"


def held_out(folder: Path, count: int) -> list[Path]:
    files = sorted(p for p in folder.glob("*.png") if zlib.crc32(p.name.encode()) % 50 == 0)
    return files[:: max(1, len(files) // count)][:count]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=4)
    ap.add_argument("--qualities", default="20,50,80")
    ap.add_argument("--efforts", default="1,2,3")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = load_model()
    qualities = [int(q) for q in args.qualities.split(",")]
    efforts = [int(e) for e in args.efforts.split(",")]
    rows = []
    for path in held_out(TRAIN, args.images):
        rgb = np.asarray(Image.open(path).convert("RGB"))
        h, w = rgb.shape[:2]
        for q in qualities:
            for e in efforts:
                start = time.perf_counter()
                data = compress(rgb, q, model=model, effort=e)
                seconds = time.perf_counter() - start
                decoded = np.asarray(decompress(data, model=model).convert("RGB"))
                rows.append({"image": path.name, "quality": q, "effort": e, "bpp": bpp(len(data), w, h),
                             "psnr": psnr_rgb(rgb, decoded), "encode_s": seconds,
                             "megapixels": h * w / 1e6})
                print(json.dumps(rows[-1]), flush=True)
    curves = {e: [(np.mean([r["bpp"] for r in rows if r["effort"] == e and r["quality"] == q]),
                   np.mean([r["psnr"] for r in rows if r["effort"] == e and r["quality"] == q]))
                  for q in qualities] for e in efforts}
    speed = {e: sum(r["encode_s"] for r in rows if r["effort"] == e)
             / sum(r["megapixels"] for r in rows if r["effort"] == e) for e in efforts}
    base = efforts[0]
    bd = {e: bd_rate(*zip(*curves[base], strict=True), *zip(*curves[e], strict=True)) for e in efforts[1:]}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = {"model": model.model_id, "images": sorted({r["image"] for r in rows}), "threads": args.threads,
              "iterations": {e: EFFORT_ITERATIONS[e] for e in efforts}, "bd_rate_vs_effort_1": bd,
              "seconds_per_megapixel": speed, "curves": curves, "points": rows}
    (out / "effort.json").write_text(json.dumps(result, indent=1))
    lines = [f"# Encoder effort ({len(result['images'])} held-out training-folder images, model "
             f"{model.model_id}, {args.threads} thread(s))", "",
             "| effort | iterations | BD-rate vs effort 1 (PSNR) | encode s / megapixel |",
             "|---:|---:|---:|---:|"]
    for e in efforts:
        cell = f"{bd[e]:+.2f} %" if e in bd else "(reference)"
        lines.append(f"| {e} | {EFFORT_ITERATIONS[e]} | {cell} | {speed[e]:.1f} |")
    lines += ["", "| quality | " + " | ".join(f"effort {e}: bpp / PSNR" for e in efforts) + " |",
              "|---:|" + "---:|" * len(efforts)]
    for i, q in enumerate(qualities):
        lines.append(f"| {q} | " + " | ".join(f"{curves[e][i][0]:.4f} / {curves[e][i][1]:.2f} dB"
                                              for e in efforts) + " |")
    (out / "effort.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

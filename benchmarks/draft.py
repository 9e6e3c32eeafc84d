"""Reduced-scale decoding (`decompress(reduce=r)`, Pillow's `draft`): its speed and its pixels.

    python benchmarks/draft.py [--images 24] [--quality 75] [--models checkerboard,fast] [--repeat 3]
                               [--threads 1] [--big MP] [--out benchmarks/results]

For each model and factor r in 1, 2, 4, 8, over Kodak images (evaluation only: the read-outs are
fitted on the training folder): the median decode time (each image's best of --repeat, model
loaded and warmed up first), of which the latent's decoding (the same at every r) and the rest
(mostly the synthesis), the speed-up
(median over images of full / reduced time), and the mean PSNR of the reduced decode against the
full decode box-downscaled by r (what the read-outs are fitted to) and Lanczos-downscaled, and
against the original box-downscaled, beside the full decode box-downscaled against that same
reference (what downscaling the full decode would give). The row "8, preview" decodes the same
image written with `preview=True` (`codec.preview`: a 1/8 WebP in the file, no model needed) at
reduce=8; its speed-up is against the full decode of the file without it, and the table's note
gives what the preview adds to the file. With --big, also a camera-size Kodak mosaic of that many
megapixels (`benchmarks/speed.py`'s), coded with and without a preview: the 1/8 decode's time
(once) from the latent and from the preview, and what the preview adds (`--images 0`: only that).
Writes draft.md to --out.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from nicodec.codec import latent
from nicodec.codec.api import compress, decompress
from nicodec.eval.metrics import psnr_rgb
from nicodec.models.draft import REDUCTIONS
from nicodec.models.pretrained import InferenceModel, load_model

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.speed import KODAK, _prepare  # noqa: E402


class LatentTimer:
    """Seconds spent in `latent.decode_latents` (the entropy decoding, unchanged by `reduce`)."""

    def __init__(self) -> None:
        self.seconds, inner = 0.0, latent.decode_latents

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start

        latent.decode_latents = timed


def best_time(data: bytes, model: InferenceModel, reduce: int, repeat: int,
              timer: LatentTimer) -> tuple[Image.Image, float, float]:
    """The decoded image, and the best of `repeat` decode times with that run's latent decoding."""
    best = (np.inf, 0.0)
    for _ in range(repeat):
        timer.seconds = 0.0
        start = time.perf_counter()
        image = decompress(data, model=model, reduce=reduce)
        best = min(best, (time.perf_counter() - start, timer.seconds))
    return image, *best


ROWS = (*REDUCTIONS, "8, preview")  # the last: reduce=8 of the file written with a preview


def measure(name: str, paths: list[Path], quality: int, repeat: int, timer: LatentTimer) -> list[dict]:
    model = load_model(name)
    rows = []
    for i, path in enumerate(paths):
        original = Image.open(path).convert("RGB")
        data = compress(original, quality, model=model)
        shown = compress(original, quality, model=model, preview=True)
        if i == 0:  # warm-up: read-outs loaded, thread pools started
            for r in REDUCTIONS:
                decompress(data, model=model, reduce=r)
        full, full_s, _ = best_time(data, model, 1, repeat, timer)
        for label in ROWS:
            r = 8 if label == "8, preview" else label
            image, seconds, latent_s = best_time(shown if label == "8, preview" else data, model, r, repeat,
                                                 timer)
            box, reference = full.reduce(r), original.reduce(r)
            lanczos = full.resize(image.size, Image.Resampling.LANCZOS)
            rows.append({"image": path.name, "reduce": label, "size": image.size, "seconds": seconds,
                         "preview_share": (len(shown) - len(data)) / len(data),
                         "latent_seconds": latent_s, "speedup": full_s / seconds,
                         "psnr_box": psnr_rgb(np.asarray(box), np.asarray(image)),
                         "psnr_lanczos": psnr_rgb(np.asarray(lanczos), np.asarray(image)),
                         "psnr_original": psnr_rgb(np.asarray(reference), np.asarray(image)),
                         "full_psnr_original": psnr_rgb(np.asarray(reference), np.asarray(box))})
        print(f"{name} {path.name}: " + ", ".join(
            f"1/{row['reduce']} {row['seconds'] * 1e3:.0f} ms {row['psnr_box']:.2f} dB" for row in rows[-5:]),
            flush=True)
    return rows


def table(name: str, model_id: str, rows: list[dict]) -> list[str]:
    lines = [f"## {name} ({model_id})", "",
             "| reduce | size (first image) | decode ms (median) | of which latent ms | the rest ms | "
             "speed-up | PSNR vs full, box | vs full, Lanczos | vs original, box | full, box, vs original |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in ROWS:
        sel = [row for row in rows if row["reduce"] == r]
        w, h = sel[0]["size"]

        def mean(key: str, sel: list[dict] = sel) -> str:
            values = [row[key] for row in sel]
            return "exact" if np.isinf(values).all() else f"{np.mean(values):.2f} dB"

        lines.append(f"| {r} | {w}x{h} | {np.median([s['seconds'] for s in sel]) * 1e3:.1f} | "
                     f"{np.median([s['latent_seconds'] for s in sel]) * 1e3:.1f} | "
                     f"{np.median([s['seconds'] - s['latent_seconds'] for s in sel]) * 1e3:.1f} | "
                     f"{np.median([s['speedup'] for s in sel]):.{0 if r == ROWS[-1] else 2}f}x | "
                     f"{mean('psnr_box')} | "
                     f"{mean('psnr_lanczos')} | {mean('psnr_original')} | {mean('full_psnr_original')} |")
    share = [row["preview_share"] for row in rows if row["reduce"] == 1]
    return lines + ["", f"The preview adds {np.mean(share):.1%} to a file on average ({min(share):.1%} to "
                    f"{max(share):.1%}).", ""]


def big(name: str, megapixels: int, quality: int) -> list[str]:
    """The 1/8 decode of a camera-size mosaic, from its latent and from its preview, timed once."""
    model = load_model(name)
    with tempfile.TemporaryDirectory() as work:
        mosaic = _prepare(KODAK, 0, [megapixels], Path(work))[f"{megapixels}mp"][0]
        original = Image.fromarray(np.load(mosaic))
    rows = {}
    for shown in (False, True):
        data = compress(original, quality, model=model, preview=shown)
        start = time.perf_counter()
        image = decompress(data, model=model, reduce=8)
        rows[shown] = (len(data), time.perf_counter() - start, image)
        print(f"{name} {megapixels} MP, preview {shown}: {rows[shown][0]:,} bytes, "
              f"1/8 in {rows[shown][1]:.3f} s", flush=True)
    reference = np.asarray(original.reduce(8))
    (plain, plain_s, thumb), (shown, shown_s, preview) = rows[False], rows[True]
    return [f"## {name} on a {original.width}x{original.height} Kodak mosaic, quality {quality}", "",
            "| 1/8 from | file bytes | decode s | PSNR vs the latent's 1/8 | vs original, box |",
            "|---|---:|---:|---:|---:|",
            f"| the latent (read-out) | {plain:,} | {plain_s:.2f} | exact | "
            f"{psnr_rgb(reference, np.asarray(thumb)):.2f} dB |",
            f"| the preview | {shown:,} (+{shown / plain - 1:.1%}) | {shown_s:.3f} | "
            f"{psnr_rgb(np.asarray(thumb), np.asarray(preview)):.2f} dB | "
            f"{psnr_rgb(reference, np.asarray(preview)):.2f} dB |", ""]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=24)
    ap.add_argument("--quality", type=int, default=75)
    ap.add_argument("--models", default="checkerboard,fast")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--big", type=int, help="also a camera-size mosaic of this many megapixels")
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    paths = sorted(KODAK.glob("kodim*.png"))[:args.images]
    timer = LatentTimer()
    machine = platform.processor() or platform.machine()
    lines = [f"# Reduced-scale decoding ({len(paths)} Kodak images, quality {args.quality}, "
             f"{args.threads} thread(s), best of {args.repeat})", "",
             f"`python benchmarks/draft.py --images {args.images} --quality {args.quality} --models "
             f"{args.models} --repeat {args.repeat} --threads {args.threads}"
             f"{f' --big {args.big}' if args.big else ''}` on {machine}, torch "
             f"{torch.__version__}. PSNR (RGB) means over images; \"full, box, vs original\" is "
             "what box-downscaling the full decode gives against the same reference.", ""]
    for name in args.models.split(","):
        if paths:
            rows = measure(name, paths, args.quality, args.repeat, timer)
            lines += table(name, load_model(name).model_id, rows)
        if args.big:
            lines += big(name, args.big, args.quality)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "draft.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()

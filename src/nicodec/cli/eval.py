"""`nicodec eval` (rate-distortion benchmark against live and published codecs) and `nicodec compare`."""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
from pathlib import Path

from nicodec.cli.codec import _quality

REPO_ANCHORS = Path(__file__).resolve().parents[3].parent / "shared" / "anchors" / "kodak"
EVAL_CACHE = ".cache/eval"  # per-point cache, shared with `nicodec export --figures`
GROUPS = ("all", "baselines")  # nicodec + every baseline; every baseline (lossy and lossless)


def _default_anchors() -> Path | None:
    for candidate in (Path("../shared/anchors/kodak"), REPO_ANCHORS):
        if candidate.is_dir():
            return candidate
    return None


def _qualities(text: str) -> tuple[int, ...]:
    return tuple(_quality(v) for v in text.split(",") if v.strip())


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="rate-distortion benchmark of nicodec and baseline codecs")
    p.add_argument("dataset", help="folder of images")
    p.add_argument("--qualities", type=_qualities, metavar="Q,Q,...",
                   help="nicodec qualities (default 5,10,20,35,50,65,75,85,90,95)")
    p.add_argument("--codecs", default="all", metavar="NAME,...",
                   help="nicodec, nicodec:MODEL (another model as a rival curve) and/or baseline names "
                        "(jpeg-420, jpeg-444, webp, avif, avif-444-psnr, jxl, jpeg2000, png, webp-lossless, "
                        "gif), or the groups 'all' (default) / 'baselines'")
    p.add_argument("--model", help="shipped model name or model file (default: the manifest's)")
    p.add_argument("--effort", type=int, default=1, choices=(1, 2, 3),
                   help="nicodec's encoder effort (as `nicodec encode -e`; default 1)")
    p.add_argument("--out", default="benchmarks/results", help="output folder (default benchmarks/results)")
    p.add_argument("--anchors", help="folder of published curves (default ../shared/anchors/kodak if present;"
                   " 'none' to skip)")
    p.add_argument("--limit", type=int, metavar="N", help="only the first N images")
    p.add_argument("--shard", default="0/1", metavar="k/N",
                   help="only the k-th of N shards of the images (by name hash): split a slow run "
                   "over processes or machines sharing --cache; a run without it then reads every "
                   "point from the cache")
    p.add_argument("--cache", default=EVAL_CACHE, help=f"per-point cache folder (default {EVAL_CACHE})")
    p.add_argument("--no-cache", action="store_true", help="recompute everything, write no cache")
    p.add_argument("--threads", type=int, default=1, help="threads per codec (default 1)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run_eval)

    p = sub.add_parser("compare", help="side-by-side crops: nicodec vs JPEG/WebP/AVIF at the same size")
    p.add_argument("image", help="image file")
    p.add_argument("-q", "--quality", type=_quality, default=75, metavar="1..100",
                   help="nicodec quality (default 75)")
    p.add_argument("-o", "--output", required=True, help="PNG to write")
    p.add_argument("--crop", metavar="x,y,w,h", help="region to show (default a centred 256x256)")
    p.add_argument("--model", help="shipped model name or model file (default: the manifest's)")
    p.set_defaults(run=run_compare)


def _select(spec: str, model: str | None, qualities: tuple[int, ...] | None, effort: int = 1) -> list:
    from dataclasses import replace

    from nicodec.eval.baselines import baselines, nicodec_codec

    table = baselines()
    names: list[str] = []
    for name in (n.strip() for n in spec.split(",") if n.strip()):
        expanded = {"all": ["nicodec", *table], "baselines": list(table)}.get(name, [name])
        names += [n for n in expanded if n not in names]
    unknown = [n for n in names if n != "nicodec" and not n.startswith("nicodec:") and n not in table]
    if unknown or not names:
        raise ValueError(f"unknown codec(s) {', '.join(unknown) or '(none)'}; choose from nicodec, "
                         f"nicodec:MODEL, {', '.join(table)}, {', '.join(GROUPS)}")
    codecs = []
    for n in names:
        if n.startswith("nicodec"):  # "nicodec" is the test codec (--model); "nicodec:MODEL" a rival
            other = n.removeprefix("nicodec:") if n != "nicodec" else None
            nic = nicodec_codec(other or model, effort)
            nic = replace(nic, name=n, family=f"nicodec {other}") if other else nic
            codecs.append(replace(nic, values=qualities) if qualities else nic)
        else:
            codecs.append(table[n])
    return codecs


def run_eval(args: argparse.Namespace) -> int:
    import torch

    from nicodec.eval.report import load_anchors, write_outputs
    from nicodec.eval.runner import PointCache, evaluate, list_images
    from nicodec.storage.folder import parse_shard

    torch.set_num_threads(args.threads)
    dataset = Path(args.dataset)
    images = list_images(dataset, args.limit, parse_shard(args.shard))
    anchors_dir = (None if args.anchors == "none" else
                   Path(args.anchors) if args.anchors else _default_anchors())
    anchors = load_anchors(anchors_dir)
    codecs = _select(args.codecs, args.model, args.qualities, args.effort)
    cache = None if args.no_cache else PointCache(Path(args.cache))
    points, hits = evaluate(images, codecs, cache, args.threads, progress=not args.quiet)
    meta = {"dataset": dataset.name or str(dataset), "dataset_path": str(dataset.resolve()),
            "images": len(images), "date": datetime.datetime.now().isoformat(timespec="seconds"),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
            "python": platform.python_version(), "torch": torch.__version__, "threads": args.threads,
            "anchors": str(anchors_dir) if anchors_dir else None, "computed": len(points) - hits,
            "cached": hits, "shard": args.shard}
    for path in write_outputs(Path(args.out), points, codecs, anchors, meta):
        print(path)
    return 0


def run_compare(args: argparse.Namespace) -> int:
    from nicodec import progress
    from nicodec.eval.compare import panels, parse_crop, render
    from nicodec.eval.runner import load_rgb

    rgb = load_rgb(Path(args.image))
    box = parse_crop(args.crop, rgb.shape[1], rgb.shape[0])
    with progress.shown(sys.stderr.isatty()):
        items = panels(rgb, args.quality, args.model)
    render(items, box).save(args.output, format="PNG")
    for p in items[1:]:
        print(f"{p.title:<16} {p.size:>8} B  {p.psnr:.2f} dB")
    print(args.output)
    return 0

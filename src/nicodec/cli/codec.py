"""`nicodec encode`, `decode` and `info`, in the style of cwebp/cjxl."""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from functools import partial
from pathlib import Path

from nicodec.bitstream import container
from nicodec.cli.io import check_output, read_input, write_output
from nicodec.codec.api import BACKENDS
from nicodec.storage import folder
from nicodec.storage.folder import IMAGE_SUFFIXES, Job


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("encode", help="compress an image to .nic")
    p.add_argument("input", help="image file (PNG, JPEG, WebP, TIFF, BMP, PPM), - for stdin, "
                   "or a folder (encoded recursively into the -o folder)")
    p.add_argument("-o", "--output", help="output .nic file, - for stdout, or folder "
                   "(default: input name with .nic)")
    p.add_argument("-q", "--quality", type=_quality, default=75, metavar="1..100",
                   help="quality, like JPEG's -q (default 75)")
    target = p.add_mutually_exclusive_group()
    target.add_argument("--size", type=_positive(int), metavar="BYTES",
                        help="instead of -q: the highest quality whose file fits in BYTES")
    target.add_argument("--bpp", type=_positive(float), metavar="BITS",
                        help="instead of -q: the highest quality at most BITS bits per pixel")
    target.add_argument("--psnr", type=_positive(float), metavar="DB",
                        help="instead of -q: the smallest file whose PSNR (RGB) reaches DB, as "
                        "cwebp -psnr")
    p.add_argument("-e", "--effort", type=int, default=1, choices=(1, 2, 3),
                   help="1: one analysis pass (default); 2, 3: also optimize the latent for this "
                   "image (100 / 200 iterations, 7 / 15 minutes per megapixel) for smaller files "
                   "that decode the same way")
    p.add_argument("--strip", action="store_true", help="drop ICC profile, EXIF and XMP metadata")
    p.add_argument("--preview", action="store_true",
                   help="also store the image at 1/8 of its size (WebP at the same quality, about "
                   "3 %% of the file at -q 75): decode --reduce 8 and Pillow thumbnails then need no "
                   "model (milliseconds, not seconds)")
    p.add_argument("--model", help="shipped model name or model file (default: the manifest's)")
    p.add_argument("--json", action="store_true", help="print machine-readable stats")
    _backend_option(p, "where the analysis runs; another backend may round a few symbols "
                    "differently, in a file that decodes the same anywhere")
    _folder_options(p)
    p.set_defaults(run=encode)

    p = sub.add_parser("decode", help="decompress a .nic file")
    p.add_argument("input", help=".nic file, - for stdin, or a folder of .nic files")
    p.add_argument("-o", "--output", help="output image, format from the extension (PNG for - or "
                   "no extension; default: input name with .png), or folder")
    p.add_argument("--model", help="model file, for .nic files written by a non-shipped model")
    p.add_argument("--reference", help="original image: also print PSNR and MS-SSIM against it")
    p.add_argument("--max-pixels", type=_positive(int), metavar="N",
                   help="refuse images over N pixels once padded to a multiple of 64 (default: "
                   "nicodec.codec.api.MAX_PIXELS, Pillow's limit)")
    p.add_argument("--reduce", type=int, default=1, choices=(1, 2, 4, 8),
                   help="decode at 1/2, 1/4 or 1/8 of the size, for a fraction of the work (a "
                   "thumbnail, as djpeg -scale 1/N; at 8 a file's preview, if it has one)")
    p.add_argument("--json", action="store_true", help="print machine-readable stats")
    p.add_argument("--format", default="png", choices=("png", "tiff", "bmp", "ppm", "webp"),
                   help="image format written in folder mode (default png)")
    _backend_option(p, "where the synthesis runs; another backend may change pixels by a value "
                    "or two, never the decoded latent")
    _folder_options(p)
    p.set_defaults(run=decode)

    p = sub.add_parser("info", help="print a .nic file's header and sections")
    p.add_argument("input", help=".nic file or - for stdin")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(run=info)


def _backend_option(p: argparse.ArgumentParser, effect: str) -> None:
    p.add_argument("--backend", default="torch", choices=BACKENDS,
                   help=f"{effect} (default torch): " + "; ".join(f"{k}: {v}" for k, v in BACKENDS.items()))


def _folder_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("-j", "--jobs", type=_positive(int), default=1, metavar="N",
                   help="folder mode: worker processes (one thread each; default 1; at most one per "
                   "core and what memory allows)")
    p.add_argument("--shard", type=_shard, default=(0, 1), metavar="k/N",
                   help="folder mode: only the k-th of N shards (split a folder across machines)")
    p.add_argument("-f", "--force", action="store_true",
                   help="overwrite an existing output file (folder mode: also redo files that are "
                   "up to date); an output that is the input is never overwritten")
    p.add_argument("--dask", metavar="ADDRESS",
                   help="folder mode: run on the Dask scheduler at ADDRESS (e.g. tcp://host:8786; "
                   "'local': a local cluster of --jobs processes); needs the dask extra")


def _positive(kind: type) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            value = 0
        if not (math.isfinite(value) and value > 0):
            raise argparse.ArgumentTypeError(f"must be a positive {kind.__name__}, not '{text}'")
        return value
    return parse


def _shard(text: str) -> tuple[int, int]:
    try:
        return folder.parse_shard(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _quality(text: str) -> int:
    try:
        q = int(text)
    except ValueError:
        q = 0
    if not 1 <= q <= 100:
        raise argparse.ArgumentTypeError(f"quality must be an integer in 1..100, not '{text}'")
    return q


def _output(args: argparse.Namespace, suffix: str) -> str:
    """The single-file output: -o (checked against the input and --force), or the input's name
    with `suffix`, which never replaces an existing file (`nicodec decode photo.nic` must not
    overwrite the original photo.png with its lossy decode)."""
    if args.output:
        check_output(args.output, args.input, args.force)
        return args.output
    if args.input == "-":
        raise ValueError("-o is required when reading from stdin")
    out = str(Path(args.input).with_suffix(suffix))
    if os.path.lexists(out):
        raise ValueError(f"{out} exists and a default output name never replaces a file: give -o "
                         "(with -f/--force to overwrite)")
    return out


SLOW_SECONDS = 10.0  # an encode expected to take longer is announced before it starts


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def _progress(args: argparse.Namespace) -> bool:
    """Progress and expected times go to a terminal only: never with --json or into a pipe."""
    return not args.json and sys.stderr.isatty()


def _warn(stats: dict) -> None:
    """What encoding dropped (`codec.image.DroppedWarning`), one stderr line each."""
    for note in stats.get("warnings", ()):
        print(f"nicodec: warning: {stats['input']}: {note}", file=sys.stderr)


def _report(stats: dict, as_json: bool, to_stdout_ok: bool) -> None:
    stream = sys.stdout if to_stdout_ok else sys.stderr
    if as_json:
        print(json.dumps(stats), file=stream)
    else:
        print("  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                        for k, v in stats.items() if k != "warnings"), file=stream)  # see _warn


def encode_file(source: str, output: str, quality: int, model: str | None, size: int | None = None,
                bpp: float | None = None, strip: bool = False, effort: int = 1,
                psnr: float | None = None, announce: bool = False, backend: str = "torch",
                preview: bool = False) -> dict:
    """Compress one image file (or stdin) to one .nic file (or stdout); its stats. A target
    `size` (bytes), `bpp` or `psnr` replaces the quality; `strip` leaves the metadata out; `effort`
    > 1 refines the latent (`codec.refine`); `announce` says on stderr how long a slow encode takes;
    `preview` stores the image at 1/8 of its size too (`codec.preview`)."""
    from nicodec.codec.api import compress, info
    from nicodec.codec.image import DroppedWarning, open_image
    from nicodec.progress import expected_encode_seconds

    raw = read_input(source)
    with warnings.catch_warnings(record=True) as dropped:
        warnings.simplefilter("always", DroppedWarning)
        img = open_image(raw)
        w, h = img.size
        if bpp is not None:
            size = int(bpp * w * h / 8)
        expected = expected_encode_seconds(w * h, effort) * (7 if size or psnr else 1)
        if announce and expected >= SLOW_SECONDS:
            print(f"nicodec: encoding {w}x{h} at effort {effort}"
                  f"{' with rate control (about 7 encodes)' if size or psnr else ''}: "
                  f"expect about {_duration(expected)}", file=sys.stderr)
        start = time.perf_counter()
        data = compress(img, quality, model=model, max_bytes=size, metadata=not strip, effort=effort,
                        min_psnr=psnr, backend=backend, preview=preview)
        elapsed = time.perf_counter() - start
    write_output(output, lambda f: f.write(data))
    header = info(data)
    raw_bytes = w * h * len(img.getbands()) * header["bit_depth"] // 8
    stats = {"input": source, "output": output, "width": w, "height": h, "quality": header["quality"],
             "input_bytes": len(raw), "raw_bytes": raw_bytes, "nic_bytes": len(data),
             "bpp": 8 * len(data) / (w * h), "ratio": raw_bytes / len(data), "encode_s": elapsed}
    notes = [str(d.message) for d in dropped if issubclass(d.category, DroppedWarning)]
    return stats | ({"warnings": notes} if notes else {})


def encode(args: argparse.Namespace) -> int:
    if Path(args.input).is_dir():
        work = partial(_encode_job, quality=args.quality, model=args.model, size=args.size, bpp=args.bpp,
                       strip=args.strip, effort=args.effort, psnr=args.psnr, backend=args.backend,
                       **({"preview": True} if args.preview else {}))  # older ledgers stay current
        return _folder(args, IMAGE_SUFFIXES, ".nic", work)
    out = _output(args, ".nic")
    from nicodec import progress

    with progress.shown(_progress(args)):
        stats = encode_file(args.input, out, args.quality, args.model, args.size, args.bpp, args.strip,
                            args.effort, args.psnr, announce=_progress(args), backend=args.backend,
                            preview=args.preview)
    _warn(stats)
    _report(stats, args.json, out != "-")
    return 0


def decode_file(source: str, output: str, model: str | None, reference: str | None = None,
                max_pixels: int | None = None, backend: str = "torch", reduce: int = 1) -> dict:
    """Decompress one .nic file (or stdin) to one image file (or stdout), with the metadata the
    format can hold; its stats. `max_pixels` replaces the API's default pixel limit; `reduce`
    decodes at that fraction of the size."""
    from nicodec.codec.api import decompress
    from nicodec.codec.image import save_options

    if reference and reduce != 1:
        raise ValueError("--reference compares a full-size decode: leave out --reduce")
    data = read_input(source)
    start = time.perf_counter()
    img = decompress(data, model=model, backend=backend, reduce=reduce,
                     **({} if max_pixels is None else {"max_pixels": max_pixels}))
    elapsed = time.perf_counter() - start
    fmt = "PNG" if output == "-" or not Path(output).suffix else _format_of(output)

    def save(f: io.BufferedIOBase) -> None:
        try:
            img.save(f, format=fmt, **save_options(img, fmt))
        except (KeyError, ValueError, OSError) as err:
            raise ValueError(f"cannot write {output}: {err}") from None

    write_output(output, save)
    w, h = img.size
    header = container.unpack(data)[0]  # the coded size: a reduced decode is smaller
    stats = {"input": source, "output": output, "width": w, "height": h, "mode": img.mode,
             "nic_bytes": len(data), "bpp": 8 * len(data) / (header.width * header.height),
             "decode_s": elapsed, **({"reduce": reduce} if reduce != 1 else {})}
    if reference:
        stats.update(_quality_vs(reference, img, len(data)))
    return stats


def decode(args: argparse.Namespace) -> int:
    if Path(args.input).is_dir():
        if args.reference:
            raise ValueError("--reference takes one image, not a folder")
        work = partial(_decode_job, model=args.model, max_pixels=args.max_pixels, backend=args.backend,
                       reduce=args.reduce)
        return _folder(args, {".nic"}, "." + args.format, work)
    out = _output(args, ".png")
    from nicodec import progress

    with progress.shown(_progress(args)):
        stats = decode_file(args.input, out, args.model, args.reference, args.max_pixels, args.backend,
                            args.reduce)
    _report(stats, args.json, out != "-")
    return 0


def _encode_job(job: Job, quality: int, model: str | None, size: int | None, bpp: float | None,
                strip: bool, effort: int, psnr: float | None, backend: str, preview: bool = False) -> dict:
    return encode_file(str(job.source), str(job.target), quality, model, size, bpp, strip, effort, psnr,
                       backend=backend, preview=preview)


def _decode_job(job: Job, model: str | None, max_pixels: int | None, backend: str, reduce: int) -> dict:
    return decode_file(str(job.source), str(job.target), model, max_pixels=max_pixels, backend=backend,
                       reduce=reduce)


def _folder(args: argparse.Namespace, suffixes: Iterable[str], new_suffix: str,
            work: partial[dict]) -> int:
    """Folder mode of encode/decode: mirror the tree, then one summary line (or JSON)."""
    from tqdm import tqdm

    from nicodec.storage.dask import executor as dask_executor

    if not args.output or args.output == "-":
        raise ValueError("-o OUTPUT_FOLDER is required when the input is a folder")
    ledger = folder.Ledger(Path(args.output), {**work.keywords, "suffix": new_suffix})  # the settings
    jobs, skipped = folder.plan(Path(args.input), Path(args.output), suffixes, new_suffix,
                                args.shard, args.force, ledger)
    cluster = dask_executor(args.dask, args.jobs) if args.dask and jobs else nullcontext()
    with cluster as executor, tqdm(total=len(jobs), unit="file", disable=args.json or not jobs,
                                   leave=False) as bar:
        summary = folder.run(jobs, work, args.jobs, bar.update, ledger.record, executor)
    for stats in summary.done:
        _warn(stats)
    for source, error in sorted(summary.failed.items()):
        print(f"nicodec: error: {source}: {error}", file=sys.stderr)
    totals = {"files": len(summary.done), "up_to_date": skipped, "failed": len(summary.failed)}
    for key in ("input_bytes", "raw_bytes", "nic_bytes"):
        if summary.done and key in summary.done[0]:
            totals[key] = sum(s[key] for s in summary.done)
    pixels = sum(s["width"] * s["height"] for s in summary.done)
    if pixels:
        totals["bpp"] = 8 * totals["nic_bytes"] / pixels
        if "raw_bytes" in totals:
            totals["ratio"] = totals["raw_bytes"] / totals["nic_bytes"]
    if args.json:
        print(json.dumps({"files": summary.done, "totals": totals}))
    else:
        _report(totals, False, True)
    return 1 if summary.failed else 0


def _format_of(path: str) -> str:
    from PIL import Image

    ext = Path(path).suffix.lower()
    Image.init()
    if ext not in Image.EXTENSION:
        raise ValueError(f"unknown output image extension '{ext}'")
    return Image.EXTENSION[ext]


def _quality_vs(reference: str, decoded, nic_bytes: int) -> dict:
    from nicodec.codec.image import open_image, to_planes
    from nicodec.eval.metrics import ms_ssim_rgb, psnr_rgb

    ref_raw = read_input(reference)
    ref = to_planes(open_image(ref_raw)).rgb
    dec = to_planes(decoded).rgb
    if ref.shape != dec.shape:
        raise ValueError(f"reference is {ref.shape[1]}x{ref.shape[0]}, decoded image is "
                         f"{dec.shape[1]}x{dec.shape[0]}")
    raw = ref.shape[0] * ref.shape[1] * 3
    return {"reference_bytes": len(ref_raw), "raw_bytes": raw, "ratio": raw / nic_bytes,
            "psnr": psnr_rgb(ref, dec), "ms_ssim": ms_ssim_rgb(ref, dec)}


def info(args: argparse.Namespace) -> int:
    from nicodec.codec.api import info as read_info

    meta = read_info(read_input(args.input))
    if args.json:
        print(json.dumps(meta, indent=2))
        return 0
    for key, value in meta.items():
        if key == "sections":
            for s in value:
                print(f"  section {s['kind']:<10} tile {s['tile']}  {s['bytes']} bytes")
        else:
            print(f"{key:<15} {value:.4f}" if isinstance(value, float) else f"{key:<15} {value}")
    return 0




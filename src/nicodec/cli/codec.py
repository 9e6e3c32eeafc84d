"""`nicodec encode`, `decode` and `info`, in the style of cwebp/cjxl."""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

from nicodec.cli.io import read_input, write_output


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("encode", help="compress an image to .nic")
    p.add_argument("input", help="image file (PNG, JPEG, WebP, TIFF, BMP, PPM) or - for stdin")
    p.add_argument("-o", "--output", help="output .nic file or - for stdout "
                   "(default: input name with .nic)")
    p.add_argument("-q", "--quality", type=_quality, default=75, metavar="1..100",
                   help="quality, like JPEG's -q (default 75)")
    p.add_argument("--model", help="shipped model name or model file (default: the manifest's)")
    p.add_argument("--json", action="store_true", help="print machine-readable stats")
    p.set_defaults(run=encode)

    p = sub.add_parser("decode", help="decompress a .nic file")
    p.add_argument("input", help=".nic file or - for stdin")
    p.add_argument("-o", "--output", help="output image; format from the extension "
                   "(PNG for - or no extension; default: input name with .png)")
    p.add_argument("--model", help="model file, for .nic files written by a non-shipped model")
    p.add_argument("--reference", help="original image: also print PSNR and MS-SSIM against it")
    p.add_argument("--json", action="store_true", help="print machine-readable stats")
    p.set_defaults(run=decode)

    p = sub.add_parser("info", help="print a .nic file's header and sections")
    p.add_argument("input", help=".nic file or - for stdin")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(run=info)


def _quality(text: str) -> int:
    try:
        q = int(text)
    except ValueError:
        q = 0
    if not 1 <= q <= 100:
        raise argparse.ArgumentTypeError(f"quality must be an integer in 1..100, not '{text}'")
    return q


def _default_output(inp: str, suffix: str) -> str:
    if inp == "-":
        raise ValueError("-o is required when reading from stdin")
    return str(Path(inp).with_suffix(suffix))


def _report(stats: dict, as_json: bool, to_stdout_ok: bool) -> None:
    stream = sys.stdout if to_stdout_ok else sys.stderr
    if as_json:
        print(json.dumps(stats), file=stream)
    else:
        print("  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                        for k, v in stats.items()), file=stream)


def encode(args: argparse.Namespace) -> int:
    from nicodec.codec.api import compress
    from nicodec.codec.image import open_image

    out = args.output or _default_output(args.input, ".nic")
    raw = read_input(args.input)
    img = open_image(raw)
    start = time.perf_counter()
    data = compress(img, args.quality, model=args.model)
    elapsed = time.perf_counter() - start
    write_output(out, lambda f: f.write(data))
    w, h = img.size
    channels = len(img.getbands())
    stats = {"input": args.input, "output": out, "width": w, "height": h, "quality": args.quality,
             "input_bytes": len(raw), "raw_bytes": w * h * channels, "nic_bytes": len(data),
             "bpp": 8 * len(data) / (w * h), "ratio": w * h * channels / len(data),
             "encode_s": elapsed}
    _report(stats, args.json, out != "-")
    return 0


def decode(args: argparse.Namespace) -> int:
    from nicodec.codec.api import decompress

    out = args.output or _default_output(args.input, ".png")
    data = read_input(args.input)
    start = time.perf_counter()
    img = decompress(data, model=args.model)
    elapsed = time.perf_counter() - start
    fmt = None if out != "-" and Path(out).suffix else "PNG"

    def save(f: io.BufferedIOBase) -> None:
        try:
            img.save(f, format=fmt) if fmt else img.save(f, format=_format_of(out))
        except (KeyError, ValueError, OSError) as err:
            raise ValueError(f"cannot write {out}: {err}") from None

    write_output(out, save)
    w, h = img.size
    stats = {"input": args.input, "output": out, "width": w, "height": h, "mode": img.mode,
             "nic_bytes": len(data), "bpp": 8 * len(data) / (w * h), "decode_s": elapsed}
    if args.reference:
        stats.update(_quality_vs(args.reference, img, len(data)))
    _report(stats, args.json, out != "-")
    return 0


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




"""Speed and memory of nicodec and the baselines at quality 75, with 1 and 2 threads.

    python benchmarks/speed.py [--limit N] [--big 24,48 | --no-big] [--threads 1,2] [--out benchmarks/results]
                               [--codecs nicodec,nicodec:fast,jpeg-420,webp,avif,jxl] [--isa native|avx2]

Each (image set, codec, threads, encode|decode) runs in its own subprocess, so the peak RSS it reports
(getrusage RUSAGE_SELF at the end) belongs to that measurement alone, and one codec's caches or
thread pools never affect another's timing. Times exclude process start-up, imports and model load
(a warm-up on a small image runs first); megapixels/s = image pixels / wall-clock seconds.
`--isa avx2` caps nicodec's kernels to AVX2 on a bigger CPU (`benchmarks/machine.py`).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.machine import ISA_CAPS, describe  # noqa: E402
from benchmarks.memory import peak_rss_mb  # noqa: E402

QUALITY = 75
CODECS = ("nicodec", "jpeg-420", "webp", "avif", "jxl")
KODAK = Path(__file__).resolve().parents[2] / "shared" / "data" / "kodak"


def big_size(megapixels: int) -> tuple[int, int]:
    """A 3:2 image of about this many megapixels, sides multiples of 16 (24 -> 6000 x 4000)."""
    h = round((megapixels * 1e6 / 1.5) ** 0.5 / 16) * 16
    return round(h * 1.5 / 16) * 16, h


def _codec(name: str, model: str | None):
    from nicodec.eval.baselines import baselines, nicodec_codec

    if name.startswith("nicodec"):  # "nicodec" (the --model) or "nicodec:NAME" (that model)
        return nicodec_codec(name.partition(":")[2] or model)
    return baselines()[name]



class Split:
    """Where nicodec's decode time goes: entropy decoding (the ANS coder), the entropy model (the
    integer twin's passes: decoding the latent minus the coder) and the synthesis, timed by
    wrapping the functions `codec.latent` calls."""

    PARTS = ("entropy decoding", "entropy model", "synthesis")

    def __init__(self) -> None:
        from nicodec.codec import latent
        from nicodec.entropy import coder

        self.seconds = dict.fromkeys(("coder", "latents", "synthesis"), 0.0)
        for module, attr, key in ((coder, "decode", "coder"), (latent, "decode_latents", "latents"),
                                  (latent, "synthesize", "synthesis")):
            setattr(module, attr, self._timed(getattr(module, attr), key))

    def _timed(self, fn, key: str):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[key] += time.perf_counter() - start
        return timed

    def take(self) -> dict[str, float]:
        """The split since the last call."""
        s = self.seconds
        out = dict(zip(self.PARTS, (s["coder"], s["latents"] - s["coder"], s["synthesis"]), strict=True))
        self.seconds = dict.fromkeys(s, 0.0)
        return out


def worker(mode: str, name: str, threads: int, images: list[Path], work: Path, model: str | None) -> dict:
    """Runs in the subprocess: time `mode` over the images, report seconds, pixels, bytes and RSS
    (and, for nicodec's decode, the median split of its time)."""
    import torch

    torch.set_num_threads(threads)
    codec = _codec(name, model)
    split = Split() if name.startswith("nicodec") and mode == "decode" else None
    splits = []
    warm = np.zeros((64, 64, 3), np.uint8)
    codec.decode(codec.encode(warm, QUALITY, threads), threads)
    if split:
        split.take()
    base = peak_rss_mb()
    pixels = size = 0
    per_image = []
    for path in images:
        rgb = np.load(path, mmap_mode="r" if mode == "decode" else None)  # decode: its shape only
        encoded = work / f"{path.stem}.{name}.bin"
        if mode == "encode":
            start = time.perf_counter()
            data = codec.encode(rgb, QUALITY, threads)
            per_image.append(time.perf_counter() - start)
            encoded.write_bytes(data)
        else:
            data = encoded.read_bytes()
            start = time.perf_counter()
            decoded = codec.decode(data, threads)
            per_image.append(time.perf_counter() - start)
            if split:
                splits.append(split.take())
            assert decoded.shape == rgb.shape
        pixels += rgb.shape[0] * rgb.shape[1]
        size += len(data)
    return {"seconds": sum(per_image), "median_seconds": float(np.median(per_image)), "pixels": pixels,
            "bytes": size, "images": len(images),
            "base_rss_mb": base, "peak_rss_mb": peak_rss_mb(), "library": codec.library,
            **({"split_median_seconds": {k: float(np.median([s[k] for s in splits])) for k in Split.PARTS}}
               if splits else {})}


def _run_worker(mode: str, name: str, threads: int, images: list[Path], work: Path,
                model: str | None, isa: str) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), **ISA_CAPS[isa]}
    cmd = [sys.executable, __file__, "--worker", mode, name, str(threads), str(work),
           *(["--model", model] if model else []), *map(str, images)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{name} {mode} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.splitlines()[-1])


def _prepare(kodak: Path, limit: int, big: list[int], work: Path) -> dict[str, list[Path]]:
    """Images as .npy (fast to load, so loading never dominates); the big ones are Kodak mosaics."""
    from PIL import Image

    paths = sorted(kodak.glob("*.png"))
    if not paths:
        raise SystemExit(f"no Kodak images in {kodak}")
    sets: dict[str, list[Path]] = {"kodak": []}
    for p in paths[:limit]:
        with Image.open(p) as im:
            np.save(work / f"{p.stem}.npy", np.asarray(im.convert("RGB")))
        sets["kodak"].append(work / f"{p.stem}.npy")
    for megapixels in big:
        w, h = big_size(megapixels)
        mosaic = Image.new("RGB", (w, h))
        tile_w, tile_h = 768, 512  # Kodak portraits are resized into landscape tiles
        for i, (x, y) in enumerate((x, y) for y in range(0, h, tile_h) for x in range(0, w, tile_w)):
            with Image.open(paths[i % len(paths)]) as im:
                mosaic.paste(im.convert("RGB").resize((tile_w, tile_h), Image.Resampling.LANCZOS), (x, y))
        np.save(work / f"mosaic{megapixels}mp.npy", np.asarray(mosaic))
        sets[f"{megapixels}mp"] = [work / f"mosaic{megapixels}mp.npy"]
    return sets


def _table(rows: list[dict]) -> str:
    head = ("| set | codec | threads | bpp | encode s/img (median) | encode MP/s | decode s/img (median) "
            "| decode MP/s "
            "| encode peak RSS MB (before) | decode peak RSS MB (before) |")
    lines = [head, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        e, d = r["encode"], r["decode"]
        lines.append(f"| {r['set']} | {r['codec']} | {r['threads']} | {8 * e['bytes'] / e['pixels']:.3f} | "
                     f"{e['median_seconds']:.3f} | {e['pixels'] / e['seconds'] / 1e6:.2f} | "
                     f"{d['median_seconds']:.3f} | {d['pixels'] / d['seconds'] / 1e6:.2f} | "
                     f"{e['peak_rss_mb']:.0f} ({e['base_rss_mb']:.0f}) | "
                     f"{d['peak_rss_mb']:.0f} ({d['base_rss_mb']:.0f}) |")
    return "\n".join(lines)


def _split_table(rows: list[dict]) -> str:
    """nicodec's decode time by part (medians per image), below the main table."""
    split = [r for r in rows if "split_median_seconds" in r["decode"]]
    if not split:
        return ""
    lines = ["", "", "Where nicodec's decode time goes (median s/img; the rest is parsing, alpha and "
             "conversion):", "", "| set | model | threads | " + " | ".join(Split.PARTS) + " | whole decode |",
             "|---|---|---:|" + "---:|" * (len(Split.PARTS) + 1)]
    for r in split:
        d = r["decode"]
        parts = " | ".join(f"{d['split_median_seconds'][k]:.3f}" for k in Split.PARTS)
        whole = d["median_seconds"]
        lines.append(f"| {r['set']} | {d['library']} | {r['threads']} | {parts} | {whole:.3f} |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--limit", type=int, default=24, help="Kodak images to use (default 24)")
    ap.add_argument("--big", default="24", help="also generated mosaics of these megapixels (default 24)")
    ap.add_argument("--no-big", dest="big", action="store_const", const="", help="no big image")
    ap.add_argument("--threads", default="1,2", help="thread counts to measure (default 1,2)")
    ap.add_argument("--codecs", default=",".join(CODECS), help=f"default {','.join(CODECS)}")
    ap.add_argument("--kodak", type=Path, default=KODAK, help=f"Kodak folder (default {KODAK})")
    ap.add_argument("--model", help="nicodec model name or file (default: the manifest's)")
    ap.add_argument("--isa", choices=sorted(ISA_CAPS), default="native",
                    help="cap nicodec's kernels to this instruction set (default native)")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = ap.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="nicodec-speed-") as tmp:
        work = Path(tmp)
        big = [int(m) for m in args.big.split(",") if m]
        sets = _prepare(args.kodak, args.limit, big, work)
        for set_name, images in sets.items():
            if not images:  # --limit 0: the big images only
                continue
            for name in args.codecs.split(","):
                for t in threads:
                    row = {"set": set_name, "codec": name, "threads": t}
                    for mode in ("encode", "decode"):
                        row[mode] = _run_worker(mode, name, t, images, work, args.model, args.isa)
                    rows.append(row)
                    print(_table([row]).splitlines()[-1], flush=True)
    table = _table(rows) + _split_table(rows)
    big = ", ".join("{}x{} Kodak mosaic".format(*big_size(m)) for m in big) or None
    meta = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "quality": QUALITY,
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "cpu": describe(args.isa),
            "python": platform.python_version(),
            "kodak_images": args.limit, "big": big,
            "libraries": {r["codec"]: r["encode"]["library"] for r in rows}}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "speed.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    libs = "\n".join(f"- {k}: {v}" for k, v in meta["libraries"].items())
    (args.out / "speed.md").write_text(
        f"# Speed and memory at quality {QUALITY}\n\n{meta['date']} · {meta['machine']} · "
        f"Kodak ×{args.limit}{' + ' + big if big else ''}\n\nCPU: {meta['cpu']}\n\n{table}\n\n"
        "Times exclude start-up, imports and model load; peak RSS is the whole process "
        "(interpreter, libraries incl. torch, model, image) during that measurement, and (before) is "
        "its peak after imports and warm-up, before the measured images. JPEG and WebP encode "
        f"single-threaded whatever the thread count.\n\n{libs}\n")
    print(table)
    print(args.out / "speed.md")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        wp = argparse.ArgumentParser()
        wp.add_argument("mode", choices=("encode", "decode"))
        wp.add_argument("codec")
        wp.add_argument("threads", type=int)
        wp.add_argument("work", type=Path)
        wp.add_argument("--model")
        wp.add_argument("images", nargs="+", type=Path)
        a = wp.parse_args(sys.argv[2:])
        print(json.dumps(worker(a.mode, a.codec, a.threads, a.images, a.work, a.model)))
        sys.exit(0)
    sys.exit(main())

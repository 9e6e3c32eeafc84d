"""Decode speed of nicodec against CompressAI's same-class models (issue 34), speed only.

    python benchmarks/compressai_speed.py [--limit 3] [--threads 1,2] [--out benchmarks/results]
        [--nicodec-models checkerboard,fast] [--cai-models bmshj2018-hyperprior,mbt2018-mean]
        [--cai-python /work/venv-cai/bin/python] [--cai-stubs /work/cai-stubs] [--kodak DIR]

CompressAI cannot sit in the project's dependencies, so its models run under the scratch venv's
interpreter (`--cai-python`, with `--cai-stubs` on PYTHONPATH for the torchvision stub; set up as in
shared/notes/compressai-speed-anchor.md) and nicodec under this one. CompressAI models are built at
quality 8 with random weights (`pretrained=False`, `update(force=True)`; their rate means nothing),
the image padded to a multiple of 64, and `compress` / `decompress` timed; nicodec runs through
`nicodec.compress(rgb, 75)` / `nicodec.decompress`, so its times also include pixel conversion and
the container (a conservative comparison). Each (model, threads) runs in its own subprocess with
OMP_NUM_THREADS and torch.set_num_threads set, the model loaded once and one warm-up on a small
image before the timed images. Speed-up = CompressAI median decode s / nicodec median decode s, at
the same thread count; the target is >= 3x over both.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.machine import cpu, describe  # noqa: E402
from benchmarks.memory import peak_rss_mb  # noqa: E402

CAI_QUALITY = 8
NICODEC_QUALITY = 75
TARGET = 3.0
CAI_MODELS = ("bmshj2018-hyperprior", "mbt2018-mean")
NICODEC_MODELS = ("checkerboard", "fast")
KODAK = Path(__file__).resolve().parents[2] / "shared" / "data" / "kodak"
CAI_PYTHON = Path("/work/venv-cai/bin/python")
CAI_STUBS = Path("/work/cai-stubs")



def _load_rgb(path: Path):
    import numpy as np
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def _cai_worker(name: str, images: list[Path]) -> dict:
    """In the scratch venv: build the CompressAI model and time compress / decompress per image."""
    import compressai
    import numpy as np
    import torch
    import torch.nn.functional as F
    from compressai.zoo import image_models

    net = image_models[name](quality=CAI_QUALITY, pretrained=False).eval()
    net.update(force=True)

    def tensor(rgb: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(rgb).permute(2, 0, 1).unsqueeze(0).float().div(255)
        h, w = x.shape[-2:]
        return F.pad(x, (0, -w % 64, 0, -h % 64), mode="replicate")

    def run(x: torch.Tensor) -> tuple[float, float, int]:
        start = time.perf_counter()
        out = net.compress(x)
        encode = time.perf_counter() - start
        start = time.perf_counter()
        net.decompress(out["strings"], out["shape"])
        decode = time.perf_counter() - start
        return encode, decode, sum(len(s) for strings in out["strings"] for s in strings)

    with torch.no_grad():
        run(tensor(np.zeros((64, 64, 3), np.uint8)))  # warm-up
        base = peak_rss_mb()
        timings = [run(tensor(_load_rgb(p))) for p in images]
    return {"library": f"CompressAI {compressai.__version__} (torch {torch.__version__}), "
                       f"{name} q{CAI_QUALITY}, random weights",
            "timings": timings, "base_rss_mb": base}


def _nicodec_worker(name: str, images: list[Path]) -> dict:
    """In this venv: nicodec's public API with the model loaded once."""
    import numpy as np
    import torch

    import nicodec
    from nicodec.models.pretrained import load_model

    m = load_model(name)

    def run(rgb: np.ndarray) -> tuple[float, float, int]:
        start = time.perf_counter()
        data = nicodec.compress(rgb, NICODEC_QUALITY, model=m)
        encode = time.perf_counter() - start
        start = time.perf_counter()
        nicodec.decompress(data, model=m)
        decode = time.perf_counter() - start
        return encode, decode, len(data)

    run(np.zeros((64, 64, 3), np.uint8))  # warm-up
    base = peak_rss_mb()
    timings = [run(_load_rgb(p)) for p in images]
    return {"library": f"nicodec {nicodec.__version__} (torch {torch.__version__}), model {m.model_id}, "
                       f"quality {NICODEC_QUALITY}",
            "timings": timings, "base_rss_mb": base}


def worker(kind: str, name: str, threads: int, images: list[Path]) -> dict:
    """Runs in the subprocess: per-image (encode s, decode s, bytes), medians and peak RSS."""
    import torch

    torch.set_num_threads(threads)
    result = (_cai_worker if kind == "compressai" else _nicodec_worker)(name, images)
    encode, decode, size = zip(*result.pop("timings"), strict=True)
    return {**result, "encode_seconds": encode, "decode_seconds": decode, "bytes": size,
            "encode_median_seconds": statistics.median(encode),
            "decode_median_seconds": statistics.median(decode), "peak_rss_mb": peak_rss_mb()}


def _run_worker(kind: str, name: str, threads: int, images: list[Path], python: Path,
                stubs: Path | None) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    if stubs is not None:  # the scratch venv sees the torchvision stub, never this project's path
        env["PYTHONPATH"] = str(stubs)
    cmd = [str(python), __file__, "--worker", kind, name, str(threads), *map(str, images)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{kind} {name} ({threads} threads) failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.splitlines()[-1])


def _git_head() -> str:
    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" (uncommitted changes)" if dirty else "")


def _table(rows: list[dict], cai_models: list[str]) -> str:
    head = ("| model | threads | encode s (median) | decode s (median) | bytes (median) | peak RSS MB | "
            + " | ".join(f"decode speed-up vs {c}" for c in cai_models) + " |")
    lines = [head, "|---|---:|---:|---:|---:|---:|" + "---:|" * len(cai_models)]
    for r in rows:
        ups = [f"{s:.2f}×" if (s := r["speedup"].get(c)) is not None else "—" for c in cai_models]
        lines.append(f"| {r['model']} | {r['threads']} | {r['encode_median_seconds']:.3f} | "
                     f"{r['decode_median_seconds']:.3f} | {statistics.median(r['bytes']):.0f} | "
                     f"{r['peak_rss_mb']:.0f} | " + " | ".join(ups) + " |")
    return "\n".join(lines)


def _verdicts(rows: list[dict]) -> list[str]:
    """Whether each nicodec model decodes >= TARGET x faster than every CompressAI model."""
    out = []
    for r in rows:
        if r["kind"] == "nicodec" and r["speedup"]:
            worst = min(r["speedup"].values())
            out.append(f"- {r['model']}, {r['threads']} thread(s): slowest margin {worst:.2f}× — "
                       f"{'meets' if worst >= TARGET else 'misses'} the ≥{TARGET:g}× target")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--limit", type=int, default=3, help="first N Kodak images (default 3)")
    ap.add_argument("--threads", default="1,2", help="thread counts to measure (default 1,2)")
    ap.add_argument("--kodak", type=Path, default=KODAK, help=f"Kodak folder (default {KODAK})")
    ap.add_argument("--nicodec-models", default=",".join(NICODEC_MODELS),
                    help=f"shipped nicodec models (default {','.join(NICODEC_MODELS)})")
    ap.add_argument("--cai-models", default=",".join(CAI_MODELS),
                    help=f"CompressAI zoo names, quality {CAI_QUALITY} (default {','.join(CAI_MODELS)})")
    ap.add_argument("--cai-python", type=Path, default=CAI_PYTHON,
                    help=f"the scratch venv's interpreter with CompressAI (default {CAI_PYTHON})")
    ap.add_argument("--cai-stubs", type=Path, default=CAI_STUBS,
                    help=f"folder with the torchvision stub, put on its PYTHONPATH (default {CAI_STUBS})")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"),
                    help="where compressai_speed.md and .json go (default benchmarks/results)")
    args = ap.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    cai_models = [m for m in args.cai_models.split(",") if m]
    images = sorted(args.kodak.glob("*.png"))[:args.limit]
    if not images:
        raise SystemExit(f"no Kodak images in {args.kodak}")
    if cai_models and not args.cai_python.exists():
        raise SystemExit(f"{args.cai_python} not found: set up the scratch venv "
                         "(shared/notes/compressai-speed-anchor.md) or pass --cai-python")
    jobs = [("compressai", m, args.cai_python, args.cai_stubs) for m in cai_models]
    jobs += [("nicodec", m, Path(sys.executable), None) for m in args.nicodec_models.split(",") if m]
    load = os.getloadavg()  # another job on the machine shows here, and makes the timings noisy
    rows = []
    for t in threads:
        for kind, name, python, stubs in jobs:
            result = _run_worker(kind, name, t, images, python, stubs)
            rows.append({"kind": kind, "model": f"{name} q{CAI_QUALITY}" if kind == "compressai" else
                         f"nicodec {name}", "name": name, "threads": t, **result})
            print(f"{rows[-1]['model']}, {t} thread(s): encode {result['encode_median_seconds']:.3f} s, "
                  f"decode {result['decode_median_seconds']:.3f} s", flush=True)
    for r in rows:
        r["speedup"] = {} if r["kind"] != "nicodec" else {
            c["name"]: c["decode_median_seconds"] / r["decode_median_seconds"]
            for c in rows if c["kind"] == "compressai" and c["threads"] == r["threads"]}
    cpu_name, flags = cpu()
    meta = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "cpu": cpu_name,
            "cpus": os.cpu_count(), "flags": flags, "load_average_at_start": load,
            "command": " ".join(["python", "benchmarks/compressai_speed.py", *sys.argv[1:]]),
            "nicodec_commit": _git_head(), "images": [p.name for p in images],
            "cai_quality": CAI_QUALITY, "nicodec_quality": NICODEC_QUALITY,
            "libraries": {r["model"]: r["library"] for r in rows if r["threads"] == threads[0]}}
    table = _table(rows, cai_models)
    verdicts = _verdicts(rows)
    libs = "\n".join(f"- {k}: {v}" for k, v in meta["libraries"].items())
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "compressai_speed.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    (args.out / "compressai_speed.md").write_text(
        f"# nicodec vs CompressAI (same class), decode speed\n\n"
        f"{meta['date']} · {meta['cpus']} CPUs: {describe()} · "
        f"nicodec {meta['nicodec_commit']} · "
        f"Kodak {', '.join(meta['images'])} · load average at start {load[0]:.2f}\n\n"
        f"Command: `{meta['command']}`\n\n"
        f"{table}\n\n" + "\n".join(verdicts) + "\n\n"
        f"Medians over the images; each row is one subprocess (model loaded once, one warm-up). "
        f"CompressAI at quality {CAI_QUALITY} with random weights (speed only: its rate means nothing; "
        f"its streams are far smaller than a trained model's, so its entropy decoding is if anything "
        f"understated), "
        f"`compress` / `decompress` on the image padded to a multiple of 64; nicodec at quality "
        f"{NICODEC_QUALITY} through `nicodec.compress` / `nicodec.decompress` (pixel conversion and "
        f"container included). Speed-up = CompressAI decode / nicodec decode at the same thread count.\n\n"
        f"{libs}\n")
    print(table)
    print("\n".join(verdicts))
    print(args.out / "compressai_speed.md")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        wp = argparse.ArgumentParser()
        wp.add_argument("kind", choices=("compressai", "nicodec"))
        wp.add_argument("name")
        wp.add_argument("threads", type=int)
        wp.add_argument("images", nargs="+", type=Path)
        a = wp.parse_args(sys.argv[2:])
        print(json.dumps(worker(a.kind, a.name, a.threads, a.images)))
        sys.exit(0)
    sys.exit(main())

"""Throughput of folder jobs on a Dask cluster (`nicodec encode DIR -o OUT --dask ...`), 1 and 2 workers.

    python benchmarks/dask_folder.py [--images 8] [--quality 75] [--workers 1,2] [--dask local]

Encodes the first N Kodak images into a fresh folder per run, through the CLI as a user would, and
prints wall time (cluster start and one model load per worker included), files/s and megapixels/s.
With `--dask local` each run starts a LocalCluster of that many single-threaded worker processes.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

KODAK = Path(__file__).resolve().parents[2] / "shared" / "data" / "kodak"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--quality", type=int, default=75)
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--dask", default="local", help="scheduler address, or 'local'")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        inputs = Path(tmp) / "in"
        inputs.mkdir()
        for path in sorted(KODAK.glob("*.png"))[: args.images]:
            (inputs / path.name).symlink_to(path)
        print(f"{'workers':>7} {'files':>5} {'wall s':>7} {'files/s':>8} {'MP/s':>6}")
        for workers in (int(w) for w in args.workers.split(",")):
            out = Path(tmp) / f"out{workers}"
            start = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "nicodec", "encode", str(inputs), "-o", str(out),
                                   "-q", str(args.quality), "--json", "--dask", args.dask, "--jobs",
                                   str(workers)], capture_output=True, text=True, check=True)
            wall = time.perf_counter() - start
            files = json.loads(done.stdout)["files"]
            pixels = sum(f["width"] * f["height"] for f in files)
            print(f"{workers:>7} {len(files):>5} {wall:>7.1f} {len(files) / wall:>8.3f} "
                  f"{pixels / 1e6 / wall:>6.3f}")


if __name__ == "__main__":
    main()

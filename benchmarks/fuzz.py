"""Long fuzz run of `decompress`: mutated and crafted files, outcome classes and the slowest case.

    python benchmarks/fuzz.py [--cases 100000] [--minutes 30] [--processes 2] [--max-pixels N]

Runs the mutator of `tests/hostile.py` (the CI fuzz test's) over valid RGB and RGBA encodes of a
Kodak crop and the crafted hostile files, in `--processes` processes, until `--cases` or
`--minutes`. Prints the number of cases, the count of each outcome (decoded, FormatError,
MemoryError, CRASH ...), cases over 10 s, the slowest case and the peak RSS of a process. Then
decodes each header bomb in a fresh process that only reads and decodes it (the API's default
pixel limit, whatever --max-pixels says) and prints its time and peak RSS.
Run from the repository root (it imports `tests.hostile`).
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from multiprocessing import Pool
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.memory import peak_rss_mb  # noqa: E402
from nicodec.codec.api import MAX_PIXELS  # noqa: E402
from tests.conftest import kodak_crop  # noqa: E402
from tests.hostile import crafted, mutate, outcome, seeds  # noqa: E402

BOMBS = ("header_bomb_2048", "header_bomb_8192", "header_bomb_max", "padded_bomb_1xN", "padded_bomb_Nx1",
         "alpha_bomb")


def corpus() -> dict[str, bytes]:
    seed = seeds(kodak_crop(7, (100, 100, 164, 148)))
    return {**seed, **crafted(seed)}


def worker(task: tuple[int, int, float, int | None]) -> tuple[Counter, int, tuple[float, str], float]:
    """(outcomes, cases over 10 s, slowest (seconds, description), peak RSS in MB) of one process."""
    seed, cases, deadline, max_pixels = task
    rng, files = random.Random(seed), corpus()
    names = sorted(files)
    outcomes: Counter = Counter()
    hangs, slowest = 0, (0.0, "")
    for n in range(cases):
        if time.time() > deadline:
            break
        name = names[n] if n < len(names) else rng.choice(names)  # each file as it is, then mutants
        data = files[name] if n < len(names) else mutate(files[name], rng)
        start = time.perf_counter()
        result = outcome(data, max_pixels)
        seconds = time.perf_counter() - start
        outcomes[result] += 1
        hangs += seconds > 10
        if seconds > slowest[0]:
            how = "as crafted" if n < len(names) else "mutated"
            slowest = (seconds, f"process seed {seed}, case {n}: {name} {how}, {len(data)} bytes -> {result}")
    return outcomes, hangs, slowest, peak_rss_mb()


BOMB_PROBE = """
import sys, time
from pathlib import Path
sys.path.insert(0, {root!r})
from benchmarks.memory import peak_rss_mb
from tests.hostile import outcome
start = time.perf_counter()
import nicodec.codec.latent  # torch and the codec, as in a running service: timed apart
imported = time.perf_counter() - start
data = Path({path!r}).read_bytes()
start = time.perf_counter()
result = outcome(data, {limit})
seconds = time.perf_counter() - start
print(f"{{seconds:.3f}} s  {{peak_rss_mb():.0f}} MB  {{result}}  (import {{imported:.2f}} s)")
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=100_000)
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--max-pixels", type=int, default=MAX_PIXELS,
                    help="decoder pixel limit (default: the API's)")
    ap.add_argument("--skip-bombs", action="store_true", help="do not probe the header bombs one by one")
    args = ap.parse_args()
    deadline = time.time() + 60 * args.minutes
    per = -(-args.cases // args.processes)
    start = time.perf_counter()
    with Pool(args.processes) as pool:
        results = pool.map(worker, [(k, per, deadline, args.max_pixels) for k in range(args.processes)])
    outcomes = sum((r[0] for r in results), Counter())
    print(f"cases                {sum(outcomes.values())} in {time.perf_counter() - start:.0f} s "
          f"({args.processes} processes, max_pixels {args.max_pixels:,})")
    for result, count in outcomes.most_common():
        print(f"  {count:>8}  {result}")
    print(f"over 10 s             {sum(r[1] for r in results)}")
    slowest = max(r[2] for r in results)
    print(f"slowest case          {slowest[0]:.2f} s ({slowest[1]})")
    print(f"peak RSS (a process)  {max(r[3] for r in results):.0f} MB")
    if args.skip_bombs:
        return
    root = str(Path(__file__).resolve().parents[1])
    files = corpus()
    print(f"header bombs, one process each (default max_pixels {MAX_PIXELS:,}): decode time, peak RSS, "
          "outcome (and the time of importing torch and the codec first)")
    with tempfile.TemporaryDirectory() as tmp:
        for name in BOMBS:
            path = Path(tmp) / f"{name}.nic"
            path.write_bytes(files[name])  # made here, so the probe's RSS is the decode's alone
            code = BOMB_PROBE.format(root=root, path=str(path), limit=MAX_PIXELS)
            res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=3600)
            print(f"  {name:<18} {res.stdout.strip() or res.stderr.strip()[-300:]}")


if __name__ == "__main__":
    main()

"""Start-up time of the commands that need no model (what a user waits for on `--help` or a typo)
and of one-shot decodes of the 384x256 sample: whole, as a 1/8 thumbnail from the latent, and as
one from a file's preview (`encode --preview`), which needs no model.

    python benchmarks/startup.py [--repeat 5]

Each command runs in a fresh interpreter (`python -m nicodec ...`, as the console script does),
`--repeat` times; prints the median and the worst wall time, and whether the process imported
torch (read from `-X importtime`), which is what made these commands slow.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SAMPLE = Path(__file__).resolve().parents[1] / "src" / "nicodec" / "assets" / "sample.png"
COMMANDS = (["--help"], ["--version"], ["encode", "--help"], ["info", "{nic}"], ["encode"],
            ["encode", "x.png", "-q", "500"], ["decode", "{nic}", "-o", "{png}", "-f"],
            ["decode", "{nic}", "-o", "{png}", "-f", "--reduce", "8"],
            ["decode", "{previewed}", "-o", "{png}", "-f", "--reduce", "8"])


def run(args: list[str]) -> tuple[float, bool]:
    """Wall seconds of one `python -m nicodec ARGS` and whether it imported torch."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "nicodec", *args],
                          capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    return elapsed, any(line.split("|")[-1].strip() == "torch" for line in done.stderr.splitlines())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    folder = Path(tempfile.mkdtemp())
    files = {"nic": folder / "sample.nic", "previewed": folder / "previewed.nic", "png": folder / "out.png"}
    for name, extra in (("nic", []), ("previewed", ["--preview"])):  # real files to read
        subprocess.run([sys.executable, "-m", "nicodec", "encode", str(SAMPLE), "-o", str(files[name]),
                        "-q", "50", *extra], check=True, capture_output=True)
    print(f"{'command':<60} {'median s':>9} {'max s':>7}  torch")
    for template in COMMANDS:
        command = [a.format(**files) for a in template]
        times, torch_loaded = zip(*(run(command) for _ in range(args.repeat)), strict=True)
        label = "nicodec " + " ".join(template).format(nic="sample.nic", previewed="previewed.nic",
                                                       png="out.png")
        print(f"{label:<60} {statistics.median(times):>9.3f} {max(times):>7.3f}  "
              f"{'yes' if any(torch_loaded) else 'no'}")


if __name__ == "__main__":
    main()

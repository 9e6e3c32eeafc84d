"""Peak resident memory of a process, as the benchmarks report it."""

from __future__ import annotations

from pathlib import Path


def peak_rss_mb(pid: int | str = "self") -> float:
    """A process's own peak RSS in MB (VmHWM). Not `ru_maxrss`: Linux carries that across exec,
    so a child spawned by a big parent would report at least the parent's peak."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for process {pid}")

"""Whole folders: mirror a tree of inputs into a tree of outputs, in parallel, resumably, sharded.

A folder job is a list of (source, target) pairs. Sharding hashes each file's path relative to
the folder, so N machines (a cluster array job, say) given the same folder and `--shard k/N`
split it without talking to each other, and every file lands in exactly one shard. A target that
is newer than its source is skipped, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp", ".ppm",
                            ".pgm", ".pnm", ".gif"})


@dataclass(frozen=True)
class Job:
    source: Path
    target: Path


@dataclass
class Summary:
    """What a folder run did; `failed` maps a source path to its one-line error."""

    done: list[dict[str, Any]] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def parse_shard(text: str) -> tuple[int, int]:
    """'k/N' with 0 <= k < N."""
    try:
        k, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise ValueError(f"shard must look like k/N, not '{text}'") from None
    if not 0 <= k < n:
        raise ValueError(f"shard k/N needs 0 <= k < N, not '{text}'")
    return k, n


def in_shard(relative: Path, shard: tuple[int, int]) -> bool:
    k, n = shard
    return zlib.crc32(relative.as_posix().encode()) % n == k


def plan(source: Path, target: Path, suffixes: Iterable[str], new_suffix: str,
         shard: tuple[int, int] = (0, 1), force: bool = False) -> tuple[list[Job], int]:
    """Jobs for every file under `source` with one of `suffixes` (case-insensitive), targets at
    the same relative path under `target` with `new_suffix`; and how many were up to date."""
    wanted = {s.lower() for s in suffixes}
    jobs, skipped = [], 0
    for path in sorted(p for p in source.rglob("*") if p.is_file() and p.suffix.lower() in wanted):
        relative = path.relative_to(source)
        if not in_shard(relative, shard):
            continue
        out = (target / relative).with_suffix(new_suffix)
        if not force and out.exists() and out.stat().st_mtime >= path.stat().st_mtime:
            skipped += 1
            continue
        jobs.append(Job(path, out))
    return jobs, skipped


def init_worker() -> None:
    import torch

    torch.set_num_threads(1)  # one process per core beats threads inside small convolutions


def run(jobs: list[Job], work: Callable[[Job], dict[str, Any]], processes: int = 1,
        progress: Callable[[], None] | None = None, executor: Executor | None = None) -> Summary:
    """Apply `work` to every job (in `processes` worker processes when > 1, or on `executor`, e.g.
    a Dask cluster's: `storage.dask`); a failing file is recorded and the others carry on."""
    summary = Summary()

    def record(job: Job, fn: Callable[[], dict[str, Any]]) -> None:
        try:
            summary.done.append(fn())
        except Exception as err:  # noqa: BLE001 - one bad file must not stop a folder
            summary.failed[str(job.source)] = str(err) or type(err).__name__
        if progress:
            progress()

    for job in jobs:
        job.target.parent.mkdir(parents=True, exist_ok=True)
    if executor is None and (processes <= 1 or len(jobs) <= 1):
        for job in jobs:
            record(job, lambda job=job: work(job))
        return summary
    with nullcontext(executor) if executor else ProcessPoolExecutor(
            min(processes, len(jobs)), initializer=init_worker) as pool:
        futures = {pool.submit(work, job): job for job in jobs}
        for future in as_completed(futures):
            record(futures[future], future.result)
    return summary

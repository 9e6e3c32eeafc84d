"""Whole folders: mirror a tree of inputs into a tree of outputs, in parallel, resumably, sharded.

A folder job is a list of (source, target) pairs. Sharding hashes each file's path relative to
the folder, so N machines (a cluster array job, say) given the same folder and `--shard k/N`
split it without talking to each other, and every file lands in exactly one shard. A target that
is newer than its source and was written with the same settings (quality, model, size target,
strip, ...: a `Ledger` in the output folder records them per file) is skipped, so an interrupted
run resumes where it stopped and a run with other settings redoes the files.
Worker processes die with the parent (a killed run leaves none behind).
"""

from __future__ import annotations

import ctypes
import json
import multiprocessing
import os
import signal
import zlib
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MEMORY_PER_WORKER = 2 << 30  # bytes a worker may need: a 12-megapixel image's decode peaks near it
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


class Ledger:
    """The settings each output in a folder was written with: one JSON line per finished file,
    appended to `.nicodec-ledger` in the output folder (the last line for a file wins), so it
    survives a run that is killed half way."""

    NAME = ".nicodec-ledger"

    def __init__(self, root: Path, settings: dict[str, Any]) -> None:
        self.root, self.path = root, root / self.NAME
        self.settings = json.dumps(settings, sort_keys=True)
        self.written: dict[str, str] = {}
        if self.path.is_file():
            for line in self.path.read_text(errors="replace").splitlines():
                try:
                    entry = json.loads(line)
                    self.written[entry["file"]] = entry["settings"]
                except (ValueError, KeyError, TypeError):  # a line cut short by a kill
                    continue

    def current(self, target: Path) -> bool:
        """Whether the output `target` was written with this run's settings."""
        return self.written.get(target.relative_to(self.root).as_posix()) == self.settings

    def record(self, job: Job) -> None:
        entry = {"file": job.target.relative_to(self.root).as_posix(), "settings": self.settings}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as f:
            f.write(json.dumps(entry) + "\n")


def plan(source: Path, target: Path, suffixes: Iterable[str], new_suffix: str,
         shard: tuple[int, int] = (0, 1), force: bool = False,
         ledger: Ledger | None = None) -> tuple[list[Job], int]:
    """Jobs for every file under `source` with one of `suffixes` (case-insensitive), targets at
    the same relative path under `target` with `new_suffix`; and how many were up to date (newer
    than their source and, with a `ledger`, written with its settings)."""
    wanted = {s.lower() for s in suffixes}
    jobs, skipped = [], 0
    for path in sorted(p for p in source.rglob("*") if p.is_file() and p.suffix.lower() in wanted):
        relative = path.relative_to(source)
        if not in_shard(relative, shard):
            continue
        out = (target / relative).with_suffix(new_suffix)
        if (not force and out.exists() and out.stat().st_mtime >= path.stat().st_mtime
                and (ledger is None or ledger.current(out))):
            skipped += 1
            continue
        jobs.append(Job(path, out))
    return jobs, skipped


def worker_count(requested: int, jobs: int) -> int:
    """Worker processes for `jobs` files: as requested, but at most one per core and as many as
    the available memory holds (MEMORY_PER_WORKER each), and at least one."""
    try:
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):  # not on Linux: cores only
        available = requested * MEMORY_PER_WORKER
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(requested, jobs, cores, available // MEMORY_PER_WORKER))


_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def init_worker() -> None:
    """Set up a worker process: it dies with its parent, and runs one torch thread."""
    try:  # Linux: the kernel kills this worker when the parent dies, even by kill -9
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass
    parent = multiprocessing.parent_process()
    if parent is not None and os.getppid() != parent.pid:  # it died before the line above
        os._exit(1)
    import torch

    torch.set_num_threads(1)  # one process per core beats threads inside small convolutions


def run(jobs: list[Job], work: Callable[[Job], dict[str, Any]], processes: int = 1,
        progress: Callable[[], None] | None = None, done: Callable[[Job], None] | None = None,
        executor: Executor | None = None) -> Summary:
    """Apply `work` to every job (in up to `processes` worker processes, `worker_count`, or on
    `executor`, e.g. a Dask cluster's: `storage.dask`); a failing file is recorded and the others
    carry on; `done` is told of each file that succeeds."""
    summary = Summary()

    def record(job: Job, fn: Callable[[], dict[str, Any]]) -> None:
        try:
            summary.done.append(fn())
            if done:
                done(job)
        except Exception as err:  # noqa: BLE001 - one bad file must not stop a folder
            summary.failed[str(job.source)] = str(err) or type(err).__name__
        if progress:
            progress()

    for job in jobs:
        job.target.parent.mkdir(parents=True, exist_ok=True)
    if executor is None:
        processes = worker_count(processes, len(jobs))
        if processes == 1:
            for job in jobs:
                record(job, lambda job=job: work(job))
            return summary
    pool_of = nullcontext(executor) if executor else ProcessPoolExecutor(processes, initializer=init_worker)
    with pool_of as pool:
        futures = {pool.submit(work, job): job for job in jobs}
        for future in as_completed(futures):
            record(futures[future], future.result)
    return summary

"""Folder jobs on a Dask cluster (LocalCluster of 2 worker processes): the same files, skips and
per-file errors as a local run, and one model load per worker."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import pytest

from nicodec.cli.codec import _encode_job
from nicodec.storage import folder
from tests.cli.test_cli import run
from tests.storage.test_folder import PHOTOS, photos  # noqa: F401  (fixture)

pytest.importorskip("distributed", reason="the dask extra")


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.nic"))}


def test_dask_run_equals_the_local_run(photos, tmp_path):  # noqa: F811
    local, remote = tmp_path / "local", tmp_path / "dask"
    here = run("encode", str(photos), "-o", str(local), "-q", "40", "--json")
    there = run("encode", str(photos), "-o", str(remote), "-q", "40", "--json", "--dask", "local",
                "--jobs", "2")
    assert here.returncode == there.returncode == 1  # the broken file, named the same way
    assert there.stderr == here.stderr.replace(b"/local", b"/dask") and b"broken.png" in there.stderr
    assert _tree(remote) == _tree(local) and len(_tree(remote)) == len(PHOTOS)
    totals = json.loads(there.stdout)["totals"]
    assert totals == json.loads(here.stdout)["totals"] and totals["files"] == 4

    again = run("encode", str(photos), "-o", str(remote), "-q", "40", "--json", "--dask", "local")
    assert json.loads(again.stdout)["totals"]["up_to_date"] == 4  # resumes like a local run


def test_each_worker_loads_the_model_once(photos, tmp_path):  # noqa: F811
    from distributed import Client, LocalCluster

    from nicodec.storage.dask import executor

    jobs, _ = folder.plan(photos, tmp_path / "out", folder.IMAGE_SUFFIXES, ".nic")
    work = partial(_encode_job, quality=30, model=None, size=None, bpp=None, strip=False, effort=1,
                   psnr=None, backend="torch")
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster:
        address = cluster.scheduler_address
        with executor(address) as pool:
            summary = folder.run(jobs, work, executor=pool)
        with Client(address) as client:
            loads = client.run(_model_loads)
    assert len(summary.done) == 4 and list(summary.failed) == [str(photos / "trip" / "broken.png")]
    assert sorted(loads.values()) == [1, 1]  # both workers did files, each loaded the model once


def _model_loads() -> int:
    from nicodec.models.pretrained import loaded

    return loaded.cache_info().misses

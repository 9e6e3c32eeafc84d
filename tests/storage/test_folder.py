"""Folder mode: a tree in, the same tree out; shards split it; reruns resume; bad files are named."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nicodec.storage import folder
from tests.cli.test_cli import run
from tests.conftest import kodak_crop

PHOTOS = ("a.png", "trip/b.JPG", "trip/day2/c.png", "trip/day2/d.webp")


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """Four small Kodak crops in two folders, a broken PNG and a text file."""
    root = tmp_path_factory.mktemp("photos")
    (root / "trip" / "day2").mkdir(parents=True)
    for i, name in enumerate(PHOTOS):
        kodak_crop(i + 3, (0, 0, 96, 80)).save(root / name, quality=95)
    (root / "trip" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (root / "notes.txt").write_text("not an image")
    return root


def test_shards_partition_the_files(photos):
    files = {job.source for job in folder.plan(photos, Path("out"), folder.IMAGE_SUFFIXES, ".nic")[0]}
    assert len(files) == 5  # the text file is not an image
    shards = [{job.source for job in folder.plan(photos, Path("out"), folder.IMAGE_SUFFIXES, ".nic",
                                                 shard=(k, 3))[0]} for k in range(3)]
    assert set().union(*shards) == files and sum(map(len, shards)) == len(files)


@pytest.mark.parametrize("text", ["3/3", "1", "a/b", "-1/2"])
def test_bad_shard_is_refused(text):
    with pytest.raises(ValueError, match="shard"):
        folder.parse_shard(text)


def test_folder_round_trip_resumes_and_reports_bad_files(photos, tmp_path):
    archive, restored = tmp_path / "archive", tmp_path / "restored"
    enc = run("encode", str(photos), "-o", str(archive), "-q", "50", "--jobs", "2", "--json")
    assert enc.returncode == 1  # the broken file
    assert b"broken.png" in enc.stderr and len(enc.stderr.strip().splitlines()) == 1
    totals = json.loads(enc.stdout)["totals"]
    assert totals["files"] == 4 and totals["failed"] == 1
    nics = sorted(p.relative_to(archive).as_posix() for p in archive.rglob("*.nic"))
    assert nics == [str(Path(name).with_suffix(".nic")) for name in PHOTOS]
    assert totals["nic_bytes"] == sum(p.stat().st_size for p in archive.rglob("*.nic"))
    assert not list(archive.rglob("*.part"))

    again = run("encode", str(photos), "-o", str(archive), "-q", "50", "--json")
    assert json.loads(again.stdout)["totals"]["up_to_date"] == 4

    dec = run("decode", str(archive), "-o", str(restored))
    assert dec.returncode == 0, dec.stderr
    for name in PHOTOS:
        with Image.open(restored / Path(name).with_suffix(".png")) as a, Image.open(photos / name) as b:
            assert a.size == b.size
            diff = np.asarray(a, dtype=float) - np.asarray(b.convert("RGB"), dtype=float)
            assert 10 * np.log10(255**2 / np.mean(diff**2)) > 22


def test_folder_needs_an_output_folder(photos):
    res = run("encode", str(photos))
    assert res.returncode == 1 and b"-o OUTPUT_FOLDER" in res.stderr


def test_a_rerun_with_other_settings_redoes_the_files(photos, tmp_path):
    archive = tmp_path / "archive"
    for flags, redone in ((("-q", "50"), 4), (("-q", "50"), 0), (("-q", "60"), 4),
                          (("-q", "60", "--strip"), 4), (("-q", "60", "--strip"), 0),
                          (("-q", "60", "--strip", "--preview"), 4), (("--size", "900"), 4)):
        res = run("encode", str(photos), "-o", str(archive), *flags, "--json")
        totals = json.loads(res.stdout)["totals"]
        assert (totals["files"], totals["up_to_date"]) == (redone, 4 - redone), flags
    assert all(p.stat().st_size <= 900 for p in archive.rglob("*.nic"))


def test_jobs_are_capped_by_cores_and_memory():
    cores = len(os.sched_getaffinity(0))
    assert folder.worker_count(64, 1000) <= cores
    assert folder.worker_count(64, 3) <= 3 and folder.worker_count(1, 1000) == 1


def _children(pid: int) -> set[int]:
    found = set()
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            if f"PPid:\t{pid}\n" in status.read_text():
                found.add(int(status.parent.name))
        except OSError:  # the process ended meanwhile
            continue
    return found


def _alive(pid: int) -> bool:
    try:
        return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


def test_workers_die_with_the_parent(photos, tmp_path):
    """kill -9 of a folder run leaves no worker behind."""
    if folder.worker_count(2, 5) < 2:
        pytest.skip("one core: folder mode runs without worker processes")
    parent = subprocess.Popen([sys.executable, "-m", "nicodec", "encode", str(photos), "-o",
                               str(tmp_path / "archive"), "-e", "3", "--jobs", "2"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while len(workers := _children(parent.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(workers) >= 2, "the run started no workers"
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 30
    while any(map(_alive, workers)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [pid for pid in workers if _alive(pid)]

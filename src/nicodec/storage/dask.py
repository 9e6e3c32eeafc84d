"""Folder jobs on a Dask cluster (the `dask` extra): `nicodec encode DIR -o OUT --dask ADDRESS`.

Only where the files are processed changes: `folder.plan` decides what to do (the same skip/resume
rules and shards) and `folder.run` records results and per-file errors, as in a local run. Each
worker is a process with one thread (like `--jobs`), and loads the model once, on its first file
(`models.pretrained.load_model` is cached per process). The files must be at the same paths on
the workers, e.g. a shared file system.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from concurrent.futures import Executor
from contextlib import contextmanager

from nicodec.storage.folder import init_worker


def _init() -> None:
    init_worker()
    # a bad file is reported once, by folder mode on the client, not also with a worker's traceback
    logging.getLogger("distributed.worker").setLevel(logging.CRITICAL)


@contextmanager
def executor(address: str, workers: int = 1) -> Iterator[Executor]:
    """An Executor on the Dask scheduler at `address` (e.g. tcp://10.0.0.5:8786), or on a
    LocalCluster of `workers` single-threaded processes for address 'local'."""
    from distributed import Client, LocalCluster

    cluster = (LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                            dashboard_address=None) if address == "local" else None)
    try:
        with Client(cluster or address) as client:
            client.run(_init)
            yield client.get_executor(pure=False)  # every file is new work, never a cached result
    finally:
        if cluster is not None:
            cluster.close()

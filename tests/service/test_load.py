"""A light run of `benchmarks/load.py`: a real server on loopback serves concurrent small
requests while a large encode runs, refuses an oversized upload and stops on SIGTERM."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import REPO


def test_small_requests_all_succeed_while_a_large_encode_runs():
    res = subprocess.run([sys.executable, str(REPO / "benchmarks" / "load.py"), "--clients", "8",
                          "--requests", "3", "--large", "1536x1024", "--upload-mb", "80", "--json"],
                         capture_output=True, timeout=600,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert res.returncode == 0, res.stderr.decode()[-2000:]
    figures = json.loads(res.stdout)
    assert figures["failed"] == 0, figures["failures"]
    assert figures["small_requests"] == 24 and figures["large_status"] == 200
    assert figures["refused_upload_status"] == [413, 413]
    assert figures["server_exit_code"] is not None  # it stopped on SIGTERM

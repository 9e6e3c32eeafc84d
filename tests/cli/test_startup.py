"""The import rule (nicodec/__init__.py): commands that need no model never load torch or an extra.

Start-up *times* are measured by benchmarks/startup.py; this checks the cause of slow start-up.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import nicodec
from nicodec.cli.main import missing_extra
from tests.conftest import REPO, kodak_crop, optional_modules

V1_FILE = REPO / "tests" / "bitstream" / "data" / "v1_hyperprior_48x32.nic"
PROBE = """
import json, sys
from nicodec.cli.main import main
try:
    code = main(sys.argv[1:])
except SystemExit as done:
    code = done.code
heavy = sorted(m for m in {heavy!r} if m in sys.modules)
print(json.dumps({{"code": code, "heavy": heavy}}))
"""


@pytest.mark.parametrize("args, code", [(["--help"], 0), (["--version"], 0), (["encode", "--help"], 0),
                                        (["info", str(V1_FILE)], 0), (["encode"], 2),
                                        (["encode", "x.png", "-q", "500"], 2), (["info", "/no/such.nic"], 1)])
def test_commands_without_a_model_import_no_torch(args, code):
    heavy = optional_modules() | {"torch"}
    done = subprocess.run([sys.executable, "-c", PROBE.format(heavy=heavy), *args], capture_output=True,
                          text=True, timeout=60)
    result = json.loads(done.stdout.splitlines()[-1])
    assert result == {"code": code, "heavy": []}, done.stderr
    assert "Traceback" not in done.stderr


def test_version_names_the_package():
    done = subprocess.run([sys.executable, "-m", "nicodec", "--version"], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.split() == ["nicodec", nicodec.__version__]


def test_a_missing_optional_package_names_its_extra(monkeypatch):
    monkeypatch.setattr("importlib.metadata.requires", lambda name: [
        "torch<=2.13.0,>=2.4", 'pytorch-msssim>=1.0; extra == "eval"', 'fastapi>=0.110; extra == "service"'])
    assert missing_extra(ModuleNotFoundError("No module named 'pytorch_msssim'", name="pytorch_msssim")) == (
        "this needs the 'eval' extra (No module named 'pytorch_msssim'): pip install 'nicodec[eval]'")
    assert "nicodec[service]" in missing_extra(ModuleNotFoundError("x", name="fastapi.responses"))
    assert missing_extra(ModuleNotFoundError("No module named 'foo'", name="foo")) == "No module named 'foo'"


def test_a_thumbnail_from_a_preview_imports_no_torch(tmp_path):
    """`decode --reduce 8` of a file with a preview needs no model: no torch, milliseconds."""
    nic = tmp_path / "a.nic"
    nic.write_bytes(nicodec.compress(kodak_crop(23, (0, 0, 96, 64)), 75, preview=True))
    args = ["decode", str(nic), "-o", str(tmp_path / "thumb.png"), "--reduce", "8"]
    done = subprocess.run([sys.executable, "-c", PROBE.format(heavy={"torch"}), *args], capture_output=True,
                          text=True, timeout=60)
    assert json.loads(done.stdout.splitlines()[-1]) == {"code": 0, "heavy": []}, done.stderr
    assert (tmp_path / "thumb.png").is_file()

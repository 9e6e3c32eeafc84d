"""A core install (torch, numpy, constriction, safetensors, Pillow, tqdm; no extra) encodes and decodes.

Runs in a fresh interpreter in which every package of pyproject.toml's extras is unimportable, so
CI checks the slim install without building a second environment.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
from PIL import Image

from tests.conftest import BLOCK_OPTIONAL, kodak_crop, optional_modules

SCRIPT = BLOCK_OPTIONAL + """
import io
from PIL import Image
import nicodec, nicodec.plugins.pillow
from nicodec.cli.main import main
src, nic, png = sys.argv[1:4]
assert main(["encode", src, "-o", nic, "-q", "50"]) == 0
assert main(["decode", nic, "-o", png]) == 0
assert main(["decode", nic, "-o", png + ".x.png", "--reference", src]) == 1  # MS-SSIM: the eval extra
buf = io.BytesIO()
Image.open(src).save(buf, format="NIC", quality=50)
assert nicodec.decompress(buf.getvalue()).tobytes() == Image.open(png).tobytes()
"""


def test_core_install_encodes_and_decodes(tmp_path):
    src, nic, png = tmp_path / "crop.png", tmp_path / "crop.nic", tmp_path / "crop.decoded.png"
    kodak_crop(4, (300, 200, 428, 296)).save(src)
    done = subprocess.run([sys.executable, "-c", SCRIPT.format(blocked=optional_modules()), str(src),
                           str(nic), str(png)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "pytorch_msssim" in done.stderr and "Traceback" not in done.stderr
    original = np.asarray(Image.open(src), dtype=np.float64)
    decoded = np.asarray(Image.open(png), dtype=np.float64)
    psnr = 10 * np.log10(255**2 / np.mean((original - decoded) ** 2))
    assert decoded.shape == original.shape and psnr > 28
    assert nic.stat().st_size < 0.1 * original.size  # well under 2.4 bpp at quality 50

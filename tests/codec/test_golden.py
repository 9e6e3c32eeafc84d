"""Files written before the fast decoder (commit 94d39f4) decode with the same latents and pixels
within 1 of that decoder's."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from PIL import Image

from nicodec import decompress
from nicodec.bitstream import container
from nicodec.codec import latent
from nicodec.models.pretrained import load_model

DATA = Path(__file__).parent / "data"
GOLDEN = DATA / "golden_94d39f4_q75.nic"  # kodim23 crop (200, 100, 496, 300), quality 75
LATENT_SHA256 = "4c772e2aceab6e4e6037a3b2354ac705d6ff3a3c76cdf032bda4d484acb66d45"  # 94d39f4's y_hat * 256


def test_golden_file_decodes_to_the_same_latent_and_pixels():
    data = GOLDEN.read_bytes()
    header, sections = container.unpack(data)
    y_hat = latent.decode_latents(load_model(), {s.kind: s.data for s in sections}, 256, 320)
    assert hashlib.sha256((y_hat.double() * 256).long().numpy().tobytes()).hexdigest() == LATENT_SHA256
    decoded = np.asarray(decompress(data), dtype=int)
    before = np.asarray(Image.open(DATA / "golden_94d39f4_q75.decoded.png"), dtype=int)
    assert decoded.shape == before.shape == (200, 296, 3)
    assert np.abs(decoded - before).max() <= 1

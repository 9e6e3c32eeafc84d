"""Bit-exact decoding: the thread count never changes latents or pixels."""

from __future__ import annotations

import numpy as np

from nicodec import compress, decompress
from nicodec.bitstream import container
from nicodec.codec import latent
from nicodec.models.pretrained import load_model
from tests.conftest import with_threads


def _latents(data: bytes) -> np.ndarray:
    header, sections = container.unpack(data)
    m = load_model()
    ds = m.net.downsampling
    ph, pw = -(-header.height // ds) * ds, -(-header.width // ds) * ds
    return latent.decode_latents(m, {s.kind: s.data for s in sections}, ph, pw).numpy()


def test_encode_1_thread_decode_2_threads_and_reverse(crop):
    a = with_threads(1, compress, crop, 60)
    b = with_threads(2, compress, crop, 60)
    for data in (a, b):
        lat1, lat2 = with_threads(1, _latents, data), with_threads(2, _latents, data)
        assert np.array_equal(lat1, lat2)
        pix1 = np.asarray(with_threads(1, decompress, data))
        pix2 = np.asarray(with_threads(2, decompress, data))
        assert np.array_equal(pix1, pix2)

"""Bit-exact decoding: the thread count never changes latents or pixels, and concurrent calls
neither disturb each other nor the caller's thread setting."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from nicodec import compress, decompress
from nicodec.bitstream import container
from nicodec.codec import latent
from nicodec.models.pretrained import load_model
from tests.conftest import kodak_crop, with_threads


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


def test_pixels_do_not_depend_on_the_thread_count():
    """An image of several synthesis tiles, decoded with 1, 2 and 3 threads."""
    image = kodak_crop(5, (0, 0, 768, 512))
    data = compress(image, 50)
    pixels = [np.asarray(with_threads(n, decompress, data)) for n in (1, 2, 3)]
    assert np.array_equal(pixels[0], pixels[1]) and np.array_equal(pixels[0], pixels[2])


def test_concurrent_decompress_calls_agree_and_leave_the_thread_setting_alone(crop):
    data = [compress(crop, q) for q in (30, 80)]
    alone = [np.asarray(decompress(d)) for d in data]
    before = torch.get_num_threads()
    with ThreadPoolExecutor(2) as pool:
        together = list(pool.map(lambda d: np.asarray(decompress(d)), data * 2))
    assert torch.get_num_threads() == before
    for i, pixels in enumerate(together):
        assert np.array_equal(pixels, alone[i % 2])

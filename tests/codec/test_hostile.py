"""Hostile .nic files: every one is a one-line FormatError, refused before the expensive part."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save

from nicodec import decompress
from nicodec.bitstream.container import FormatError, unpack
from nicodec.codec import api, latent
from nicodec.models import pretrained
from tests.conftest import kodak_crop
from tests.hostile import crafted, seeds, with_header

# Files whose streams run out before the latent is decoded: the entropy decoder's own check
# (entropy/coder.py: a stream must hold the fewest bits its symbols can cost) rejects them.
STREAMS_RUN_OUT = ("header_bomb_2048", "header_bomb_8192", "empty_payloads")


@pytest.fixture(scope="module")
def seed() -> dict[str, bytes]:
    return seeds(kodak_crop(5, (0, 0, 64, 48)))


@pytest.fixture(scope="module")
def hostile(seed) -> dict[str, bytes]:
    return crafted(seed)


REFUSED = ("header_bomb_max", "padded_bomb_1xN", "padded_bomb_Nx1", "alpha_bomb", "alpha_wrong_size",
           "alpha_not_png", "alpha_missing", "duplicate_y", "tile_1", "huge_escapes", "many_escapes",
           "model_id_ansi", "model_id_newline", "model_id_unknown", "model_id_long", "quality_0",
           "quality_255", "lying_length")


@pytest.mark.parametrize("name", REFUSED + STREAMS_RUN_OUT)
def test_crafted_files_are_one_line_format_errors(hostile, name):
    with pytest.raises(FormatError) as err:
        decompress(hostile[name])
    message = str(err.value)
    assert message.isprintable() and len(message) < 300 and message.count("corrupt payload") <= 1


def test_every_crafted_file_is_named_here_or_left_to_the_entropy_decoder(hostile):
    assert set(hostile) == set(REFUSED) | set(STREAMS_RUN_OUT)


def test_the_pixel_limit_applies_to_the_padded_size(seed):
    rgb = seed["rgb"]  # 64x48, padded to 64x64 = 4096 pixels
    with pytest.raises(FormatError, match="padded to 64x64 = 4,096 pixels, over the limit of 4,095"):
        decompress(rgb, max_pixels=4095)
    assert decompress(rgb, max_pixels=4096).size == (64, 48)
    assert api.MAX_PIXELS == 89_478_485  # Pillow's MAX_IMAGE_PIXELS
    with pytest.raises(FormatError, match="padded to 64x2097152 = 134,217,728 pixels"):
        decompress(with_header(rgb, width=1, height=1 << 21))  # 2 Mpx claimed: under the limit


@pytest.mark.parametrize("name", ["header_bomb_2048", "header_bomb_8192"])
def test_a_stream_too_short_is_refused_before_the_networks_are_built(seed, hostile, name):
    """A header bomb costs the tables, not the model: the hyper-latent is decoded first."""
    model = pretrained.loaded.__wrapped__(unpack(seed["rgb"])[0].model_id.split("-")[0])  # not cached
    with pytest.raises(FormatError, match="stream ends before its symbols"):
        decompress(hostile[name], model=model)
    assert not model.built
    assert decompress(seed["rgb"], model=model).size == (64, 48) and model.built


def test_a_header_bomb_is_refused_by_the_caller_s_limit(hostile):
    with pytest.raises(FormatError, match="too large"):
        decompress(hostile["header_bomb_2048"], max_pixels=2048 * 2048 - 1)


def test_running_out_of_memory_says_so_and_other_decoder_errors_are_format_errors(seed, monkeypatch):
    def allocator_fails(*args, **kwargs):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate "
                           "memory: you tried to allocate 1 bytes")
    monkeypatch.setattr(latent, "decode_latents", allocator_fails)
    with pytest.raises(MemoryError, match="out of memory decoding a 64x48 image"):
        decompress(seed["rgb"])

    def crashes(*args, **kwargs):
        raise IndexError("index 7 is out of bounds\nfor axis 0 \x1b[2J")
    monkeypatch.setattr(latent, "decode_latents", crashes)
    one_line = r"^corrupt payload \(index 7 is out of bounds for axis 0 \\x1b\[2J\)$"
    with pytest.raises(FormatError, match=one_line):
        decompress(seed["rgb"])


def test_a_model_file_s_id_is_checked_before_its_network_is_built(seed, tmp_path):
    """The file's config asks for a network no machine could allocate; the id check comes first."""
    path = tmp_path / "huge.safetensors"
    path.write_bytes(save({"x": torch.zeros(1)}, metadata={"model": "hyperprior",
                                                           "config": json.dumps({"N": 10**9})}))
    written_by = unpack(seed["rgb"])[0].model_id
    with pytest.raises(FormatError, match=f"written by model {written_by}, not hyperprior-"):
        decompress(seed["rgb"], model=str(path))

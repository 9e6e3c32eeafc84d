"""Fuzzing `decompress` (hypothesis): mutated and crafted files decode or raise FormatError, never
anything else. Bounded for CI (3000 cases, about 25 s); `benchmarks/fuzz.py`
runs the same mutator for a long time and reports outcomes and the slowest case.

Decodes run with a 1-megapixel limit, so that a mutated header claiming a large image is
refused instead of decoded at length (bounding that work by the payload is the entropy
decoder's job, tested with it)."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import kodak_crop
from tests.hostile import crafted, mutate, outcome, seeds

LIMIT = 1 << 20

_SEEDS = seeds(kodak_crop(7, (100, 100, 164, 148)))
_CRAFTED = crafted(_SEEDS)
_FILES = [*_SEEDS.values(), *_CRAFTED.values()]


@settings(max_examples=3000, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(_FILES), st.integers(0, 2**32 - 1))
def test_mutated_files_decode_or_are_format_errors(original, seed):
    result = outcome(mutate(original, random.Random(seed)), LIMIT)
    assert result in ("decoded", "FormatError"), result


@pytest.mark.parametrize("name", sorted(_CRAFTED))
def test_crafted_files_decode_or_are_format_errors(name):
    assert outcome(_CRAFTED[name], LIMIT) in ("decoded", "FormatError")


def test_the_mutator_keeps_mutating_a_file_cut_down_to_its_magic():
    """Deletions can shrink a file to its magic; the mutator must still make a file of it."""
    from nicodec.bitstream.container import MAGIC

    tiny = MAGIC + b"\x00\x00\x00\x00\x00"
    for seed in range(300):
        assert outcome(mutate(tiny, random.Random(seed)), LIMIT) == "FormatError"

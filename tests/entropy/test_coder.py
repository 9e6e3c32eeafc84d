"""Grouped ANS coding with escapes round-trips exactly and costs what the tables say."""

from __future__ import annotations

import numpy as np
import pytest

from nicodec.bitstream.varint import read_varints, write_varints
from nicodec.entropy import coder
from nicodec.entropy.tables import TOTAL, gaussian_scales, gaussian_tables, quantize_pmf


@pytest.fixture(scope="module")
def tables():
    return coder.TableSet(*gaussian_tables(gaussian_scales()))


def test_quantized_tables_sum_to_total_and_keep_every_symbol():
    counts, lengths = gaussian_tables(gaussian_scales())
    for row, n in zip(counts, lengths, strict=True):
        assert row[:n].sum() == TOTAL and row[:n].min() >= 1 and n % 2 == 0
    assert quantize_pmf(np.array([0.0, 1.0, 0.0])).tolist()[0] == 1


def test_roundtrip_with_escapes(tables):
    rng = np.random.default_rng(1)
    n = 20000
    index = rng.integers(0, len(tables.models), n)
    scales = gaussian_scales()[index]
    symbols = np.round(rng.normal(0, scales)).astype(np.int64)
    symbols[::997] = rng.integers(-10**6, 10**6, len(symbols[::997]))  # force escapes
    words, escapes = coder.encode(symbols, index, tables)
    assert len(escapes) > 0
    assert np.array_equal(coder.decode(words, escapes, index, tables), symbols)


def test_coding_a_chunk_at_a_time_writes_the_same_stream(tables, monkeypatch):
    """Runs longer than a chunk (escapes included) give the bytes of one push per run."""
    rng = np.random.default_rng(3)
    index = rng.integers(0, 4, 5000)  # few tables: every run spans many chunks
    symbols = np.round(rng.normal(0, gaussian_scales()[index])).astype(np.int32)
    symbols[::101] = rng.integers(-10**6, 10**6, len(symbols[::101]))
    whole = coder.encode(symbols, index, tables)
    monkeypatch.setattr(coder, "CHUNK", 97)
    assert coder.encode(symbols, index, tables) == whole
    assert np.array_equal(coder.decode(*whole, index, tables), symbols)


def test_rate_matches_entropy(tables):
    rng = np.random.default_rng(2)
    index = np.full(50000, 30)
    s = gaussian_scales()[30]
    symbols = np.round(rng.normal(0, s, len(index))).astype(np.int64)
    words, _ = coder.encode(symbols, index, tables)
    counts = np.bincount(symbols - symbols.min())
    p = counts[counts > 0] / len(symbols)
    entropy_bits = -(counts[counts > 0] * np.log2(p)).sum()
    assert abs(8 * len(words) / entropy_bits - 1) < 0.02


def test_varints_roundtrip_and_reject_garbage():
    values = np.array([0, 1, -1, 63, -64, 2**40, -(2**40)], dtype=np.int64)
    assert np.array_equal(read_varints(write_varints(values), len(values)), values)
    with pytest.raises(ValueError):
        read_varints(b"\x80\x80", 1)
    with pytest.raises(ValueError):
        read_varints(write_varints(values) + b"\x00", len(values))


def test_a_stream_that_runs_out_is_refused_before_its_symbols_are_made_up():
    """A header may claim more symbols than the payload holds (a header bomb): decoding stops
    once the stream is exhausted while its remaining symbols would need more bits."""
    from nicodec.entropy.tables import gaussian_scales, gaussian_tables

    tables = coder.TableSet(*gaussian_tables(gaussian_scales()))
    rng = np.random.default_rng(0)
    index = rng.integers(0, 64, 500)
    symbols = rng.integers(-2, 3, 500)
    payload, esc = coder.encode(symbols, index, tables)
    assert np.array_equal(coder.decode(payload, esc, index, tables), symbols)
    bomb = np.repeat(index, 2000)  # the same stream, claimed to hold 2000 times the symbols
    with pytest.raises(ValueError, match="stream ends"):
        coder.decode(payload, esc, bomb, tables)


def test_grouping_block_by_block_is_a_stable_sort_by_table(monkeypatch):
    """The coding order: positions by table, in order within a table, whatever the block size."""
    index = np.random.default_rng(5).integers(0, 7, 10_001).astype(np.uint8)
    index[:3000] = 4  # a table whose run spans blocks
    for block in (1000, coder.GROUP_BLOCK):  # eleven blocks, then one
        monkeypatch.setattr(coder, "GROUP_BLOCK", block)
        order, starts = coder._groups(index, 9)  # two tables unused
        assert order.dtype == np.int32
        assert np.array_equal(order, np.argsort(index, kind="stable"))
        assert np.array_equal(starts, np.searchsorted(index[order], np.arange(10)))

"""Code integer symbols with per-symbol table indices through constriction's ANS coder.

Symbols that share a table are coded as one i.i.d. run (fast, one model construction per
table). Values outside a table's range are coded as its escape symbol, and the value itself goes
to a zigzag-varint side stream.
"""

from __future__ import annotations

import constriction
import numpy as np

from nicodec.bitstream.varint import read_varints, write_varints


class TableSet:
    """constriction models for a packed [K, L] table array (see `entropy.tables`)."""

    def __init__(self, counts: np.ndarray, lengths: np.ndarray) -> None:
        self.offsets = (lengths.astype(np.int64) - 2) // 2  # symbol 0 sits at column `offset`
        # the fewest bits any symbol of each table costs: what a stream must hold for its symbols
        self.min_bits = -np.log2(counts.max(axis=1) / counts.sum(axis=1))
        self.models = [
            constriction.stream.model.Categorical(counts[k, : lengths[k]].astype(np.float64),
                                                  perfect=False)
            for k in range(len(lengths))
        ]


GROUP_BLOCK = 1 << 20  # positions sorted at a time by `_groups`: bounds its int64 temporaries
CHUNK = 1 << 16  # symbols coded at a time (bounds temporaries; decoding checks the stream between)


def _groups(index: np.ndarray, n_tables: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions sorted by table, stably (int32 below 2**31), and where each table's run starts.

    Sorted a block at a time, each block's runs copied to its tables' places: a whole-array
    argsort would hold two int64 copies of the index (18 bytes a symbol, 160 MB of a 24-megapixel
    image's pass) where this holds the int32 result."""
    starts = np.zeros(n_tables + 1, np.int64)
    np.cumsum(np.bincount(index, minlength=n_tables), out=starts[1:])
    dtype = np.int32 if len(index) < 1 << 31 else np.int64
    if len(index) <= GROUP_BLOCK:  # one block: its sorted positions are the order
        return np.argsort(index, kind="stable").astype(dtype), starts
    order = np.empty(len(index), dtype)
    fill = starts[:-1].copy()  # where each table's next positions go
    for b in range(0, len(index), GROUP_BLOCK):
        part = index[b : b + GROUP_BLOCK]
        sorted_part = np.argsort(part, kind="stable").astype(dtype) + b
        counts = np.bincount(part, minlength=n_tables)
        ends = np.cumsum(counts)
        for k in np.flatnonzero(counts):
            order[fill[k] : fill[k] + counts[k]] = sorted_part[ends[k] - counts[k] : ends[k]]
            fill[k] += counts[k]
    return order, starts


def encode(symbols: np.ndarray, index: np.ndarray, tables: TableSet) -> tuple[bytes, bytes]:
    """(ANS payload, escape side stream) for flat int arrays `symbols` and `index`."""
    if np.any((index < 0) | (index >= len(tables.models))):
        raise ValueError("table index out of range")
    order, starts = _groups(index, len(tables.models))
    coder = constriction.stream.stack.AnsCoder()
    escapes = []  # last first, as pushed
    for k in reversed(range(len(tables.models))):  # ANS is a stack: push the last symbol first
        off, run, model = tables.offsets[k], order[starts[k] : starts[k + 1]], tables.models[k]
        for i in reversed(range(0, len(run), CHUNK)):  # a chunk at a time: bounded temporaries
            values = symbols[run[i : i + CHUNK]].astype(np.int64)
            outside = np.abs(values) > off
            escapes.append(values[outside])
            coder.encode_reverse(np.where(outside, 2 * off + 1, values + off).astype(np.int32), model)
    payload = coder.get_compressed().astype("<u4").tobytes()
    escaped = np.concatenate(escapes[::-1]) if escapes else np.zeros(0, np.int64)
    return payload, write_varints(escaped)


SLACK_BITS = 64  # rounding: bits a valid stream's symbols may cost beyond what the coder holds


def decode(payload: bytes, escape_stream: bytes, index: np.ndarray, tables: TableSet) -> np.ndarray:
    """Inverse of `encode`, given the same table index of every symbol: int32 symbols (int64 if
    an escape needs it)."""
    if len(payload) % 4:
        raise ValueError("corrupt payload: length is not a whole number of words")
    words = np.frombuffer(payload, dtype="<u4").astype(np.uint32)
    coder = constriction.stream.stack.AnsCoder(words)
    order, starts = _groups(index, len(tables.models))
    out = np.empty(len(index), dtype=np.int32)  # each run goes straight to its positions
    escape_runs = []
    needed = np.diff(starts) * tables.min_bits  # the fewest bits each table's run can cost
    after = np.cumsum(needed[::-1])[::-1] - needed  # ... and the runs after it, together
    for k, model in enumerate(tables.models):
        n = starts[k + 1] - starts[k]
        if not n:
            continue
        off = tables.offsets[k]
        for i in range(0, n, CHUNK):  # a header claiming more symbols than the stream holds
            if after[k] + (n - i) * tables.min_bits[k] > coder.num_valid_bits() + SLACK_BITS:
                raise ValueError("the stream ends before its symbols")
            where = order[starts[k] + i : starts[k] + min(i + CHUNK, n)]
            coded = coder.decode(model, len(where))
            out[where] = coded - off  # |symbol| <= offset: int32, only escapes may need more
            escape_runs.append(where[coded == 2 * off + 1])
    positions = np.concatenate(escape_runs) if escape_runs else np.zeros(0, np.int64)
    escaped = read_varints(escape_stream, len(positions))
    if len(escaped) and np.abs(escaped).max() > np.iinfo(np.int32).max:
        out = out.astype(np.int64)
    out[positions] = escaped
    return out

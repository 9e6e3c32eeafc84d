"""Trimming malloc's free memory (`codec.memory`): only once a large image's tiles have grown the process."""

from __future__ import annotations

import mmap

from nicodec.codec import memory


def test_a_bounded_release_trims_only_after_the_process_grew(monkeypatch):
    trims, resident = [], [500 << 20]
    monkeypatch.setattr(memory, "_TRIM", lambda pad: trims.append(pad))
    monkeypatch.setattr(memory, "_resident", lambda: resident[0])
    memory.release()  # unbounded: always
    assert len(trims) == 1
    resident[0] += memory.RETAINED // 2
    memory.release(memory.RETAINED)
    assert len(trims) == 1  # grown by less than RETAINED since that trim
    resident[0] += memory.RETAINED
    memory.release(memory.RETAINED)
    assert len(trims) == 2


def test_resident_size_is_read_and_grows_with_touched_memory():
    # A fresh anonymous mapping: malloc could hand out pages that earlier tests freed but that
    # are still resident, and then nothing would grow.
    block = mmap.mmap(-1, 64 << 20)
    before = memory._resident()
    block.write(b"\x01" * (64 << 20))  # 64 MB, every page touched
    assert memory._resident() >= before + (48 << 20)
    block.close()

"""Progress of long single-image work: tiles and entropy-model bands are counted on bars that
only a caller's `progress.shown(True)` draws."""

from __future__ import annotations

import pytest

from nicodec import compress, decompress, progress
from nicodec.codec import tiling
from nicodec.models import hyperprior
from tests.conftest import kodak_crop


@pytest.fixture
def drawn_at_once(monkeypatch) -> list:
    """Bars drawn from the start and the image cut into several tiles and bands, so that a small
    image shows what a large one would; the bars made, kept to read their counts."""
    monkeypatch.setattr(progress, "DELAY_SECONDS", 0)
    monkeypatch.setattr(tiling, "SYNTHESIS_TILE", 64)
    monkeypatch.setattr(tiling, "ANALYSIS_TILE", 4)
    monkeypatch.setattr(hyperprior, "BAND_POSITIONS", 8)
    made, real = [], progress.bar

    def kept(*args, **kwargs):
        made.append(real(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(progress, "bar", kept)
    return made


@pytest.mark.parametrize("model", ["checkerboard", "fast"])
def test_a_large_image_s_work_is_counted_when_shown(drawn_at_once, capsys, model):
    image = kodak_crop(3, (0, 0, 192, 128))
    with progress.shown(True):
        data = compress(image, 50, model=model)
        decompress(data)
    shown = capsys.readouterr().err
    for part in ("analysis", "synthesis", "entropy model, anchors", "entropy model, the rest"):
        assert part in shown, part
    assert "0/6" in shown  # 192x128 output in tiles of at most 64
    assert drawn_at_once and all(bar.n == bar.total for bar in drawn_at_once)  # every item counted


def test_nothing_is_drawn_unless_shown(drawn_at_once, capsys):
    decompress(compress(kodak_crop(3, (0, 0, 128, 64)), 50))
    assert capsys.readouterr().err == ""

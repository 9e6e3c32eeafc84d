"""`nicodec eval` end to end on two small Kodak crops (with cache), and `nicodec compare`."""

from __future__ import annotations

import csv
import json

import pytest
from PIL import Image

from nicodec.cli.main import main
from nicodec.eval import compare
from tests.conftest import SHARED, kodak_crop

OUTPUTS = ("eval.json", "points.csv", "report.md", "rd_psnr.png", "rd_ms_ssim.png")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, kodak_dir):
    folder = tmp_path_factory.mktemp("data")
    kodak_crop(23, (256, 128, 448, 320)).save(folder / "parrots.png")
    kodak_crop(1, (300, 200, 492, 392)).save(folder / "door.png")
    return folder


def _eval(dataset, tmp_path, out: str, *extra: str) -> dict:
    argv = ["eval", str(dataset), "--qualities", "20,75", "--codecs", "nicodec,jpeg-420,png",
            "--out", str(tmp_path / out), "--cache", str(tmp_path / "cache"),
            "--anchors", str(SHARED / "anchors" / "kodak"), "--quiet", *extra]
    assert main(argv) == 0
    return json.loads((tmp_path / out / "eval.json").read_text())


def test_eval_writes_every_output_and_reuses_the_cache(dataset, tmp_path):
    first = _eval(dataset, tmp_path, "first")
    n_points = 2 * (2 + 12 + 1)  # images x (nicodec qualities + JPEG sweep + PNG)
    assert first["meta"]["computed"] == n_points and first["meta"]["cached"] == 0
    for name in OUTPUTS:
        assert (tmp_path / "first" / name).stat().st_size > 0
    with (tmp_path / "first" / "points.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == n_points
    png = [r for r in first["points"] if r["codec"] == "png"]
    assert all(p["psnr"] is None and p["ms_ssim"] == 1.0 for p in png)  # lossless: inf -> null
    point = first["points"][0]
    assert point["ratio_raw_to_compressed"] == pytest.approx(192 * 192 * 3 / point["bytes"])
    anchors = {r["anchor"] for r in first["bd_rate"]}
    assert {"jpeg-420", "vtm", "jpeg"} <= anchors and "png" not in anchors
    assert first["goal"]["anchor"] == "vtm"
    report = (tmp_path / "first" / "report.md").read_text()
    assert "Goal metric" in report and "libjpeg-turbo" in report

    second = _eval(dataset, tmp_path, "second")
    assert second["meta"]["computed"] == 0 and second["meta"]["cached"] == n_points
    assert second["points"] == first["points"]


def test_another_model_is_a_rival_curve_from_the_same_cache(dataset, tmp_path):
    """`--model fast --codecs nicodec,nicodec:checkerboard`: the BD-rate of one model against the
    other, the rival's points read from the cache its own evaluation filled."""
    _eval(dataset, tmp_path, "shipped", "--codecs", "nicodec", "--model", "checkerboard")
    both = _eval(dataset, tmp_path, "both", "--codecs", "nicodec,nicodec:checkerboard", "--model", "fast")
    assert both["meta"]["computed"] == 2 * 2 and both["meta"]["cached"] == 2 * 2  # fast's points are new
    rival = [r for r in both["bd_rate"] if r["anchor"] == "nicodec:checkerboard"]
    assert len(rival) == 1 and rival[0]["bd_rate_psnr"] is not None
    assert "nicodec checkerboard" in (tmp_path / "both" / "report.md").read_text()
    assert main(["eval", str(dataset), "--codecs", "nicodecx", "--out", str(tmp_path)]) == 1
    assert main(["eval", str(dataset), "--codecs", "nicodec:nope", "--out", str(tmp_path)]) == 1


def test_shards_split_the_images_and_fill_one_cache(dataset, tmp_path, capsys):
    shards = [_eval(dataset, tmp_path, f"shard{k}", "--shard", f"{k}/2", "--codecs", "png") for k in (0, 1)]
    assert [{p["image"] for p in s["points"]} for s in shards] == [{"parrots.png"}, {"door.png"}]
    whole = _eval(dataset, tmp_path, "whole", "--codecs", "png")
    assert whole["meta"]["images"] == 2 and whole["meta"]["computed"] == 0
    assert main(["eval", str(dataset), "--shard", "1/3", "--out", str(tmp_path / "empty")]) == 1
    assert "no images" in capsys.readouterr().err  # crc32 puts neither image in shard 1 of 3


def test_compare_writes_a_row_of_labelled_crops(dataset, tmp_path):
    out = tmp_path / "cmp.png"
    argv = ["compare", str(dataset / "parrots.png"), "-q", "50", "-o", str(out), "--crop", "10,20,100,80"]
    assert main(argv) == 0
    with Image.open(out) as im:
        n = 2 + len(compare.COMPARED)
        assert im.size == (n * 100 + (n - 1) * compare.GAP, 80 + compare.LABEL_HEIGHT)


def test_bad_arguments_are_one_line_errors(dataset, tmp_path, capsys):
    assert main(["eval", str(dataset), "--codecs", "jpeg,nope", "--out", str(tmp_path)]) == 1
    assert "unknown codec" in capsys.readouterr().err
    assert main(["compare", str(dataset / "door.png"), "-o", str(tmp_path / "x.png"),
                 "--crop", "0,0,500,10"]) == 1
    assert "not inside" in capsys.readouterr().err

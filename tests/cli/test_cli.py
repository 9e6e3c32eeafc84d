"""The command line: exit codes, stdin/stdout, JSON, one-line errors, no half-written files."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nicodec import compress
from nicodec import info as nic_info
from nicodec.models.pretrained import load_model
from tests.conftest import EXIF_MAKE, EXIF_ORIENTATION, REPO, kodak_crop

SAMPLE = REPO / "src" / "nicodec" / "assets" / "sample.png"


def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nicodec", *args], input=stdin,
                          capture_output=True, timeout=120)


def test_encode_decode_info_json(small_png, tmp_path):
    nic, png = tmp_path / "a.nic", tmp_path / "a.png"
    enc = run("encode", str(small_png), "-o", str(nic), "-q", "60", "--json")
    assert enc.returncode == 0, enc.stderr
    stats = json.loads(enc.stdout)
    assert stats["nic_bytes"] == nic.stat().st_size and stats["width"] == 129
    dec = run("decode", str(nic), "-o", str(png), "--reference", str(small_png), "--json")
    assert dec.returncode == 0, dec.stderr
    assert json.loads(dec.stdout)["psnr"] > 20
    assert Image.open(png).size == (129, 100)
    info = run("info", str(nic), "--json")
    meta = json.loads(info.stdout)
    assert meta["quality"] == 60 and meta["model_id"] == load_model().model_id  # the default model


def test_target_bpp_picks_a_quality_under_it(small_png, tmp_path):
    res = run("encode", str(small_png), "-o", str(tmp_path / "a.nic"), "--bpp", "1.0", "--json")
    assert res.returncode == 0, res.stderr
    stats = json.loads(res.stdout)
    assert stats["bpp"] <= 1.0 and 1 <= stats["quality"] <= 100
    assert run("encode", str(small_png), "--bpp", "1", "--size", "900").returncode == 2


def test_stdin_stdout_pipeline(small_png):
    enc = run("encode", "-", "-o", "-", stdin=small_png.read_bytes())
    assert enc.returncode == 0 and enc.stdout.startswith(b"\x89NIC")
    dec = run("decode", "-", "-o", "-", stdin=enc.stdout)
    assert dec.returncode == 0 and dec.stdout.startswith(b"\x89PNG")


@pytest.mark.parametrize("args,code,message", [
    (("decode", "{sample}", "-o", "{out}"), 1, "bad magic"),
    (("encode", "{missing}", "-o", "{out}"), 1, "no such file"),
    (("encode", "{garbage}", "-o", "{out}"), 1, "cannot read image"),
    (("decode", "{truncated}", "-o", "{out}"), 1, "truncated"),
    (("encode", "{sample}", "-o", "{out}", "-q", "0"), 2, "quality"),
    (("encode", "{sample}", "--bogus"), 2, "unrecognized"),
    (("encode", "{sample}", "-o", "{out}", "--effort", "4"), 2, "effort"),
    (("decode", "{nic}", "-o", "{out_bad_ext}"), 1, "extension"),
])
def test_errors_are_one_line_and_leave_no_output(small_png, small_nic, tmp_path, args, code, message):
    nic = tmp_path / "ok.nic"
    nic.write_bytes(small_nic)
    (tmp_path / "garbage.png").write_bytes(b"definitely not an image")
    (tmp_path / "trunc.nic").write_bytes(nic.read_bytes()[:50])
    names = {"sample": str(small_png), "missing": str(tmp_path / "nope.png"),
             "garbage": str(tmp_path / "garbage.png"), "truncated": str(tmp_path / "trunc.nic"),
             "out": str(tmp_path / "out.bin"), "nic": str(nic),
             "out_bad_ext": str(tmp_path / "out.notaformat")}
    res = run(*(a.format(**names) for a in args))
    err = res.stderr.decode().strip()
    assert res.returncode == code, err
    assert message in err.lower()
    if code == 1:
        assert len(err.splitlines()) == 1 and "Traceback" not in err
    leftovers = {p.name for p in tmp_path.iterdir()} - {"ok.nic", "garbage.png", "trunc.nic"}
    assert not leftovers, leftovers


def _metadata_kinds(nic: Path) -> set[str]:
    return {s["kind"] for s in nic_info(nic.read_bytes())["sections"]} & {"icc", "exif", "xmp"}


def test_metadata_is_kept_on_decode_and_dropped_by_strip(tagged, tmp_path):
    photos, archive = tmp_path / "photos", tmp_path / "archive"
    photos.mkdir()
    (photos / "phone.jpg").write_bytes(tagged)
    icc = Image.open(io.BytesIO(tagged)).info["icc_profile"]
    kept, bare, png = tmp_path / "kept.nic", tmp_path / "bare.nic", tmp_path / "kept.png"
    for src, out, *flags in ((photos / "phone.jpg", kept), (photos / "phone.jpg", bare, "--strip"),
                             (photos, archive, "--strip")):  # single file and folder mode
        res = run("encode", str(src), "-o", str(out), "-q", "50", *flags)
        assert res.returncode == 0, res.stderr
    assert _metadata_kinds(kept) == {"icc", "exif", "xmp"}
    assert _metadata_kinds(bare) == _metadata_kinds(archive / "phone.nic") == set()
    assert bare.stat().st_size + len(icc) < kept.stat().st_size
    res = run("decode", str(kept), "-o", str(png))
    assert res.returncode == 0, res.stderr
    with Image.open(png) as im:
        assert im.info["icc_profile"] == icc and im.size == (128, 192)
        assert im.getexif()[EXIF_MAKE] == "nicodec" and EXIF_ORIENTATION not in im.getexif()


def test_damaged_metadata_is_a_one_line_error(tagged, tmp_path):
    nic = bytearray(compress(Image.open(io.BytesIO(tagged)), quality=50))
    nic[nic.index(Image.open(io.BytesIO(tagged)).info["icc_profile"][:64]) + 40] ^= 0x01
    (tmp_path / "bad.nic").write_bytes(nic)
    res = run("decode", str(tmp_path / "bad.nic"), "-o", str(tmp_path / "bad.png"))
    err = res.stderr.decode().strip()
    assert res.returncode == 1 and "checksum" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "bad.png").exists()


def test_dropped_frames_and_bit_depth_are_said(tmp_path):
    """An animation keeps its first frame and 16-bit input is rounded: both on stderr and in --json."""
    frames = [kodak_crop(i, (200, 200, 264, 248)) for i in (1, 2, 3)]
    gif = tmp_path / "anim.gif"
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=100)
    res = run("encode", str(gif), "-o", str(tmp_path / "anim.nic"), "--json")
    assert res.returncode == 0 and b"warning: " in res.stderr and b"first of its 3 frames" in res.stderr
    assert json.loads(res.stdout)["warnings"] == ["animated image: only the first of its 3 frames is coded"]

    deep = tmp_path / "deep.png"
    gray = np.asarray(frames[0].convert("L"), dtype=np.uint16) * 257
    Image.fromarray(gray).save(deep)  # an I;16 PNG, 64x48
    res = run("encode", str(deep), "-o", str(tmp_path / "deep.nic"), "--json")
    stats = json.loads(res.stdout)
    assert stats["warnings"] == ["16-bit input rounded to 8 bits"] and b"16-bit" in res.stderr
    assert stats["raw_bytes"] == 64 * 48 * 2 and stats["ratio"] == 6144 / stats["nic_bytes"]

    plain = run("encode", str(SAMPLE), "-o", str(tmp_path / "plain.nic"), "-q", "20", "--json")
    assert "warnings" not in json.loads(plain.stdout) and b"warning" not in plain.stderr


def test_target_psnr_is_reached(small_png, tmp_path):
    out = tmp_path / "a.nic"
    res = run("encode", str(small_png), "-o", str(out), "--psnr", "30", "--json")
    assert res.returncode == 0, res.stderr
    assert res.stderr == b""  # piped: no progress bar, no expected time
    dec = run("decode", str(out), "-o", str(tmp_path / "a.png"), "--reference", str(small_png), "--json")
    assert json.loads(dec.stdout)["psnr"] >= 30
    assert run("encode", str(small_png), "--psnr", "30", "--size", "900").returncode == 2
    bad = run("encode", str(small_png), "-o", str(out), "-f", "--psnr", "90")
    assert bad.returncode == 1 and bad.stderr.startswith(b"nicodec: error: cannot reach 90 dB")


def test_effort_help_matches_the_iterations_run():
    from nicodec.codec.refine import EFFORT_ITERATIONS

    text = " ".join(run("encode", "--help").stdout.decode().split())
    assert f"({EFFORT_ITERATIONS[2]} / {EFFORT_ITERATIONS[3]} iterations" in text


def test_progress_is_drawn_on_a_terminal(small_png, tmp_path):
    """Rate control's probes show a bar when stderr is a terminal (the pipe case is above)."""
    import fcntl
    import os
    import pty
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))  # a new pty is 0x0
    done = subprocess.run([sys.executable, "-m", "nicodec", "encode", str(small_png), "-o",
                           str(tmp_path / "a.nic"), "--size", "2000"], stderr=follower,
                          capture_output=False, stdout=subprocess.DEVNULL, timeout=120)
    os.close(follower)
    shown = b""
    while chunk := _read_all(leader):
        shown += chunk
    assert done.returncode == 0 and b"rate control" in shown and b"encode" in shown


def _read_all(fd: int) -> bytes:
    import os

    try:
        return os.read(fd, 65536)
    except OSError:  # the terminal's other end is closed
        return b""


def test_slow_encodes_state_their_expected_time(monkeypatch, small_nic, tmp_path, capsys):
    from nicodec.cli.codec import encode_file

    monkeypatch.setattr("nicodec.codec.api.compress", lambda *args, **kwargs: small_nic)  # no wait
    encode_file(str(SAMPLE), str(tmp_path / "a.nic"), 75, None, effort=3, announce=True)
    assert capsys.readouterr().err == "nicodec: encoding 384x256 at effort 3: expect about 87 s\n"
    encode_file(str(SAMPLE), str(tmp_path / "a.nic"), 75, None, effort=1, announce=True)
    assert capsys.readouterr().err == ""  # a second or so: nothing to announce

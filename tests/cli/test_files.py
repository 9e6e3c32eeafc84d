"""Hostile paths: the CLI never destroys a file it was not asked to replace, writes through
devices, FIFOs and links, cleans up after a killed run and reads with a bound."""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import sys
import threading

import numpy as np
import pytest
import torch
from PIL import Image

from nicodec.bitstream.container import pack, unpack
from nicodec.cli import io as cli_io
from tests.cli.test_cli import run


def _one_line_error(res: subprocess.CompletedProcess, code: int = 1) -> str:
    err = res.stderr.decode().strip()
    assert res.returncode == code, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    return err


def test_default_output_names_never_replace_a_file(small_png, tmp_path):
    photo = tmp_path / "photo.png"
    photo.write_bytes(small_png.read_bytes())
    assert run("encode", str(photo)).returncode == 0
    assert (tmp_path / "photo.nic").is_file()
    err = _one_line_error(run("decode", str(tmp_path / "photo.nic")))  # would replace the original
    assert "photo.png exists" in err and photo.read_bytes() == small_png.read_bytes()
    err = _one_line_error(run("encode", str(photo), "-f"))  # the default name, even with --force
    assert "photo.nic exists" in err


def test_an_output_that_is_the_input_is_refused_even_with_force(small_png, tmp_path):
    photo = tmp_path / "x.png"
    photo.write_bytes(small_png.read_bytes())
    for out in (str(photo), f"{tmp_path}/./x.png"):
        err = _one_line_error(run("encode", str(photo), "-o", out, "-f"))
        assert "is the input" in err
    assert photo.read_bytes() == small_png.read_bytes()


def test_an_existing_output_is_replaced_only_with_force(small_png, tmp_path):
    out = tmp_path / "a.nic"
    out.write_bytes(b"keep me")
    assert "-f/--force" in _one_line_error(run("encode", str(small_png), "-o", str(out)))
    assert out.read_bytes() == b"keep me"
    assert run("encode", str(small_png), "-o", str(out), "--force").returncode == 0
    assert out.read_bytes().startswith(b"\x89NIC")


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_outputs_get_the_umask_s_mode(small_png, tmp_path, umask, mode):
    out = tmp_path / "a.nic"
    res = subprocess.run([sys.executable, "-m", "nicodec", "encode", str(small_png), "-o", str(out)],
                         preexec_fn=lambda: os.umask(umask), capture_output=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert stat.S_IMODE(out.stat().st_mode) == mode


def test_devices_fifos_and_links_are_written_through(small_png, tmp_path):
    assert run("encode", str(small_png), "-o", "/dev/null").returncode == 0
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)

    fifo = tmp_path / "pipe.nic"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    assert run("encode", str(small_png), "-o", str(fifo)).returncode == 0
    reader.join(60)
    assert received[0].startswith(b"\x89NIC") and stat.S_ISFIFO(fifo.lstat().st_mode)

    real, link = tmp_path / "real.nic", tmp_path / "link.nic"
    real.write_bytes(b"old")
    link.symlink_to(real)
    assert run("encode", str(small_png), "-o", str(link), "-f").returncode == 0
    assert link.is_symlink() and real.read_bytes().startswith(b"\x89NIC")

    via_substitution = subprocess.run(["bash", "-c", f'"{sys.executable}" -m nicodec info --json '
                                       f'<(cat "{real}")'], capture_output=True, timeout=120)
    assert via_substitution.returncode == 0 and b'"quality"' in via_substitution.stdout


def test_a_killed_run_s_temporary_is_cleaned_up_and_long_names_work(small_png, tmp_path):
    name = "n" * 251 + ".nic"  # 255 bytes, the most a name can have
    stale = tmp_path / f".{name[:200]}.k1ll3d00.part"
    stale.write_bytes(b"half a file")
    assert run("encode", str(small_png), "-o", str(tmp_path / name)).returncode == 0, name
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_errors_name_the_output_not_its_temporary(small_png, tmp_path):
    out = tmp_path / "no-such-folder" / "a.nic"
    err = _one_line_error(run("encode", str(small_png), "-o", str(out)))
    assert f"cannot write {out}: No such file or directory" in err and ".part" not in err


def test_inputs_are_read_with_a_bound(monkeypatch):
    monkeypatch.setattr(cli_io, "MAX_INPUT", 1 << 20)
    with pytest.raises(ValueError, match="/dev/zero: input over 1 MiB"):
        cli_io.read_input("/dev/zero")


@pytest.mark.parametrize("args", [("--bpp", "nan"), ("--bpp", "inf"), ("--shard", "3/2"), ("--jobs", "-3"),
                                  ("--jobs", "0")])
def test_bad_numbers_are_usage_errors(small_png, tmp_path, args):
    res = run("encode", str(small_png), "-o", str(tmp_path / "a.nic"), *args)
    assert res.returncode == 2 and b"usage" in res.stderr
    assert not (tmp_path / "a.nic").exists()


class _RunsACommand:
    def __reduce__(self) -> tuple:
        return os.system, ("true",)


def test_export_of_a_refused_pickle_is_one_line(tmp_path):
    evil = tmp_path / "evil.pt"
    torch.save({"model": _RunsACommand()}, evil)
    err = _one_line_error(run("export", str(evil), "-o", str(tmp_path / "m.safetensors")))
    assert "refused" in err


def test_decode_takes_a_pixel_limit(small_nic, tmp_path):
    nic = tmp_path / "a.nic"
    nic.write_bytes(small_nic)  # 129x100, padded to 192x128 = 24,576 pixels
    err = _one_line_error(run("decode", str(nic), "-o", str(tmp_path / "a.png"), "--max-pixels", "24575"))
    assert "over the limit of 24,575" in err and not (tmp_path / "a.png").exists()
    assert run("decode", str(nic), "-o", str(tmp_path / "a.png"), "--max-pixels", "24576").returncode == 0


def test_info_of_a_hostile_model_id_is_one_escaped_line(small_nic, tmp_path):
    header, sections = unpack(small_nic)
    header.model_id = "checkerboard-\x1b]0;pwned\x07\nFAKE"
    (tmp_path / "evil.nic").write_bytes(pack(header, sections))
    err = _one_line_error(run("info", str(tmp_path / "evil.nic")))
    assert "\x1b" not in err and "\\x1b]0;pwned\\x07\\nFAKE" in err


def test_decode_reduce_writes_a_thumbnail_close_to_the_full_decode(small_nic, tmp_path):
    nic, full, small = tmp_path / "a.nic", tmp_path / "full.png", tmp_path / "small.png"
    nic.write_bytes(small_nic)  # 129x100
    assert run("decode", str(nic), "-o", str(full)).returncode == 0
    res = run("decode", str(nic), "-o", str(small), "--reduce", "2", "--json")
    assert res.returncode == 0, res.stderr
    stats = json.loads(res.stdout)
    assert (stats["width"], stats["height"], stats["reduce"]) == (65, 50, 2)
    assert stats["bpp"] == pytest.approx(8 * len(small_nic) / (129 * 100))  # of the coded size
    box = np.asarray(Image.open(full).reduce(2), dtype=float)
    assert 10 * np.log10(255**2 / np.mean((np.asarray(Image.open(small), dtype=float) - box) ** 2)) > 25
    assert run("decode", str(nic), "--reduce", "3").returncode == 2
    err = _one_line_error(run("decode", str(nic), "-o", str(tmp_path / "r.png"), "--reduce", "2",
                              "--reference", str(full)))
    assert "--reference" in err and not (tmp_path / "r.png").exists()


def test_encode_preview_then_decode_reduce_8_reads_it(small_png, tmp_path):
    nic, thumb = tmp_path / "a.nic", tmp_path / "thumb.png"
    assert run("encode", str(small_png), "-o", str(nic), "--preview").returncode == 0
    kinds = [s["kind"] for s in json.loads(run("info", str(nic), "--json").stdout)["sections"]]
    assert kinds[-1] == "preview"
    res = run("decode", str(nic), "-o", str(thumb), "--reduce", "8", "--json")
    assert res.returncode == 0, res.stderr
    preview = Image.open(io.BytesIO(unpack(nic.read_bytes())[1][-1].data))
    assert np.array_equal(np.asarray(Image.open(thumb)), np.asarray(preview.convert("RGB")))

"""Inference backends (`codec.backend`): torch is the codec's own path, ONNX Runtime changes pixels
by at most a value and never the decoded latent, cuda without a GPU fails in one line."""

from __future__ import annotations

import subprocess
import sys
from functools import partial

import numpy as np
import pytest
import torch
from PIL import Image

from nicodec import compress, decompress
from nicodec.bitstream import container
from nicodec.cli.main import main
from nicodec.codec import api, backend, latent, tiling
from nicodec.models import subspace
from nicodec.models.pretrained import load_model
from nicodec.models.stages import run_window
from tests.conftest import BLOCK_OPTIONAL, optional_modules


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return 10 * np.log10(255**2 / np.mean((a.astype(np.float64) - b) ** 2))


@pytest.fixture(scope="module")
def onnx_backend(tmp_path_factory):
    """The process's onnx backend, with the shipped model's graphs built once into a temporary
    cache folder (the export takes about 10 s)."""
    pytest.importorskip("onnxruntime")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
        engine = backend.named("onnx")
        engine.prepare(load_model())
        yield engine


def _sections(model, rgb: np.ndarray, quality: int) -> dict:
    return {s.kind: s.data for s in latent.encode(model, rgb, quality)}


def test_torch_backend_is_the_stage_chain(crop_array):
    """The default backend runs exactly the transforms' stage chains tile by tile, as the codec did
    before backends existed (the analysis with its subspace shortcut): identical latents and
    pixels, by name or by object."""
    model = load_model()
    level = latent.quality_level(model, 60)
    source, size = tiling.image_source(crop_array, model.net.downsampling)
    grid = (size[0] // 16, size[1] // 16)
    stages = model.net.analysis_stages(level, subspace.bases(model.net, level))
    before = tiling.run_tiles(partial(run_window, stages, source, size), grid, tiling.ANALYSIS_TILE)
    y = latent.analyse(model, crop_array, 60)
    assert torch.equal(y, before) and torch.equal(latent.analyse(model, crop_array, 60, backend="torch"), y)

    sections = _sections(model, crop_array, 60)
    y_hat = latent.decode_latents(model, sections, *size).contiguous(memory_format=torch.channels_last)
    stages = model.net.synthesis_stages(level)
    before = tiling.run_tiles(partial(run_window, stages, tiling.tensor_source(y_hat), grid),
                              crop_array.shape[:2], tiling.SYNTHESIS_TILE, to_pixels=True)
    for engine in ("torch", backend.Torch("cpu")):
        decoded = latent.decode(model, sections, *crop_array.shape[:2], 60, backend=engine)
        assert np.array_equal(decoded, before)


class Recording:
    """A backend that passes everything to another and keeps the latent it is asked to synthesize."""

    def __init__(self, inner: backend.Backend) -> None:
        self.inner, self.latents = inner, []

    def prepare(self, model) -> None:
        self.inner.prepare(model)

    def analysis(self, model, t, source, sizes):
        raise AssertionError("a decoder never runs the analysis")

    def synthesis(self, model, t, source, sizes, reduce=1):
        self.latents.append(source(((0, sizes[0]), (0, sizes[1]))).clone())
        return self.inner.synthesis(model, t, source, sizes, reduce=reduce)


@pytest.mark.parametrize("name", ["torch", "onnx"])
def test_a_backend_only_synthesizes_the_exact_latent(request, crop, crop_array, name):
    """The entropy decoding never goes through a backend: each is handed the same latent, the one
    the integer networks decode (`decode_latents`)."""
    if name == "onnx":
        request.getfixturevalue("onnx_backend")
    model, data = load_model(), compress(crop, quality=40)
    spy = Recording(backend.named(name))
    decompress(data, backend=spy)
    header, sections = container.unpack(data)
    ds = model.net.downsampling
    padded = (-(-header.height // ds) * ds, -(-header.width // ds) * ds)
    (given,) = spy.latents
    assert torch.equal(given, latent.decode_latents(model, {s.kind: s.data for s in sections}, *padded))


@pytest.mark.parametrize("tile", [tiling.SYNTHESIS_TILE, 48])
@pytest.mark.parametrize("quality", [10, 75])
def test_onnx_pixels_are_within_one_of_torch(onnx_backend, crop_array, monkeypatch, tile, quality):
    """ONNX Runtime's synthesis, in whole tiles and in tiles of 48 pixels (3 latent positions, so
    each is cropped from a margin on every side), is within one value of torch's: measured on
    Kodak crops and whole images at qualities 10-95, max 1 at a few pixels in 100,000."""
    monkeypatch.setattr(tiling, "SYNTHESIS_TILE", tile)
    model = load_model()
    sections = _sections(model, crop_array, quality)
    size = crop_array.shape[:2]
    ours = latent.decode(model, sections, *size, quality).astype(int)
    theirs = latent.decode(model, sections, *size, quality, backend=onnx_backend).astype(int)
    diff = np.abs(ours - theirs)
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3


def test_onnx_decodes_small_on_torch(onnx_backend, crop):
    """Its graphs are whole transforms: a reduced decode runs torch's stopped synthesis."""
    data = compress(crop, quality=50)
    assert np.array_equal(np.asarray(decompress(data, backend=onnx_backend, reduce=4)),
                          np.asarray(decompress(data, reduce=4)))


def test_onnx_analysis_writes_a_file_that_decodes(onnx_backend, crop, crop_array, monkeypatch):
    """An encoder on ONNX Runtime (here in tiles of 4 latent positions, margins on every side) may
    round a symbol differently, but writes a file of the same size and quality that decodes."""
    monkeypatch.setattr(tiling, "ANALYSIS_TILE", 4)
    ours, theirs = compress(crop, quality=60), compress(crop, quality=60, backend=onnx_backend)
    assert abs(len(theirs) - len(ours)) <= 0.01 * len(ours)
    assert abs(_psnr(crop_array, np.asarray(decompress(theirs))) -
               _psnr(crop_array, np.asarray(decompress(ours)))) < 0.05


def test_onnx_graphs_are_built_once_per_model(onnx_backend, monkeypatch):
    """A new process (here a new backend) finds the graphs in the cache folder instead of exporting."""
    monkeypatch.setattr("nicodec.deploy.onnx.export", lambda *_: pytest.fail("exported again"))
    backend.Onnx().prepare(load_model())


def test_cli_decodes_on_onnx(onnx_backend, crop, tmp_path):
    nic, png = tmp_path / "a.nic", tmp_path / "a.png"
    nic.write_bytes(data := compress(crop, quality=50))
    assert main(["decode", str(nic), "-o", str(png), "--backend", "onnx"]) == 0
    assert np.array_equal(np.asarray(Image.open(png)), np.asarray(decompress(data, backend="onnx")))


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is present")
def test_cuda_without_a_gpu_is_one_line(crop, tmp_path, capsys):
    data = compress(crop, quality=50)
    with pytest.raises(ValueError, match="needs a CUDA GPU") as err:
        decompress(data, backend="cuda")
    assert "\n" not in str(err.value)
    nic = tmp_path / "a.nic"
    nic.write_bytes(data)
    assert main(["decode", str(nic), "-o", str(tmp_path / "a.png"), "--backend", "cuda"]) == 1
    assert capsys.readouterr().err.strip().count("\n") == 0
    assert not (tmp_path / "a.png").exists()


@pytest.mark.parametrize("command", ["encode", "decode"])
def test_cli_refuses_an_unknown_backend(command, capsys):
    with pytest.raises(SystemExit) as done:
        main([command, "x", "--backend", "tensorrt"])
    assert done.value.code == 2 and "invalid choice: 'tensorrt'" in capsys.readouterr().err


def test_every_backend_name_resolves_and_others_are_refused():
    """The CLI's choices (`api.BACKENDS`) are the names `codec.backend` knows."""
    for name in api.BACKENDS:
        try:
            assert backend.resolve(name) is backend.named(name)
        except (ValueError, ModuleNotFoundError) as err:  # no GPU, no onnxruntime: not "unknown"
            assert "must be one of" not in str(err)
    with pytest.raises(ValueError, match="must be one of torch, cuda, onnx"):
        backend.resolve("tensorrt")


MISSING = BLOCK_OPTIONAL + """
from nicodec.cli.main import main
sys.exit(main(["decode", sys.argv[1], "-o", sys.argv[2], "--backend", "onnx"]))
"""


def test_onnx_without_onnxruntime_names_the_extra(crop, tmp_path):
    nic = tmp_path / "a.nic"
    nic.write_bytes(compress(crop, quality=50))
    done = subprocess.run([sys.executable, "-c", MISSING.format(blocked=optional_modules()), str(nic),
                           str(tmp_path / "a.png")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and not (tmp_path / "a.png").exists()
    assert done.stderr.strip() == ("nicodec: error: this needs the 'onnx' extra (No module named "
                                   "'onnxruntime'): pip install 'nicodec[onnx]'")

"""The HTTP service: round trip, info, the page, and clean 4xx errors."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from nicodec import compress, decompress
from nicodec import info as nicodec_info
from nicodec.bitstream.container import pack, unpack
from nicodec.eval.metrics import psnr_rgb
from nicodec.models.pretrained import WEIGHTS_DIR, load_model, manifest
from nicodec.service import app as service
from nicodec.service.app import app
from tests.conftest import EXIF_MAKE


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(app) as client:  # runs the lifespan: the worker pool
        yield client


@pytest.fixture(scope="module")
def png(crop) -> bytes:
    buf = io.BytesIO()
    crop.save(buf, format="PNG")
    return buf.getvalue()


def test_compress_decompress_roundtrip(client, png, crop):
    r = client.post("/compress?quality=60", content=png)
    assert r.status_code == 200 and r.content.startswith(b"\x89NIC")
    assert float(r.headers["x-nicodec-bpp"]) == pytest.approx(8 * len(r.content) / (192 * 128), abs=1e-3)
    d = client.post("/decompress", content=r.content)
    assert d.status_code == 200 and d.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(d.content)).size == crop.size
    meta = client.post("/info", content=r.content).json()
    assert meta["quality"] == 60 and meta["width"] == 192
    jpeg = client.post("/decompress?format=jpeg", content=r.content)
    assert np.asarray(Image.open(io.BytesIO(jpeg.content))).shape == (128, 192, 3)


def test_compress_to_a_size(client, png):
    r = client.post("/compress?size=1500", content=png)
    assert r.status_code == 200 and len(r.content) <= 1500
    assert client.post("/info", content=r.content).json()["quality"] == int(r.headers["x-nicodec-quality"])
    assert client.post("/compress?size=50", content=png).status_code == 400  # cannot fit


def test_page_is_served(client):
    r = client.get("/")
    assert r.status_code == 200 and "/compare" in r.text


@pytest.mark.parametrize("path,body,status,message", [
    ("/compress", b"not an image", 400, "cannot read image"),
    ("/compress", b"", 400, "empty"),
    ("/decompress", b"GIF89a....", 400, "bad magic"),
    ("/info", b"\x89NIC\r\n", 400, "truncated"),
    ("/compress?quality=0", b"x", 422, ""),
])
def test_bad_input_is_a_clean_4xx(client, path, body, status, message):
    r = client.post(path, content=body)
    assert r.status_code == status
    if message:
        assert message in r.json()["error"]


@pytest.mark.parametrize("format", ["png", "webp", "jpeg"])
def test_decompress_returns_the_metadata(client, tagged, format):
    nic = client.post("/compress?quality=50", content=tagged).content
    with Image.open(io.BytesIO(client.post(f"/decompress?format={format}", content=nic).content)) as im:
        assert im.info["icc_profile"] == Image.open(io.BytesIO(tagged)).info["icc_profile"]
        assert im.getexif()[EXIF_MAKE] == "nicodec" and b"tiff:Make" in im.info["xmp"]


def test_compress_can_strip_the_metadata(client, tagged):
    kept = client.post("/compress?quality=50", content=tagged).content
    stripped = client.post("/compress?quality=50&strip=true", content=tagged).content
    kinds = [{s["kind"] for s in client.post("/info", content=nic).json()["sections"]}
             for nic in (kept, stripped)]
    assert {"icc", "exif", "xmp"} <= kinds[0] and not {"icc", "exif", "xmp"} & kinds[1]
    assert len(stripped) < len(kept)


def test_compress_with_a_preview_and_decompress_thumbnails(client, png):
    data = client.post("/compress?quality=50&preview=true", content=png).content
    assert client.post("/info", content=data).json()["sections"][-1]["kind"] == "preview"
    for r in (8, 2):  # 8: the preview; 2: the read-out
        thumb = client.post(f"/decompress?reduce={r}", content=data)
        assert thumb.status_code == 200
        shown = Image.open(io.BytesIO(thumb.content))
        assert np.array_equal(np.asarray(shown), np.asarray(decompress(data, reduce=r)))
        assert shown.size == tuple(-(-n // r) for n in Image.open(io.BytesIO(png)).size)
    bad = client.post("/decompress?reduce=3", content=data)
    assert bad.status_code == 400 and "reduce must be one of" in bad.json()["error"]


def test_compress_to_a_psnr(client, png, crop):
    r = client.post("/compress?psnr=30", content=png)
    assert r.status_code == 200
    decoded = np.asarray(Image.open(io.BytesIO(client.post("/decompress", content=r.content).content)))
    assert psnr_rgb(np.asarray(crop), decoded) >= 30
    assert client.post("/compress?psnr=95", content=png).status_code == 400  # unreachable


def test_compare_matches_the_api(client, png, crop):
    """The web page's data: nicodec beside JPEG, WebP and AVIF at no more than its file size."""
    r = client.post("/compare?size=2500", content=png)
    assert r.status_code == 200
    result = r.json()
    nic = base64.b64decode(result["nic"])
    assert nic == compress(crop, max_bytes=2500, metadata=False)
    original, *coded = result["panels"]
    assert original["codec"] == "original" and [p["codec"] for p in coded] == [
        "nicodec", "JPEG 4:2:0", "WebP", "AVIF"]
    assert coded[0]["bytes"] == len(nic) and coded[0]["quality"] == nicodec_info(nic)["quality"]
    assert coded[0]["psnr"] == pytest.approx(psnr_rgb(np.asarray(crop), np.asarray(decompress(nic))))
    for p in coded[1:]:
        shown = np.asarray(Image.open(io.BytesIO(base64.b64decode(p["png"]))))
        assert p["bytes"] <= len(nic) and p["psnr"] == pytest.approx(psnr_rgb(np.asarray(crop), shown))
    assert client.post("/compare?size=10", content=png).status_code == 400


@pytest.mark.parametrize("method,path,status,message", [
    ("post", "/compress?quality=0", 422, "quality: Input should be greater than or equal to 1"),
    ("post", "/decompress?format=gif", 422, "format: String should match pattern"),
    ("get", "/nowhere", 404, "Not Found"),
    ("get", "/compress", 405, "Method Not Allowed"),
])
def test_every_error_has_the_documented_body(client, method, path, status, message):
    r = getattr(client, method)(path, **({"content": b"x"} if method == "post" else {}))
    assert r.status_code == status and r.json() == {"error": r.json()["error"]}
    assert message in r.json()["error"]


def test_a_hostile_file_s_error_is_printable(client, png):
    nic = client.post("/compress?quality=50", content=png).content
    header, sections = unpack(nic)
    header.model_id = "checkerboard-\x1b[2J\nFAKE"
    r = client.post("/info", content=pack(header, sections))
    assert r.status_code == 400 and "\\x1b[2J\\nFAKE" in r.json()["error"]


def test_uploads_over_the_limit_are_refused_by_length_or_while_streaming(client, monkeypatch):
    monkeypatch.setattr(service, "MAX_BODY", 1000)
    by_length = client.post("/compress", content=b"x" * 5000)
    streamed = client.post("/compress", content=iter([b"x" * 600] * 10))  # chunked: no length
    for r in (by_length, streamed):
        assert r.status_code == 413 and "over" in r.json()["error"]


def test_the_pixel_limit_and_the_time_limit(client, png, monkeypatch):
    nic = client.post("/compress?quality=50", content=png).content
    monkeypatch.setattr(service.settings, "max_pixels", 192 * 128 - 1)
    for path, body in (("/compress", png), ("/decompress", nic)):
        r = client.post(path, content=body)
        assert r.status_code == 400 and "too large" in r.json()["error"]
    monkeypatch.setattr(service.settings, "max_pixels", 192 * 128)
    monkeypatch.setattr(service.settings, "timeout", 1e-4)
    r = client.post("/compress", content=png)
    assert r.status_code == 504 and "time limit" in r.json()["error"]


def test_models_lists_the_manifest(client):
    shipped = manifest()
    assert client.get("/models").json() == {"default": shipped["default"],
                                            "models": sorted(shipped["models"])}


def test_compress_with_the_fast_model(client, png, crop):
    r = client.post("/compress?quality=75&model=fast", content=png)
    assert r.status_code == 200
    fast_id = load_model("fast").model_id
    assert r.headers["x-nicodec-model-id"] == fast_id
    assert client.post("/info", content=r.content).json()["model_id"] == fast_id
    assert r.content == compress(crop, 75, model="fast")  # the same file as the API's
    d = client.post("/decompress", content=r.content)  # the file names its model
    assert d.status_code == 200
    assert np.asarray(Image.open(io.BytesIO(d.content))).shape == (128, 192, 3)
    default = client.post("/compress?quality=75", content=png)
    assert default.headers["x-nicodec-model-id"] == load_model().model_id


def test_compare_with_the_fast_model(client, png, crop):
    result = client.post("/compare?quality=75&model=fast", content=png).json()
    nic = base64.b64decode(result["nic"])
    assert nicodec_info(nic)["model_id"] == load_model("fast").model_id
    shown = result["panels"][1]
    assert shown["codec"] == "nicodec" and shown["bytes"] == len(nic)
    assert shown["psnr"] == pytest.approx(psnr_rgb(np.asarray(crop), np.asarray(decompress(nic))))


@pytest.mark.parametrize("path", ["/compress", "/compare"])
@pytest.mark.parametrize("model", ["nonesuch", "", str(WEIGHTS_DIR / "checkerboard.safetensors")])
def test_an_unknown_model_is_a_400(client, png, path, model):
    """Only a shipped model's name: a model file's path is refused too, never opened."""
    r = client.post(path, params={"model": model}, content=png)
    shipped = ", ".join(sorted(manifest()["models"]))
    assert r.status_code == 400 and r.json() == {"error": f"unknown model '{model}' (shipped: {shipped})"}

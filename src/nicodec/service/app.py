"""FastAPI app: compress, decompress and inspect over HTTP, plus a one-page web demo.

Endpoints take the raw bytes as the request body (no multipart), so `curl --data-binary @x.png`
works and nothing is buffered twice. Errors are HTTP 400/413 with a one-line JSON message.
"""

from __future__ import annotations

import base64
import io
import time
from pathlib import Path

import numpy as np
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from PIL import Image

from nicodec.codec.api import DEFAULT_QUALITY, compress, decompress, info
from nicodec.codec.image import open_image, save_options, to_planes

MAX_BODY = 64 << 20  # bytes accepted per request
PAGE = Path(__file__).with_name("page.html")
NIC_TYPE = "application/x-nicodec"

app = FastAPI(title="nicodec", summary="Learned image compression over HTTP")


async def _body(request: Request) -> bytes:
    data = await request.body()
    if not data:
        raise HTTPException(400, "empty request body")
    if len(data) > MAX_BODY:
        raise HTTPException(413, f"request body over {MAX_BODY >> 20} MiB")
    return data


@app.exception_handler(ValueError)
async def _bad_input(_: Request, err: ValueError) -> JSONResponse:
    return JSONResponse({"error": str(err)}, status_code=400)


@app.exception_handler(HTTPException)
async def _http_error(_: Request, err: HTTPException) -> JSONResponse:
    return JSONResponse({"error": err.detail}, status_code=err.status_code)


@app.get("/", response_class=HTMLResponse)
def page() -> str:
    return PAGE.read_text()


@app.post("/compress")
async def compress_endpoint(request: Request, quality: int = Query(DEFAULT_QUALITY, ge=1, le=100),
                            size: int | None = Query(None, gt=0), psnr: float | None = Query(None, gt=0),
                            strip: bool = False) -> Response:
    """Image bytes in (PNG, JPEG, WebP, ...), .nic bytes out; stats in X-Nicodec-* headers.
    `size` replaces `quality` with the highest quality whose file fits in that many bytes, `psnr`
    with the lowest quality (the smallest file) whose PSNR reaches that many dB;
    `strip` drops the ICC profile, EXIF and XMP (e.g. a phone photo's GPS position)."""
    raw = await _body(request)
    image = open_image(raw)
    start = time.perf_counter()
    data = compress(image, quality, max_bytes=size, metadata=not strip, min_psnr=psnr)
    w, h = image.size
    headers = {"X-Nicodec-Width": str(w), "X-Nicodec-Height": str(h),
               "X-Nicodec-Quality": str(info(data)["quality"]),
               "X-Nicodec-Bpp": f"{8 * len(data) / (w * h):.4f}",
               "X-Nicodec-Encode-Seconds": f"{time.perf_counter() - start:.3f}"}
    return Response(data, media_type=NIC_TYPE, headers=headers)


@app.post("/compare")
async def compare_endpoint(request: Request, quality: int = Query(DEFAULT_QUALITY, ge=1, le=100),
                           size: int | None = Query(None, gt=0)) -> dict:
    """The web page's view: nicodec at `quality` (or the highest that fits in `size` bytes) beside
    JPEG, WebP and AVIF at the same file size (`eval.compare`), each with its bytes, bpp, PSNR and
    decoded pixels (base64 PNG), and the .nic file (base64). Metadata is left out, as the others'."""
    from nicodec.eval.compare import panels

    image = open_image(await _body(request))
    data = compress(image, quality, max_bytes=size, metadata=False)
    items = panels(to_planes(image).rgb, quality, data=data)
    w, h = image.size

    def png(pixels: np.ndarray) -> str:
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, format="PNG")
        return base64.b64encode(buf.getvalue()).decode()

    return {"width": w, "height": h, "nic": base64.b64encode(data).decode(),
            "panels": [{"codec": p.codec, "quality": p.quality, "bytes": p.size,
                        "bpp": None if p.size is None else 8 * p.size / (w * h),
                        "psnr": p.psnr, "png": png(p.pixels)} for p in items]}


@app.post("/decompress")
async def decompress_endpoint(request: Request, format: str = Query("png", pattern="^(png|webp|jpeg)$")
                              ) -> Response:
    """.nic bytes in, a PNG (or lossless WebP / high-quality JPEG) out, with the stored metadata."""
    image = decompress(await _body(request))
    buf = io.BytesIO()
    options = {"png": {}, "webp": {"lossless": True}, "jpeg": {"quality": 95}}[format]
    if format == "jpeg" and image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    image.save(buf, format=format.upper(), **options, **save_options(image, format))
    return Response(buf.getvalue(), media_type=f"image/{format}")


@app.post("/info")
async def info_endpoint(request: Request) -> dict:
    """The .nic header and section sizes, as JSON."""
    return info(await _body(request))

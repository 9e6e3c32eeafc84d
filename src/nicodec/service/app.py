"""FastAPI app: compress, decompress and inspect over HTTP, plus a one-page web demo.

Endpoints take the raw bytes as the request body (no multipart), so `curl --data-binary @x.png`
works and nothing is buffered twice. `/compress` and `/compare` take `model`, a shipped model's
name (`GET /models` lists them; default: the manifest's); decoding finds the model from the file.
Every error is a 4xx/5xx with a one-line JSON body `{"error": "..."}`: 400 bad input (an unknown
model too), 413 too large (by Content-Length before reading, else once the capped stream passes
MAX_BODY; or over the pixel limit), 422 bad parameters, 503 out of memory, 504 over the time
limit, 500 anything else (no traceback reaches the client).

Codec work runs off the event loop in a pool of worker processes (one torch thread each, so
decoded pixels never depend on how many run), so `GET /` and small requests stay fast while a
large one runs; `configure` sets the pool size, the pixel limit and the per-request time limit.
A request over the time limit gets its 504 at once; its worker finishes the job (bounded by the
pixel limit) before taking the next.
"""

from __future__ import annotations

import asyncio
import base64
import io
import multiprocessing
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from PIL import Image
from starlette.exceptions import HTTPException as StarletteHTTPException

from nicodec.bitstream.container import printable
from nicodec.codec.api import DEFAULT_QUALITY, compress, decompress, info
from nicodec.codec.image import open_image, save_options, to_planes
from nicodec.models.pretrained import load_model, manifest
from nicodec.storage.folder import init_worker

MAX_BODY = 64 << 20  # bytes accepted per request
PAGE = Path(__file__).with_name("page.html")
NIC_TYPE = "application/x-nicodec"


@dataclass
class Settings:
    workers: int = 2  # codec worker processes
    max_pixels: int = 24_000_000  # per request (a decode of 24 MP peaks near 9 GB: README "Speed")
    timeout: float = 600.0  # seconds per request


settings = Settings()
_pool: ProcessPoolExecutor | None = None


def configure(**changes: Any) -> None:
    """Change `settings` (workers, max_pixels, timeout) before the service starts."""
    for key, value in changes.items():
        if value is not None:
            setattr(settings, key, value)


def _shutdown_pool() -> None:
    global _pool
    if _pool is not None:
        for process in list(_pool._processes.values()):  # a running job must not delay shutdown
            process.kill()
        _pool.shutdown(wait=False, cancel_futures=True)
        _pool = None


def _start_pool() -> None:
    """The worker pool, started from the event loop's thread: workers die with that thread
    (`init_worker`), so it must live as long as the service."""
    global _pool
    _pool = ProcessPoolExecutor(settings.workers, mp_context=multiprocessing.get_context("spawn"),
                                initializer=_init_worker)  # spawned: the server's threads not copied
    for _ in range(settings.workers):  # start every worker now, not on the first requests
        _pool.submit(int)


def _init_worker() -> None:
    """A worker loads the default model once, when it starts, not during someone's request; by
    name, as requests and `find_model` ask for it, so the cache holds one copy. Other models load
    on their first request (`load_model` is cached)."""
    init_worker()
    load_model(manifest()["default"])


@asynccontextmanager
async def _lifespan(_: FastAPI) -> AsyncIterator[None]:
    _start_pool()
    try:
        yield
    finally:
        _shutdown_pool()


app = FastAPI(title="nicodec", summary="Learned image compression over HTTP", lifespan=_lifespan)


async def _in_worker(fn: Callable[..., Any], *args: Any) -> Any:
    """fn(*args) in the worker pool, within the time limit."""
    if _pool is None:
        raise HTTPException(503, "the service is not started (its lifespan starts the workers)")
    future = asyncio.wrap_future(_pool.submit(fn, *args))
    try:
        return await asyncio.wait_for(future, settings.timeout)
    except TimeoutError:
        raise HTTPException(504, f"took over the {settings.timeout:g} s time limit") from None
    except BrokenProcessPool:  # a worker died (killed for memory, say): start a fresh pool
        _shutdown_pool()
        _start_pool()
        raise HTTPException(503, "a codec worker died; try again") from None


async def _body(request: Request) -> bytes:
    """The request body, refused by Content-Length or once it passes MAX_BODY while streaming,
    so a refused upload is never held in memory."""
    too_large = HTTPException(413, f"request body over {MAX_BODY >> 20} MiB")
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_BODY:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise too_large
        chunks.append(chunk)
    if not size:
        raise HTTPException(400, "empty request body")
    return b"".join(chunks)


def _error(status: int, message: object) -> JSONResponse:
    return JSONResponse({"error": printable(" ".join(str(message).split()))}, status_code=status)


@app.exception_handler(ValueError)
async def _bad_input(_: Request, err: ValueError) -> JSONResponse:
    return _error(400, err)


@app.exception_handler(StarletteHTTPException)
async def _http_error(_: Request, err: StarletteHTTPException) -> JSONResponse:
    return _error(err.status_code, err.detail)


@app.exception_handler(RequestValidationError)
async def _bad_parameter(_: Request, err: RequestValidationError) -> JSONResponse:
    first = err.errors()[0] if err.errors() else {}
    where = ".".join(str(part) for part in first.get("loc", ())[1:]) or "request"
    return _error(422, f"{where}: {first.get('msg', 'invalid')}")


@app.exception_handler(MemoryError)
async def _out_of_memory(_: Request, err: MemoryError) -> JSONResponse:
    return _error(503, str(err) or "out of memory")


@app.exception_handler(Exception)
async def _internal(_: Request, err: Exception) -> JSONResponse:
    return _error(500, f"internal error ({type(err).__name__})")


@app.get("/", response_class=HTMLResponse)
def page() -> str:
    return PAGE.read_text()


@app.get("/models")
def models_endpoint() -> dict:
    """The shipped models a request's `model` may name, and the one used without it (the page's
    model menu)."""
    shipped = manifest()
    return {"default": shipped["default"], "models": sorted(shipped["models"])}


def _shipped(model: str | None) -> str:
    """The shipped model a request names (None: the manifest's default), checked before any work
    so an unknown name is a 400, and never a path: `load_model` would open a file by path."""
    shipped = manifest()
    name = shipped["default"] if model is None else model
    if name not in shipped["models"]:
        raise HTTPException(400, f"unknown model '{name}' (shipped: "
                                 f"{', '.join(sorted(shipped['models'])) or 'none'})")
    return name


@app.post("/compress")
async def compress_endpoint(request: Request, quality: int = Query(DEFAULT_QUALITY, ge=1, le=100),
                            size: int | None = Query(None, gt=0), psnr: float | None = Query(None, gt=0),
                            strip: bool = False, preview: bool = False, model: str | None = None) -> Response:
    """Image bytes in (PNG, JPEG, WebP, ...), .nic bytes out; stats in X-Nicodec-* headers.
    `size` replaces `quality` with the highest quality whose file fits in that many bytes, `psnr`
    with the lowest quality (the smallest file) whose PSNR reaches that many dB;
    `strip` drops the ICC profile, EXIF and XMP (e.g. a phone photo's GPS position); `preview`
    stores the image at 1/8 of its size too (thumbnails without the model); `model` names the
    shipped model (`GET /models`)."""
    name = _shipped(model)
    raw = await _body(request)
    start = time.perf_counter()
    data, (w, h) = await _in_worker(_compress, raw, quality, size, strip, psnr, settings.max_pixels, name,
                                    preview)
    header = info(data)
    headers = {"X-Nicodec-Width": str(w), "X-Nicodec-Height": str(h),
               "X-Nicodec-Quality": str(header["quality"]), "X-Nicodec-Model-Id": header["model_id"],
               "X-Nicodec-Bpp": f"{8 * len(data) / (w * h):.4f}",
               "X-Nicodec-Encode-Seconds": f"{time.perf_counter() - start:.3f}"}
    return Response(data, media_type=NIC_TYPE, headers=headers)


def _compress(raw: bytes, quality: int, size: int | None, strip: bool,
              psnr: float | None, max_pixels: int, model: str,
              preview: bool = False) -> tuple[bytes, tuple[int, int]]:
    """In a worker: the .nic bytes of an image file, and its size."""
    image = open_image(raw)
    w, h = image.size
    if w * h > max_pixels:
        raise ValueError(f"image too large ({w}x{h} = {w * h:,} pixels, over this service's "
                         f"limit of {max_pixels:,})")
    return compress(image, quality, model=model, max_bytes=size, metadata=not strip,
                    min_psnr=psnr, preview=preview), (w, h)


@app.post("/compare")
async def compare_endpoint(request: Request, quality: int = Query(DEFAULT_QUALITY, ge=1, le=100),
                           size: int | None = Query(None, gt=0), model: str | None = None) -> dict:
    """The web page's view: nicodec (shipped `model`) at `quality` (or the highest that fits in
    `size` bytes) beside JPEG, WebP and AVIF at the same file size (`eval.compare`), each with its
    bytes, bpp, PSNR and decoded pixels (base64 PNG), and the .nic file (base64). Metadata is left
    out, as the others'."""
    from nicodec.eval.compare import panels

    name = _shipped(model)
    image = open_image(await _body(request))
    data = compress(image, quality, model=name, max_bytes=size, metadata=False)
    items = panels(to_planes(image).rgb, quality, name, data=data)
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
async def decompress_endpoint(request: Request, format: str = Query("png", pattern="^(png|webp|jpeg)$"),
                              reduce: int = Query(1)) -> Response:
    """.nic bytes in, a PNG (or lossless WebP / high-quality JPEG) out, with the stored metadata;
    `reduce` 2, 4 or 8 for a thumbnail at that fraction of the size (at 8 a file's preview, if it
    has one, decoded without the model)."""
    raw = await _body(request)
    return Response(await _in_worker(_decompress, raw, format, settings.max_pixels, reduce),
                    media_type=f"image/{format}")


def _decompress(data: bytes, format: str, max_pixels: int, reduce: int = 1) -> bytes:
    """In a worker: the image file of .nic bytes."""
    image = decompress(data, max_pixels=max_pixels, reduce=reduce)
    buf = io.BytesIO()
    options = {"png": {}, "webp": {"lossless": True}, "jpeg": {"quality": 95}}[format]
    if format == "jpeg" and image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    image.save(buf, format=format.upper(), **options, **save_options(image, format))
    return buf.getvalue()


@app.post("/info")
async def info_endpoint(request: Request) -> dict:
    """The .nic header and section sizes, as JSON (parsing only: no worker needed)."""
    return info(await _body(request))

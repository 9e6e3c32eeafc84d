"""Loopback load test of the HTTP service: small requests while one large encode runs.

    python benchmarks/load.py [--clients 8] [--requests 25] [--large 3000x2000] [--upload-mb 1024]

Starts `nicodec serve` on a free loopback port (2 workers), sends one large encode and, from
`--clients` threads, `--requests` small requests each (GET /, /info, /compress and /decompress of a
64x64 Kodak crop), everything bounded by `--time-limit`. Then sends a refused upload of
`--upload-mb` MiB (Content-Length, then chunked) and SIGTERM while another large encode runs.
Prints failed requests, the small requests' latency (p50/p95/max), the server's peak RSS rise
over the refused uploads and the time SIGTERM took; `--json` prints the figures as JSON.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.memory import peak_rss_mb  # noqa: E402

KODAK = Path(__file__).resolve().parents[2] / "shared" / "data" / "kodak"


def png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def large_image(width: int, height: int) -> Image.Image:
    """Kodak images tiled to width x height (real content, not noise)."""
    canvas = Image.new("RGB", (width, height))
    files = sorted(KODAK.glob("kodim*.png"))
    for n, (top, left) in enumerate((t, x) for t in range(0, height, 512) for x in range(0, width, 768)):
        with Image.open(files[n % len(files)]) as im:
            canvas.paste(im.convert("RGB").crop((0, 0, 768, 512)), (left, top))
    return canvas


def start_server(port: int) -> subprocess.Popen:
    server = subprocess.Popen([sys.executable, "-m", "nicodec", "serve", "--port", str(port),
                               "--workers", "2"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.2)
    server.kill()
    raise RuntimeError(f"server did not start: {server.stderr.read().decode()[-500:]}")


def refused_upload(url: str, mib: int, declare_length: bool) -> int | str:
    """Status of an upload of `mib` MiB (zeros), with or without a Content-Length."""
    chunk = bytes(1 << 20)
    headers = {"content-length": str(mib << 20)} if declare_length else {}
    try:
        r = httpx.post(url, content=(chunk for _ in range(mib)), headers=headers, timeout=120)
        return r.status_code
    except httpx.HTTPError as err:  # the server may close the connection after its 413
        return type(err).__name__


def run(args: argparse.Namespace) -> dict:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    w, h = map(int, args.large.split("x"))
    big = png_bytes(large_image(w, h))
    with Image.open(KODAK / "kodim05.png") as im:
        small = png_bytes(im.convert("RGB").crop((0, 0, 64, 64)))
    server = start_server(port)
    try:
        small_nic = httpx.post(f"{base}/compress?quality=50", content=small, timeout=60).content
        requests = [("GET", "/", None), ("POST", "/info", small_nic), ("POST", "/compress?quality=50", small),
                    ("POST", "/decompress", small_nic)]
        latencies: list[float] = []
        failures: list[str] = []
        large: dict = {}
        deadline = time.monotonic() + args.time_limit

        def encode_large() -> None:
            start = time.perf_counter()
            r = httpx.post(f"{base}/compress?quality=75", content=big, timeout=args.time_limit)
            large.update(status=r.status_code, seconds=time.perf_counter() - start)
            if r.status_code != 200:
                failures.append(f"large encode: {r.status_code} {r.text[:200]}")

        def client(k: int) -> None:
            with httpx.Client(base_url=base, timeout=args.time_limit) as c:
                for i in range(args.requests):
                    if time.monotonic() > deadline:
                        failures.append(f"client {k}: time limit reached")
                        return
                    method, path, body = requests[(k + i) % len(requests)]
                    start = time.perf_counter()
                    try:
                        r = c.request(method, path, content=body)
                        ok = r.status_code == 200
                    except httpx.HTTPError as err:
                        ok, r = False, err
                    latencies.append(time.perf_counter() - start)
                    if not ok:
                        failures.append(f"{method} {path}: {r}")

        big_thread = threading.Thread(target=encode_large)
        big_thread.start()
        time.sleep(1.0)  # the large encode is in a worker
        clients = [threading.Thread(target=client, args=(k,)) for k in range(args.clients)]
        for t in clients:
            t.start()
        for t in clients:
            t.join()
        big_thread.join()

        before = peak_rss_mb(server.pid)
        uploads = [refused_upload(f"{base}/compress", args.upload_mb, declared) for declared in (True, False)]
        rss_rise = peak_rss_mb(server.pid) - before

        def cut_short() -> None:  # the server stops during this request: no response expected
            try:
                httpx.post(f"{base}/compress", content=big, timeout=600)
            except httpx.HTTPError:
                pass

        threading.Thread(target=cut_short, daemon=True).start()
        time.sleep(2.0)
        start = time.perf_counter()
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
        sigterm_s = time.perf_counter() - start
    finally:
        if server.poll() is None:
            server.kill()
    lat = np.array(latencies)
    return {"small_requests": len(latencies), "failed": len(failures), "failures": failures[:5],
            "small_p50_s": float(np.percentile(lat, 50)), "small_p95_s": float(np.percentile(lat, 95)),
            "small_max_s": float(lat.max()), "large": f"{w}x{h}", "large_status": large.get("status"),
            "large_s": large.get("seconds"), "refused_upload_mb": args.upload_mb,
            "refused_upload_status": uploads, "refused_upload_rss_rise_mb": rss_rise,
            "sigterm_exit_s": sigterm_s, "server_exit_code": server.returncode}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--requests", type=int, default=25, help="small requests per client")
    ap.add_argument("--large", default="3000x2000", help="size of the large encode")
    ap.add_argument("--upload-mb", type=int, default=1024, help="size of the refused uploads")
    ap.add_argument("--time-limit", type=float, default=900, help="seconds for the whole load phase")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    figures = run(args)
    if args.json:
        print(json.dumps(figures))
        return
    for key, value in figures.items():
        print(f"{key:<28} {value:.3f}" if isinstance(value, float) else f"{key:<28} {value}")


if __name__ == "__main__":
    main()

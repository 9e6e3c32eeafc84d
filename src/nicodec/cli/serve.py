"""`nicodec serve`: the HTTP service and web page (needs the `service` extra)."""

from __future__ import annotations

import argparse


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the HTTP service and web page")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--workers", type=int, help="codec worker processes (default 2)")
    p.add_argument("--max-pixels", type=int, help="largest image accepted, in pixels (default 24 million)")
    p.add_argument("--timeout", type=float, help="seconds a request may take (default 600)")
    p.set_defaults(run=serve)


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from nicodec.service.app import app, configure

    configure(workers=args.workers, max_pixels=args.max_pixels, timeout=args.timeout)
    uvicorn.run(app, host=args.host, port=args.port, timeout_graceful_shutdown=3)
    return 0

"""`nicodec export-onnx`: a model's transforms as ONNX graphs."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export-onnx", help="write the model's analysis/synthesis transforms as ONNX")
    p.add_argument("-o", "--output", required=True, help="output folder")
    p.add_argument("--model", help="shipped model name or model file (default: the manifest's)")
    p.set_defaults(run=export_onnx)


def export_onnx(args: argparse.Namespace) -> int:
    from nicodec.deploy.onnx import export
    from nicodec.models.pretrained import load_model

    for name, path in export(load_model(args.model), Path(args.output)).items():
        print(f"{name:<10} {path}  {path.stat().st_size} bytes")
    return 0

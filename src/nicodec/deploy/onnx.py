"""ONNX export of a model's transforms, for serving them with ONNX Runtime (or any ONNX engine).

The analysis and synthesis transforms are nearly all of the compute; they are exported with
dynamic height and width and the quality level as an input, so one pair of graphs covers every
image size and quality. The entropy model is not exported: its decoder side runs as exact integer
networks (`models/integer.py`), which the bitstream's reproducibility depends on, and ONNX
runtimes offer no convolution with that guarantee. A deployment therefore pairs the graphs with
nicodec's entropy coder (as the codec's own `onnx` backend does, `codec/backend.py`), or uses them
where the latent is the product (e.g. feature extraction).
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import torch
from torch import nn

from nicodec.models.pretrained import InferenceModel


class _Analysis(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, image: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
        return self.net.analyse(image, level)


class _Synthesis(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, y_hat: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
        return self.net.synthesize(y_hat, level).clamp(0, 1)


def export(model: InferenceModel, out_dir: Path) -> dict[str, Path]:
    """Write analysis.onnx, synthesis.onnx and nicodec-onnx.json (shapes, quality mapping)."""
    net, stride = model.net, model.net.latent_stride
    out_dir.mkdir(parents=True, exist_ok=True)
    level = torch.tensor([1.0])
    h, w = torch.export.Dim("h", min=1), torch.export.Dim("w", min=1)
    paths = {"analysis": out_dir / "analysis.onnx", "synthesis": out_dir / "synthesis.onnx"}
    example_latent = torch.zeros(1, model.net.config["M"], 4, 6)
    graphs = (
        (_Analysis(net), (torch.zeros(1, 3, 4 * stride, 6 * stride), level), ["image", "level"], ["y"],
         {"image": {2: stride * h, 3: stride * w}, "level": None}),
        (_Synthesis(net), (example_latent, level), ["y_hat", "level"], ["image"],
         {"y_hat": {2: h, 3: w}, "level": None}),
    )
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # "torchvision is not installed" etc.
    for (module, args, inputs, outputs, dynamic), path in zip(graphs, paths.values(), strict=True):
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(module.eval(), args, str(path), input_names=inputs, output_names=outputs,
                              dynamic_shapes=dynamic, dynamo=True, external_data=False, verbose=False)
    paths["spec"] = out_dir / "nicodec-onnx.json"
    paths["spec"].write_text(json.dumps({
        "model_id": model.model_id,
        "analysis": "image [1,3,H,W] float32 in [0,1], H and W multiples of latent_stride; "
                    "level [1] float32 -> y [1,M,H/16,W/16] (quantize: round(y - mean) + mean)",
        "synthesis": "y_hat [1,M,h,w], level [1] -> image [1,3,16h,16w] in [0,1]",
        "latent_stride": stride, "latent_channels": model.net.config["M"],
        "level_of_quality": f"(quality - 1) / 99 * {model.net.levels - 1}",
    }, indent=2) + "\n")
    return paths

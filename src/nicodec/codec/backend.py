"""Where the float transforms run: the one seam between the codec and an inference engine.

A backend runs the analysis (pixels -> gained latent) and the synthesis (decoded latent ->
pixels) of a model, one window of the output at a time: `codec.tiling.run_tiles` cuts the
output into tiles (the grid depends on the image size only) and asks the backend for each, so
memory stays bounded on every backend.

A backend can change pixels, never how a file is parsed. The entropy model (the family's integer
twin, `model.twin`, with its shipped tables) is never routed through a backend: which table and
mean each symbol has is decided by exact integer networks in `codec.latent`, so the decoded latent
is the same on every backend and every machine. Only the synthesis's rounding can differ, by a
pixel value or two; and on the encoder the analysis's rounding may pick other symbols, which
changes the file but never whether, or how, it decodes.

- `torch` (the default): PyTorch on the CPU, the transforms' stage chains (`models.stages`) on
  exactly each tile's window, one OpenMP thread per tile; the analysis's widest convolution on
  the principal subspace of its input (`models.subspace`).
- `cuda`: the same stage chains with the tile on a CUDA GPU.
- `onnx`: ONNX Runtime on the CPU, with the graphs of `deploy.onnx.export` (built once per model
  into the user's cache folder; the `onnx` extra). The graphs are whole transforms, so a tile runs
  its window grown by the model's `tile_margin` latent positions and keeps the middle. A reduced
  decode (`models.draft`) runs on `torch`.
"""

from __future__ import annotations

import copy
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any, Protocol

import torch

from nicodec.codec import tiling
from nicodec.models import draft, subspace
from nicodec.models.pretrained import InferenceModel
from nicodec.models.stages import Stage, Window, run_window

Source = Callable[[Window], torch.Tensor]  # a window of a transform's input, float [1, C, h, w]
Windowed = Callable[[Window], torch.Tensor]  # a window of its output, float [1, C, h, w] on the CPU


class Backend(Protocol):
    """Runs a model's float transforms (see the module docstring for what it may change)."""

    def prepare(self, model: InferenceModel) -> None:
        """Build what `model` needs on this backend (once per model): the decoder calls this
        before decoding, so that a failure here is not taken for a corrupt file."""

    def analysis(self, model: InferenceModel, t: torch.Tensor, source: Source,
                 sizes: tuple[int, int]) -> Windowed:
        """The gained latent at level t of the padded image of `sizes` that `source` reads."""

    def synthesis(self, model: InferenceModel, t: torch.Tensor, source: Source,
                  sizes: tuple[int, int], reduce: int = 1) -> Windowed:
        """The image in [0, 1] at level t of the latent of `sizes` that `source` reads; with
        `reduce` 2, 4 or 8, that image at 1/reduce of its size, the synthesis stopped early
        (`models.draft`; the caller has checked that the model has that read-out)."""


class Torch:
    """PyTorch on a device: the CPU, or a CUDA GPU (the model's transforms copied there once)."""

    def __init__(self, device: str = "cpu") -> None:
        if device == "cuda" and not torch.cuda.is_available():
            built = "with" if torch.backends.cuda.is_built() else "without"
            raise ValueError(f"backend 'cuda' needs a CUDA GPU, and PyTorch {torch.__version__} "
                             f"(built {built} CUDA) finds none")
        self.device = torch.device(device)
        self._nets: dict[str, torch.nn.Module] = {}
        self._lock = threading.Lock()

    def _net(self, model: InferenceModel) -> torch.nn.Module:
        if self.device.type == "cpu":
            return model.net
        with self._lock:
            if model.model_id not in self._nets:
                self._nets[model.model_id] = copy.deepcopy(model.net).to(self.device)
            return self._nets[model.model_id]

    def prepare(self, model: InferenceModel) -> None:
        self._net(model)

    def analysis(self, model: InferenceModel, t: torch.Tensor, source: Source,
                 sizes: tuple[int, int]) -> Windowed:
        net, t = self._net(model), t.to(self.device)
        bases = tiling.on_one_thread(lambda: subspace.bases(net, t))
        return self._windowed(net.analysis_stages(t, bases), source, sizes)

    def synthesis(self, model: InferenceModel, t: torch.Tensor, source: Source,
                  sizes: tuple[int, int], reduce: int = 1) -> Windowed:
        net = self._net(model)
        stages = net.synthesis_stages(t.to(self.device))
        if reduce != 1:
            weight, bias = (p.to(self.device) for p in draft.readout(model.model_id, reduce))
            stages = draft.reduced(stages, reduce, net.latent_stride, weight, bias)
        return self._windowed(stages, source, sizes)

    def _windowed(self, stages: list[Stage], source: Source, sizes: tuple[int, int]) -> Windowed:
        """Exactly the window's stage chain; `.to` and `.cpu` are no-ops on the CPU."""
        device = self.device
        return lambda win: run_window(stages, lambda w: source(w).to(device), sizes, win).cpu()


def cache_folder() -> Path:
    """Where built ONNX graphs are kept: $XDG_CACHE_HOME/nicodec (default ~/.cache/nicodec)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "nicodec"


class Onnx:
    """ONNX Runtime on the CPU, one thread per tile like `torch`."""

    def __init__(self) -> None:
        import onnxruntime  # the onnx extra: a missing one fails here, when the backend is asked for

        self._ort = onnxruntime
        self._sessions: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def _graphs(self, model: InferenceModel) -> Path:
        """The folder of the model's graphs, exported on first use (into a temporary folder that
        is renamed, so concurrent processes never read half-written graphs)."""
        from nicodec import __version__
        from nicodec.deploy.onnx import export

        folder = cache_folder() / "onnx" / __version__ / model.model_id
        if not folder.is_dir():
            folder.parent.mkdir(parents=True, exist_ok=True)
            partial = Path(tempfile.mkdtemp(prefix=".partial-", dir=folder.parent))
            export(model, partial)
            try:
                partial.rename(folder)
            except OSError:  # another process got there first
                shutil.rmtree(partial)
        return folder

    def _session(self, model: InferenceModel, transform: str) -> Any:
        with self._lock:
            if model.model_id not in self._sessions:
                options = self._ort.SessionOptions()
                options.intra_op_num_threads = options.inter_op_num_threads = 1
                options.log_severity_level = 3  # errors only: never a line on a CLI's stderr
                folder = self._graphs(model)
                self._sessions[model.model_id] = {
                    name: self._ort.InferenceSession(str(folder / f"{name}.onnx"), options,
                                                     providers=["CPUExecutionProvider"])
                    for name in ("analysis", "synthesis")}
            return self._sessions[model.model_id][transform]

    def prepare(self, model: InferenceModel) -> None:
        self._session(model, "analysis")

    def analysis(self, model: InferenceModel, t: torch.Tensor, source: Source,
                 sizes: tuple[int, int]) -> Windowed:
        return self._windowed(model, "analysis", "image", t, source, sizes, model.net.latent_stride, 1)

    def synthesis(self, model: InferenceModel, t: torch.Tensor, source: Source,
                  sizes: tuple[int, int], reduce: int = 1) -> Windowed:
        """A reduced decode runs on `torch`: the graphs are whole transforms, and the few layers
        at low resolution that it runs are cheap."""
        if reduce != 1:
            return named("torch").synthesis(model, t, source, sizes, reduce)
        return self._windowed(model, "synthesis", "y_hat", t, source, sizes, 1, model.net.latent_stride)

    def _windowed(self, model: InferenceModel, transform: str, name: str, t: torch.Tensor, source: Source,
                  sizes: tuple[int, int], scale_in: int, scale_out: int) -> Windowed:
        """The graph on the latent positions a window covers, grown by the model's margin (and
        clipped to the image, where the graph's zero padding is the whole image's), cropped to the
        window; input and output have `scale_in` and `scale_out` values per latent position."""
        session, margin, level = self._session(model, transform), model.net.tile_margin, t.numpy()
        cells = [n // scale_in for n in sizes]

        def run(win: Window) -> torch.Tensor:
            grown = [(max(lo // scale_out - margin, 0), min(-(-hi // scale_out) + margin, n))
                     for (lo, hi), n in zip(win, cells, strict=True)]
            x = source(tuple((lo * scale_in, hi * scale_in) for lo, hi in grown))
            (out,) = session.run(None, {name: x.contiguous().numpy(), "level": level})
            (r0, r1), (c0, c1) = ((lo - g[0] * scale_out, hi - g[0] * scale_out)
                                  for (lo, hi), g in zip(win, grown, strict=True))
            return torch.from_numpy(out)[..., r0:r1, c0:c1]

        return run


@cache
def named(name: str) -> Backend:
    """The backend of a name in `codec.api.BACKENDS`, one per process: it keeps what it builds."""
    if name == "onnx":
        return Onnx()
    if name in ("torch", "cuda"):
        return Torch("cpu" if name == "torch" else "cuda")
    from nicodec.codec.api import BACKENDS

    raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {name!r}")


def resolve(backend: str | Backend) -> Backend:
    """A backend given by name (`named`) or as an object."""
    return named(backend) if isinstance(backend, str) else backend

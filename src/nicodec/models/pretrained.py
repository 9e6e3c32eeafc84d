"""Inference model files: float weights + integer codec tables in one safetensors file.

The package ships its default models in `nicodec/weights/` with a manifest of sha256 hashes, so
compressing works offline on a fresh machine. A model's id is its name plus the first 16 hex
digits of the file's sha256; .nic files carry that id, so a file is never decoded with weights
other than the ones that wrote it.
"""

from __future__ import annotations

import hashlib
import json
import threading
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load, save
from torch import nn

from nicodec.entropy.coder import TableSet
from nicodec.entropy.tables import (
    density_tables,
    gaussian_scales,
    gaussian_tables,
    scale_thresholds,
)
from nicodec.models import WEIGHTS_DIR, validate
from nicodec.models.base import VariableRateModel
from nicodec.models.integer import ACT_BITS, IntegerSynthesis
from nicodec.models.layers import without_random_init
from nicodec.models.registry import MODELS, build_model

MANIFEST = WEIGHTS_DIR / "manifest.json"
Z_RANGE = 48  # hyper-latent tables cover -48..48 (+ escape)
Y_RANGE = 128  # factorized-latent tables cover -128..128 (+ escape)


TABLE_KEYS = ("codec.y.counts", "codec.y.lengths", "codec.y.thresholds", "codec.z.counts", "codec.z.lengths")


class InferenceModel:
    """Everything encode/decode needs: the codec tables at once, the networks on first use.

    The networks (float transforms, exact integer twins) are built when first used, so a file
    whose hyper-latent stream cannot hold its symbols (a header bomb) is refused with only the
    tables in memory. `source` is a model file's bytes, or the path of a shipped file whose
    sha256 is `sha256` (checked again when the networks are read from it).
    """

    def __init__(self, source: bytes | Path, sha256: str) -> None:
        meta = _metadata(source if isinstance(source, bytes) else _head(source))
        self.config = validate.checked_config(meta)  # before anything is built from it
        self.name: str = meta["model"]
        self.model_id = validate.model_id(self.name, sha256)
        self.family: type[VariableRateModel] = MODELS[self.name]  # class facts (downsampling...)
        self._source: bytes | Path | None = source
        self._sha256 = sha256
        self._lock = threading.Lock()
        self._built: tuple | None = None
        tables = _tensors(source, TABLE_KEYS)

        def table_set(prefix: str) -> TableSet:
            return TableSet(tables[f"{prefix}.counts"].numpy(), tables[f"{prefix}.lengths"].numpy())

        self.y_tables = table_set("codec.y")  # per scale (hyperprior) or per channel (factorized)
        hyper = "codec.z.counts" in tables
        self.z_tables = table_set("codec.z") if hyper else None  # the hyper-latent's
        self.y_thresholds = tables["codec.y.thresholds"] if hyper else None  # int64 fixed point

    @property
    def _networks(self) -> tuple[VariableRateModel, dict[str, IntegerSynthesis], Any]:
        if self._built is None:
            with self._lock:  # several decoding threads may ask at once: one builds
                if self._built is None:
                    self._built = self._build()
                    self._source = None  # a bytes source is not kept beside its networks
        return self._built

    def _build(self) -> tuple[VariableRateModel, dict[str, IntegerSynthesis], Any]:
        data = self._source
        if isinstance(data, Path):  # hashed when loaded, read again now: the same file?
            data = data.read_bytes()
            if hashlib.sha256(data).hexdigest() != self._sha256:
                raise ValueError(f"weights of '{self.name}' changed on disk since they were loaded")
        tensors = load(data)
        del data
        with without_random_init():  # every parameter is loaded right after (checked: else rebuilt)
            net = build_model(self.name, **self.config)
        stored = stored_state(net, tensors)
        if any(name not in stored for name, _ in net.named_parameters()):  # a smaller model's file
            net = build_model(self.name, **self.config)
        net.load_state_dict({**net.state_dict(), **stored}, assign=True)  # as `state_dict_from`
        # the layout the transforms' inputs have: no reordered copy of a kernel at every tile
        net.eval().to(memory_format=torch.channels_last)
        integer = {name: IntegerSynthesis(getattr(net, name), _integer_tensors(tensors, name))
                   for name in net.integer_nets}
        return net, integer, net.twin(integer, self.y_thresholds)

    @property
    def built(self) -> bool:
        """Whether the networks are in memory yet (a decode that needed only the tables: no)."""
        return self._built is not None

    @property
    def net(self) -> VariableRateModel:
        """The float transforms (analysis, synthesis) and the module structure of the rest."""
        return self._networks[0]

    @property
    def integer(self) -> dict[str, IntegerSynthesis]:
        """The exact integer twins of the networks that pick tables, by sub-network name."""
        return self._networks[1]

    @property
    def twin(self) -> Any:
        """The family's exact coding procedure (`net.twin`): passes over the latent."""
        return self._networks[2]


def _head(path: Path) -> bytes:
    """The first bytes of a safetensors file, up to the end of its header."""
    with path.open("rb") as f:
        head = f.read(8)
        return head + f.read(int(np.frombuffer(head, dtype="<u8")[0]))


def _tensors(source: bytes | Path, keys: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """Those of `keys` that a model file has: a path's read alone (safetensors maps the file)."""
    if isinstance(source, bytes):
        return {k: v for k, v in load(source).items() if k in keys}
    with safe_open(source, framework="pt") as f:
        return {k: f.get_tensor(k) for k in keys if k in f.keys()}


def _density_tensors(prefix: str, density: nn.Module, bound: int) -> dict[str, torch.Tensor]:
    counts, lengths = density_tables(density.pmf(torch.arange(-bound, bound + 1)).numpy())
    return {f"{prefix}.counts": torch.from_numpy(counts), f"{prefix}.lengths": torch.from_numpy(lengths)}


def codec_tensors(model: VariableRateModel) -> dict[str, torch.Tensor]:
    """The integer side of a trained model: probability tables (and integer hyper-synthesis)."""
    if model.entropy == "factorized":
        return _density_tensors("codec.y", model.y_prior, Y_RANGE)
    y_counts, y_lengths = gaussian_tables(gaussian_scales())
    out = {f"codec.{name}.{k}": v for name in model.integer_nets
           for k, v in IntegerSynthesis.quantize(getattr(model, name)).items()}
    out.update(_density_tensors("codec.z", model.z_prior, Z_RANGE))
    out.update({
        "codec.y.counts": torch.from_numpy(y_counts), "codec.y.lengths": torch.from_numpy(y_lengths),
        "codec.y.thresholds": torch.from_numpy(scale_thresholds(gaussian_scales(), ACT_BITS)),
    })
    return out


HALF_MIN_NUMEL = 4096  # big float tensors ship as float16: half the download, ~0 dB cost


def to_bytes(model: VariableRateModel, training: dict | None = None) -> bytes:
    """Serialize a trained model for inference (no optimizer state).

    Float weights of the integer-evaluated sub-networks are left out: decoding uses their
    integer twins, and `state_dict_from` rebuilds float weights from those for fine-tuning.
    """
    tensors = {}
    for k, v in model.state_dict().items():
        if k.split(".")[0] not in model.integer_nets:
            v = v.detach().float()
            tensors[k] = (v.half() if v.numel() >= HALF_MIN_NUMEL else v).contiguous()
    tensors.update(codec_tensors(model))
    meta = {"model": model.name, "config": json.dumps(model.config),
            "training": json.dumps(training or {})}  # cumulative steps/CPU time, for --init
    return _sorted_metadata(save(tensors, metadata=meta))


def _sorted_metadata(data: bytes) -> bytes:
    """The same file with its metadata keys in sorted order.

    safetensors writes metadata in hash-map order, which changes from call to call; sorting it
    makes an export of the same checkpoint byte-identical, so its sha256 (the model id, and the
    evaluation cache's key) is reproducible. Same header length: only the order changes."""
    n, header = _header(data)
    header["__metadata__"] = dict(sorted(header.get("__metadata__", {}).items()))
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    if len(text) > n:
        raise ValueError("safetensors header grew when re-serialized")
    return data[:8] + text.ljust(n) + data[8 + n :]


def from_bytes(data: bytes) -> InferenceModel:
    """Build an InferenceModel from the bytes of a model file."""
    return InferenceModel(data, hashlib.sha256(data).hexdigest())


def _integer_tensors(tensors: dict[str, torch.Tensor], name: str) -> dict[str, torch.Tensor]:
    prefix = f"codec.{name}."
    return {k.removeprefix(prefix): v for k, v in tensors.items() if k.startswith(prefix)}


def fresh_networks(net: VariableRateModel, tensors: dict[str, torch.Tensor]) -> list[str]:
    """Sub-networks of `net` a model file has no weights for (it is of a smaller zoo model)."""
    stored = {k.removeprefix("codec.").split(".")[0] for k in tensors}
    return [name for name, _ in net.named_children() if name not in stored]


def stored_state(net: VariableRateModel, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The float32 state a model file's tensors give `net`: its float tensors, and its integer nets
    dequantized."""
    state = {k: v.float() for k, v in tensors.items() if not k.startswith("codec.")}
    for name in net.integer_nets:
        if ints := _integer_tensors(tensors, name):
            ints = IntegerSynthesis.dequantize(getattr(net, name), ints)
            state.update({f"{name}.{k}": v for k, v in ints.items()})
    return state


def state_dict_from(net: VariableRateModel, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Float32 state dict for `net` from a model file's tensors (`stored_state`; buffers and
    sub-networks the file lacks come from the freshly built `net`)."""
    return {**net.state_dict(), **stored_state(net, tensors)}


def file_metadata(path: Path) -> dict[str, str]:
    """A model file's metadata (model name, config, training record) without loading tensors."""
    return _metadata(_head(path))


def file_sha256(path: Path) -> str:
    """A file's sha256, hashed in chunks (a model's networks are not read for it)."""
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def training_record(path: Path) -> dict:
    """Cumulative training counters stored in a model file (empty for files without them)."""
    return json.loads(file_metadata(path).get("training", "{}"))


def _header(data: bytes) -> tuple[int, dict]:
    """A safetensors file's header: its length in bytes and its parsed JSON."""
    n = int(np.frombuffer(data[:8], dtype="<u8")[0])
    return n, json.loads(data[8 : 8 + n])


def _metadata(data: bytes) -> dict[str, str]:
    return _header(data)[1].get("__metadata__", {})


def manifest() -> dict:
    return json.loads(MANIFEST.read_text()) if MANIFEST.exists() else {"default": None, "models": {}}


def update_manifest(name: str, filename: str, data: bytes, default: bool = True) -> None:
    m = manifest()
    m["models"][name] = {"file": filename, "sha256": hashlib.sha256(data).hexdigest(),
                         "bytes": len(data)}
    if default or not m.get("default"):
        m["default"] = name
    MANIFEST.write_text(json.dumps(m, indent=2) + "\n")


def load_model(name_or_path: str | None = None) -> InferenceModel:
    """A shipped model by name (default: the manifest's default) or a model file by path; loaded
    once per process (by name, so the default and its name share one copy)."""
    return loaded(name_or_path or manifest().get("default"))


@cache
def loaded(key: str | None) -> InferenceModel:
    """The model of a name or path, cached: what `load_model` returns."""
    m = manifest()
    if key in m["models"]:
        entry = m["models"][key]
        path = WEIGHTS_DIR / entry["file"]
        if (digest := file_sha256(path)) != entry["sha256"]:
            raise ValueError(f"shipped weights for '{key}' fail their sha256 check")
        return InferenceModel(path, digest)
    if key and Path(key).is_file():
        return from_bytes(Path(key).read_bytes())
    raise ValueError(f"unknown model '{key}' (shipped: {', '.join(sorted(m['models'])) or 'none'})")


def find_model(model_id: str) -> InferenceModel:
    """The shipped model whose id a .nic file names."""
    for name in manifest()["models"]:
        if not model_id.startswith(f"{name}-"):  # ids are name-sha: load only the candidate
            continue
        model = load_model(name)
        if model.model_id == model_id:
            return model
    raise ValueError(f"unknown model '{model_id}': this nicodec does not ship those weights")

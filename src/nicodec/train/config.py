"""Training configuration: a TOML file, then command-line overrides, into one dataclass."""

from __future__ import annotations

import re
import tomllib
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

EXPORT_WEIGHTS = ("auto", "average", "raw")  # which weights `nicodec export` ships

DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?$")


def parse_duration(text: str | float | int) -> float:
    """'2h30m', '45m', '90s' or a number of seconds -> seconds."""
    if isinstance(text, int | float):
        return float(text)
    m = DURATION.match(text.strip())
    if not text.strip() or not m:
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"bad duration '{text}' (use e.g. 2h30m, 45m, 90s)") from None
    h, mi, s = (float(g) if g else 0.0 for g in m.groups())
    return h * 3600 + mi * 60 + s


@dataclass
class TrainConfig:
    """Every knob of a run; field docs double as `nicodec train --help` text."""

    data: str = "../shared/data/train"  # folder of training images
    out: str = "runs/default"  # run folder: checkpoint, logs, exported weights
    cache: str = ".cache/crops"  # uint8 crop cache (cut once from `data`)
    model: str = "hyperprior"  # model name from the zoo
    model_config: dict[str, Any] = field(default_factory=dict)  # model constructor settings (N, M, levels...)
    init: str = ""  # start from these weights (safetensors) instead of random
    network_lr_scale: dict[str, float] = field(default_factory=dict)  # lr factor by sub-network (0 freezes)
    crop: int = 128  # training crop size (random sub-crops of the cached crops)
    cache_crop: int = 256  # size of the cached crops
    crops_per_image: int = 4  # cached crops per training image
    latent_samples: int = 0  # train on this many samples' cached latents, the analysis frozen (0: off)
    analysis_frozen_layers: int = 0  # g_a's first layers take no gradient and skip their backward (0: off)
    val_crop: int = 256  # size of the validation centre crops (fixed, so runs stay comparable)
    val_every_nth_file: int = 50  # hold out ~1/n of the files for validation
    batch: int = 16
    optimizer: str = "adam"  # adam | adamw | sgd
    lr: float = 1e-4
    lr_schedule: str = "constant"  # constant | cosine (needs steps)
    warmup_steps: int = 0
    affine_lr_scale: float = 20.0  # learning-rate factor of level-affine tables (model_config level_affine)
    res_lr_scale: float = 4.0  # learning-rate factor of residual blocks (model_config res_blocks)
    weight_decay: float = 0.0
    loss: str = "mse"  # mse | ms-ssim, as rate + lambda * distortion
    lambda_min: float = 0.0018
    lambda_max: float = 0.25
    level_balance: float = 0.0  # weight a sample by (lambda / lambda_mid)^-this (0.5: levels weigh alike)
    steps: int = 0  # stop after this many steps (0: no step limit)
    time_budget: str = ""  # stop after this wall-clock time, e.g. 2h30m
    precision: str = "bf16"  # fp32 | bf16
    compile: bool = True  # torch.compile the training step
    seed: int = 0
    threads: int = 0  # torch threads (0: leave torch's default)
    device: str = "cpu"  # cpu | cuda
    checkpoint_minutes: float = 5.0
    validate_steps: int = 1000  # validation every this many steps (0: never)
    log_steps: int = 20
    grad_clip: float = 1.0
    ema: float = 0.0  # decay of a moving average of the weights, validated and exported (0: off)
    wake_channels: int = 0  # latent channels from this index on: encoder spared part of their rate (0: off)
    wake_discount: float = 1.0  # share of their rate's gradient withheld at wake_start, 0 at wake_end
    wake_start: int = 0  # step where the discount starts (at full strength)
    wake_end: int = 0  # step where it has fallen linearly to nothing
    progress: bool = True

    @classmethod
    def load(cls, path: str | Path | None = None, **overrides: Any) -> TrainConfig:
        values: dict[str, Any] = {}
        if path:
            values.update(_read_toml(Path(path)))
        values.update({k: v for k, v in overrides.items() if v is not None})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown config keys: {', '.join(unknown)}")
        cfg = cls(**values)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        choices = {"optimizer": ("adam", "adamw", "sgd"), "lr_schedule": ("constant", "cosine"),
                   "loss": ("mse", "ms-ssim"), "precision": ("fp32", "bf16"),
                   "device": ("cpu", "cuda")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, not "
                                 f"'{getattr(self, name)}'")
        if self.crop > self.cache_crop or self.crop < 64 or self.crop % 64:
            raise ValueError(f"crop must be a multiple of 64 in [64, {self.cache_crop}]")
        if self.val_crop < 64 or self.val_crop % 64:
            raise ValueError("val_crop must be a multiple of 64, at least 64")
        if self.loss == "ms-ssim" and self.crop < 192:
            raise ValueError("ms-ssim needs crop >= 192 (five scales of an 11-pixel window)")
        if self.lr_schedule == "cosine" and not self.steps:
            raise ValueError("the cosine schedule needs steps")
        if self.wake_channels and not (0 < self.wake_discount <= 1 and self.wake_end > self.wake_start):
            raise ValueError("waking channels needs 0 < wake_discount <= 1 and wake_end > wake_start")
        if self.latent_samples < 0:
            raise ValueError("latent_samples must be 0 (off) or a number of samples")
        if self.analysis_frozen_layers < 0:
            raise ValueError("analysis_frozen_layers must be 0 (off) or a number of layers")
        if not 0 <= self.level_balance <= 1:
            raise ValueError("level_balance must be in [0, 1]")
        parse_duration(self.time_budget or 0)

    @property
    def budget_seconds(self) -> float:
        return parse_duration(self.time_budget) if self.time_budget else 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def config_fields() -> list[tuple[str, type, Any, str]]:
    """(name, type, default, help) of every field, for building CLI overrides."""
    import inspect

    src = inspect.getsource(TrainConfig)
    out = []
    for f in fields(TrainConfig):
        m = re.search(rf"^\s+{f.name}: [^\n]*?#\s*(.*)$", src, re.M)
        default = f.default if f.default is not MISSING else None
        out.append((f.name, f.type, default, m.group(1) if m else ""))
    return out


def _read_toml(path: Path, seen: frozenset[Path] = frozenset()) -> dict[str, Any]:
    """A config file's values; `extends = "other.toml"` (next to it) supplies the ones it omits,
    so a variant of a recipe states only what differs."""
    if path.resolve() in seen:
        raise ValueError(f"config {path} extends itself")
    values = tomllib.loads(path.read_text())
    base = values.pop("extends", None)
    if base is None:
        return values
    return {**_read_toml(path.parent / base, seen | {path.resolve()}), **values}

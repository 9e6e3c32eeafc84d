"""`nicodec export`: checkpoint -> shipped inference weights, manifest entry and model card."""

from __future__ import annotations

import csv
import hashlib
import json
import pickle
import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from nicodec.models import pretrained
from nicodec.models.registry import build_model
from nicodec.train.config import EXPORT_WEIGHTS
from nicodec.train.data import is_validation, list_images
from nicodec.train.loop import level_weight

if TYPE_CHECKING:
    from nicodec.eval.runner import PointCache

CARD = Path("MODEL_CARD.md")


def load_checkpoint_model(path: Path, weights: str = "auto") -> tuple[torch.nn.Module, dict]:
    """The checkpoint's model with the wanted weights: its moving average, the raw ones, or
    (auto) whichever scored the lower validation loss when the run ended."""
    if weights not in EXPORT_WEIGHTS:
        raise ValueError(f"weights must be one of {', '.join(EXPORT_WEIGHTS)}, not '{weights}'")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # torch's message is a paragraph advising to load it unsafely
        raise ValueError(f"{path} is not a nicodec checkpoint (it holds Python objects other than "
                         "tensors; refused without running them)") from None
    cfg = json.loads(ck["config"])
    model = build_model(cfg["model"], lambda_min=cfg["lambda_min"], lambda_max=cfg["lambda_max"],
                        **cfg["model_config"])
    model.load_state_dict(ck["model"])
    ema = ck.get("ema") or {}
    if weights == "average" and not ema:
        raise ValueError(f"{path} has no moving average (the run had ema = 0)")
    if weights == "auto" and ema:
        raw, average = (validation_loss(path.parent / name, ck["step"], model, cfg.get("level_balance", 0.0))
                        for name in ("val.csv", "val_ema.csv"))
        # without validation at the final step, the average: the raw weights carry the lr's noise
        weights = "raw" if raw is not None and average is not None and raw < average else "average"
    if weights == "average":
        model.load_state_dict(ema, strict=False)
    return model.eval(), {"step": ck["step"], "wall_s": ck["wall"], "cpu_s": ck["cpu"],
                          "config": cfg, "weights": "moving average" if weights == "average" else "raw"}


def validation_loss(csv_path: Path, step: int, model: torch.nn.Module, balance: float = 0.0) -> float | None:
    """Sum over the validated levels of bpp + lambda(t)·255²·MSE at `step`, if it was validated,
    each level weighted as training weighed it (`level_weight`)."""
    if not csv_path.exists():
        return None
    with csv_path.open() as f:
        rows = [r for r in csv.DictReader(f) if int(r["step"]) == step]
    if not rows:
        return None
    t = torch.tensor([float(r["t"]) for r in rows])
    bpp = torch.tensor([float(r["bpp"]) for r in rows])
    mse = 10 ** (-torch.tensor([float(r["psnr"]) for r in rows]) / 10)
    return float((level_weight(model, t, balance) * (bpp + model.lam(t) * 255.0**2 * mse)).sum())


def data_manifest(folder: Path, val_every: int) -> dict:
    """What the model saw: file count and a hash of the sorted file names and sizes."""
    files = list_images(folder)
    digest = hashlib.sha256()
    for f in files:
        digest.update(f"{f.name}:{f.stat().st_size}\n".encode())
    val = sum(is_validation(f, val_every) for f in files)
    return {"folder": str(folder), "files": len(files), "train_files": len(files) - val,
            "validation_files": val, "names_sizes_sha256": digest.hexdigest()[:16]}


FIGURE_QUALITIES = (10, 20, 50, 75, 90, 95)  # a subset of `nicodec eval`'s, whose cache they share


def codec_figures(dataset: Path, qualities: tuple[int, ...] = FIGURE_QUALITIES,
                  cache: PointCache | None = None) -> dict:
    """Average bpp (real file size), PSNR-RGB, MS-SSIM and file/estimated rate per quality.

    The points are `nicodec eval`'s own measurements, through its cache, so the evaluation that
    follows an export computes only the qualities the card does not show."""
    import numpy as np

    from nicodec.codec import image as imaging
    from nicodec.codec import latent
    from nicodec.eval.baselines import nicodec_codec
    from nicodec.eval.runner import evaluate, list_images, load_rgb

    model = pretrained.load_model()
    images = list_images(dataset)
    points, _ = evaluate(images, [replace(nicodec_codec(), values=qualities)], cache, progress=False)
    estimated: dict[tuple[str, int], float] = {}
    for path in images:
        x = imaging.to_tensor(load_rgb(path), model.net.downsampling)
        for q in qualities:  # the image decoded once, analysed per quality
            estimated[path.name, q] = latent.estimate_bits(model, latent.analyse(model, x, q))
    return {str(q): {"bpp": float(np.mean([p["bpp"] for p in rows])),
                     "psnr": float(np.mean([p["psnr"] for p in rows])),
                     "ms_ssim": float(np.mean([p["ms_ssim"] for p in rows])),
                     "real_over_estimated": float(np.mean([8.0 * p["bytes"] / estimated[p["image"], q]
                                                           for p in rows]))}
            for q in qualities if (rows := [p for p in points if p["setting"] == q])}


def export(checkpoint: Path, out: Path | None = None, ship: bool = True,
           figures_dataset: Path | None = None, card: Path = CARD, weights: str = "auto",
           cache: PointCache | None = None, default: bool = True) -> Path:
    """Write inference weights; with `ship`, into the package, updating manifest and card (and,
    with `default`, making it the model that `compress` uses unless told otherwise)."""
    model, info = load_checkpoint_model(checkpoint, weights)
    data = pretrained.to_bytes(model, {k: info[k] for k in ("step", "wall_s", "cpu_s")})
    name = model.name
    if out is None:
        out = pretrained.WEIGHTS_DIR / f"{name}.safetensors"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.replace(out)
    if ship:
        pretrained.update_manifest(name, out.name, data, default)
        pretrained.loaded.cache_clear()
        cfg = info["config"]
        entry = {
            "model": name, "file": out.name, "sha256": hashlib.sha256(data).hexdigest(),
            "exported": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "steps": info["step"], "weights": info["weights"], "wall_hours": round(info["wall_s"] / 3600, 2),
            "cpu_hours": round(info["cpu_s"] / 3600, 2),
            "data": data_manifest(Path(cfg["data"]), cfg["val_every_nth_file"]),
            "recipe": {k: cfg[k] for k in ("model_config", "crop", "batch", "optimizer", "lr",
                                           "lr_schedule", "loss", "lambda_min", "lambda_max",
                                           "level_balance", "precision", "compile", "ema")
                       if k in cfg},
            "figures_dataset": str(figures_dataset or ""),
            "kodak": codec_figures(figures_dataset, cache=cache) if figures_dataset else {},
        }
        write_card(card, entry, default)
    return out


def write_card(card: Path, entry: dict, default: bool = True) -> None:
    """Replace the model's block in the card (between markers), keeping the rest by hand. A model
    exported as the default says so in its heading, and the previous default's no longer."""
    start, end = f"<!-- model:{entry['model']} -->", f"<!-- /model:{entry['model']} -->"
    lines = [start, f"## `{entry['model']}`" + (" (default)" if default else ""), "",
             f"- weights: `src/nicodec/weights/{entry['file']}`, sha256 `{entry['sha256']}`",
             f"- exported {entry['exported']} after **{entry['steps']} steps**, "
             f"{entry['wall_hours']} wall-hours, **{entry['cpu_hours']} CPU-hours**; "
             f"{entry['weights']} weights",
             f"- data: `{entry['data']['folder']}`, {entry['data']['train_files']} training files "
             f"+ {entry['data']['validation_files']} held out for validation "
             f"(names+sizes sha256 `{entry['data']['names_sizes_sha256']}`); never Kodak",
             f"- recipe: `{json.dumps(entry['recipe'])}`", ""]
    if entry["kodak"]:
        lines += [f"Measured on `{entry['figures_dataset']}` with the real codec (bpp from file size):", "",
                  "| quality | bpp | PSNR-RGB (dB) | MS-SSIM | file / estimated rate |",
                  "|---:|---:|---:|---:|---:|"]
        for q, row in sorted(entry["kodak"].items(), key=lambda kv: int(kv[0])):
            lines.append(f"| {q} | {row['bpp']:.3f} | {row['psnr']:.2f} | {row['ms_ssim']:.4f} | "
                         f"{row['real_over_estimated']:.3f} |")
        lines.append("")
    lines.append(end)
    block = "\n".join(lines)
    text = card.read_text() if card.exists() else "# Model card\n\n"
    if default:
        text = re.sub(r"^(## `[^`]+`) \(default\)$", r"\1", text, flags=re.MULTILINE)
    if start in text and end in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    card.write_text(text)

"""Turn measured points into averaged curves, BD-rate tables and the JSON / CSV / Markdown outputs."""

from __future__ import annotations

import csv
import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nicodec.eval.baselines import Codec
from nicodec.eval.bdrate import bd_rate, ms_ssim_db

AVERAGED = ("bpp", "ratio_compressed_to_raw", "ratio_raw_to_compressed", "mse", "psnr", "ms_ssim",
            "encode_s", "decode_s")
CSV_FIELDS = ("image", "codec", "setting", "width", "height", "bytes", *AVERAGED)
GOAL_ANCHOR, GOAL_BPP = "vtm", (0.1, 1.5)  # the project's goal metric: BD-rate vs VTM in 0.1..1.5 bpp
TEST_CODEC = "nicodec"


@dataclass
class Curve:
    """A rate-distortion curve: averaged over the images (live) or as published (anchors)."""

    name: str
    label: str
    source: str  # "live" or "published"
    bpp: list[float]
    psnr: list[float]
    ms_ssim: list[float]
    rows: list[dict] = field(default_factory=list)  # live only: averaged row per setting

    def within(self, lo: float, hi: float) -> Curve:
        keep = [i for i, b in enumerate(self.bpp) if lo <= b <= hi]
        return Curve(self.name, self.label, self.source, *([getattr(self, k)[i] for i in keep]
                                                           for k in ("bpp", "psnr", "ms_ssim")))


def average_curves(points: list[dict], codecs: list[Codec]) -> dict[str, Curve]:
    """Per codec and setting, the mean over images of every metric (the anchors' convention)."""
    groups: dict[tuple[str, float], list[dict]] = defaultdict(list)
    for p in points:
        groups[p["codec"], p["setting"]].append(p)
    curves = {}
    for codec in codecs:
        rows = [{"codec": codec.name, "setting": v, "images": len(groups[codec.name, v]),
                 **{k: float(np.mean([p[k] for p in groups[codec.name, v]])) for k in AVERAGED}}
                for v in codec.values if groups[codec.name, v]]
        rows.sort(key=lambda r: r["bpp"])
        curves[codec.name] = Curve(codec.name, codec.family, "live", [r["bpp"] for r in rows],
                                   [r["psnr"] for r in rows], [r["ms_ssim"] for r in rows], rows)
    return curves


def load_anchors(folder: Path | None) -> dict[str, Curve]:
    """Published curves (CompressAI's format), keyed by file stem."""
    if folder is None:
        return {}
    if not folder.is_dir():
        raise FileNotFoundError(f"no such anchors folder: {folder}")
    anchors = {}
    for path in sorted(folder.glob("*.json")):
        doc = json.loads(path.read_text())
        res = doc["results"]
        missing = [math.nan] * len(res["bpp"])
        anchors[path.stem] = Curve(path.stem, doc.get("name", path.stem), "published", res["bpp"],
                                   res.get("psnr-rgb", missing), res.get("ms-ssim-rgb", missing))
    return anchors


def _bd(anchor: Curve, test: Curve, metric: str) -> float:
    if metric == "psnr":
        qa, qt = anchor.psnr, test.psnr
    else:
        qa, qt = ms_ssim_db(anchor.ms_ssim), ms_ssim_db(test.ms_ssim)
    try:
        return bd_rate(anchor.bpp, qa, test.bpp, qt)
    except ValueError:  # fewer than two usable points (e.g. MS-SSIM NaN on tiny images)
        return math.nan


def bd_table(test: Curve, others: list[Curve]) -> list[dict]:
    """BD-rate (%) of `test` against every other curve, PSNR-RGB and MS-SSIM (dB)."""
    return [{"anchor": c.name, "label": c.label, "source": c.source, "bd_rate_psnr": _bd(c, test, "psnr"),
             "bd_rate_ms_ssim": _bd(c, test, "ms_ssim")} for c in others]


def goal_metric(test: Curve, anchors: dict[str, Curve]) -> dict | None:
    """BD-rate vs VTM using only the test points within 0.1..1.5 bpp."""
    if GOAL_ANCHOR not in anchors:
        return None
    sub = test.within(*GOAL_BPP)
    return {"anchor": GOAL_ANCHOR, "bpp_range": list(GOAL_BPP), "points": len(sub.bpp),
            "bd_rate_psnr": _bd(anchors[GOAL_ANCHOR], sub, "psnr") if len(sub.bpp) >= 2 else math.nan}


def _json_safe(x):
    """Strict JSON: inf (lossless PSNR) and NaN (MS-SSIM of tiny images) become null."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_json_safe(v) for v in x]
    return x


def _fmt(x: float, digits: int = 3) -> str:
    if isinstance(x, float) and not math.isfinite(x):
        return "inf" if x == math.inf else "n/a"
    return f"{x:.{digits}f}"


def _markdown(meta: dict, codecs: list[Codec], curves: dict[str, Curve], bd: list[dict],
              goal: dict | None, plots: list[str]) -> str:
    lines = [f"# Evaluation on {meta['dataset']} ({meta['images']} images)", "",
             f"{meta['date']} · {meta['machine']} · {meta['threads']} thread(s) · "
             f"{meta['computed']} points computed, {meta['cached']} from cache", ""]
    if goal:
        lines += [f"**Goal metric: BD-rate vs VTM (PSNR-RGB, PCHIP), nicodec points within "
                  f"{goal['bpp_range'][0]}–{goal['bpp_range'][1]} bpp ({goal['points']} points): "
                  f"{_fmt(goal['bd_rate_psnr'], 2)} %**", ""]
    if bd:
        lines += ["## BD-rate of nicodec", "",
                  "Negative = nicodec needs fewer bits for the same quality. Live curves are measured "
                  "in this run; published ones are for all 24 Kodak images, measured elsewhere.", "",
                  "| anchor | source | BD-rate PSNR-RGB (%) | BD-rate MS-SSIM dB (%) |",
                  "|---|---|---:|---:|"]
        lines += [f"| {r['label']} (`{r['anchor']}`) | {r['source']} | {_fmt(r['bd_rate_psnr'], 2)} | "
                  f"{_fmt(r['bd_rate_ms_ssim'], 2)} |" for r in bd]
        lines.append("")
    lines += [f"![{p}]({p})" for p in plots] + [""]
    lines += ["## Averaged curves", "", "Means over images at each setting; bpp from the real file size; "
              "ratio = raw W·H·3 bytes / compressed.", "",
              "| codec | setting | bpp | ratio | compressed/raw | PSNR-RGB | MS-SSIM | MSE "
              "| encode ms | decode ms |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for codec in codecs:
        for r in curves[codec.name].rows:
            setting = "lossless" if codec.lossless else f"{r['setting']:g}"
            lines.append(f"| {codec.name} | {setting} | {_fmt(r['bpp'])} | "
                         f"{_fmt(r['ratio_raw_to_compressed'], 1)} | "
                         f"{_fmt(r['ratio_compressed_to_raw'], 4)} | "
                         f"{_fmt(r['psnr'], 2)} | {_fmt(r['ms_ssim'], 4)} | {_fmt(r['mse'], 2)} | "
                         f"{r['encode_s'] * 1e3:.1f} | {r['decode_s'] * 1e3:.1f} |")
    lines += ["", "## Encoders", "", "| codec | library | settings | swept |", "|---|---|---|---|"]
    for c in codecs:
        swept = "(lossless)" if c.lossless else f"{c.knob} {', '.join(f'{v:g}' for v in c.values)}"
        lines.append(f"| {c.name} | {c.library} | {c.settings} | {swept} |")
    return "\n".join(lines) + "\n"


def write_outputs(out: Path, points: list[dict], codecs: list[Codec], anchors: dict[str, Curve],
                  meta: dict) -> list[Path]:
    """eval.json, points.csv, report.md and the two RD plots in `out`; returns the paths written."""
    from nicodec.eval.plots import plot_rd

    out.mkdir(parents=True, exist_ok=True)
    curves = average_curves(points, codecs)
    test = curves.get(TEST_CODEC)
    lossy = [curves[c.name] for c in codecs if not c.lossless and curves[c.name].rows]
    others = [c for c in lossy if c.name != TEST_CODEC] + list(anchors.values())
    bd = bd_table(test, others) if test and test.bpp else []
    goal = goal_metric(test, anchors) if test and test.bpp else None
    plots = [plot_rd(out / f"rd_{m}.png", m, lossy, list(anchors.values()), meta["dataset"])
             for m in ("psnr", "ms_ssim")]
    doc = {"meta": meta, "encoders": [{"name": c.name, "family": c.family, "library": c.library,
                                       "settings": c.settings, "knob": c.knob, "values": list(c.values),
                                       "lossless": c.lossless} for c in codecs],
           "curves": [r for c in codecs for r in curves[c.name].rows], "bd_rate": bd, "goal": goal,
           "points": points}
    paths = [out / "eval.json", out / "points.csv", out / "report.md", *plots]
    paths[0].write_text(json.dumps(_json_safe(doc), indent=1) + "\n")
    with paths[1].open("w", newline="") as f:
        writer = csv.DictWriter(f, CSV_FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(points)
    paths[2].write_text(_markdown(meta, codecs, curves, bd, goal, [p.name for p in plots]))
    return paths

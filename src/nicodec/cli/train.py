"""`nicodec train`, `export` and `plot-training`."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from nicodec.cli.eval import EVAL_CACHE
from nicodec.train.config import EXPORT_WEIGHTS, TrainConfig, config_fields


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model (rate-distortion, resumable)")
    p.add_argument("--config", help="TOML file of settings; flags below override it")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    for name, typ, default, doc in config_fields():
        flag = "--" + name.replace("_", "-")
        if typ == "bool":
            p.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=None,
                           help=f"{doc} (default {default})")
        elif name in ("model_config", "network_lr_scale"):
            p.add_argument(flag, dest=name, type=json.loads, default=None, help=f"{doc}, as JSON")
        else:
            conv = {"int": int, "float": float}.get(typ, str)
            p.add_argument(flag, dest=name, type=conv, default=None,
                           help=f"{doc} (default {default!r})")
    p.set_defaults(run=train)

    p = sub.add_parser("export", help="checkpoint -> shipped weights, manifest and model card")
    p.add_argument("checkpoint", help="a run's checkpoint.pt")
    p.add_argument("-o", "--output", help="write the weights here instead of shipping them")
    p.add_argument("--figures", metavar="DATASET",
                   help="also measure bpp/PSNR/MS-SSIM on this folder for the model card")
    p.add_argument("--cache", default=EVAL_CACHE,
                   help=f"the figures' per-point cache, shared with `nicodec eval` (default {EVAL_CACHE})")
    p.add_argument("--weights", choices=EXPORT_WEIGHTS, default="auto",
                   help="the moving average, the raw weights, or (auto, the default) whichever had "
                   "the lower validation loss at the checkpoint's step (val.csv / val_ema.csv)")
    p.add_argument("--default", action=argparse.BooleanOptionalAction, default=True,
                   help="make it the model that encoding uses unless told otherwise (default yes)")
    p.set_defaults(run=export)

    p = sub.add_parser("plot-training", help="plot a run's training and validation curves")
    p.add_argument("run_dir", help="run folder holding train.csv / val.csv")
    p.add_argument("-o", "--output", help="PNG to write (default RUN/curves.png)")
    p.set_defaults(run=plot_training)


def train(args: argparse.Namespace) -> int:
    from nicodec.train.loop import Trainer

    overrides = {name: getattr(args, name) for name, *_ in config_fields()}
    cfg = TrainConfig.load(args.config, **overrides)
    Trainer(cfg, resume=args.resume).run()
    if int(os.environ.get("WORLD_SIZE", 1)) > 1:
        # A rank of a finished run leaves at once: its work is saved and its process group left,
        # and the C++ teardown at interpreter exit (gloo's threads) once aborted a rank of a
        # complete run, which its launcher then reports as a failure.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0


def export(args: argparse.Namespace) -> int:
    from nicodec.eval.runner import PointCache
    from nicodec.train.export import export as do_export

    out = do_export(Path(args.checkpoint), Path(args.output) if args.output else None,
                    ship=args.output is None,
                    figures_dataset=Path(args.figures) if args.figures else None,
                    weights=args.weights, cache=PointCache(Path(args.cache)), default=args.default)
    print(f"wrote {out}")
    return 0


def plot_training(args: argparse.Namespace) -> int:
    from nicodec.train.plot import plot_run

    run = Path(args.run_dir)
    print(f"wrote {plot_run(run, Path(args.output) if args.output else run / 'curves.png')}")
    return 0

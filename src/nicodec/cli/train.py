"""`nicodec train`: config file plus per-field command-line overrides."""

from __future__ import annotations

import argparse
import json

from nicodec.train.config import TrainConfig, config_fields


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model (rate-distortion, resumable)")
    p.add_argument("--config", help="TOML file of settings; flags below override it")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    for name, typ, default, doc in config_fields():
        flag = "--" + name.replace("_", "-")
        if typ == "bool":
            p.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=None,
                           help=f"{doc} (default {default})")
        elif name == "model_config":
            p.add_argument(flag, dest=name, type=json.loads, default=None,
                           help='model constructor settings as JSON, e.g. \'{"N": 64}\'')
        else:
            conv = {"int": int, "float": float}.get(typ, str)
            p.add_argument(flag, dest=name, type=conv, default=None,
                           help=f"{doc} (default {default!r})")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from nicodec.train.loop import Trainer

    overrides = {name: getattr(args, name) for name, *_ in config_fields()}
    cfg = TrainConfig.load(args.config, **overrides)
    Trainer(cfg, resume=args.resume).run()
    return 0

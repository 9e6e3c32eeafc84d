"""Entry point: `nicodec COMMAND ...`; exit 0 on success, 1 on error, 2 on usage error."""

from __future__ import annotations

import argparse
import sys

from nicodec.cli import codec, deploy, serve, train
from nicodec.cli import eval as eval_cli


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nicodec", description="Learned image codec.")
    sub = parser.add_subparsers(dest="command", required=True)
    codec.add_parsers(sub)
    train.add_parsers(sub)
    eval_cli.add_parsers(sub)
    serve.add_parsers(sub)
    deploy.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print("nicodec: interrupted", file=sys.stderr)
        return 130
    except FileNotFoundError as err:
        print(f"nicodec: error: {err.strerror or err}: {err.filename or ''}".rstrip(": "),
              file=sys.stderr)
        return 1
    except Exception as err:  # one line, never a traceback: see README "Errors"
        print(f"nicodec: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

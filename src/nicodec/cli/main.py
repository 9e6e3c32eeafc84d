"""Entry point: `nicodec COMMAND ...`; exit 0 on success, 1 on error, 2 on usage error."""

from __future__ import annotations

import argparse
import re
import sys

from nicodec import __version__
from nicodec.cli import codec, deploy, serve, train
from nicodec.cli import eval as eval_cli


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nicodec", description="Learned image codec.")
    parser.add_argument("--version", action="version", version=f"nicodec {__version__}")
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
    except ModuleNotFoundError as err:
        print(f"nicodec: error: {missing_extra(err)}", file=sys.stderr)
        return 1
    except FileNotFoundError as err:
        print(f"nicodec: error: {err.strerror or err}: {err.filename or ''}".rstrip(": "),
              file=sys.stderr)
        return 1
    except Exception as err:  # one line, never a traceback: see README "Errors"
        print(f"nicodec: error: {err}", file=sys.stderr)
        return 1


def missing_extra(err: ModuleNotFoundError) -> str:
    """Which extra of pyproject.toml installs the missing package (optional packages are imported
    only where used, so a slim install fails here, at the command that needs one)."""
    from importlib.metadata import PackageNotFoundError, requires

    try:
        requirements = requires("nicodec") or []
    except PackageNotFoundError:
        requirements = []
    wanted = (err.name or "").partition(".")[0]
    for requirement in requirements:
        found = re.match(r"([\w.-]+).*extra\s*==\s*[\"'](\w+)", requirement)
        if found and found[1].lower().replace("-", "_") == wanted.lower():
            return f"this needs the '{found[2]}' extra ({err}): pip install 'nicodec[{found[2]}]'"
    return str(err)


if __name__ == "__main__":
    sys.exit(main())

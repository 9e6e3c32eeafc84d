"""File plumbing for the CLI: '-' for stdin/stdout, bounded reads, and writes that never leave
half a file nor replace a file the user did not ask to replace.

Rules (README "Use"): an existing regular output file is replaced only with -f/--force, and never
when it is the input; devices, FIFOs and process substitutions (`-o /dev/null`, `-o >(...)`) are
written through, a symlink is followed (the link stays); a regular file is written to a temporary
`.NAME.XXXXXXXX.part` beside it, fsynced and renamed into place with the mode the umask gives.
Temporaries that a killed run left for the same output are removed by the next write of it.
"""

from __future__ import annotations

import os
import stat
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

MAX_INPUT = 256 << 20  # bytes read from one input: stdin or a pipe must not grow until memory runs out
_TEMP_NAME_BYTES = 200  # of the output's name in its temporary's: NAME_MAX is 255


def read_input(path: str) -> bytes:
    """The bytes of a file, '-' (stdin) or a pipe such as `<(...)`, at most MAX_INPUT of them."""
    if path == "-":
        return _bounded(sys.stdin.buffer, "stdin")
    try:
        with open(path, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode) and not _is_stream(f):
                raise ValueError(f"cannot read {path}: not a file")
            return _bounded(f, path)
    except IsADirectoryError:
        raise ValueError(f"cannot read {path}: it is a folder") from None
    except FileNotFoundError:
        raise FileNotFoundError(f"no such file: {path}") from None


def _is_stream(f: BinaryIO) -> bool:
    mode = os.fstat(f.fileno()).st_mode
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or stat.S_ISSOCK(mode)


def _bounded(f: BinaryIO, name: str) -> bytes:
    data = f.read(MAX_INPUT + 1)
    if len(data) > MAX_INPUT:
        raise ValueError(f"{name}: input over {MAX_INPUT >> 20} MiB")
    return data


def same_file(a: str, b: str) -> bool:
    """Whether paths a and b name the same existing file (through links, '..' and the like)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_output(path: str, source: str | None = None, force: bool = False) -> None:
    """Refuse an output that is the input, or an existing regular file without `force`."""
    if path == "-":
        return
    if source is not None and source != "-" and same_file(path, source):
        raise ValueError(f"output {path} is the input file: give another -o")
    if not force and os.path.isfile(path):
        raise ValueError(f"output {path} exists (use -f/--force to overwrite it)")


def write_output(path: str, write: Callable[[BinaryIO], None]) -> None:
    """Run `write` into `path`: through it if it is not a regular file (stdout, a device, a FIFO),
    else into a temporary file beside its target (a symlink's) that is renamed into place."""
    if path == "-":
        write(sys.stdout.buffer)
        sys.stdout.buffer.flush()
        return
    try:
        if os.path.exists(path) and not os.path.isfile(path):  # a device, FIFO, /dev/fd/N, folder
            with open(path, "wb") as f:
                write(f)
            return
        _replace(Path(os.path.realpath(path)), write)
    except OSError as err:
        raise ValueError(f"cannot write {path}: {err.strerror or err}") from None


def _replace(target: Path, write: Callable[[BinaryIO], None]) -> None:
    stem = target.name.encode()[:_TEMP_NAME_BYTES].decode(errors="ignore")
    for stale in target.parent.glob(f".{_glob_escape(stem)}.*.part"):  # left by a killed run
        stale.unlink(missing_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{stem}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fchmod(f.fileno(), 0o666 & ~_umask())
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _glob_escape(text: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


def _umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it: put it back at once
    os.umask(mask)
    return mask

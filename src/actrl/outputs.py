"""Output paths checked once, before any model loads or simulator starts: the one shared helper.

Every command that writes (collect, pairs, train, eval, run) calls `output_file` or `output_dir`
on its outputs first, so a path that cannot be written is a one-line error naming the path and
the reason, not an exception after an hour of work. Both create missing parent directories, the
same way everywhere.

    output_file("runs/x/pairs.jsonl", "--out")     # parents made, not a directory, writable
    output_dir("runs/x/stages/il", "output_dir")    # made if missing, not a file, writable
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from actrl.config import ConfigError


class OutputPathError(ConfigError):
    """An output path cannot be used: it is a directory (or a file), or cannot be created or written."""


def _make_dir(directory: Path, what: str, target: Path) -> None:
    """Create `directory` and its parents; a file in the way or a refused mkdir is an OutputPathError."""
    existing = directory
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise OutputPathError(f"{what} {target}: {existing} is a file, not a directory; choose another path")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputPathError(f"{what} {target}: cannot create directory {directory} ({e.strerror or e})") from None


def _check_writable(directory: Path, what: str, target: Path) -> None:
    try:
        fd, probe = tempfile.mkstemp(dir=directory, prefix=".actrl-write-check-")
    except OSError as e:
        raise OutputPathError(f"{what} {target}: cannot write in {directory} ({e.strerror or e})") from None
    os.close(fd)
    os.unlink(probe)


def output_file(path: str | Path, what: str = "output") -> Path:
    """`path` as a writable file path: parents created, not a directory, writable if it exists."""
    p = Path(path).expanduser()
    if p.is_dir():
        raise OutputPathError(f"{what} {p}: is a directory; give a file path inside it, e.g. {p / 'out'}{p.suffix}")
    _make_dir(p.parent, what, p)
    if p.exists() and not os.access(p, os.W_OK):
        raise OutputPathError(f"{what} {p}: the file is not writable")
    _check_writable(p.parent, what, p)
    return p


def output_dir(path: str | Path, what: str = "output directory") -> Path:
    """`path` as a writable directory: created with its parents if missing, not a file."""
    p = Path(path).expanduser()
    if p.exists() and not p.is_dir():
        raise OutputPathError(f"{what} {p}: is a file; give a directory")
    _make_dir(p, what, p)
    _check_writable(p, what, p)
    return p


__all__ = ["OutputPathError", "output_dir", "output_file"]

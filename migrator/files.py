"""Finding the files to convert, and writing results without ever losing the user's work."""

from __future__ import annotations

import errno
import fnmatch
import os
import stat
import tempfile
from pathlib import Path
from typing import Iterable, Iterator

#: Folders never recursed into (hidden folders are skipped too).
SKIPPED_DIRS = frozenset({"venv", "build", "dist", "site-packages", "__pycache__", "node_modules"})
SOURCE_SUFFIXES = (".py", ".ipynb")


def excluded(path: Path, patterns: Iterable[str]) -> bool:
    text = path.as_posix()
    return any(
        fnmatch.fnmatch(text, pattern) or fnmatch.fnmatch(path.name, pattern) or fnmatch.fnmatch(text, f"*/{pattern}")
        for pattern in patterns
    )


def discover(paths: Iterable[Path], exclude: Iterable[str] = ()) -> Iterator[Path]:
    """Files named on the command line, and the ``.py`` files below named folders, in a stable order."""
    exclude = tuple(exclude)
    seen: set[Path] = set()
    for path in paths:
        if path.is_dir():
            candidates: Iterable[Path] = _walk(path, exclude)
        else:
            candidates = [path]
        for candidate in candidates:
            if candidate in seen or excluded(candidate, exclude):
                continue
            seen.add(candidate)
            yield candidate


def _walk(root: Path, exclude: tuple[str, ...]) -> Iterator[Path]:
    """Source files below ``root``; symbolic links leading out of it are not followed.

    A folder that cannot be listed is yielded itself, so that the caller reports it.
    """
    inside = os.path.realpath(root)
    unreadable: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, onerror=lambda exc: unreadable.append(Path(exc.filename))):
        yield from unreadable
        unreadable.clear()
        here = Path(dirpath)
        dirnames[:] = sorted(
            d
            for d in dirnames
            if not d.startswith(".") and d not in SKIPPED_DIRS and not d.endswith(".egg-info")
            and not excluded(here / d, exclude)
        )
        for name in sorted(filenames):
            if name.endswith(SOURCE_SUFFIXES) and _within(here / name, inside):
                yield here / name
    yield from unreadable


def _within(path: Path, root: str) -> bool:
    if not path.is_symlink():
        return True
    real = os.path.realpath(path)
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` in one step: a reader sees the old file or the new one.

    The temporary file lives in the same folder (so the rename cannot cross file systems) and
    takes the original's permission bits. A symbolic link is kept: its target is rewritten.
    What is not a regular file (``-o /dev/null``, ``--report /dev/stdout``, a named pipe) is
    written to, never replaced: a rename over ``/dev/null`` run as root would put a plain file
    in its place, and every program on the machine would then read back what others wrote there.
    """
    target = Path(os.path.realpath(path))
    try:
        mode: int | None = target.stat().st_mode
    except FileNotFoundError:
        mode = None
    if mode is not None and not stat.S_ISREG(mode):
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "is a directory", str(path))
        with open(target, "wb") as handle:
            handle.write(data)
        return
    mode = mode & 0o7777 if mode is not None else None
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".migrate-tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise

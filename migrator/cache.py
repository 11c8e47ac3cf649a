"""Conversion results kept between runs, as black and ruff keep theirs.

A repository's training scripts rarely change between two ``migrate convert --check`` runs (a
pre-commit hook, a CI job), yet each costs 60-350 ms of LibCST work where the byte pre-filter
lets it through, and the pre-filter itself scans every other file (about 0.7 ms per 1,000 lines).
Every file's result is stored under a key made of everything it depends on:

- the file's bytes and its path as given (a result names its path, and ``.ipynb`` converts apart);
- the options (``ConvertOptions``) and the codemods selected (``--only``, ``--skip``);
- this tool: the size and modification time of every file of ``migrator`` and ``codemods``
  (code and data tables), and of LibCST's and black's ``__init__`` (a reinstall rewrites them),
  and the Python version. Editing a codemod or upgrading either library misses every entry.

Only what conversion settles is stored: results ``converted`` and ``unchanged`` (the latter,
when the pre-filter alone settled it, only from 8 KiB on: below that the scan is cheaper than an
entry). A file that failed is converted again next time, with whatever error it then gives. An entry that cannot be
read back (truncated, from another version) is a miss. Entries are written atomically, so two
runs side by side at worst both write the same entry.

Where: ``$MIGRATE_CACHE_DIR``, else ``$XDG_CACHE_HOME/migrate``, else ``~/.cache/migrate``, one
folder per tool fingerprint; folders of other fingerprints unused for 30 days are removed when a
new one is made. ``--no-cache`` (or ``no-cache = true`` under ``[tool.migrate]``) neither reads
nor writes it. Standard library only: a run whose files all hit never imports LibCST.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import os
import pickle
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

from migrator.options import ConvertOptions
from migrator.results import FileResult

#: Bumped when what an entry holds changes shape.
FORMAT = 1
#: Folders of other fingerprints untouched for this long are removed when a new one is made.
STALE_AFTER_S = 30 * 24 * 3600
CACHED_STATUSES = frozenset({"converted", "unchanged"})


def default_dir() -> Path:
    explicit = os.environ.get("MIGRATE_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME")
    if not base:
        home = os.path.expanduser("~")
        if home == "~":  # no HOME and no password entry: never a "~" folder in the working directory
            return Path(tempfile.gettempdir()) / f"migrate-cache-{os.getuid() if hasattr(os, 'getuid') else 'user'}"
        base = os.path.join(home, ".cache")
    return Path(base) / "migrate"


def _tool_files() -> list[str]:
    here = Path(__file__).resolve().parent
    files = []
    for package in (here, here.parent / "codemods"):
        for folder, dirnames, filenames in os.walk(package):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
            files += [os.path.join(folder, name) for name in sorted(filenames) if name.endswith((".py", ".toml"))]
    for library in ("libcst", "black"):
        spec = importlib.util.find_spec(library)  # finds, does not import
        if spec is not None and spec.origin:
            files.append(spec.origin)
    return files


def fingerprint() -> str:
    """This tool's identity for the cache: its files' sizes and times, its libraries', Python's version."""
    digest = hashlib.sha256(f"{FORMAT}\0{sys.version}\0".encode())
    for path in _tool_files():
        try:
            stat = os.stat(path)
        except OSError:
            continue
        digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
    return digest.hexdigest()[:24]


class ResultCache:
    """Stored ``FileResult``s in ``root``/<fingerprint>/, one file per key."""

    #: A file the pre-filter settles is stored only from this size on: below it, the scan costs
    #: less than writing an entry (about 0.3 ms) and reading it back.
    SCANNED_BYTES_WORTH_STORING = 8192

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_dir()
        self._folder: Path | None = None
        self._touched = False
        self.hits = 0
        self.misses = 0

    @property
    def folder(self) -> Path:
        if self._folder is None:
            self._folder = self.root / fingerprint()
        return self._folder

    @staticmethod
    def context(codemods: Sequence, options: ConvertOptions) -> str:
        """What every key of one run shares: the codemods selected (the pre-filter picks among
        them by the bytes, which the key holds too) and the options."""
        ids = ",".join(getattr(c, "id", None) or f"{c.__module__}.{c.__qualname__}" for c in codemods)
        return f"{options!r}\0{ids}"

    @staticmethod
    def key(context: str, data: bytes, path: str) -> str:
        digest = hashlib.sha256(f"{context}\0{path}\0".encode("utf-8", "surrogateescape"))
        digest.update(data)
        return digest.hexdigest()

    def get(self, key: str, path: str, data: bytes) -> FileResult | None:
        try:
            with open(self.folder / key[:2] / key, "rb") as handle:
                stored = pickle.load(handle)
            result = dataclasses.replace(stored, path=path, source=data)
            if not isinstance(result, FileResult) or result.status not in CACHED_STATUSES:
                raise TypeError(type(result))
        except Exception:  # noqa: BLE001 - absent, truncated or foreign: convert again
            self.misses += 1
            return None
        self.hits += 1
        self._touch()
        return result

    def put(self, key: str, result: FileResult) -> None:
        if result.status not in CACHED_STATUSES:
            return
        target = self.folder / key[:2] / key
        try:
            if not self.folder.exists():
                self._prune_others()
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".entry.", dir=target.parent)
        except OSError:
            return  # a cache that cannot be written (read-only home, full disk) only costs speed
        try:
            with os.fdopen(fd, "wb") as handle:
                pickle.dump(dataclasses.replace(result, source=b""), handle, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, target)
            self._touch()
        except BaseException as exc:  # Ctrl-C included: no stray temporary file is left
            try:
                os.unlink(tmp)
            except OSError:
                pass
            if not isinstance(exc, OSError):
                raise

    def _touch(self) -> None:
        # A folder's time says when a run last used it (entries live a level below): see _prune_others.
        if not self._touched:
            self._touched = True
            try:
                os.utime(self.folder)
            except OSError:
                pass

    def _prune_others(self) -> None:
        try:
            others = [p for p in self.root.iterdir() if p.is_dir() and p.name != self.folder.name]
        except OSError:
            return
        now = time.time()
        for other in others:
            try:
                if now - other.stat().st_mtime > STALE_AFTER_S:
                    shutil.rmtree(other, ignore_errors=True)
            except OSError:
                continue

"""What a run would otherwise compute again from files that never change between runs, kept on disk
the way Python keeps bytecode.

* ``store``/``load``: a ``marshal``-able value in a ``__pycache__`` file, written atomically (two
  runs side by side may both write it), tagged with the interpreter's bytecode magic number, and
  written only where Python would write bytecode (not under ``PYTHONDONTWRITEBYTECODE``).
* ``toml_table``: a TOML file parsed once. ``tomllib`` is pure Python: the nine tables of
  ``codemods/data`` (110 KB) took 20 ms to parse, in the converting process, before any worker
  could start. Parsed, they are plain dicts, lists and strings, read back with ``marshal`` in half
  a millisecond; stored with a digest of the TOML's bytes, so that a table that changed is parsed
  again.

``python -m migrator.stored`` stores all of it now (an install step; a first run does it too).
"""

from __future__ import annotations

import hashlib
import importlib.util
import marshal
import os
import sys
import tempfile
from pathlib import Path

def load(path: Path):
    """The value ``store`` wrote at ``path`` for this interpreter; ``None`` if there is none to read."""
    try:
        magic, value = marshal.loads(path.read_bytes())
    except (OSError, ValueError, EOFError, TypeError):  # none yet, or unreadable
        return None
    return value if magic == importlib.util.MAGIC_NUMBER else None


def may_write(write: bool | None = None) -> bool:
    """``write`` where given, else whether Python writes bytecode (not under ``PYTHONDONTWRITEBYTECODE``)."""
    return not sys.dont_write_bytecode if write is None else write


def store(path: Path, value, write: bool | None = None) -> None:
    """Atomically, where ``may_write(write)``; a folder that refuses is no error."""
    if not may_write(write):
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            os.chmod(tmp, 0o644)  # readable by all, as Python's own bytecode files
            with os.fdopen(fd, "wb") as out:
                out.write(marshal.dumps((importlib.util.MAGIC_NUMBER, value)))
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError:
        pass


def _kept_for(path: Path) -> Path:
    return path.parent / "__pycache__" / f"{path.name}.{sys.implementation.cache_tag}.marshal"


def toml_table(path: Path, write: bool | None = None) -> dict:
    """``tomllib.load`` of ``path``, from the parsed form kept beside it when that was parsed from these very bytes."""
    data = path.read_bytes()
    digest = hashlib.blake2b(data, digest_size=16).digest()
    kept = load(_kept_for(path))
    if isinstance(kept, tuple) and len(kept) == 2 and kept[0] == digest:
        return kept[1]
    import tomllib

    table = tomllib.loads(data.decode("utf-8"))
    try:
        marshal.dumps(table)
    except ValueError:  # a value marshal cannot write (a TOML date): parsed every time
        return table
    store(_kept_for(path), (digest, table), write)
    return table


def store_all() -> list[str]:
    """Store everything this module and ``migrator.libcst_imports`` keep, now; what was stored, in words."""
    from migrator.libcst_imports import CODE_FILE, import_codemod_framework, last_import

    import_codemod_framework(write=True)
    done = [f"{CODE_FILE}: {last_import['found']} methods found compiled, {last_import['compiled']} compiled now"]
    folder = Path(__file__).resolve().parents[1] / "codemods" / "data"
    for table in sorted(folder.glob("*.toml")):
        toml_table(table, write=True)
        done.append(f"{_kept_for(table)}: stored")
    return done


if __name__ == "__main__":
    print("\n".join(store_all()))

"""Never mix our change with the user's unsaved one: refuse files with unstaged edits in git.

A file whose working copy differs from the index (``git status`` shows it in the second column)
holds work that is in no commit and not staged; rewriting it in place would leave the tool's
change and the user's tangled in one diff. Staged-only changes and untracked files are fine
(pre-commit stashes unstaged changes before its hooks run, so the hook keeps working).

One ``git status --porcelain`` per repository, found by walking up to its ``.git``, not one
call per file. Where git is missing or fails, nothing is refused (there is nothing to tell).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


class UnstagedGuard:
    def __init__(self) -> None:
        self._dirty: dict[Path, frozenset[Path]] = {}

    def has_unstaged_changes(self, path: Path) -> bool:
        real = Path(os.path.realpath(path))
        root = repository_root(real.parent)
        if root is None:
            return False
        if root not in self._dirty:
            self._dirty[root] = unstaged_files(root)
        return real in self._dirty[root]


def repository_root(folder: Path) -> Path | None:
    for candidate in (folder, *folder.parents):
        if (candidate / ".git").exists():
            return candidate
    return None


def unstaged_files(root: Path) -> frozenset[Path]:
    """Files under ``root`` whose working copy has changes not staged for commit."""
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain=v1", "-z", "--untracked-files=no", "--ignore-submodules"],
            capture_output=True, timeout=60, check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return frozenset()
    found = set()
    fields = out.split(b"\0")
    i = 0
    while i < len(fields):
        entry = fields[i]
        i += 1
        if len(entry) < 4:
            continue
        x, y, name = entry[0:1], entry[1:2], entry[3:]
        if x in (b"R", b"C"):
            i += 1  # the rename's source path follows as a field of its own
        if y not in (b" ", b"?", b"!"):
            found.add(Path(os.path.realpath(root / os.fsdecode(name))))
    return frozenset(found)

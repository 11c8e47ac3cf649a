"""``--since REF``: the scripts a pull request touches, so CI converts or checks only those.

A file counts when it changed between the merge base of REF and HEAD and the working tree
(committed on the branch, staged or not), or when it is new and not ignored. Deleted files are
left out. Notebooks are asked for as well, so they come along once discovery handles them.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Iterable, Iterator

import click

from migrator.config import common_parent

#: Git pathspecs of what ``migrate`` converts (``*`` crosses folders in git's pathspecs).
PATHSPECS = ("*.py", "*.ipynb")


def _git(args: list[str], cwd: Path) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise click.UsageError("--since needs git, and git is not installed") from None
    if done.returncode != 0:
        raise click.UsageError(f"--since: git {' '.join(args[:2])} failed: {done.stderr.strip() or done.returncode}")
    return done.stdout


def changed_files(ref: str, paths: Iterable[Path]) -> set[Path]:
    """Absolute paths of the Python files and notebooks changed since ``ref`` (see the module doc)."""
    here = common_parent(paths)
    top = Path(_git(["rev-parse", "--show-toplevel"], here).strip())
    base = _git(["merge-base", ref, "HEAD"], top).strip()
    tracked = _git(["diff", "--name-only", "-z", "--diff-filter=d", base, "--", *PATHSPECS], top)
    untracked = _git(["ls-files", "--others", "--exclude-standard", "-z", "--", *PATHSPECS], top)
    names = [name for name in (tracked + untracked).split("\0") if name]
    return {(top / name).resolve() for name in names}


def only_changed(files: Iterable[Path], ref: str, paths: Iterable[Path]) -> Iterator[Path]:
    """The files, in their order, that changed since ``ref``."""
    changed = changed_files(ref, paths)
    return (path for path in files if path.resolve() in changed)

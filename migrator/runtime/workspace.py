"""Each run of ``migrate validate`` starts from the working directory as the user left it.

The original and the converted runs execute in the user's working directory (scripts read their
data relative to it). What one run writes there (a ``snapshot.pt`` it resumes from, an
``output_dir`` of checkpoints) would otherwise be found by the next: a converted run that resumes
from the original's snapshot trains other steps and fails the loss comparison for nothing. So the
files and folders a run creates at the top of the working directory are moved, after it, into a
folder of the validation's own (``<workdir>/outputs/<run>/``): nothing is deleted, and the
working directory is left as it was found. Files that existed before are never touched.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path


class RunOutputs:
    def __init__(self, cwd: Path, workdir: Path) -> None:
        self.cwd = cwd
        self.dest = workdir / "outputs"
        self.before = set(os.listdir(cwd))
        self.moved: dict[str, list[str]] = {}

    def set_aside(self, run: str) -> list[str]:
        """Move what ``run`` created in the working directory into ``outputs/<run>``; the names."""
        new = sorted(set(os.listdir(self.cwd)) - self.before)
        if not new:
            return []
        folder = self.dest / re.sub(r"[^A-Za-z0-9]+", "-", run).strip("-")
        folder.mkdir(parents=True, exist_ok=True)
        for name in new:
            shutil.move(str(self.cwd / name), str(folder / name))
        self.moved[run] = new
        return new

    def note(self) -> str | None:
        if not self.moved:
            return None
        runs = "; ".join(f"{run}: {', '.join(names[:4])}{' ...' if len(names) > 4 else ''}" for run, names in self.moved.items())
        return (f"what each run wrote in the working directory was moved to {self.dest} after it, so that the next run "
                f"started from the same files ({runs})")

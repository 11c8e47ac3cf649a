"""Processes the tests start to run ``python -m migrator.runtime.original|launch``: forked from one
warm interpreter per test process where it takes them, fresh ones where it does not.

A fresh interpreter that runs a training script first imports torch, and transformers or Lightning
with it: 5-8 CPU-s on the 2-core CI machine, most of a small run. The tests make about a hundred such
runs. ``migrator.runtime.warm`` (what ``migrate validate`` uses for its own runs) imports
``WARM_WORKERS`` once and forks each run from there; a run it refuses (another environment, a
folder that shadows an imported module) and every run under ``MIGRATE_FRESH_PROCESSES=1`` is
started afresh, so a test never depends on which of the two ran it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

from migrator.runtime import warm
from migrator.runtime.runner import WarmInterpreter

ROOT = Path(__file__).resolve().parents[1]
#: What the warm interpreters and every Ray worker of the shared cluster find imported
#: (``migrator.runtime.warm_workers``): the libraries the samples' training functions import.
WARM_WORKERS = [
    "import torch", "import torch.distributed", "from transformers import Trainer, TrainingArguments",
    "import datasets", "import accelerate", "import lightning.pytorch", "import pytorch_lightning",
]
#: The environment the session started with: libraries the tests import in-process set variables
#: of their own as they go (torch's TORCHINDUCTOR_CACHE_DIR), which the runs must not depend on.
SESSION_ENV = dict(os.environ)
STOPPED = "(stopped: ran past"


def driver_env(home: Path) -> dict[str, str]:
    """The environment of every run the tests start, but for the ``RAY_*`` and ``MIGRATE_*``
    variables a run may add (``warm.PER_RUN_PREFIXES``)."""
    return {
        **SESSION_ENV,
        "HOME": str(home),  # keeps ~/ray_results, ~/.cache and the like out of the real home
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), SESSION_ENV.get("PYTHONPATH")])),
    }


@dataclass
class Finished:
    returncode: int
    output: str  # stdout and stderr, as one stream
    timed_out: bool = False
    forked: bool = False


@dataclass
class Drivers:
    """Starts the test process's runs: ``run`` forks one from ``interpreter`` (None: always fresh)."""

    home: Path
    interpreter: WarmInterpreter | None = None
    forked: int = 0
    fresh: int = 0

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """``driver_env``, the ``RAY_*`` and ``MIGRATE_*`` variables of this process (a test's
        ``MIGRATE_CACHE_DIR``), then ``extra``."""
        own = {k: v for k, v in os.environ.items() if k.startswith(warm.PER_RUN_PREFIXES)}
        return {**driver_env(self.home), **own, **(extra or {})}

    def run(self, module: str, argv: list[str], *, cwd: Path, extra_env: dict[str, str] | None = None,
            timeout: float = 300) -> Finished:
        env = self.env(extra_env)
        if self.interpreter is not None:
            lines: list[str] = []
            outcome = self.interpreter.run(module, argv, cwd=str(cwd), env=env, on_event=lambda event: None,
                                           on_line=lines.append, timeout_s=timeout)
            if outcome is not None:
                self.forked += 1
                stopped = bool(outcome.output_tail) and outcome.output_tail[-1].startswith(STOPPED)
                return Finished(outcome.returncode, "\n".join(lines), timed_out=stopped, forked=True)
        self.fresh += 1
        try:
            done = subprocess.run([sys.executable, "-m", module, *argv], cwd=cwd, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, errors="replace", timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            output = exc.output.decode(errors="replace") if isinstance(exc.output, bytes) else exc.output or ""
            return Finished(-9, output, timed_out=True)
        return Finished(done.returncode, done.stdout)

    def close(self) -> None:
        if self.interpreter is None:
            return
        self.interpreter.close()
        if self.interpreter.refusals:  # each cost a fresh interpreter: say why, once
            refusals = sorted(set(self.interpreter.refusals))
            warnings.warn(f"the warm interpreter refused {len(self.interpreter.refusals)} run(s): {refusals}")


def start(home: Path, folder: Path) -> Drivers:
    """The test process's drivers: a warm interpreter importing ``WARM_WORKERS`` (in the background,
    from now), unless ``MIGRATE_FRESH_PROCESSES=1``."""
    if os.environ.get(warm.OFF) == "1":
        return Drivers(home)
    imports = folder / "imports.py"
    imports.write_text("\n".join(WARM_WORKERS) + "\n")
    return Drivers(home, WarmInterpreter([str(imports)], env=driver_env(home), cwd=str(folder)))

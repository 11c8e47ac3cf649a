"""Processes the tests start to run ``python -m migrator.runtime.original|launch`` and ``migrate
validate``'s runs: forked from one warm interpreter per test process where it takes them, fresh ones
where it does not.

A fresh interpreter that runs a training script first imports torch, and transformers or Lightning
with it: 5-8 CPU-s on the 2-core CI machine, most of a small run. The tests make about a hundred such
runs. ``python -m migrator.runtime.warm --listen SOCKET`` (what ``migrate validate`` otherwise
starts for each validation) imports ``WARM_WORKERS`` once and forks each run from there: the tests'
own runs attach to it, and so does every ``migrate validate`` against the session's cluster
(``MIGRATE_WARM_SERVER``). A run it refuses (another environment, a folder that shadows an imported
module) and every run under ``MIGRATE_FRESH_PROCESSES=1`` is started afresh, so a test never
depends on which of the two ran it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
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
        "PYTHONUNBUFFERED": "1",  # as migrate's own runs have it (runner.child_env)
    }


@dataclass
class Finished:
    returncode: int
    output: str  # stdout and stderr, as one stream
    timed_out: bool = False
    forked: bool = False


@dataclass
class Drivers:
    """Starts the test process's runs: ``run`` forks one from the warm interpreter serving on
    ``socket`` (None: always fresh). ``migrate validate --offline-standins`` gets one of its own,
    started on first use: the stand-ins' offline variables must be set before the imports."""

    home: Path
    folder: Path
    socket: str | None = None
    servers: list[subprocess.Popen] = field(default_factory=list)
    standins_socket: str | None = None
    refusals: list[str] = field(default_factory=list)

    def env(self, extra: dict[str, str | None] | None = None, *, standins: bool = False) -> dict[str, str]:
        """``driver_env``, the ``RAY_*`` and ``MIGRATE_*`` variables of this process (a test's
        ``MIGRATE_CACHE_DIR``), then ``extra`` (a None there unsets the variable); with the socket
        in ``MIGRATE_WARM_SERVER`` for the ``migrate validate`` runs among them (``standins``:
        ``--offline-standins`` ones)."""
        own = {k: v for k, v in os.environ.items() if k.startswith(warm.PER_RUN_PREFIXES)}
        socket = self._standins() if standins else self.socket
        shared = {warm.SHARED: socket} if socket else {}
        env = {**driver_env(self.home), **own, **shared, **(extra or {})}
        return {k: v for k, v in env.items() if v is not None}  # None in ``extra``: unset

    def _standins(self) -> str | None:
        if self.standins_socket is None and self.socket is not None:
            self.standins_socket = self._serve("standins", ["--offline-standins"])
        return self.standins_socket

    def _serve(self, name: str, flags: list[str]) -> str | None:
        """Start ``migrator.runtime.warm --listen`` on ``WARM_WORKERS``; its socket once bound (its
        imports go on in the background), None if it does not start."""
        imports = self.folder / "imports.py"
        imports.write_text("\n".join(WARM_WORKERS) + "\n")
        socket = self.folder / f"{name}.sock"
        server = subprocess.Popen([sys.executable, "-m", "migrator.runtime.warm", "--listen", str(socket), str(imports),
                                   *flags], cwd=self.folder, env=driver_env(self.home), stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        self.servers.append(server)
        deadline = time.monotonic() + 60
        while not socket.exists():  # bound before its imports: the first runs wait in its queue
            if server.poll() is not None or time.monotonic() > deadline:
                warnings.warn(f"the warm interpreter did not start (exit {server.poll()}): every run starts afresh")
                return None
            time.sleep(0.05)
        return str(socket)

    def run(self, module: str, argv: list[str], *, cwd: Path, extra_env: dict[str, str | None] | None = None,
            timeout: float = 300) -> Finished:
        env = self.env(extra_env)
        interpreter = WarmInterpreter.attach(self.socket) if self.socket else None
        if interpreter is not None:
            lines: list[str] = []
            try:
                outcome = interpreter.run(module, argv, cwd=str(cwd), env=env, on_event=lambda event: None,
                                          on_line=lines.append, timeout_s=timeout)
            finally:
                interpreter.close()
            self.refusals += interpreter.refusals
            if outcome is not None:
                stopped = bool(outcome.output_tail) and outcome.output_tail[-1].startswith(STOPPED)
                return Finished(outcome.returncode, "\n".join(lines), timed_out=stopped, forked=True)
        try:
            done = subprocess.run([sys.executable, "-m", module, *argv], cwd=cwd, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, errors="replace", timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            output = exc.output.decode(errors="replace") if isinstance(exc.output, bytes) else exc.output or ""
            return Finished(-9, output, timed_out=True)
        return Finished(done.returncode, done.stdout)

    def close(self) -> None:
        for server in self.servers:
            server.terminate()
        for server in self.servers:
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        if self.refusals:  # each cost a fresh interpreter: say why, once
            warnings.warn(f"the warm interpreter refused {len(self.refusals)} run(s): {sorted(set(self.refusals))}")


#: This test process's, once the ``warm_driver`` fixture has started them.
CURRENT: Drivers | None = None


def start(home: Path, folder: Path) -> Drivers:
    """The test process's drivers: a warm interpreter importing ``WARM_WORKERS`` (in the background,
    from now) and serving on a socket in ``folder``, unless ``MIGRATE_FRESH_PROCESSES=1``."""
    drivers = Drivers(home, folder)
    if os.environ.get(warm.OFF) != "1":
        drivers.socket = drivers._serve("warm", [])
    return drivers

"""Record the processes an original script starts itself with ``torch.multiprocessing``.

A plain PyTorch DDP script written after the PyTorch tutorial runs as ``python script.py`` and
starts its own workers: ``mp.spawn(demo_basic, args=(world_size,), nprocs=world_size)`` (or
``mp.start_processes``). The original runner (``migrator.runtime.original``) installs the
instrument hooks in its own process only, so it would see none of the steps those children
train. ``Launcher`` patches ``torch.multiprocessing.start_processes`` (``spawn`` calls it) so
that each child runs the script's function through ``SpawnedWorker``, which first does in the
child what ``instrument.run_worker`` does on a Ray worker:

* installs the same hooks, with rank = the spawn index and world size = ``nprocs``;
* seeds ``random``, ``numpy`` and ``torch`` with the run's seed;
* writes its events, one JSON line each, to a file of its own in a temporary folder.

When the children are done (``start_processes`` returned, or the script ended) the parent feeds
their events to its own sink in order, so the original's summary has every rank's losses, and
``summary["spawned"]`` says how many processes the script started (``migrate validate`` compares
such an original with the converted script on as many Ray workers).

Only for plain PyTorch scripts: Lightning (``strategy="ddp_spawn"``) and Accelerate
(``notebook_launcher``) start processes through the same function but train through hooks of
their own, which this does not carry into the children. ``multiprocessing.Process`` targets are
not wrapped either (DataLoader workers are such processes too).
"""

from __future__ import annotations

import ast
import json
import os
import pickle
import shutil
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from migrator.runtime import events as ev
from migrator.runtime import instrument


def launches_processes(source: str) -> bool:
    """Whether the script imports ``torch.multiprocessing`` and calls ``spawn``/``start_processes``."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return False
    imported = any(
        (isinstance(node, ast.Import) and any(a.name == "torch.multiprocessing" for a in node.names))
        or (isinstance(node, ast.ImportFrom) and (node.module or "").startswith("torch.multiprocessing"))
        or (isinstance(node, ast.ImportFrom) and node.module == "torch"
            and any(a.name == "multiprocessing" for a in node.names))
        for node in ast.walk(tree)
    )
    if not imported:
        return False
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
            if name in ("spawn", "start_processes"):
                return True
    return False


def _picklable(value: Any) -> bool:
    try:
        pickle.dumps(value)
    except Exception:
        return False
    return True


class SpawnedWorker:
    """The script's process function, run in a child with the hooks installed first.

    Module-level and holding only picklable things (the function, which the ``spawn`` start
    method pickles by reference to the script's ``__main__``; plain settings; a folder path),
    so it travels to children like the function it wraps.
    """

    def __init__(self, fn: Callable, settings: Mapping[str, Any], nprocs: int, folder: str, call: int) -> None:
        self.fn = fn
        # What does not pickle cannot reach a spawned child: left out, rather than failing the
        # script's own start_processes (instrument.install reads plain values and a module's function).
        self.settings = {key: value for key, value in settings.items() if _picklable(value)}
        self.nprocs = int(nprocs)
        self.folder = folder
        self.call = call

    def __call__(self, index: int, *args: Any) -> Any:
        path = Path(self.folder) / f"call{self.call}-rank{index}.jsonl"
        out = open(path, "a", encoding="utf-8", buffering=1)  # a line each: a crash loses no finished event

        def sink(event: dict[str, Any]) -> None:
            out.write(json.dumps(event, default=ev._json_safe, allow_nan=True) + "\n")

        state = instrument._state()
        # A forked child inherits the parent's counters; a spawned one starts clean anyway.
        state.generic_steps, state.pending, state.training_loaders = 0, [], set()
        state.depth = state.iter_depth = 0
        state.world_size = self.nprocs
        try:
            instrument.install(self.settings, sink, rank=index, record=True)
            instrument.emit("worker_up", world_size=self.nprocs, local_rank=index, host=socket.gethostname(),
                            pid=os.getpid(), launcher="torch.multiprocessing")
            if self.settings.get("seed") is not None:
                instrument.seed_everything(int(self.settings["seed"]))
            try:
                return self.fn(index, *args)
            except BaseException as exc:
                instrument.emit("error", type=type(exc).__name__, message=str(exc)[:4000],
                                traceback=instrument.format_error(exc))
                raise
            finally:
                instrument.emit("worker_done")
        finally:
            out.close()


class Launcher:
    """Patches ``torch.multiprocessing`` for one run of an original script; ``close()`` undoes it."""

    def __init__(self, settings: Mapping[str, Any], sink: Callable[[dict[str, Any]], None]) -> None:
        self.settings = settings
        self.sink = sink
        self.folder = tempfile.mkdtemp(prefix="migrate-spawned-")
        self.calls: list[dict[str, Any]] = []
        self.replayed: set[str] = set()
        self._restore: list[tuple[Any, str, Any]] = []

    def install(self) -> "Launcher":
        try:
            import torch.multiprocessing
        except ImportError:
            return self
        # ``torch.multiprocessing.spawn`` (the function, which shadows its module's name) calls
        # the module's ``start_processes``: patching that and the package's name covers both.
        module = sys.modules["torch.multiprocessing.spawn"]
        original = module.start_processes

        def start_processes(fn, args=(), nprocs=1, join=True, daemon=False, start_method="spawn"):
            if not isinstance(fn, SpawnedWorker):
                call = len(self.calls)
                self.calls.append({"processes": int(nprocs), "start_method": start_method,
                                   "function": getattr(fn, "__qualname__", repr(fn))})
                fn = SpawnedWorker(fn, self.settings, nprocs, self.folder, call)
            try:
                return original(fn, args, nprocs, join, daemon, start_method)
            except Exception as exc:
                died = self.died_after_finishing(exc, fn) if join else None
                if died is None:
                    raise
                self.sink({"kind": "warning", "rank": -1, "message": died})
                return None
            finally:
                if join:
                    self.replay()

        for owner in (module, torch.multiprocessing):
            self._restore.append((owner, "start_processes", owner.start_processes))
            owner.start_processes = start_processes
        return self

    def died_after_finishing(self, exc: BaseException, fn: Any) -> str | None:
        """Why a process's death by a signal is not the run's failure, or None when it is.

        torch 2.13's gloo process groups now and then abort a process as it exits, after its
        training function returned and its process group was destroyed ("terminate called without
        an active exception", SIGABRT): measured here on a DDP-tutorial script with a
        DistributedSampler, 1 run in 15 to 40 with no migrate involved. When every process of the
        call finished its function without an error (each recorded ``worker_done``), the training
        happened; ``mp.spawn`` returns as if they had exited cleanly and the notes say what died.
        A process killed or failing while it trained is not excused: its ``worker_done`` is missing
        or an ``error`` precedes it.
        """
        signal_name = getattr(exc, "signal_name", None)
        if type(exc).__name__ != "ProcessExitedException" or not signal_name or not isinstance(fn, SpawnedWorker):
            return None
        for rank in range(fn.nprocs):
            path = Path(self.folder) / f"call{fn.call}-rank{rank}.jsonl"
            kinds = [event["kind"] for event in _events(path)] if path.exists() else []
            if "worker_done" not in kinds or "error" in kinds:
                return None
        return (f"process {getattr(exc, 'error_index', '?')} of the {fn.nprocs} the script started "
                f"(torch.multiprocessing) died with {signal_name} as it exited, after every one of them had "
                "finished its training function without an error: counted as finished (torch's gloo process "
                "groups sometimes abort a process on exit)")

    def replay(self) -> None:
        """Hand the children's events, not yet seen, to the sink: call by call, rank by rank."""
        for path in sorted(Path(self.folder).glob("call*-rank*.jsonl"), key=_order):
            if path.name in self.replayed:
                continue
            self.replayed.add(path.name)
            for event in _events(path):
                self.sink(event)

    def figures(self) -> dict[str, Any]:
        if not self.calls:
            return {"spawned": None}
        return {"spawned": {"processes": max(c["processes"] for c in self.calls), "calls": self.calls}}

    def close(self) -> None:
        self.replay()
        for owner, name, value in reversed(self._restore):
            setattr(owner, name, value)
        self._restore.clear()
        shutil.rmtree(self.folder, ignore_errors=True)


def _events(path: Path) -> Iterator[dict[str, Any]]:
    """The events a child wrote to ``path``, in order."""
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            event = json.loads(line)
        except ValueError:  # a child killed mid-line
            continue
        if isinstance(event, dict) and "kind" in event:
            yield event


def _order(path: Path) -> tuple[int, int]:
    call, rank = path.stem.split("-rank")
    return int(call[len("call"):]), int(rank)

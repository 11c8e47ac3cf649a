"""Run an original (unconverted) script in plain Python, instrumented like a Ray worker.

``migrate validate`` runs this in a subprocess: the process is seeded first thing (``random``,
``numpy``, ``torch``), the same hooks as on the workers record each step's training loss and cap
the steps, and the events are printed as marked lines, then a ``summary`` event. No Ray Train
here: an original written for Ray's retired trainers runs on their one-worker emulation
(``retired_ray``), with a private local Ray for any Ray Data it builds. A plain PyTorch script
that starts its own processes (``torch.multiprocessing.spawn``) gets the same hooks in each of
them (``migrator.runtime.spawned``): its summary has every rank's losses.

    python -m migrator.runtime.original SCRIPT [--seed S] [--max-steps N] [--offline-standins]
        [--events] [--summary PATH] [-- SCRIPT_ARGS...]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import runpy
import sys
import time
import traceback
from typing import Any, Sequence

from migrator.runtime import events as ev
from migrator.runtime import instrument, preflight, retired_ray, spawned


def run_original(script: str, args: Sequence[str], seed: int | None, max_steps: int | None,
                 standins: bool, print_events: bool) -> dict[str, Any]:
    script = os.path.abspath(script)
    tally = ev.Tally()

    def sink(event: dict[str, Any]) -> None:
        tally.add(event)
        if print_events:
            ev.write(event)

    with open(script, encoding="utf-8") as f:
        source = f.read()
    settings: dict[str, Any] = {"seed": seed, "max_steps": max_steps, "frameworks": sorted(preflight.frameworks(source))}
    if standins:
        from migrator.runtime import standins as module

        settings["standins"] = module.config_from(source)
        settings["standins_install"] = module.install
    error = error_traceback = None
    # A script that starts its own processes (mp.spawn) sets up their world itself; whatever
    # starts them (the script or a module of its own), plain PyTorch children get the hooks too.
    if not spawned.launches_processes(source):
        single_process_world(source)
    framework = preflight.framework(source)
    launcher = spawned.Launcher(settings, sink) if framework == "torch" else None
    saved_argv, saved_path = sys.argv[:], sys.path[:]
    sys.argv = [script, *args]
    sys.path.insert(0, os.path.dirname(script))
    start = time.monotonic()
    retired = preflight.retired_ray_api(source)
    stack = contextlib.ExitStack()
    try:
        if retired:
            from migrator.runtime import launch

            # First, before anything imports ray: any Ray Data it builds runs on a private local
            # Ray, bound to loopback. Then the emulation, before the hooks, which wrap its
            # ray.train.report like the real one.
            stack.enter_context(launch.private_local_ray())
            retired_ray.install(seed)
        instrument.install(settings, sink=sink, rank=0, record=True)
        if launcher is not None:
            launcher.install()
        sink({"kind": "worker_up", "rank": 0, "world_size": 1, "t": time.time(), "pid": os.getpid()})
        if seed is not None:
            instrument.seed_everything(seed)
        runpy.run_path(script, run_name="__main__")
    except SystemExit as exc:
        if exc.code not in (None, 0):
            error = f"SystemExit: {exc.code}"
    except BaseException as exc:
        traceback.print_exc()
        error = f"{type(exc).__name__}: {exc}"
        error_traceback = instrument.format_error(exc)
    finally:
        stack.close()
        sys.argv, sys.path[:] = saved_argv, saved_path
        if launcher is not None:
            launcher.close()
    return {
        "script": script,
        "argv": list(args),
        "ok": error is None,
        "error": error,
        "error_traceback": error_traceback,
        "wall_s": round(time.monotonic() - start, 2),
        "framework": framework,
        **tally.figures(),
        "warnings": tally.warnings,
        "emulated": retired_ray.trainers_used(source) if retired else None,
        **(launcher.figures() if launcher is not None else {"spawned": None}),
        "losses": {str(rank): series for rank, series in sorted(tally.losses.items())},
    }


def single_process_world(source: str) -> None:
    """A plain PyTorch script written for torchrun reads its rank and rendezvous from the
    environment (``init_process_group()`` with ``env://``): give it a world of one process, as
    ``torchrun --nproc_per_node 1`` would, so it runs here like its one-worker conversion. Only
    for plain PyTorch: Lightning and Accelerate read these variables to pick a set-up of their own."""
    if "init_process_group" not in source or preflight.framework(source) != "torch":
        return
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    defaults = {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "LOCAL_WORLD_SIZE": "1", "GROUP_RANK": "0",
                "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
    for key, value in defaults.items():
        os.environ.setdefault(key, value)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ours, theirs = (argv[: argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    parser = argparse.ArgumentParser(prog="python -m migrator.runtime.original",
                                     description="Run an original training script, seeded and instrumented.")
    parser.add_argument("script")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--max-steps", type=int)
    parser.add_argument("--offline-standins", action="store_true")
    parser.add_argument("--events", action="store_true")
    parser.add_argument("--summary")
    options = parser.parse_args(ours)
    summary = run_original(options.script, theirs, options.seed, options.max_steps, options.offline_standins,
                           options.events)
    data = json.loads(json.dumps(summary, default=ev._json_safe))
    if options.summary:
        with open(options.summary, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2)
    if options.events:
        ev.write({"kind": "summary", "summary": data})
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    from migrator.runtime.warm import finish

    finish(main())  # a fresh interpreter's teardown of torch and the rest: 1.5-1.8 CPU-s, for nothing

"""Warm Ray workers: the libraries every worker of a CPU cluster imports, imported once, then forked.

Each actor of a Ray Train run (the controller, a synchronisation actor, every training worker)
is a fresh interpreter: Python starts ``setup_worker.py``, which imports part of Ray and execs
``python default_worker.py``, which imports Ray again, then torch, transformers or Lightning as
the training function is unpickled. On this project's 2-core machine that is 5-8 CPU-seconds
per training worker, most of a short run. A cluster started with warm workers
(``LocalCluster(warm_workers=...)``) runs a fork server beside its head node that imports those
libraries once; the raylet's "Python" is a small client (``_warm_worker_client.py``) that asks
the server for each Python worker, and the server forks a child that does what
``setup_worker.py`` would (apply the runtime environment's variables) and then runs
``default_worker.py`` as ``python -u`` would. Everything from there is Ray's own code.

What may differ from a fresh interpreter, and how it is kept the same:

* **What a library reads from the environment when it is imported.** The server imports with
  the environment ``ray start`` had, which is what the raylet passes on. A worker whose
  environment (runtime-environment variables included) differs in anything but the variables
  Ray sets per worker is refused: the client then starts Python itself.
* **Threads.** Ray sets ``OMP_NUM_THREADS`` to a worker's CPUs (1 for every actor of a CPU run)
  before the task imports torch, and torch sizes its thread pool from it. The server imports
  torch under ``OMP_NUM_THREADS=1`` where it is unset, and a child sets torch's threads to
  whatever Ray later sets. Ray is never imported in the server (its gRPC threads do not survive a
  fork), nor is anything that initialises CUDA: such a server refuses every worker, and warm
  workers are for CPU clusters only.
* **Stand-ins** (``migrate validate --offline-standins``): as in ``warm.py``, the server imports
  under the offline variables the stand-ins set on a worker before its task imports anything.
* **Runtime environments that change the interpreter** (``py_executable``, containers, a
  command prefix, another entry point) and non-Python workers: refused.
* **Exit.** A child exits as an interpreter begins to (``warm.finish``); the client exits with its
  code, or dies by the same signal.

    python -m migrator.runtime.warm_workers head SOCKET SHIM STATEMENT... [--offline-standins] -- RAY_START_ARGS...
"""

from __future__ import annotations

import io
import json
import os
import selectors
import socket
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

from migrator.runtime.warm import OFF, differing, exit_code, finish, preload, shadowed, unforkable  # noqa: F401  (OFF: for LocalCluster, as in warm.py's runs)

#: Variables a worker's environment may hold that the server's does not, or hold differently:
#: what Ray sets for each worker it starts (``PL_DISABLE_FORK`` for Ray Tune's trainables: Lightning
#: 2 no longer reads it), and what a shell sets (a fresh worker is exec'd from ``bash -c`` too).
#: None of them is read when a library is imported.
PER_WORKER_PREFIXES = ("RAY_",)
PER_WORKER = frozenset({"OMP_NUM_THREADS", "PYTHONPATH", "CUDA_VISIBLE_DEVICES", "PWD", "OLDPWD", "SHLVL", "_",
                        "SPT_NOENV", "PL_DISABLE_FORK"})
CLIENT = Path(__file__).with_name("_warm_worker_client.py")
STANDINS = "--offline-standins"  # a statement never starts so


def shim_text(socket_path: str, python: str = sys.executable) -> str:
    """The raylet's "Python": the client, run without site-packages, before the real interpreter."""
    import shlex

    return (f"#!/bin/sh\nexec {shlex.quote(python)} -S {shlex.quote(str(CLIENT))} "
            f"{shlex.quote(socket_path)} {shlex.quote(python)} \"$@\"\n")


def head_command(socket_path: str, shim: str, statements: list[str], ray_start_args: list[str]) -> list[str]:
    """``ray start ARGS`` with the fork server beside it and ``shim`` as the raylet's Python."""
    return [sys.executable, "-m", "migrator.runtime.warm_workers", "head", socket_path, shim, *statements,
            "--", *ray_start_args]


# -- deciding ---------------------------------------------------------------------------------------
def _split(argv: list[str]) -> tuple[dict[str, Any] | None, str | None, list[str]]:
    """``setup_worker.py``'s arguments: (runtime-env context, language, the worker's command line)."""
    context, language, rest = None, None, []
    for arg in argv[1:]:
        if arg.startswith("--serialized-runtime-env-context="):
            context = json.loads(arg.partition("=")[2] or "{}")
        elif arg.startswith("--language="):
            language = arg.partition("=")[2]
        else:
            rest.append(arg)
    return context, language, rest


def worker_env(env: dict[str, str], context: dict[str, Any]) -> dict[str, str]:
    """The environment ``setup_worker.py`` gives the worker: the runtime environment's variables
    over the raylet's, ``${X}`` expanded against it (``ray._private.utils.update_envs``)."""
    import re

    saved = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update(env)
        for key, value in (context.get("env_vars") or {}).items():
            os.environ[key] = re.sub(r"\$\{[A-Z0-9_]+\}", "", os.path.expandvars(value))
        return dict(os.environ)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _folder(context: dict[str, Any]) -> str | None | bool:
    """The folder a runtime environment's command prefix changes to (a ``working_dir`` is
    ``cd DIR &&``), None for no prefix, False for a prefix that does anything else (a conda or
    virtualenv activation)."""
    import shlex

    prefix, folder = list(context.get("command_prefix") or []), None
    while prefix:
        if len(prefix) < 3 or prefix[0] != "cd" or prefix[2] != "&&":
            return False
        parts = shlex.split(prefix[1])
        if len(parts) != 1:
            return False
        folder, prefix = os.path.join(folder or "", parts[0]), prefix[3:]
    return folder


def refusal(request: dict[str, Any], base_env: dict[str, str]) -> str | None:
    """Why this worker must start as a fresh interpreter, or None."""
    why = unforkable()
    if why:
        return why
    context, language, rest = _split(request["argv"])
    if language != "PYTHON" or context is None or not rest:
        return "not a Python worker"
    if _folder(context) is False or context.get("override_worker_entrypoint"):
        return "its runtime environment wraps the worker"
    if context.get("py_executable") not in (None, "", sys.executable):
        return "its runtime environment names another interpreter"
    env = worker_env(request["env"], context)
    # A working_dir is put first on the path; migrate's own modules are forgotten by a child.
    found = shadowed(env.get("PYTHONPATH", "").split(os.pathsep), base_env.get("PYTHONPATH", "").split(os.pathsep),
                     forgotten=frozenset({"migrator"}))
    if found:
        return f"{found[0]} on its PYTHONPATH would shadow an imported library"
    changed = differing(env, base_env, PER_WORKER_PREFIXES, PER_WORKER)
    if changed:
        return "another environment: " + ", ".join(changed[:5])
    return None


# -- the child ----------------------------------------------------------------------------------------
def _follow_omp_num_threads() -> None:
    """Ray sets ``OMP_NUM_THREADS`` in the worker before its task runs; a fresh interpreter then
    imports torch, which sizes its pool from it. torch is imported here already: resize it."""
    original = os.putenv

    def putenv(key, value):
        original(key, value)
        name = key.decode() if isinstance(key, bytes) else key
        torch = sys.modules.get("torch")
        if name == "OMP_NUM_THREADS" and torch is not None:
            _set_threads(torch, value.decode() if isinstance(value, bytes) else value)

    os.putenv = putenv  # os.environ's assignments call the module's putenv


def _worker_path(path: list[str], old: str, new: str, script: str) -> list[str]:
    """``sys.path`` as ``python SCRIPT`` would have it with ``PYTHONPATH=new``: the script's folder,
    then ``new``'s entries, then the interpreter's own (``path`` without its first entry and ``old``'s)."""
    old_entries = {os.path.abspath(e) for e in old.split(os.pathsep) if e}
    own = [e for e in path[1:] if os.path.abspath(e) not in old_entries]
    return [os.path.dirname(os.path.abspath(script)), *(e for e in new.split(os.pathsep) if e), *own]


def _child(request: dict[str, Any], fds: list[int], conn: socket.socket, base_pythonpath: str) -> int:
    """Become ``setup_worker.py ARGV`` and the worker it execs; returns the exit code."""
    import runpy
    import threading

    for target, fd in enumerate(fds[:3]):
        os.dup2(fd, target)
    for fd in fds:
        if fd > 2:
            os.close(fd)
    context, _, rest = _split(request["argv"])
    os.environ.clear()
    os.environ.update(worker_env(request["env"], context or {}))
    os.chdir(os.path.join(request["cwd"], _folder(context or {}) or ""))  # a working_dir's `cd DIR &&`
    os.environ["PWD"] = os.getcwd()  # as the shell that execs a fresh worker sets it
    # The server's own modules: a worker imports migrate's from where its PYTHONPATH says (a job's
    # py_modules), as a fresh one would.
    for name in [n for n in sys.modules if n == "migrator" or n.startswith("migrator.")]:
        del sys.modules[name]
    _follow_omp_num_threads()
    torch = sys.modules.get("torch")
    if torch is not None and "OMP_NUM_THREADS" in os.environ:
        _set_threads(torch, os.environ["OMP_NUM_THREADS"])
    # ``python -u``: unbuffered standard streams, as setup_worker.py's exec asks for.
    sys.stdin = open(0, closefd=False)  # noqa: SIM115
    sys.stdout, sys.stderr = (io.TextIOWrapper(io.FileIO(fd, "w", closefd=False), encoding=stream.encoding,
                                               errors=stream.errors, write_through=True)
                              for fd, stream in ((1, sys.stdout), (2, sys.stderr)))

    def watch() -> None:  # the client is what the raylet started: when it is gone, so is the worker
        try:
            while conn.recv(1):
                pass
        except OSError:
            pass
        os._exit(1)

    threading.Thread(target=watch, name="migrate-warm-client", daemon=True).start()
    sys.argv = list(rest)
    sys.path[:] = _worker_path(sys.path, base_pythonpath, os.environ.get("PYTHONPATH", ""), rest[0])
    return exit_code(lambda: runpy.run_path(rest[0], run_name="__main__"))


def _set_threads(torch, value: str) -> None:
    try:
        torch.set_num_threads(max(int(value), 1))
    except (ValueError, RuntimeError):
        pass


# -- the server ---------------------------------------------------------------------------------------
def _receive(conn: socket.socket) -> tuple[dict[str, Any], list[int]]:
    header, fds, _, _ = socket.recv_fds(conn, 4, 3)
    (size,) = struct.unpack("!I", header)
    body = bytearray()
    while len(body) < size:
        chunk = conn.recv(min(65536, size - len(body)))
        if not chunk:
            raise OSError("the client went away")
        body.extend(chunk)
    return json.loads(body), fds


def serve(socket_path: str, statements: list[str], standins: bool = False) -> int:
    base_env = dict(os.environ)
    if "OMP_NUM_THREADS" not in os.environ:  # what Ray sets for a 1-CPU actor before torch is imported
        os.environ["OMP_NUM_THREADS"] = "1"
    if standins:  # what the stand-ins set on a worker before its task imports anything (warm.py does the same)
        from migrator.runtime.standins import OFFLINE_ENV

        for key, value in OFFLINE_ENV.items():
            os.environ.setdefault(key, value)
    preload(statements)
    os.environ.clear()
    os.environ.update(base_env)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    partial = socket_path + ".part"
    listener.bind(partial)
    listener.listen(64)
    os.rename(partial, socket_path)  # clients connect only once it listens
    children: dict[int, socket.socket] = {}
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    while True:
        for _ in selector.select(timeout=0.1 if children else 1.0):
            conn, _ = listener.accept()
            try:
                request, fds = _receive(conn)
            except (OSError, ValueError, struct.error):
                conn.close()
                continue
            why = refusal(request, base_env)
            if why:
                print(f"warm workers: a worker starts fresh: {why}", file=sys.stderr, flush=True)
                _send(conn, {"refused": why})
                conn.close()
                for fd in fds:
                    os.close(fd)
                continue
            pid = os.fork()
            if pid == 0:
                selector.close()
                listener.close()
                for other in children.values():
                    other.close()
                finish(_child(request, fds, conn, base_env.get("PYTHONPATH", "")))
            for fd in fds:
                os.close(fd)
            _send(conn, {"pid": pid})
            children[pid] = conn
        while children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            conn = children.pop(pid, None)
            if conn is not None:
                _send(conn, {"exit": os.waitstatus_to_exitcode(status)})
                conn.close()


def _send(conn: socket.socket, message: dict[str, Any]) -> None:
    try:
        conn.sendall(json.dumps(message).encode() + b"\n")
    except OSError:
        pass


def head(socket_path: str, shim: str, statements: list[str], ray_start_args: list[str]) -> int:
    """Start the fork server (in this session, so that stopping the cluster stops it), then run
    ``ray start`` with ``shim`` as the interpreter the raylet starts workers with."""
    subprocess.Popen([sys.executable, "-m", "migrator.runtime.warm_workers", "serve", socket_path, *statements],
                     stdin=subprocess.DEVNULL)
    sys.executable = shim  # read by ray start when it builds the raylet's worker command
    from ray.scripts.scripts import main as ray_main

    sys.argv = ["ray", "start", *ray_start_args]
    return ray_main() or 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["serve"]:
        return serve(argv[1], [a for a in argv[2:] if a != STANDINS], STANDINS in argv)
    if argv[:1] == ["head"] and "--" in argv:
        cut = argv.index("--")
        return head(argv[1], argv[2], argv[3:cut], argv[cut + 1:])
    print(__doc__.strip().splitlines()[-1], file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())

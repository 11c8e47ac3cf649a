"""A warm interpreter: the libraries a script imports, imported once for the several runs of it.

``migrate validate`` makes three runs in processes of its own: the original in plain Python, the
converted script in Ray Train's local mode, and the driver of the N-worker run. Each is a fresh
interpreter that first imports torch, transformers, datasets, Lightning...: on this project's 2-core
machine about 5 CPU-seconds of a 7-second run, three times over. Instead, one process (this module,
``python -m migrator.runtime.warm``) runs the scripts' import statements for those libraries once,
then forks a child per run. A child starts as a fresh interpreter would after those imports, and
runs ``python -m migrator.runtime.original|launch ...`` in it, with the run's own argv and
environment. The Ray workers are Ray's processes as before: nothing of this reaches them.

What may differ from a fresh interpreter, and how it is kept the same:

* **What a library reads from the environment when it is imported.** The server is started with
  the environment of the runs; a run whose environment differs in anything but ``RAY_*`` and
  ``MIGRATE_*`` (read by Ray, which is never imported here, and by migrate) is refused, and the
  caller starts a fresh interpreter. With ``--offline-standins`` the server sets the offline
  variables that the stand-ins set in a run before it imports anything (``standins.OFFLINE_ENV``).
* **Working directory.** A run in another folder changes to it and puts it first on ``sys.path``,
  as ``python -m`` would; one whose folder holds a module named like one the server imported
  (a script's own ``datasets.py``) is refused: a fresh interpreter would import that one. Folders
  a run adds to ``PYTHONPATH`` go on its ``sys.path`` as they would on a fresh interpreter's, on
  the same condition; a run without one of the server's is refused.
* **Random state.** Each run seeds ``random``, numpy and torch itself (``--seed``) after the fork.
* **Threads and devices.** Ray is never imported (its import reads variables each run sets, and
  its gRPC threads do not survive a fork); nor is anything the scripts import from their own
  folder. Should an import initialise CUDA, whose context does not survive a fork, the server
  refuses every run. The caller uses it only for CPU runs.
* **Exit.** A child exits as an interpreter begins to (threads joined, ``atexit`` handlers run,
  open files flushed and closed), then leaves at once (``finish``).

Protocol, one run at a time, on the server's stdin and stdout (the children inherit stdout, with
stderr on it, as a fresh process's output would be): after its imports the server writes a
``warm`` event (``ready``, with what it imported); the caller writes one JSON request per line
(``module``, ``argv``, ``env``, ``cwd``); the server answers with a ``warm`` event ``started``
(the child's pid) or ``refused`` (why), and when the child ends, ``exited`` with its exit code.
Everything between the two is the child's output. A ``probe`` request is only answered,
``accepted`` or ``refused``.

With ``--listen SOCKET`` the server binds the Unix socket before its imports and serves each
connection in a process forked from it, the connection standing for stdin and stdout: the same
protocol, for a series of ``migrate validate`` runs (``SHARED``; ``runner.WarmInterpreter.attach``).

    python -m migrator.runtime.warm SCRIPT... [--offline-standins] [--listen SOCKET]
"""

from __future__ import annotations

import ast
import contextlib
import gc
import json
import os
import sys
from typing import Any, Callable, Iterable, NoReturn

from migrator.runtime import events as ev

#: Packages worth importing ahead: each costs a fresh interpreter from a fraction of a second to
#: several seconds. Anything else a script imports (its own modules above all) is imported by the run.
PRELOADABLE = frozenset({
    "torch", "torchvision", "torchaudio", "torchtext", "transformers", "datasets", "evaluate", "accelerate",
    "lightning", "pytorch_lightning", "peft", "trl", "tokenizers", "safetensors", "numpy", "pandas", "sklearn",
    "scipy",
})
#: Variables a run may set differently from the server's: Ray reads them (never imported here), or migrate.
PER_RUN_PREFIXES = ("RAY_", "MIGRATE_")
OFF = "MIGRATE_FRESH_PROCESSES"  # "1": no warm interpreter, every run a fresh one
#: The Unix socket of a warm interpreter already serving (``--listen``), which ``migrate validate``
#: asks first: one that has imported the libraries for a whole series of validations.
SHARED = "MIGRATE_WARM_SERVER"


def preload_statements(sources: Iterable[str]) -> list[str]:
    """The top-level imports of ``sources`` that name a ``PRELOADABLE`` package, one name each
    (so that a name a library no longer has, ``from transformers import AdamW``, costs only itself)."""
    found: dict[str, None] = {}
    for source in sources:
        try:
            tree = ast.parse(source)
        except (SyntaxError, ValueError):
            continue
        for node in tree.body:
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] in PRELOADABLE:
                        found[f"import {alias.name}"] = None
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                if node.module.split(".")[0] in PRELOADABLE:
                    for alias in node.names:
                        if alias.name != "*":
                            found[f"from {node.module} import {alias.name}"] = None
    return list(found)


def differing(env: dict[str, str], base: dict[str, str], prefixes: tuple[str, ...] = PER_RUN_PREFIXES,
              names: frozenset[str] = frozenset()) -> list[str]:
    """The variables that ``env`` sets differently from ``base``, other than those that may
    differ (starting with one of ``prefixes``, or in ``names``)."""
    keys = set(env) | set(base)
    return sorted(k for k in keys if env.get(k) != base.get(k) and not k.startswith(prefixes) and k not in names)


def shadowed(entries: list[str], base: list[str], forgotten: frozenset[str] = frozenset()) -> list[str]:
    """The folders of ``entries`` not in ``base`` that hold a module (``name.py``, a package, an
    extension) named like one imported here from elsewhere: a fresh interpreter with them first
    on its path would import theirs. ``forgotten``: names a child imports again anyway."""
    imported = {name for name, module in list(sys.modules.items())
                if "." not in name and getattr(module, "__file__", None) and name not in forgotten}
    old = {os.path.abspath(e) for e in base if e}
    found = []
    for entry in (e for e in entries if e and os.path.abspath(e) not in old):
        try:
            names = {n.partition(".")[0] for n in os.listdir(entry)}
        except OSError:
            continue
        if names & imported:
            found.append(os.path.join(entry, sorted(names & imported)[0]))
    return found


def unforkable() -> str | None:
    """Why this process must fork nothing now: Ray's gRPC threads and a CUDA context do not
    survive a fork. None when it may."""
    if "ray" in sys.modules:
        return "an imported library imported ray"
    torch = sys.modules.get("torch")
    if torch is not None and getattr(getattr(torch, "cuda", None), "is_initialized", lambda: False)():
        return "an imported library initialised CUDA, which does not survive a fork"
    return None


# -- the server -------------------------------------------------------------------------------------
def preload(statements: list[str]) -> list[str]:
    """Run each statement; returns those that worked. Their output goes nowhere: a run's log
    starts with the run.

    What they imported is then frozen out of the cyclic garbage collector (``gc.freeze``): a forked
    child's collections, the full one at its exit above all, would otherwise go through all of it,
    writing to every object's header and so copying every page of it. A child of a server that had
    imported torch, transformers, datasets, Accelerate and Lightning took 1.7 CPU-s to do nothing
    and exit, 0.35 CPU-s frozen."""
    done = []
    saved = os.dup(1), os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    try:
        for statement in statements:
            try:
                exec(compile(statement, "<migrate-warm>", "exec"), {})
            except BaseException:  # a name the installed library lacks: the run will say so itself
                continue
            done.append(statement)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)
    gc.collect()  # what the imports left unreachable is freed, not frozen
    gc.freeze()
    return done


def _pythonpath(env: dict[str, str]) -> list[str]:
    return [entry for entry in env.get("PYTHONPATH", "").split(os.pathsep) if entry]


def _refusal(request: dict[str, Any], base_env: dict[str, str], base_cwd: str, standins: bool = False) -> str | None:
    why = unforkable()
    if why:
        return why
    if "standins" in request and bool(request["standins"]) != standins:
        return "stand-ins on here and not there, or the other way round"
    cwd = request.get("cwd") or base_cwd
    if os.path.realpath(cwd) != os.path.realpath(base_cwd):
        found = shadowed([cwd], [base_cwd])  # ``python -m`` puts the working directory first
        if found:
            return f"its working directory holds {found[0]}, named like a module imported here"
    env = request.get("env") or {}
    changed = differing(env, base_env, names=frozenset({"PYTHONPATH"}))
    if changed:
        return "another environment: " + ", ".join(changed[:5])
    # Folders added to PYTHONPATH (a script's own, which ``migrate validate`` adds) go on the
    # child's path as a fresh interpreter's would have them, unless one shadows an imported module.
    entries, base = _pythonpath(env), _pythonpath(base_env)
    if not set(base) <= set(entries):
        return "another environment: PYTHONPATH without " + next(e for e in base if e not in entries)
    found = shadowed(entries, base)
    if found:
        return f"its PYTHONPATH holds {found[0]}, named like a module imported here"
    return None


def _child(request: dict[str, Any], base_cwd: str) -> int:
    """In the forked child: become ``python -m MODULE ARGV...`` started in the request's working
    directory, and return its exit code."""
    import runpy

    cwd = request.get("cwd") or base_cwd
    if os.path.realpath(cwd) != os.path.realpath(base_cwd):
        os.chdir(cwd)
        if sys.path and sys.path[0] == base_cwd:  # where ``python -m`` put the working directory
            sys.path[0] = os.getcwd()
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)  # the request pipe is the server's
    os.close(devnull)
    sys.stdin = open(0, closefd=False)
    entries, base = _pythonpath(request["env"]), _pythonpath(dict(os.environ))
    if entries != base:  # as a fresh interpreter: the working directory, PYTHONPATH, then the rest
        sys.path[1:] = entries + [p for p in sys.path[1:] if p not in base]
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = [request["module"], *request["argv"]]
    return exit_code(lambda: runpy.run_module(request["module"], run_name="__main__", alter_sys=True))


def exit_code(main: Callable[[], object]) -> int:
    """Run ``main`` as an interpreter runs ``__main__``: the exit code it would end with, a
    ``sys.exit("message")`` or an uncaught exception printed to stderr as it would print them."""
    try:
        main()
    except SystemExit as exc:
        code = exc.code
        if code is None:
            return 0
        if isinstance(code, int):
            return code
        print(code, file=sys.stderr)
        return 1
    except BaseException:
        import traceback

        traceback.print_exc()
        return 1
    return 0


def finish(code: int) -> NoReturn:
    """End a forked child (or a server) as Python's own shutdown begins (``Py_FinalizeEx``): its non-daemon
    threads waited for, the ``atexit`` handlers run, every file it left open flushed and closed;
    then ``os._exit(code)``, without the teardown of each module and object that follows in a
    normal exit (whose finalizers Python does not promise to run).

    That teardown writes to the header of every object the child can reach, the libraries the
    server imported included, and so copies every page of them: 0.33 CPU-s for a child of a
    server that imported torch, transformers, datasets, Accelerate and Lightning to do nothing and
    exit, 0.01 CPU-s this way. Each run, each warm Ray worker is such a child."""
    import atexit
    import io
    import threading

    try:
        threading._shutdown()  # type: ignore[attr-defined]  # what Py_FinalizeEx does first
    except Exception:  # noqa: BLE001  (a private function: on a Python without it, skip the wait)
        pass
    atexit._run_exitfuncs()
    # Files the child opened and never closed: a normal exit closes them as it frees them (an
    # unflushed buffer, a gzip trailer). The server's own objects are frozen, not listed here.
    # Text layers first: each flushes into the buffer below it. The standard streams, and what
    # they write through, stay open to the end, flushed last.
    objects = gc.get_objects()
    kinds = {kind for kind in set(map(type, objects)) if issubclass(kind, io.IOBase)}  # one check per type
    opened = sorted((obj for obj in objects if type(obj) in kinds), key=lambda obj: not isinstance(obj, io.TextIOBase))
    del objects
    standard = set()
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        while stream is not None and id(stream) not in standard:
            standard.add(id(stream))
            stream = getattr(stream, "buffer", None) or getattr(stream, "raw", None)
    for obj in opened:
        with contextlib.suppress(Exception):
            obj.flush() if id(obj) in standard else obj.close()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def _answer(requests: Iterable[str], base_env: dict[str, str], base_cwd: str, standins: bool) -> None:
    """Take the run requests one by one, each forked, waited for and its exit code written, until
    the requests end. A forked run ends in ``finish``."""
    for line in requests:
        try:
            request = json.loads(line)
        except ValueError:
            continue
        why = _refusal(request, base_env, base_cwd, standins)
        if why:
            ev.write({"kind": "warm", "state": "refused", "why": why})
            continue
        if request.get("probe"):  # would it be taken? (``runner.WarmInterpreter.accepts``)
            ev.write({"kind": "warm", "state": "accepted"})
            continue
        sys.stdout.flush()
        sys.stderr.flush()
        # The child waits until "started" is out: no line of its own may come before it.
        go, gate = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(gate)
            os.read(go, 1)
            os.close(go)
            finish(_child(request, base_cwd))
        os.close(go)
        ev.write({"kind": "warm", "state": "started", "pid": pid})
        os.write(gate, b"!")
        os.close(gate)
        _, status = os.waitpid(pid, 0)
        ev.write({"kind": "warm", "state": "exited", "code": os.waitstatus_to_exitcode(status)})


def serve(scripts: list[str], standins: bool, listen: str | None = None) -> int:
    # What the runs are started with; what their stand-ins set in-process is set here before the imports.
    base_env, base_cwd = dict(os.environ), os.getcwd()
    listener = _bound(listen) if listen is not None else None  # connections wait for the imports
    if standins:
        from migrator.runtime.standins import OFFLINE_ENV

        for key, value in OFFLINE_ENV.items():
            os.environ.setdefault(key, value)
    sources = []
    for script in scripts:
        try:
            with open(script, encoding="utf-8") as f:
                sources.append(f.read())
        except (OSError, UnicodeDecodeError):
            pass
    imported = preload(preload_statements(sources))
    ready = {"kind": "warm", "state": "ready", "imported": imported}
    if listener is not None:
        return _listen(listener, ready, base_env, base_cwd, standins)
    ev.write(ready)
    _answer(sys.stdin, base_env, base_cwd, standins)
    finish(0)  # the caller waits for this exit: no teardown of everything imported


def _bound(path: str) -> Any:
    import socket

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(16)
    return listener


def _listen(listener: Any, ready: dict[str, Any], base_env: dict[str, str], base_cwd: str, standins: bool) -> int:
    """Serve whoever connects to the Unix socket ``listener`` is bound to (``SHARED``), each
    connection in a process forked from this one, with the connection for its standard streams:
    the same protocol as on stdin and stdout, the runs' output on the connection. Until SIGTERM."""
    import signal

    path = listener.getsockname()
    owner = os.getpid()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    ev.write({**ready, "listening": path})
    try:
        while True:
            with contextlib.suppress(ChildProcessError):  # connections served: no zombies
                while os.waitpid(-1, os.WNOHANG)[0]:
                    pass
            connection, _ = listener.accept()
            sys.stdout.flush()
            sys.stderr.flush()
            if os.fork() == 0:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                listener.close()
                for fd in (0, 1, 2):
                    os.dup2(connection.fileno(), fd)
                connection.close()
                ev.write(ready)
                _answer(open(0, encoding="utf-8", errors="replace", closefd=False), base_env, base_cwd, standins)
                finish(0)  # the connection's end
            connection.close()
    finally:
        if os.getpid() == owner:
            listener.close()
            with contextlib.suppress(OSError):
                os.unlink(path)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    standins = "--offline-standins" in argv
    argv = [a for a in argv if a != "--offline-standins"]
    listen = None
    if "--listen" in argv:
        at = argv.index("--listen")
        listen = argv[at + 1]
        del argv[at:at + 2]
    return serve(argv, standins, listen)


if __name__ == "__main__":
    sys.exit(main())

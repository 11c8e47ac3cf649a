"""The warm interpreter (``migrator.runtime.warm``): runs forked from it behave as fresh ones.

Each test starts a server on a small script of its own. numpy stands for the heavy libraries: it
is in ``PRELOADABLE`` and imports in a fraction of a second.
"""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import pytest

from migrator.runtime import runner, warm

ROOT = Path(__file__).resolve().parents[2]


def test_preload_statements_take_the_heavy_libraries_one_name_at_a_time() -> None:
    source = textwrap.dedent("""\
        from __future__ import annotations
        import os, numpy as np, torch.nn
        from transformers import AdamW, Trainer
        from . import sibling
        from mylib import train
        import ray.train
        from datasets import *
        def main():
            import lightning
    """)
    assert warm.preload_statements([source, "syntax error (", "import numpy"]) == [
        "import numpy", "import torch.nn", "from transformers import AdamW", "from transformers import Trainer",
    ]


def test_only_ray_and_migrate_variables_may_differ_from_the_servers() -> None:
    base = {"PATH": "/bin", "RAY_ADDRESS": "a", "HF_HUB_OFFLINE": "1"}
    assert warm.differing({"PATH": "/bin", "RAY_ADDRESS": "b", "MIGRATE_X": "1", "HF_HUB_OFFLINE": "1"}, base) == []
    assert warm.differing({"PATH": "/usr/bin", "RAY_ADDRESS": "a"}, base) == ["HF_HUB_OFFLINE", "PATH"]


@pytest.fixture
def server(tmp_path: Path):
    """A server for ``tmp_path/job.py`` (which imports numpy at the top), and the env runs get."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           "PYTHONUNBUFFERED": "1"}
    script = tmp_path / "job.py"
    script.write_text("import numpy\n")
    started = []

    def start(**kwargs) -> runner.WarmInterpreter:
        interpreter = runner.WarmInterpreter([str(script)], env=env, cwd=str(tmp_path), **kwargs)
        started.append(interpreter)
        return interpreter

    yield start, env, tmp_path
    for interpreter in started:
        interpreter.close()


def write_module(folder: Path, name: str, body: str) -> str:
    (folder / f"{name}.py").write_text(textwrap.dedent(body))
    return name


def run(interpreter: runner.WarmInterpreter, module: str, env: dict, cwd: Path, *argv: str, **kwargs):
    lines: list[str] = []
    outcome = interpreter.run(module, list(argv), cwd=str(cwd), env=env, on_event=lambda e: None,
                              on_line=lines.append, **kwargs)
    return outcome, lines


def test_a_run_sees_its_argv_env_and_an_empty_stdin_and_exits_like_an_interpreter(server) -> None:
    start, env, folder = server
    module = write_module(folder, "child_probe", """\
        import atexit, os, sys
        print("numpy already imported:", "numpy" in sys.modules)
        print("argv:", sys.argv[1:], "var:", os.environ.get("RAY_PROBE"))
        print("stdin:", repr(sys.stdin.read()))
        atexit.register(lambda: print("atexit ran", flush=True))
        sys.exit(int(sys.argv[1]))
    """)
    interpreter = start()
    outcome, lines = run(interpreter, module, {**env, "RAY_PROBE": "x"}, folder, "3", "--flag")
    assert outcome is not None and outcome.returncode == 3
    assert lines == ["numpy already imported: True", "argv: ['3', '--flag'] var: x", "stdin: ''", "atexit ran"]
    assert interpreter.imported == ["import numpy"]
    # The next run starts from the server's state again, not from the first run's.
    module = write_module(folder, "second", """\
        import os, sys
        print("var:", os.environ.get("RAY_PROBE"), "first run's module:", "child_probe" in sys.modules)
    """)
    outcome, lines = run(interpreter, module, env, folder)
    assert outcome is not None and outcome.returncode == 0
    assert lines == ["var: None first run's module: False"]
    assert interpreter.runs == 2


def test_a_run_ends_as_an_interpreter_does_without_tearing_everything_down(server) -> None:
    """``warm.finish``: what a normal exit does before its teardown still happens (a thread
    finishes, atexit handlers run, files left open are flushed and closed, a gzip stream gets its
    trailer, buffered stdout comes out), and the same in a fresh interpreter."""
    start, env, folder = server
    write_module(folder, "keeper", "files = []\n")  # a module of the user's holds them past the script's end
    module = write_module(folder, "leaves_things_open", """\
        import atexit, gzip, sys, threading, time
        import keeper
        log = open("log.txt", "w")
        log.write("written, never flushed")
        packed = gzip.open("data.gz", "wt")
        packed.write("compressed")
        keeper.files += [log, packed]
        threading.Thread(target=lambda: (time.sleep(0.3), open("thread.txt", "w").write("done"))).start()
        atexit.register(lambda: print("atexit ran"))
        sys.stdout = open(sys.stdout.fileno(), "w", buffering=4096, closefd=False)  # a block-buffered stdout
        print("buffered line")
    """)
    base_env = {**env, "PYTHONUNBUFFERED": ""}
    fresh = folder / "fresh"
    fresh.mkdir()
    import gzip
    import subprocess

    done = subprocess.run([sys.executable, "-m", module], cwd=fresh, env={**base_env, "PYTHONPATH": f"{folder}{os.pathsep}{base_env['PYTHONPATH']}"},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    interpreter = start()
    outcome, lines = run(interpreter, module, env, folder)
    assert outcome is not None and outcome.returncode == 0
    assert sorted(lines) == sorted(done.stdout.splitlines()) == ["atexit ran", "buffered line"]
    for where in (folder, fresh):
        assert (where / "log.txt").read_text() == "written, never flushed"
        assert (where / "thread.txt").read_text() == "done"
        assert gzip.decompress((where / "data.gz").read_bytes()) == b"compressed"


def test_a_run_that_dies_leaves_the_server_serving(server) -> None:
    start, env, folder = server
    crash = write_module(folder, "crash", "import os\nprint('going', flush=True)\nos.kill(os.getpid(), 9)\n")
    fails = write_module(folder, "fails", "raise ValueError('bad data')\n")
    interpreter = start()
    outcome, lines = run(interpreter, crash, env, folder)
    assert outcome is not None and outcome.returncode == -9 and lines == ["going"]
    outcome, lines = run(interpreter, fails, env, folder)
    assert outcome is not None and outcome.returncode == 1
    assert lines[-1] == "ValueError: bad data"


def test_a_run_past_its_time_is_stopped(server) -> None:
    start, env, folder = server
    module = write_module(folder, "slow", "import time\nprint('started', flush=True)\ntime.sleep(60)\nprint('never')\n")
    outcome, lines = run(start(), module, env, folder, timeout_s=0.5)
    assert outcome is not None and outcome.returncode == -15
    assert lines == ["started"] and outcome.output_tail[-1] == "(stopped: ran past 0 s)"


def test_another_environment_is_refused_and_runs_afresh(server) -> None:
    start, env, folder = server
    module = write_module(folder, "probe", "import os, sys\nprint(os.environ['HF_PROBE'], 'numpy' in sys.modules)\n")
    interpreter = start()
    outcome, _ = run(interpreter, module, {**env, "HF_PROBE": "1"}, folder)
    assert outcome is None
    assert interpreter.refusals == ["another environment: HF_PROBE"]
    # runner.run_module falls back to a fresh interpreter, where numpy is not imported yet.
    lines: list[str] = []
    outcome = runner.run_module(module, "", [], [], cwd=str(folder), env={**env, "HF_PROBE": "1"},
                                on_event=lambda e: None, on_line=lines.append, warm=interpreter)
    assert outcome.returncode == 0
    assert "1 False" in lines


def test_a_run_in_another_folder_starts_there_with_that_folder_first_on_its_path(server) -> None:
    start, env, folder = server
    other = folder / "other"
    other.mkdir()
    write_module(other, "helper", "VALUE = 'from the run folder'\n")
    module = write_module(other, "uses_helper", """\
        import os, sys, helper
        print(os.getcwd(), sys.path[0], helper.VALUE)
    """)
    interpreter = start()
    outcome, lines = run(interpreter, module, env, other)
    assert outcome is not None and outcome.returncode == 0, lines
    real = os.path.realpath(other)
    assert lines == [f"{real} {real} from the run folder"]
    assert interpreter.refusals == []


def test_a_folder_holding_a_module_named_like_an_imported_one_runs_afresh(server) -> None:
    """``python -m`` puts the working directory first: its ``numpy.py`` is what a fresh run imports."""
    start, env, folder = server
    other = folder / "shadowing"
    other.mkdir()
    write_module(other, "numpy", "MINE = True\n")
    module = write_module(other, "which", "import numpy\nprint(getattr(numpy, 'MINE', False))\n")
    interpreter = start()
    outcome, _ = run(interpreter, module, env, other)
    assert outcome is None
    assert interpreter.refusals == [f"its working directory holds {other / 'numpy'}, named like a module imported here"]
    lines: list[str] = []
    outcome = runner.run_module(module, "", [], [], cwd=str(other), env=env, on_event=lambda e: None,
                                on_line=lines.append, warm=interpreter)
    assert outcome.returncode == 0 and lines == ["True"]


def test_stand_ins_set_the_offline_variables_before_the_imports(server) -> None:
    start, env, folder = server
    env = {k: v for k, v in env.items() if k != "HF_HUB_OFFLINE"}
    module = write_module(folder, "offline", "import os\nprint(os.environ.get('HF_HUB_OFFLINE'))\n")
    interpreter = start(standins=True)
    outcome, lines = run(interpreter, module, env, folder)
    # Accepted although the server set the variable for its imports; the run's own environment is as given
    # (its stand-ins set the variable again in-process).
    assert outcome is not None and outcome.returncode == 0 and lines == ["None"]


def test_what_the_server_imported_is_frozen_out_of_a_runs_collections(server) -> None:
    """A child's collections (the full one at its exit) skip the server's objects: going through
    them would copy every page they are on (``warm.preload``)."""
    start, env, folder = server
    module = write_module(folder, "frozen", """\
        import gc, sys
        frozen = gc.get_freeze_count()
        print(frozen > 1000, "numpy" in sys.modules)
        gc.collect()
        print(gc.get_freeze_count() == frozen)
    """)
    outcome, lines = run(start(), module, env, folder)
    assert outcome is not None and outcome.returncode == 0 and lines == ["True True", "True"], lines


def test_a_server_that_cannot_start_takes_no_run(tmp_path: Path) -> None:
    interpreter = runner.WarmInterpreter([], env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": "/nowhere"},
                                         cwd=str(tmp_path))
    try:
        assert interpreter.run("anything", [], cwd=str(tmp_path), env={}, on_event=lambda e: None,
                               on_line=lambda line: None) is None
    finally:
        interpreter.close()


def test_the_server_module_stays_light() -> None:
    code = "import sys, migrator.runtime.warm, migrator.runtime.runner; print(sorted(m for m in ('torch', 'ray', 'numpy') if m in sys.modules))"
    import subprocess

    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert done.stdout.strip() == "[]"


@pytest.fixture
def listening(server):
    """A server for ``job.py`` listening on a socket (``--listen``): (socket path, env, folder)."""
    import subprocess
    import time

    _, env, folder = server
    socket = folder / "warm.sock"
    process = subprocess.Popen([sys.executable, "-m", "migrator.runtime.warm", "--listen", str(socket),
                                str(folder / "job.py")], cwd=folder, env=env)
    while not socket.exists():
        assert process.poll() is None, process.returncode
        time.sleep(0.02)
    yield str(socket), env, folder
    process.terminate()
    assert process.wait(timeout=20) == 0 and not socket.exists()  # SIGTERM: it ends and removes its socket


def test_a_listening_server_takes_connections_one_beside_another(listening) -> None:
    socket, env, folder = listening
    module = write_module(folder, "echo", "import sys\nprint('got', *sys.argv[1:])\nsys.exit(int(sys.argv[1]))\n")
    first, second = runner.WarmInterpreter.attach(socket), runner.WarmInterpreter.attach(socket)
    try:
        assert first is not None and second is not None and first.shared == socket
        for interpreter, code in ((first, 0), (second, 3), (first, 5)):  # the first holds its connection open
            outcome, lines = run(interpreter, module, env, folder, str(code))
            assert outcome is not None and outcome.returncode == code and lines == [f"got {code}"]
        assert first.imported == ["import numpy"] and first.runs == 2 and second.runs == 1
    finally:
        first.close()
        second.close()
    assert runner.WarmInterpreter.attach(str(folder / "nothing.sock")) is None


def test_a_listening_server_says_whether_it_would_take_a_run(listening, tmp_path_factory) -> None:
    socket, env, folder = listening
    interpreter = runner.WarmInterpreter.attach(socket)
    try:
        assert interpreter.accepts(env, str(folder))
        assert not interpreter.accepts({**env, "HOME": "/elsewhere"}, str(folder))
        assert not interpreter.accepts(env, str(folder), standins=True)
        assert interpreter.refusals[0] == "another environment: HOME" and "stand-ins" in interpreter.refusals[1]
        assert interpreter.runs == 0
    finally:
        interpreter.close()


def test_a_folder_added_to_pythonpath_comes_first_unless_it_shadows_an_import(listening, tmp_path_factory) -> None:
    """``migrate validate`` puts the script's folder on its runs' PYTHONPATH: a run forked from a
    server started without it sees it where a fresh interpreter would."""
    socket, env, folder = listening
    extra = tmp_path_factory.mktemp("scripts")
    module = write_module(extra, "where", "import sys\nprint(sys.path.index(sys.argv[1]))\n")
    added = {**env, "PYTHONPATH": os.pathsep.join([str(extra), env["PYTHONPATH"]])}
    interpreter = runner.WarmInterpreter.attach(socket)
    try:
        outcome, lines = run(interpreter, module, added, folder, str(extra))
        assert outcome is not None and outcome.returncode == 0 and lines == ["1"]  # after the working directory
        (extra / "numpy.py").write_text("")  # a fresh interpreter would import this one
        assert run(interpreter, module, added, folder, str(extra))[0] is None
        assert interpreter.refusals[-1].startswith(f"its PYTHONPATH holds {extra / 'numpy'}, named like")
        dropped = {**env, "PYTHONPATH": str(extra)}  # without the server's own entries
        assert run(interpreter, module, dropped, folder, str(extra))[0] is None
        assert "PYTHONPATH without" in interpreter.refusals[-1]
    finally:
        interpreter.close()


def test_the_tests_runs_fork_from_their_warm_interpreter(warm_driver, tmp_path: Path) -> None:
    """``tests/drivers.py``: what the runtime and end-to-end tests start is forked, not refused
    (each refusal is a fresh interpreter importing torch, transformers and Lightning again)."""
    if warm_driver.socket is None:
        pytest.skip(f"{warm.OFF}=1: every run starts afresh")
    (tmp_path / "probe_env.py").write_text("import os, sys\nprint(os.environ['HOME'], 'torch' in sys.modules)\n")
    done = warm_driver.run("probe_env", [], cwd=tmp_path, extra_env={"RAY_ADDRESS": "127.0.0.1:1"})
    assert done.returncode == 0 and done.forked, (done, warm_driver.refusals)
    assert done.output.split() == [str(warm_driver.home), "True"]

"""Warm Ray workers (``migrator.runtime.warm_workers``): a worker forked from the server behaves as
the fresh interpreter the raylet would have started.

No Ray here: the raylet's part is played by this test, which runs the shim with the arguments a
raylet gives ``setup_worker.py``; the "worker" is a small script that reports what it sees. numpy
stands for the heavy libraries. The end-to-end tests run every worker of their shared cluster
this way (``tests/e2e/conftest.py``); the tests that start clusters of their own run fresh ones.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from migrator.runtime import warm_workers

ROOT = Path(__file__).resolve().parents[2]
CONTEXT = json.dumps({"command_prefix": [], "env_vars": {"RAY_FROM_RUNTIME_ENV": "${HOME}/x"},
                      "py_executable": sys.executable, "override_worker_entrypoint": None, "java_jars": []})

WORKER = textwrap.dedent("""\
    import json, os, sys
    out = {"argv": sys.argv[1:], "pid": os.getpid(), "ppid": os.getppid(), "cwd": os.getcwd(),
           "numpy_preloaded": "numpy" in sys.modules, "path0": sys.path[0],
           "env": {k: os.environ.get(k) for k in ("RAY_FROM_RUNTIME_ENV", "RAY_X", "OMP_NUM_THREADS")},
           "stdin": sys.stdin.read()}
    print(json.dumps(out))
    if "--sleep" in sys.argv:
        print("sleeping", flush=True)
        import time; time.sleep(60)
    sys.exit(int(sys.argv[-1]) if sys.argv[-1].isdigit() else 0)
""")


@pytest.fixture
def cluster(tmp_path: Path):
    """A running server (numpy preloaded), its shim, a fake ``setup_worker.py`` and a worker script."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_") and k != "OMP_NUM_THREADS"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    sock = tmp_path / "warm.sock"
    shim = tmp_path / "python"
    shim.write_text(warm_workers.shim_text(str(sock)))
    shim.chmod(0o755)
    worker = tmp_path / "worker.py"
    worker.write_text(WORKER)
    setup = tmp_path / "setup_worker.py"  # never run by the server: it plays setup_worker.py itself
    setup.write_text("raise SystemExit('the fresh path ran setup_worker.py')\n")
    server = subprocess.Popen([sys.executable, "-m", "migrator.runtime.warm_workers", "serve", str(sock), "import numpy"],
                              env=env, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not sock.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sock.exists(), "the server never listened"

    def start(*args: str, extra_env: dict | None = None, stdin: str = "", **kwargs) -> subprocess.Popen:
        command = [str(shim), str(setup), str(worker), *args, f"--serialized-runtime-env-context={CONTEXT}",
                   "--language=PYTHON"]
        process = subprocess.Popen(command, env={**env, **(extra_env or {})}, cwd=tmp_path, stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)
        process.stdin.write(stdin)
        process.stdin.close()
        process.stdin = None  # communicate() must not flush it
        return process

    yield start, server, env, tmp_path
    server.kill()
    server.wait()


def report(process: subprocess.Popen) -> tuple[dict, int, str]:
    out, err = process.communicate(timeout=60)
    assert out, err
    return json.loads(out.splitlines()[0]), process.returncode, err


def test_a_worker_is_forked_with_its_argv_env_cwd_and_streams_and_exits_with_its_code(cluster) -> None:
    start, server, env, tmp_path = cluster
    process = start("--node-id=abc", "7", extra_env={"RAY_X": "per-worker"}, stdin="from the raylet")
    seen, code, _ = report(process)
    assert code == 7
    assert seen["ppid"] == server.pid != seen["pid"]  # forked by the server, not started by the shim
    assert seen["numpy_preloaded"]
    assert seen["argv"] == ["--node-id=abc", "7"]  # setup_worker.py's own options are not the worker's
    assert seen["env"] == {"RAY_FROM_RUNTIME_ENV": f"{env['HOME']}/x", "RAY_X": "per-worker", "OMP_NUM_THREADS": None}
    assert seen["cwd"] == str(tmp_path)
    assert seen["path0"] == str(tmp_path)  # the worker script's folder, as `python worker.py` has it
    assert seen["stdin"] == "from the raylet"


def test_another_environment_starts_a_fresh_interpreter(cluster) -> None:
    start, server, _, _ = cluster
    process = start("0", extra_env={"HF_HUB_OFFLINE": "1"})
    out, err = process.communicate(timeout=60)
    assert process.returncode == 1
    assert "the fresh path ran setup_worker.py" in err  # the shim exec'd the real interpreter on the raylet's arguments
    server.kill()
    assert "a worker starts fresh: another environment: HF_HUB_OFFLINE" in server.communicate()[1]


def test_without_a_server_the_shim_is_plain_python(cluster, tmp_path: Path) -> None:
    start, server, env, _ = cluster
    shim = tmp_path / "python"
    done = subprocess.run([str(shim), "-c", "import sys; print(sys.flags.no_site, sys.argv)"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["0", "['-c']"]  # a daemon ray start launches: the real interpreter, with site
    server.kill()
    server.wait()
    (tmp_path / "warm.sock").unlink()
    process = start("0")
    process.communicate(timeout=60)
    assert process.returncode == 1  # no server: setup_worker.py ran as the raylet asked


def test_a_killed_shim_takes_its_worker_with_it(cluster) -> None:
    start, _, _, _ = cluster
    process = start("--sleep")
    first = json.loads(process.stdout.readline())
    assert process.stdout.readline().strip() == "sleeping"
    process.kill()  # what the raylet does to a worker that will not exit
    process.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(first["pid"], 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail("the forked worker outlived the process the raylet started")


def test_a_terminated_shim_passes_the_signal_on(cluster) -> None:
    start, _, _, _ = cluster
    process = start("--sleep")
    process.stdout.readline()
    assert process.stdout.readline().strip() == "sleeping"
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == -signal.SIGTERM


@pytest.fixture
def server_state(monkeypatch):
    """This process as a server sees it: other tests in it may have imported ray, which a server never does."""
    monkeypatch.delitem(sys.modules, "ray", raising=False)


def test_refusals(server_state) -> None:
    base = {"PATH": "/bin", "HOME": "/h"}
    request = lambda env, **context: {  # noqa: E731
        "argv": ["setup_worker.py", "default_worker.py", "--x",
                 f"--serialized-runtime-env-context={json.dumps(context)}", "--language=PYTHON"],
        "env": env, "cwd": "/"}
    assert warm_workers.refusal(request({**base, "RAY_NODE": "1", "OMP_NUM_THREADS": "2"}), base) is None
    assert warm_workers.refusal(request(base, env_vars={"TOKENIZERS_PARALLELISM": "false"}), base) == \
        "another environment: TOKENIZERS_PARALLELISM"
    assert warm_workers.refusal(request(base, py_executable="uv run python"), base) == \
        "its runtime environment names another interpreter"
    assert warm_workers.refusal(request(base, command_prefix=["conda", "activate", "x", "&&"]), base) == \
        "its runtime environment wraps the worker"
    java = request(base)
    java["argv"][-1] = "--language=JAVA"
    assert warm_workers.refusal(java, base) == "not a Python worker"


def test_a_working_dir_is_changed_to_unless_it_shadows_an_imported_library(tmp_path: Path, server_state) -> None:
    base = {"PATH": "/bin"}
    plain, shadowing = tmp_path / "plain", tmp_path / "shadowing"
    for folder in (plain, shadowing):
        folder.mkdir()
        (folder / "train.py").write_text("")
    (shadowing / "json.py").write_text("")  # imported here (and by every Ray worker) from the standard library
    request = lambda folder: {  # noqa: E731  (what Ray's working_dir plugin gives a worker)
        "argv": ["setup_worker.py", "default_worker.py", "--language=PYTHON", "--serialized-runtime-env-context="
                 + json.dumps({"command_prefix": ["cd", str(folder), "&&"],
                               "env_vars": {"PYTHONPATH": f"{folder}:${{PYTHONPATH}}"}})],
        "env": base, "cwd": "/"}
    assert warm_workers.refusal(request(plain), base) is None
    assert warm_workers._folder({"command_prefix": ["cd", str(plain), "&&"]}) == str(plain)
    assert warm_workers.refusal(request(shadowing), base) == \
        f"{shadowing / 'json'} on its PYTHONPATH would shadow an imported library"
    assert warm_workers._folder({"command_prefix": ["source", "venv/bin/activate", "&&"]}) is False


def test_sys_path_is_the_one_python_gives_the_worker_script() -> None:
    path = ["/srv", "/old/pp", "/usr/lib/python3.11", "/site-packages"]
    assert warm_workers._worker_path(path, "/old/pp", "/new/a:/new/b", "/ray/workers/default_worker.py") == [
        "/ray/workers", "/new/a", "/new/b", "/usr/lib/python3.11", "/site-packages"]


def test_validate_preloads_the_scripts_libraries_for_cpu_runs_only(tmp_path: Path, monkeypatch) -> None:
    from migrator.runtime import validate

    script = tmp_path / "train.py"
    script.write_text("import os\nimport torch\nfrom transformers import Trainer\nfrom mylib import x\n")
    settings = validate.Settings(original=script)
    assert validate.worker_preloads(settings, [script], use_gpu=False) == [
        "import torch", "from transformers import Trainer"]
    settings.standins = True
    assert validate.worker_preloads(settings, [script], use_gpu=False)[-1] == warm_workers.STANDINS
    assert validate.worker_preloads(settings, [script], use_gpu=True) is None
    monkeypatch.setenv(warm_workers.OFF, "1")
    assert validate.worker_preloads(settings, [script], use_gpu=False) is None

"""End-to-end harness: one local Ray cluster for the whole session, and ``run_converted``.

The cluster starts the first time a test runs a script (so a test that fails at conversion
costs nothing) and is stopped at the end of the session. It uses a private temp dir and free
ports, and is stopped by killing only the processes in the session its ``ray start`` opened:
``ray stop`` would kill every Ray cluster on the machine, other people's included.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUN_TIMEOUT_S = 240
# 4 logical CPUs so that 2 workers plus Ray Data tasks fit on a 2-core box.
NUM_CPUS = 4


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(text: str, lines: int = 60) -> str:
    return "\n".join(text.splitlines()[-lines:])


class LocalRayCluster:
    """A head node started on first use; ``address`` is what RAY_ADDRESS should hold."""

    def __init__(self) -> None:
        self._sid: int | None = None
        self._temp_dir: str | None = None
        self.address: str | None = None

    def ensure_started(self) -> str:
        if self.address is None:
            self._start()
        assert self.address is not None
        return self.address

    def _start(self) -> None:
        # Short path: Ray's unix sockets live below it and must stay under ~107 characters.
        self._temp_dir = tempfile.mkdtemp(prefix="migrate-e2e-ray-")
        port = _free_port()
        worker_base = random.randrange(30000, 50000, 200)  # a private range: raylets hand out ports in order
        command = [
            str(Path(sys.executable).with_name("ray")), "start", "--head",
            "--node-ip-address", "127.0.0.1", "--port", str(port),
            "--num-cpus", str(NUM_CPUS), "--num-gpus", "0", "--object-store-memory", str(512 * 1024**2),
            "--include-dashboard=false", "--disable-usage-stats", "--temp-dir", self._temp_dir,
            "--dashboard-port", str(_free_port()), "--node-manager-port", str(_free_port()),
            "--object-manager-port", str(_free_port()), "--metrics-export-port", str(_free_port()),
            "--dashboard-agent-listen-port", str(_free_port()), "--dashboard-agent-grpc-port", str(_free_port()),
            "--runtime-env-agent-port", str(_free_port()),
            "--min-worker-port", str(worker_base), "--max-worker-port", str(worker_base + 199),
        ]
        # A new session: every Ray process started from here carries its id, which is how stop() finds them.
        # Output goes to a file, not a pipe: the daemons inherit it and would hold a pipe open.
        log = Path(self._temp_dir, "ray-start.log")
        with log.open("w") as out:
            process = subprocess.Popen(
                command, cwd=self._temp_dir, env={**os.environ, "RAY_AUTH_MODE": "disabled"},
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )
        self._sid = process.pid
        if process.wait(timeout=120) != 0:
            output = log.read_text(errors="replace")
            self.stop()
            pytest.fail(f"ray start failed (exit {process.returncode}):\n{_tail(output)}")
        self.address = f"127.0.0.1:{port}"

    def stop(self) -> None:
        if self._sid is not None:
            _kill_session(self._sid)
            self._sid = None
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
            self._temp_dir = None
        self.address = None


def _kill_session(sid: int, grace_s: float = 5.0) -> None:
    """SIGTERM, then SIGKILL, the processes of one session, as ``ray stop`` does for all of Ray's.

    gcs_server, raylet, the autoscaler monitor and the runtime-env agent are still alive 10 s
    after SIGTERM, so waiting longer buys nothing: the temp dir they would tidy is removed anyway.
    """
    import psutil  # comes with ray, which the e2e tests need anyway

    def members() -> list[int]:
        found = []
        for pid in psutil.pids():
            try:
                if pid != os.getpid() and os.getsid(pid) == sid:
                    found.append(pid)
            except OSError:
                pass
        return found

    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in members():
            try:
                os.kill(pid, sig)
            except OSError:
                pass
        deadline = time.monotonic() + grace_s
        while members() and time.monotonic() < deadline:
            time.sleep(0.2)


@pytest.fixture(scope="session")
def ray_cluster() -> LocalRayCluster:
    cluster = LocalRayCluster()
    yield cluster
    cluster.stop()


@pytest.fixture
def run_converted(ray_cluster: LocalRayCluster, tmp_path: Path) -> Callable[..., dict]:
    """Run a script through ``migrator.runtime.launch`` against the session cluster.

    Returns the launcher's JSON summary; fails the test with the script's output tail if the
    script fails, times out, or writes no summary.
    """

    def run(path: str | os.PathLike, *args: str) -> dict:
        address = ray_cluster.ensure_started()
        home = tmp_path / "home"
        home.mkdir(exist_ok=True)
        summary_path = tmp_path / "summary.json"
        env = {
            **os.environ,
            "RAY_ADDRESS": address,
            "RAY_AUTH_MODE": "disabled",
            "HOME": str(home),  # keeps ~/ray_results, ~/.cache and the like out of the real home
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        }
        command = [
            sys.executable, "-m", "migrator.runtime.launch", str(path),
            "--storage-path", str(tmp_path / "ray_results"), "--summary", str(summary_path), "--", *args,
        ]
        try:
            done = subprocess.run(command, cwd=Path(path).parent, env=env, capture_output=True, text=True,
                                  timeout=RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired as exc:
            output = (exc.stderr or b"").decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr or ""
            pytest.fail(f"{Path(path).name} ran past {RUN_TIMEOUT_S} s; its stderr ended with:\n{_tail(output)}")
        if not summary_path.exists():
            pytest.fail(f"{Path(path).name} wrote no summary (exit {done.returncode}); stderr:\n{_tail(done.stderr)}")
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
        if done.returncode != 0 or summary["error"]:
            pytest.fail(f"{Path(path).name} failed: {summary['error']} (exit {done.returncode}); stderr:\n"
                        f"{_tail(done.stderr)}")
        return summary

    return run

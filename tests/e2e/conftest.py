"""End-to-end harness: one local Ray cluster for the whole session, and ``run_converted``.

The cluster starts the first time a test runs a script (so a test that fails at conversion
costs nothing) and is stopped at the end of the session. It uses a private temp dir and free
ports, and is stopped by killing only the processes in the session its ``ray start`` opened:
``ray stop`` would kill every Ray cluster on the machine, other people's included
(``migrator.runtime.cluster``, which ``migrate validate`` uses too).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest

from migrator.runtime.cluster import ClusterError, LocalCluster

ROOT = Path(__file__).resolve().parents[2]
RUN_TIMEOUT_S = 240
# 4 logical CPUs so that 2 workers plus Ray Data tasks fit on a 2-core box.
NUM_CPUS = 4


def _tail(text: str, lines: int = 60) -> str:
    return "\n".join(text.splitlines()[-lines:])


class LocalRayCluster(LocalCluster):
    """The session's head node (``migrator.runtime.cluster``), started on first use.

    It serves the dashboard on loopback too, so ``dashboard_url`` takes Ray Jobs API submissions.
    """

    def __init__(self) -> None:
        super().__init__(num_cpus=NUM_CPUS, num_gpus=0, dashboard=True)

    def ensure_jobs_url(self) -> str:
        self.ensure_started()
        assert self.dashboard_url is not None
        return self.dashboard_url

    def start(self, timeout_s: float = 180) -> None:
        try:
            super().start(timeout_s)
        except ClusterError as exc:
            pytest.fail(str(exc))


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

    def run(path: str | os.PathLike, *args: str, timeout: int = RUN_TIMEOUT_S) -> dict:
        address = ray_cluster.ensure_started()
        home = tmp_path / "home"
        home.mkdir(exist_ok=True)
        summary_path = tmp_path / "summary.json"
        env = {
            **os.environ,
            "RAY_ADDRESS": address,
            **ray_cluster.driver_env,  # the cluster keeps token authentication on (runtime/privacy.py)
            "HOME": str(home),  # keeps ~/ray_results, ~/.cache and the like out of the real home
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        }
        command = [
            sys.executable, "-m", "migrator.runtime.launch", str(path),
            "--storage-path", str(tmp_path / "ray_results"), "--summary", str(summary_path), "--", *args,
        ]
        try:
            done = subprocess.run(command, cwd=Path(path).parent, env=env, capture_output=True, text=True,
                                  timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            output = (exc.stderr or b"").decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr or ""
            pytest.fail(f"{Path(path).name} ran past {timeout} s; its stderr ended with:\n{_tail(output)}")
        if not summary_path.exists():
            pytest.fail(f"{Path(path).name} wrote no summary (exit {done.returncode}); stderr:\n{_tail(done.stderr)}")
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
        if done.returncode != 0 or summary["error"]:
            pytest.fail(f"{Path(path).name} failed: {summary['error']} (exit {done.returncode}); stderr:\n"
                        f"{_tail(done.stderr)}")
        return summary

    return run

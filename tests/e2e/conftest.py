"""End-to-end harness: one local Ray cluster for the whole test run, and ``run_converted``.

The cluster starts the first time a test runs a script (so a test that fails at conversion
costs nothing) and is stopped at the end. Under ``pytest -n`` every worker process attaches to
that one cluster: the first to need it starts it, the last to finish stops it (an idle head
node costs about 5% of a core, its start about 5 CPU-s). It uses a private temp dir and free
ports, and is stopped by killing only the processes in the session its ``ray start`` opened:
``ray stop`` would kill every Ray cluster on the machine, other people's included
(``migrator.runtime.cluster``, which ``migrate validate`` uses too).
"""

from __future__ import annotations

import fcntl
import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

import pytest

from migrator.runtime.cluster import ClusterError, LocalCluster
from tests import drivers
from tests.drivers import Drivers

ROOT = Path(__file__).resolve().parents[2]
RUN_TIMEOUT_S = 240
# Logical CPUs: two runs at once (one per pytest worker), each with 2 workers plus Ray Data tasks.
NUM_CPUS = 8


def _tail(text: str, lines: int = 60) -> str:
    return "\n".join(text.splitlines()[-lines:])


class LocalRayCluster(LocalCluster):
    """The test run's head node (``migrator.runtime.cluster``), started on first use and shared
    by every pytest worker process through a state file and a lock in ``folder``.

    It serves the dashboard on loopback too, so ``dashboard_url`` takes Ray Jobs API submissions.
    """

    def __init__(self, folder: Path) -> None:
        super().__init__(num_cpus=NUM_CPUS, num_gpus=0, dashboard=True, warm_workers=drivers.WARM_WORKERS)
        self._state = folder / "ray-cluster.json"
        self._lock = folder / "ray-cluster.lock"

    @contextmanager
    def _locked(self):
        with self._lock.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def ensure_jobs_url(self) -> str:
        self.ensure_started()
        assert self.dashboard_url is not None
        return self.dashboard_url

    def ensure_started(self) -> str:
        if self.address is None:
            with self._locked():
                state = json.loads(self._state.read_text()) if self._state.exists() else None
                if state is None:
                    self.start()
                    state = {"users": 0, "sid": self._sid, "temp_dir": self._temp_dir, "address": self.address,
                             "dashboard_url": self.dashboard_url, "driver_env": self.driver_env}
                else:  # another worker's: attach
                    self._sid, self._temp_dir, self.address = state["sid"], state["temp_dir"], state["address"]
                    self.dashboard_url, self.driver_env = state["dashboard_url"], state["driver_env"]
                state["users"] += 1
                self._state.write_text(json.dumps(state))
        assert self.address is not None
        return self.address

    def start(self, timeout_s: float = 180) -> None:
        try:
            super().start(timeout_s)
        except ClusterError as exc:
            pytest.fail(str(exc))

    def release(self) -> None:
        """Detach; the last worker attached stops the cluster."""
        if self.address is None:
            return
        with self._locked():
            state = json.loads(self._state.read_text())
            state["users"] -= 1
            if state["users"] > 0:
                self._state.write_text(json.dumps(state))
                self._sid = self._temp_dir = self.address = self.dashboard_url = None
                return
            self._state.unlink()
            self.stop()


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory, warm_driver: Drivers) -> LocalRayCluster:
    # warm_driver: what runs against it (``migrate validate`` too) forks from the test process's
    # warm interpreter (tests/drivers.py), which starts importing now.
    # Under xdist each worker's base temp is a folder of the run's own: that one is shared.
    base = tmp_path_factory.getbasetemp()
    cluster = LocalRayCluster(base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base)
    yield cluster
    cluster.release()


@pytest.fixture
def run_converted(ray_cluster: LocalRayCluster, warm_driver: Drivers, tmp_path: Path) -> Callable[..., dict]:
    """Run a script through ``migrator.runtime.launch`` against the session cluster.

    Returns the launcher's JSON summary; fails the test with the script's output tail if the
    script fails, times out, or writes no summary. ``events=True`` runs it as ``migrate run``
    does, with the workers' steps and every ``ray.train.report`` recorded (``latest_metrics``).
    """

    def run(path: str | os.PathLike, *args: str, timeout: int = RUN_TIMEOUT_S, events: bool = False) -> dict:
        address = ray_cluster.ensure_started()
        summary_path = tmp_path / "summary.json"
        # the cluster keeps token authentication on (runtime/privacy.py)
        env = {"RAY_ADDRESS": address, **ray_cluster.driver_env}
        argv = [str(path), "--storage-path", str(tmp_path / "ray_results"), "--summary", str(summary_path),
                *(["--events"] if events else []), "--", *args]
        name = Path(path).name
        done = warm_driver.run("migrator.runtime.launch", argv, cwd=Path(path).parent, extra_env=env, timeout=timeout)
        if done.timed_out:
            pytest.fail(f"{name} ran past {timeout} s; its output ended with:\n{_tail(done.output)}")
        if not summary_path.exists():
            pytest.fail(f"{name} wrote no summary (exit {done.returncode}); its output ended with:\n"
                        f"{_tail(done.output)}")
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
        if done.returncode != 0 or summary["error"]:
            pytest.fail(f"{name} failed: {summary['error']} (exit {done.returncode}); its output ended with:\n"
                        f"{_tail(done.output)}")
        return summary

    return run

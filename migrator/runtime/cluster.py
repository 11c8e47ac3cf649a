"""A private Ray head node on this machine: ``ray start --head`` on loopback, stopped exactly.

``migrate validate`` starts one to run the converted script twice (1 worker, then N) without
paying for a cluster start each time; the end-to-end tests start one per session. Everything is
private: a temp dir of its own, free ports, a worker port range of its own, and stopping kills
only the processes of the session its ``ray start`` opened (``ray stop`` would kill every Ray
cluster on the machine, other people's included). Standard library only until ``stop``.
"""

from __future__ import annotations

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

from migrator.runtime import local_runs, privacy, warm_workers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ClusterError(RuntimeError):
    pass


class LocalCluster:
    """A head node started on first use; ``address`` is what ``RAY_ADDRESS`` should hold.

    With ``dashboard=True`` it also serves the dashboard (and so the Jobs API) on loopback;
    ``dashboard_url`` is then the ``http://127.0.0.1:PORT`` to submit jobs to.
    """

    def __init__(self, num_cpus: int = 4, num_gpus: int | None = 0, dashboard: bool = False,
                 env: dict[str, str] | None = None, warm_workers: list[str] | None = None) -> None:
        self.num_cpus = num_cpus
        #: Import statements a fork server runs once for every Python worker of the cluster to
        #: start from (``migrator.runtime.warm_workers``; for CPU runs: it refuses workers once
        #: CUDA is initialised); None or empty: every worker a fresh interpreter.
        self.warm_workers = warm_workers
        self.num_gpus = num_gpus
        self.dashboard = dashboard
        self.env = env or {}
        self._sid: int | None = None
        self._temp_dir: str | None = None
        self.address: str | None = None
        self.dashboard_url: str | None = None
        #: What a driver attaching to this cluster adds to its environment: the auth token,
        #: loopback, and Ray Train's settings for local runs (``local_runs``).
        self.driver_env: dict[str, str] = {}

    def ensure_started(self) -> str:
        if self.address is None:
            self.start()
        assert self.address is not None
        return self.address

    #: Ray's own words when its raylet does not register with the GCS within the 30 s that
    #: ``ray start`` waits (a fixed deadline, ray/_private/node.py): on a machine busy enough
    #: (two cores, two other clusters starting) it happened; a second try starts.
    OVERLOADED = "The current node timed out during startup"

    def start(self, timeout_s: float = 180) -> None:
        try:
            self._start(timeout_s)
        except ClusterError as exc:
            if self.OVERLOADED not in str(exc):
                raise
            self._start(timeout_s)

    def _start(self, timeout_s: float) -> None:
        # Short path: Ray's unix sockets live below it and must stay under ~107 characters.
        self._temp_dir = tempfile.mkdtemp(prefix="migrate-ray-", dir="/tmp")
        worker_base = random.randrange(30000, 50000, 200)  # a private range: raylets hand out ports in order

        def port_outside_range() -> int:
            while True:
                port = free_port()
                if not worker_base <= port < worker_base + 200:
                    return port

        ports = iter(sorted({port_outside_range() for _ in range(40)}))  # distinct, none in the worker range
        free = lambda: next(ports)  # noqa: E731
        port, dashboard_port = free(), free()
        ray = shutil.which("ray", path=os.path.dirname(sys.executable)) or shutil.which("ray") or "ray"
        command = [
            ray, "start", "--head",
            "--node-ip-address", "127.0.0.1", "--port", str(port),
            "--num-cpus", str(self.num_cpus),
            "--object-store-memory", str(512 * 1024**2),
            "--disable-usage-stats", "--temp-dir", self._temp_dir,
            "--dashboard-port", str(dashboard_port), "--node-manager-port", str(free()),
            "--object-manager-port", str(free()), "--metrics-export-port", str(free()),
            "--dashboard-agent-listen-port", str(free()), "--dashboard-agent-grpc-port", str(free()),
            "--runtime-env-agent-port", str(free()), "--ray-client-server-port", str(free()),
            "--min-worker-port", str(worker_base), "--max-worker-port", str(worker_base + 199),
        ]
        if self.num_gpus is not None:
            command += ["--num-gpus", str(self.num_gpus)]
        command += ["--include-dashboard=true", "--dashboard-host", "127.0.0.1"] if self.dashboard else ["--include-dashboard=false"]
        # Some of Ray's servers listen on every interface whatever the options say: token
        # authentication stays on (migrator.runtime.privacy). A driver attaching needs the token:
        # ``driver_env`` is what to add to its environment.
        env = dict(privacy.private_env({**os.environ, **self.env}))
        # Ray turns a node address of 127.0.0.1 into the machine's own address (and the dashboard
        # agent then listens on every interface) unless it runs a local-only cluster, as on
        # macOS: this makes it keep loopback. A private head takes no other nodes anyway.
        env.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        # A driver attaching needs the same setting, or it turns the 127.0.0.1 it was given into the
        # machine's address, where nothing of this cluster listens.
        self.driver_env = {k: env[k] for k in (*privacy.AUTH_VARS, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER") if k in env}
        self.driver_env.update(local_runs.local_run_env(env))
        # The Jobs API runs `python` from the head's PATH: make it this interpreter.
        env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
        if self.warm_workers and env.get(warm_workers.OFF) != "1":
            sock, shim = Path(self._temp_dir, "warm.sock"), Path(self._temp_dir, "python")
            shim.write_text(warm_workers.shim_text(str(sock)))
            shim.chmod(0o755)
            command = warm_workers.head_command(str(sock), str(shim), self.warm_workers, command[2:])
        # A new session: every Ray process started from here carries its id, which is how stop() finds them.
        # Output goes to a file, not a pipe: the daemons inherit it and would hold a pipe open.
        log = Path(self._temp_dir, "ray-start.log")
        with log.open("w") as out:
            process = subprocess.Popen(command, cwd=self._temp_dir, env=env, stdout=out, stderr=subprocess.STDOUT,
                                       start_new_session=True)
        self._sid = process.pid
        try:
            code = process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            code = None
        if code != 0:
            output = log.read_text(errors="replace")
            self.stop()
            tail = "\n".join(output.splitlines()[-40:])
            raise ClusterError(f"ray start failed (exit {code}):\n{tail}")
        self.address = f"127.0.0.1:{port}"
        if self.dashboard:
            self.dashboard_url = f"http://127.0.0.1:{dashboard_port}"
            self._wait_for_dashboard(timeout_s)

    def _wait_for_dashboard(self, timeout_s: float) -> None:
        import urllib.request

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                request = urllib.request.Request(f"{self.dashboard_url}/api/version")
                token = self.driver_env.get("RAY_AUTH_TOKEN")
                if token:  # token authentication is on: the dashboard answers only with it
                    request.add_header("Authorization", f"Bearer {token}")
                with urllib.request.urlopen(request, timeout=5) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(1)
        raise ClusterError(f"the dashboard at {self.dashboard_url} did not answer within {timeout_s:.0f} s")

    def stop(self) -> None:
        if self._sid is not None:
            kill_session(self._sid)
            self._sid = None
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
            self._temp_dir = None
        self.address = self.dashboard_url = None

    def __enter__(self) -> "LocalCluster":
        self.ensure_started()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def kill_session(sid: int, grace_s: float = 0.0, gone_s: float = 5.0) -> None:
    """SIGTERM, then after ``grace_s`` SIGKILL, the processes of one session; then wait up to
    ``gone_s`` for them to be gone, so that their temp dir can be removed.

    No grace by default: after SIGTERM, gcs_server, the raylet and the runtime-env agent were
    still alive 10 s later, and Ray's Python processes took 1.5 s to tear themselves down (Ray
    2.60, this machine), while ``migrate validate`` and the tests waited. Nothing in a cluster the
    runtime started holds the user's work: checkpoints are written to storage before a fit returns,
    and the temp dir the daemons would tidy is removed anyway.
    """

    def members() -> list[int]:
        return [pid for pid in session_members(sid) if pid != os.getpid()]

    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, gone_s)):
        for pid in members():
            try:
                os.kill(pid, sig)
            except OSError:
                pass
        deadline = time.monotonic() + wait_s
        while members() and time.monotonic() < deadline:
            time.sleep(0.05)


def session_members(sid: int) -> list[int]:
    """The running processes of session ``sid``: a zombie is gone but for its parent's wait, which
    init may take a second to do."""
    import psutil  # comes with ray

    found = []
    for pid in psutil.pids():
        try:
            if os.getsid(pid) == sid and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                found.append(pid)
        except (OSError, psutil.Error):
            pass
    return found

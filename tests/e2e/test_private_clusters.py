"""Every cluster the runtime starts is private: loopback only, or token authentication on.

Starts each kind (the embedded one of ``migrate run``, the private head of ``validate``; the head
with the Jobs dashboard is the session's own cluster, ``tests/e2e/conftest.py``) and lists the
listening sockets of its processes with psutil.
"""

from __future__ import annotations

import ipaddress
import subprocess
import sys
import time

import psutil
import pytest

from migrator.runtime import runner
from migrator.runtime.cluster import LocalCluster

# Measured (Ray 2.60, this machine): with node address 127.0.0.1 alone, the GCS, the raylet, the
# dashboard agent and the client server listened on every interface (``::``, ``0.0.0.0``) and the
# runtime-env agent on the machine's address; with RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 as well
# (a local-only cluster, as on macOS) every one of them listens on 127.0.0.1 (or ::ffff:127.0.0.1).
pytestmark = pytest.mark.e2e



def is_loopback(ip: str) -> bool:
    address = ipaddress.ip_address(ip.split("%")[0])
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1 is loopback too
    return address.is_loopback or bool(mapped and mapped.is_loopback)


def _listening(pids: set[int]) -> list[tuple[str, str, int, bool]]:
    """(process name, address, port, token auth on) for each listening TCP socket of ``pids``."""
    found = []
    for pid in pids:
        try:
            process = psutil.Process(pid)
            auth = process.environ().get("RAY_AUTH_MODE", "").lower() == "token" and bool(
                process.environ().get("RAY_AUTH_TOKEN") or process.environ().get("RAY_AUTH_TOKEN_PATH"))
            for conn in process.net_connections(kind="inet"):
                if conn.status == psutil.CONN_LISTEN:
                    found.append((process.name(), conn.laddr.ip, conn.laddr.port, auth))
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def _session(sid: int) -> set[int]:
    pids = set()
    for pid in psutil.pids():
        try:
            if __import__("os").getsid(pid) == sid:
                pids.add(pid)
        except OSError:
            pass
    return pids


def _assert_private(sockets: list[tuple[str, str, int, bool]]) -> None:
    assert len(sockets) >= 3, sockets  # GCS, raylet, ... : something was measured
    exposed = [s for s in sockets if not is_loopback(s[1])]
    assert all(auth for *_, auth in exposed), f"listening beyond loopback without token authentication: {exposed}"


def test_the_head_node_validate_starts_stays_private() -> None:
    cluster = LocalCluster(num_cpus=1, num_gpus=0, dashboard=False)
    try:
        cluster.start()
        assert cluster.driver_env.get("RAY_AUTH_MODE") == "token" and cluster.driver_env.get("RAY_AUTH_TOKEN")
        time.sleep(3)  # the dashboard agent and the client server come up after `ray start` returns
        sockets = _listening(_session(cluster._sid))
        print(sockets)
        _assert_private(sockets)
    finally:
        cluster.stop()


def test_a_head_node_with_the_jobs_dashboard_stays_private(ray_cluster) -> None:
    """The session's cluster is one (``LocalCluster(dashboard=True)``, warm workers and all), measured
    while the other tests train on it."""
    ray_cluster.ensure_jobs_url()
    assert ray_cluster.driver_env.get("RAY_AUTH_MODE") == "token" and ray_cluster.driver_env.get("RAY_AUTH_TOKEN")
    port = int(ray_cluster.dashboard_url.rsplit(":", 1)[1])
    deadline = time.monotonic() + 20  # if it has only just started: its agents come up after `ray start`
    while True:
        sockets = _listening(_session(ray_cluster._sid))
        if any(is_loopback(ip) and p == port for _, ip, p, _ in sockets) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    print(sockets)
    _assert_private(sockets)
    assert any(is_loopback(ip) and p == port for _, ip, p, _ in sockets), sockets


EMBEDDED = """
import sys, time
from migrator.runtime.launch import Harness, local_cluster_defaults
with local_cluster_defaults(Harness(local_cluster=True, num_cpus=1)):
    import ray
    ray.init()
    print("ready", flush=True)
    sys.stdin.readline()
"""


def test_the_embedded_cluster_of_migrate_run_stays_private() -> None:
    env = runner.child_env(None)  # what `migrate run` gives its driver
    driver = subprocess.Popen([sys.executable, "-c", EMBEDDED], env=env, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert driver.stdout.readline().strip() == "ready"
        time.sleep(3)
        sockets = _listening(_session(driver.pid))
        print(sockets)
        _assert_private(sockets)
    finally:
        driver.stdin.close()
        try:
            driver.wait(timeout=60)
        except subprocess.TimeoutExpired:
            driver.kill()
        from migrator.runtime.cluster import kill_session

        kill_session(driver.pid)


AIR_ORIGINAL = """
import sys
import ray
from ray.train.huggingface import AccelerateTrainer  # retired: validate runs this on its emulation

print(ray.data.from_items([{"x": 1}, {"x": 2}]).count(), flush=True)  # Ray Data starts a local Ray
print("ready", flush=True)
sys.stdin.readline()
"""


def test_the_local_ray_of_an_air_era_original_stays_private(tmp_path) -> None:
    """validate runs an AIR-era original in plain Python on the retired-trainer emulation; the
    Ray its Ray Data starts in that process is as private as the others."""
    script = tmp_path / "air_original.py"
    script.write_text(AIR_ORIGINAL)
    env = runner.child_env(None, pythonpath=[str(tmp_path)])  # what validate gives the original
    original = subprocess.Popen([sys.executable, "-m", "migrator.runtime.original", str(script)], env=env,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        lines = [original.stdout.readline().strip() for _ in range(2)]
        assert lines == ["2", "ready"], lines
        time.sleep(3)
        sockets = _listening(_session(original.pid))
        print(sockets)
        _assert_private(sockets)
    finally:
        original.stdin.close()
        try:
            original.wait(timeout=60)
        except subprocess.TimeoutExpired:
            original.kill()
        from migrator.runtime.cluster import kill_session

        kill_session(original.pid)

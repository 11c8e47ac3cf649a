"""Every cluster the runtime starts is private: loopback only, or token authentication on.

The listening sockets of each kind's processes, listed with psutil (``listening.py``): the head
with the Jobs dashboard is the session's own cluster (``tests/e2e/conftest.py``), measured here; the
embedded cluster of ``migrate run``, the private head of ``migrate validate`` and the local Ray an
AIR-era original's Ray Data starts are measured while the runs that start them train
(``test_runtime.py``), not started again here for the purpose.
"""

from __future__ import annotations

import time

import pytest

from migrator.runtime.cluster import session_members
from tests.e2e.listening import assert_private, is_loopback, listening

# Measured (Ray 2.60, this machine): with node address 127.0.0.1 alone, the GCS, the raylet, the
# dashboard agent and the client server listened on every interface (``::``, ``0.0.0.0``) and the
# runtime-env agent on the machine's address; with RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 as well
# (a local-only cluster, as on macOS) every one of them listens on 127.0.0.1 (or ::ffff:127.0.0.1).
pytestmark = pytest.mark.e2e


def test_a_head_node_with_the_jobs_dashboard_stays_private(ray_cluster) -> None:
    """The session's cluster is one (``LocalCluster(dashboard=True)``, warm workers and all), measured
    while the other tests train on it."""
    ray_cluster.ensure_jobs_url()
    assert ray_cluster.driver_env.get("RAY_AUTH_MODE") == "token" and ray_cluster.driver_env.get("RAY_AUTH_TOKEN")
    port = int(ray_cluster.dashboard_url.rsplit(":", 1)[1])
    deadline = time.monotonic() + 20  # if it has only just started: its agents come up after `ray start`
    while True:
        sockets = listening(set(session_members(ray_cluster._sid)))
        if any(is_loopback(ip) and p == port for _, ip, p, _ in sockets) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    print(sockets)
    assert_private(sockets)
    assert any(is_loopback(ip) and p == port for _, ip, p, _ in sockets), sockets

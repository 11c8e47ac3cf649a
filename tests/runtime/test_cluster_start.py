"""``LocalCluster.start`` tries once more when Ray's fixed 30 s wait for its raylet runs out (a
busy machine), and only then."""

from __future__ import annotations

import pytest

from migrator.runtime.cluster import ClusterError, LocalCluster


def _starting(failures: list[str]) -> tuple[LocalCluster, list[int]]:
    cluster, tries = LocalCluster(), []

    def _start(timeout_s: float) -> None:
        tries.append(1)
        if failures:
            raise ClusterError(failures.pop(0))
        cluster.address = "127.0.0.1:1"

    cluster._start = _start  # type: ignore[method-assign]
    return cluster, tries


def test_a_raylet_that_missed_rays_startup_deadline_gets_a_second_start() -> None:
    cluster, tries = _starting([f"ray start failed (exit 1):\nException: {LocalCluster.OVERLOADED} ..."])
    cluster.start()
    assert cluster.address == "127.0.0.1:1" and len(tries) == 2


def test_other_failures_and_a_second_timeout_are_reported() -> None:
    cluster, tries = _starting(["ray start failed (exit 1):\nport in use"])
    with pytest.raises(ClusterError, match="port in use"):
        cluster.start()
    assert len(tries) == 1
    cluster, tries = _starting([LocalCluster.OVERLOADED] * 2)
    with pytest.raises(ClusterError):
        cluster.start()
    assert len(tries) == 2

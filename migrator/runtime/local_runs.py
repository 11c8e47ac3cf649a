"""Ray Train settings for runs on a cluster of this machine alone, where Ray's defaults cost time.

Ray Train V2's controller polls its workers every ``RAY_TRAIN_HEALTH_CHECK_INTERVAL_S`` (2 s), and
every step of a run (workers started, a report, training finished) waits for the next poll; it
also starts a preemption watcher (spot instances) and exports Prometheus metrics. On one machine
none of the latter exists, and the waits are a third of a short run's wall time: an 80-line
PyTorch sample trained on 2 CPU workers in 35.2 s with Ray's defaults and in 23.2 s with these
(``benchmarks/local_run_settings.py``, median of 2 each). A user's own setting of any of them wins.

Applied to clusters the runtime starts itself (``cluster.LocalCluster``, ``launch --local-cluster``),
never to a cluster given by address, where Ray's defaults are the user's. Standard library only.
"""

from __future__ import annotations

import os
from typing import MutableMapping

SETTINGS = {
    # The controller notices started, reporting and finished workers within 0.2 s, not 2 s.
    "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.2",
    # No spot instances on one machine: one actor process fewer per run.
    "RAY_TRAIN_ENABLE_PREEMPTION_WATCHER": "0",
    # Nothing scrapes Prometheus metrics from a private loopback cluster.
    "RAY_TRAIN_METRICS_ENABLED": "0",
}


def local_run_env(env: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """``SETTINGS`` less whatever ``env`` (default: this process's environment) already sets."""
    env = os.environ if env is None else env
    return {k: v for k, v in SETTINGS.items() if k not in env}


def apply_here() -> None:
    """For a driver that starts its own local cluster: set ``SETTINGS`` not already set."""
    os.environ.update(local_run_env())

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

TRIM = "MIGRATE_TRIM_TRAIN_RUNS"
SETTINGS = {
    # The controller notices started, reporting and finished workers within 0.2 s, not 2 s.
    "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.2",
    # No spot instances on one machine: one actor process fewer per run.
    "RAY_TRAIN_ENABLE_PREEMPTION_WATCHER": "0",
    # Nothing scrapes Prometheus metrics from a private loopback cluster.
    "RAY_TRAIN_METRICS_ENABLED": "0",
    # Read by ``trim_train_runs`` in the driver (``launch``): two helper actors fewer per run.
    TRIM: "1",
}


def local_run_env(env: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """``SETTINGS`` less whatever ``env`` (default: this process's environment) already sets."""
    env = os.environ if env is None else env
    return {k: v for k, v in SETTINGS.items() if k not in env}


def apply_here() -> None:
    """For a driver that starts its own local cluster: set ``SETTINGS`` not already set."""
    os.environ.update(local_run_env())


def trim_train_runs() -> bool:
    """In a driver whose environment asks for it (``TRIM``), start two actor processes fewer per fit.

    Every ``TorchTrainer.fit()`` of Ray Train V2 starts, besides its controller and workers:
    - a ``PlacementGroupCleaner``, a detached actor that frees the run's placement group should the
      controller die while the driver lives on. A cluster this machine starts for one validation or
      one test session is torn down with every placement group in it;
    - a ``DatasetManager``, which hands out shards of the ``datasets=`` given to the trainer, even
      when there are none.
    Each is a Python process that imports Ray Train: about 2.5 CPU-seconds of a ~35 CPU-second run
    on 2 workers. Only those two default callbacks are dropped (the second only for a trainer
    without datasets); on a Ray whose internals differ nothing is changed. Returns whether it did.
    """
    if os.environ.get(TRIM) != "1":
        return False
    try:
        from ray.train.v2._internal.callbacks.datasets import DatasetsCallback
        from ray.train.v2._internal.callbacks.placement_group_callback import (
            PlacementGroupCleanerCallback,
        )
        from ray.train.v2.api.data_parallel_trainer import DataParallelTrainer
    except ImportError:
        return False
    original = DataParallelTrainer._create_default_callbacks
    if getattr(original, "_migrate_trimmed", False):
        return True

    def _create_default_callbacks(self):  # type: ignore[no-untyped-def]
        return [c for c in original(self)
                if not isinstance(c, PlacementGroupCleanerCallback)
                and not (isinstance(c, DatasetsCallback) and not self.datasets)]

    _create_default_callbacks._migrate_trimmed = True  # type: ignore[attr-defined]
    DataParallelTrainer._create_default_callbacks = _create_default_callbacks
    return True

"""``local_runs``: Ray Train's settings for a cluster of this machine alone, and what they leave alone."""

from __future__ import annotations

import pytest

from migrator.runtime import local_runs


def test_a_users_own_setting_wins() -> None:
    env = {"RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "5", local_runs.TRIM: "0"}
    added = local_runs.local_run_env(env)
    assert "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S" not in added and local_runs.TRIM not in added
    assert added["RAY_TRAIN_METRICS_ENABLED"] == "0"


@pytest.fixture
def default_callbacks(monkeypatch: pytest.MonkeyPatch):
    """The default callbacks of a TorchTrainer, with ``trim_train_runs`` applied or not; the class is restored."""
    pytest.importorskip("ray.train.v2", reason="Ray Train V2 is part of the runtime stack CI installs")
    from ray.train import ScalingConfig
    from ray.train.torch import TorchTrainer
    from ray.train.v2.api.data_parallel_trainer import DataParallelTrainer

    monkeypatch.setattr(DataParallelTrainer, "_create_default_callbacks", DataParallelTrainer._create_default_callbacks)

    def build(trim: str | None, **trainer_kwargs) -> list[str]:
        if trim is None:
            monkeypatch.delenv(local_runs.TRIM, raising=False)
        else:
            monkeypatch.setenv(local_runs.TRIM, trim)
        local_runs.trim_train_runs()
        trainer = TorchTrainer(lambda: None, scaling_config=ScalingConfig(num_workers=1), **trainer_kwargs)
        return [type(c).__name__ for c in trainer._create_default_callbacks()]

    return build


def test_trimmed_runs_start_no_cleaner_and_no_dataset_manager(default_callbacks) -> None:
    untouched = default_callbacks(None)
    assert {"PlacementGroupCleanerCallback", "DatasetsCallback"} <= set(untouched)
    trimmed = default_callbacks("1")
    assert trimmed == [c for c in untouched if c not in ("PlacementGroupCleanerCallback", "DatasetsCallback")]


def test_a_trainer_given_datasets_keeps_their_manager(default_callbacks) -> None:
    # A callable that would build the dataset on the controller: nothing starts here.
    trimmed = default_callbacks("1", datasets={"train": lambda: None})
    assert "DatasetsCallback" in trimmed and "PlacementGroupCleanerCallback" not in trimmed


def test_nothing_is_trimmed_unless_the_environment_asks(default_callbacks) -> None:
    assert "PlacementGroupCleanerCallback" in default_callbacks("0")

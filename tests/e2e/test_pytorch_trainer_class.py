"""The DDP tutorial series' shape (a ``Trainer`` class, ``main()`` called from the main guard,
torchrun) converted and validated on 2 CPU workers.

``fixtures/samples/pytorch/trainer_class_torchrun.py`` keeps its training in class methods, so the
conversion launches the main guard's ``main(...)`` call on every worker and rewrites the class. It
reports the loss ``_run_batch`` computes (handed up through ``_run_epoch``: ``_helper_metrics``). It
also saves a ``snapshot.pt`` it resumes from: validate must give each run the working directory as
it found it, or the converted run resumes from the original's snapshot and its losses differ.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.e2e.test_runtime import ROOT, assert_all_pass, validate_json, verdicts

pytestmark = pytest.mark.e2e
SAMPLE = ROOT / "fixtures" / "samples" / "pytorch" / "trainer_class_torchrun.py"


def test_trainer_class_script_validates_with_loss_agreement(ray_cluster, tmp_path: Path) -> None:
    script = tmp_path / SAMPLE.name
    shutil.copy(SAMPLE, script)
    # One epoch of 16 steps on one worker (512 rows, batches of 32), 8 on each of two.
    report, done = validate_json(str(script), "--max-steps", "16", "--address", ray_cluster.ensure_started(),
                                 "--", "1", "1", cwd=tmp_path, auth=ray_cluster.driver_env)
    assert_all_pass(report, done)
    checks = verdicts(report)
    assert checks["conversion"] == "pass" and checks["finishes on 2 workers"] == "pass"
    agreement = report["figures"]["loss_agreement"]
    assert agreement["original_steps"] == agreement["converted_steps"] == 16
    assert agreement["max_difference"] <= 1e-4
    # Each run's snapshot.pt was set aside; the working directory is as it was.
    assert sorted(p.name for p in tmp_path.iterdir()) == [SAMPLE.name]
    assert any("snapshot.pt" in note for note in report["notes"]), report["notes"]

"""Samples written against APIs the stack removed, converted and validated end to end.

``fixtures/samples/lightning/lightning1x_argparse.py`` is a Lightning 1.x script (``gpus=``,
``Trainer.add_argparse_args`` / ``from_argparse_args``); ``fixtures/samples/legacy/
accelerate_trainer_dict_checkpoints.py`` an AIR-era ``AccelerateTrainer`` with dict checkpoints;
``fixtures/samples/pytorch/bert_encode_plus.py`` a plain PyTorch BERT tutorial of transformers 2-4
(``encode_plus(..., pad_to_max_length=True)``, transformers' ``AdamW``).
Each goes through ``migrate validate --offline-standins --cpu --num-workers 2 --max-steps 4``.
``tests/e2e/data/runtime/air_trainer_preprocessor.py``, a Ray 2.4 ``TorchTrainer(preprocessor=)``,
is converted and trained once: its workers check that they are fed the scaled dataset.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from migrator.engine import convert_source
from migrator.options import ConvertOptions
from migrator.registry import all_codemods
from tests.e2e.test_runtime import ROOT, assert_all_pass, validate_json, verdicts

pytestmark = pytest.mark.e2e
SAMPLES = ROOT / "fixtures" / "samples"
FLAGS = ("--offline-standins", "--cpu", "--num-workers", "2", "--max-steps", "4")


def test_lightning_1x_argparse_script_validates(ray_cluster, tmp_path: Path) -> None:
    script = tmp_path / "lightning1x_argparse.py"
    script.write_bytes((SAMPLES / "lightning" / script.name).read_bytes())
    # Ray binds to lightning.pytorch here (the `lightning` package is installed): the script imports
    # pytorch_lightning, so it is converted for that package (issue 8's Lightning point is separate).
    result = convert_source(script.read_bytes(), all_codemods(), ConvertOptions(use_gpu=False, lightning_package="lightning"))
    assert result.status == "converted", result.error
    converted = tmp_path / "converted" / script.name
    converted.parent.mkdir()
    converted.write_bytes(result.output)
    report, done = validate_json(str(script), "--converted", str(converted), *FLAGS, "--address",
                                 ray_cluster.ensure_started(), cwd=tmp_path, auth=ray_cluster.driver_env)
    assert_all_pass(report, done)
    checks = verdicts(report)
    # The original ran too: with the Lightning 2.0 rewrites, as the note says, and losses agree.
    assert checks["original runs"] == "pass" and checks["loss agreement (1 worker)"] == "pass"
    assert any("add_argparse_args" in note for note in report["notes"])
    assert report["figures"]["loss_agreement"]["max_difference"] <= 1e-4
    assert checks["checkpoint loads"] == "pass"


def test_air_accelerate_trainer_with_dict_checkpoints_validates(ray_cluster, tmp_path: Path) -> None:
    script = tmp_path / "accelerate_trainer_dict_checkpoints.py"
    script.write_bytes((SAMPLES / "legacy" / script.name).read_bytes())
    report, done = validate_json(str(script), *FLAGS, "--address", ray_cluster.ensure_started(), cwd=tmp_path,
                                 auth=ray_cluster.driver_env)
    assert_all_pass(report, done)
    checks = {c["name"]: c for c in report["checks"]}
    # The original imports AccelerateTrainer and ray.air's dict checkpoints, gone from this Ray: it
    # runs on migrate's one-worker emulation of them, and the converted script's losses agree.
    assert checks["original runs"]["verdict"] == "pass", checks["original runs"]
    assert any("retired AccelerateTrainer" in note for note in report["notes"]), report["notes"]
    assert checks["converted runs on 1 worker"]["verdict"] == "pass"
    assert checks["loss agreement (1 worker)"]["verdict"] == "pass", checks["loss agreement (1 worker)"]
    agreement = report["figures"]["loss_agreement"]
    assert agreement["original_steps"] == agreement["converted_steps"] == 4
    assert agreement["max_difference"] <= 1e-4
    assert checks["finishes on 2 workers"]["verdict"] == "pass"
    # accelerate_config's use_cpu became Accelerator(cpu=True): the two CPU workers train together.
    assert checks["workers share the work"]["verdict"] == "pass", checks["workers share the work"]
    assert checks["checkpoint loads"]["verdict"] == "pass", checks["checkpoint loads"]


def test_a_trainer_preprocessor_is_applied_before_the_launch(tmp_path: Path, run_converted) -> None:
    """TorchTrainer(preprocessor=) raises on Train V2: the converted script fits it on "train" and
    hands over the transformed dataset, so the workers see scaled values."""
    original = ROOT / "tests" / "e2e" / "data" / "runtime" / "air_trainer_preprocessor.py"
    result = convert_source(original.read_bytes(), all_codemods(), ConvertOptions(num_workers=2, use_gpu=False))
    assert result.status == "converted" and not result.follow_ups, [e.message for e in result.follow_ups]
    assert "preprocessor=StandardScaler" not in result.output.decode()
    script = tmp_path / original.name
    script.write_bytes(result.output)
    summary = run_converted(script)  # fails the test if a worker saw unscaled values (the script checks)
    assert summary["error"] is None and summary["fit_calls"] == 1


def test_bert_tutorial_with_encode_plus_validates(ray_cluster, tmp_path: Path) -> None:
    """The original stops at once on transformers 5 (no AdamW, no encode_plus; pad_to_max_length is
    ignored there). Validated, it runs with those rewritten, the note says so, and the converted
    script agrees with it and trains on 2 workers; its checkpoint loads."""
    script = tmp_path / "bert_encode_plus.py"
    script.write_bytes((SAMPLES / "pytorch" / script.name).read_bytes())
    report, done = validate_json(str(script), "--cpu", "--num-workers", "2", "--max-steps", "4", "--address",
                                 ray_cluster.ensure_started(), cwd=tmp_path, auth=ray_cluster.driver_env)
    assert_all_pass(report, done)
    checks = verdicts(report)
    assert checks["original runs"] == "pass" and checks["loss agreement (1 worker)"] == "pass"
    rewritten = next(note for note in report["notes"] if "removed" in note)
    assert "encode_plus" in rewritten and "pad_to_max_length" in rewritten and "AdamW" in rewritten
    assert checks["checkpoint loads"] == "pass"
    run = report["figures"]["runs"]["converted_2_workers"]
    assert run["world_size"] == 2 and "avg_train_loss" in run["metrics"], run

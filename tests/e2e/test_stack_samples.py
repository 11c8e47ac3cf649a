"""Samples in the shapes of today's most common training scripts, validated end to end.

A trl SFT script (``SFTTrainer`` + ``SFTConfig``, a ``messages`` dataset), the same in the shape
of trl's own ``scripts/sft.py`` (its imports inside ``main()``, ``TrlParser``), a PEFT LoRA script, a
``run_glue``-style ``HfArgumentParser`` script and accelerate's GLUE ``nlp_example.py`` each go
through ``migrate validate --offline-standins --cpu --num-workers 2 --max-steps 4``: converted here,
the original run in plain Python, the converted script on 1 worker (its losses must agree with the
original's, step for step) and on 2. The GLUE scripts load ``glue``/``mrpc`` and ``bert-base-cased``
from the stand-ins, whose GLUE has the real columns (``idx`` included), so the standard
``remove_columns=["idx", "sentence1", "sentence2"]`` / ``rename_column("label", "labels")`` runs.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.e2e.test_runtime import assert_all_pass, assert_compared_in_one_process, assert_runs_forked, validate_json

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "fixtures" / "samples"
FLAGS = ("--offline-standins", "--cpu", "--num-workers", "2", "--max-steps", "4")
GLUE_ARGS = ("--output_dir", "glue_out", "--per_device_train_batch_size", "8", "--eval_strategy", "steps",
             "--eval_steps", "2", "--save_strategy", "steps", "--save_steps", "2", "--logging_steps", "1",
             "--max_eval_samples", "32")

pytestmark = pytest.mark.e2e


def validate(sample: str, ray_cluster, tmp_path: Path, *script_args: str):
    script = tmp_path / Path(sample).name
    shutil.copy(SAMPLES / sample, script)
    extra = ("--", *script_args) if script_args else ()
    return validate_json(str(script), *FLAGS, "--address", ray_cluster.ensure_started(), *extra, cwd=tmp_path,
                         auth=ray_cluster.driver_env)


def assert_validated(report: dict, done) -> None:
    assert_all_pass(report, done)
    checks = {c["name"]: c for c in report["checks"]}
    for name in ("conversion", "original runs", "converted runs on 1 worker", "loss agreement (1 worker)",
                 "finishes on 2 workers", "losses finite"):
        assert checks[name]["verdict"] == "pass", (name, checks[name])
    agreement = report["figures"]["loss_agreement"]
    assert agreement["original_steps"] == agreement["converted_steps"] == 4
    assert agreement["max_difference"] <= 1e-4
    assert_compared_in_one_process(report)
    assert_runs_forked(report)


#: trl's own scripts are run with their dataclasses' options (SFTConfig has no output_dir default).
SFT_SCRIPT_ARGS = ("--output_dir", "sft_out", "--max_length", "64", "--per_device_train_batch_size", "8",
                   "--logging_steps", "1", "--report_to", "none")


@pytest.mark.parametrize("sample, args", [
    ("trl/sft_messages.py", ()),
    # Imports inside main(): they run again in the train function, not passed in train_loop_config.
    ("trl/sft_script_main.py", SFT_SCRIPT_ARGS),
    ("peft/lora_causal_lm.py", ()),
    ("hub/run_glue.py", GLUE_ARGS),
    ("hub/accelerate_nlp_example_evaluate.py", ()),
], ids=["trl-sft", "trl-sft-script", "peft-lora", "run-glue", "accelerate-glue-evaluate"])
def test_sample_validates(sample: str, args: tuple, ray_cluster, tmp_path: Path) -> None:
    report, done = validate(sample, ray_cluster, tmp_path, *args)
    assert_validated(report, done)
    if sample.startswith("trl/"):
        # SFTConfig's default bf16 needs a GPU: both sides trained in fp32, and the notes say so.
        assert any("bf16 mixed precision" in note for note in report["notes"]), report["notes"]


def test_accelerate_glue_example_with_load_metric(ray_cluster, tmp_path: Path) -> None:
    """The pre-datasets-3.0 original: ``from datasets import load_metric``, which no longer imports.
    The original runs with it rewritten to ``evaluate.load`` (hf_removed_apis), as the notes say."""
    report, done = validate("hub/accelerate_nlp_example.py", ray_cluster, tmp_path)
    assert_validated(report, done)
    assert any("load_metric" in note for note in report["notes"]), report["notes"]

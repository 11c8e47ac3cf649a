"""Issue 9's training shapes, converted and trained on 2 CPU workers through ``run_converted``.

* Two Lightning trainings in one script, the second continuing from the first: two launches,
  each reporting a checkpoint, and the fine-tune starting from the pretrained weights (its
  ``steps_seen`` buffer, saved in the checkpoint, counts on from the pretraining's).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from migrator.engine import convert_source
from migrator.options import ConvertOptions
from migrator.registry import all_codemods

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "fixtures" / "samples"
OPTIONS = ConvertOptions(num_workers=2, use_gpu=False)

pytestmark = pytest.mark.e2e


def convert(sample: Path, folder: Path, expected_follow_ups: tuple[str, ...] = (), **options) -> Path:
    """``expected_follow_ups``: a fragment of each follow-up the conversion must leave, in order."""
    result = convert_source(sample.read_bytes(), all_codemods(), replace(OPTIONS, **options), path=str(sample))
    assert result.status == "converted", result.error or result.entries
    assert len(result.follow_ups) == len(expected_follow_ups), result.follow_ups
    assert all(f in e.message for f, e in zip(expected_follow_ups, result.follow_ups)), result.follow_ups
    target = folder / sample.name
    target.write_bytes(result.output)
    return target


def test_pretrain_then_finetune_launches_twice_and_continues(tmp_path: Path, run_converted) -> None:
    script = convert(SAMPLES / "lightning" / "pretrain_then_finetune.py", tmp_path)
    assert '"checkpoint": result_1.checkpoint' in script.read_text()
    summary = run_converted(script, timeout=2 * 240)  # two launches, one after the other
    assert summary["fit_calls"] == 2
    pretrain, finetune = summary["fits"]
    assert pretrain["error"] is None and finetune["error"] is None
    assert pretrain["checkpoint"] and finetune["checkpoint"] and pretrain["checkpoint"] != finetune["checkpoint"]
    # 256 samples, 2 workers, batches of 32: 4 steps an epoch on each worker. The fine-tune
    # counts on from the pretrained model's 4 only if it loaded the first launch's checkpoint.
    assert pretrain["metrics"]["steps_seen"] == 4
    assert finetune["metrics"]["steps_seen"] == 8


def test_lightning_cli_subcommand_config_and_flags_reach_the_workers(tmp_path: Path, run_converted) -> None:
    import shutil

    import torch

    script = convert(SAMPLES / "lightning" / "cli_subcommands.py", tmp_path)
    shutil.copy(SAMPLES / "lightning" / "cli_subcommands.yaml", tmp_path)
    summary = run_converted(script, "fit", "--config", "cli_subcommands.yaml", "--trainer.max_epochs", "2")
    assert summary["fit_calls"] == 1 and summary["error"] is None
    # --trainer.max_epochs 2 from the flags: the last report is the second epoch's.
    assert summary["metrics"]["epoch"] == 1
    assert "val_loss" in summary["metrics"]
    # The config file's lr and the CLI's linked argument (hidden <- data.batch_size) reached the model.
    checkpoint = Path(summary["checkpoint"]) / "checkpoint.ckpt"
    hparams = torch.load(checkpoint, map_location="cpu", weights_only=False)["hyper_parameters"]
    assert hparams["lr"] == 0.1 and hparams["hidden"] == 16


def test_hydra_apps_compose_on_the_driver(tmp_path: Path, run_converted) -> None:
    """Lightning and Transformers Trainers built by hydra.utils.instantiate(cfg.trainer, ...)."""
    import shutil

    import torch

    # lightning-hydra-template's shape: the @hydra.main function calls a decorated train(cfg) that
    # builds the Trainer and returns its metrics (tensors) and objects; main unpacks them.
    script = convert(SAMPLES / "hydra" / "lightning_app.py", tmp_path)
    text = script.read_text()
    assert "@hydra.main" in text and "return result.return_value" in text
    shutil.copytree(SAMPLES / "hydra" / "conf", tmp_path / "conf")
    summary = run_converted(script, "trainer.max_epochs=2", "model.lr=0.1")
    assert summary["fit_calls"] == 1 and summary["error"] is None
    # The overrides, composed by Hydra on the driver, reached the Trainer and the model on the workers.
    assert summary["metrics"]["epoch"] == 1
    assert "val_loss" in summary["metrics"]
    checkpoint = Path(summary["checkpoint"]) / "checkpoint.ckpt"
    assert torch.load(checkpoint, map_location="cpu", weights_only=False)["hyper_parameters"]["lr"] == 0.1
    # rank 0's metrics came back to main() through result.return_value, .item() still works on them:
    # the value main wrote is the val_loss rank 0 reported.
    written = float((tmp_path / "optimized_metric.txt").read_text())
    assert written == pytest.approx(summary["metrics"]["val_loss"], rel=1e-5)

    # The Transformers app: trainer._target_ is transformers.Trainer, its TrainingArguments are trainer.args.
    # Its TrainingArguments come from the config: no follow-up, the report callback saves after
    # each evaluation whatever the config's save_strategy says.
    script = convert(SAMPLES / "hydra" / "transformers_app.py", tmp_path)
    text = script.read_text()
    assert "control.should_save = True" in text
    assert "@hydra.main" in text and "OmegaConf.to_container(cfg, resolve=True)" in text and "trainer.add_callback(SyncedRayTrainReportCallback())" in text
    summary = run_converted(script, "trainer.args.num_train_epochs=2")
    assert summary["fit_calls"] == 1 and summary["error"] is None
    # The override, composed on the driver, reached the TrainingArguments instantiated on the workers.
    assert summary["metrics"]["epoch"] == 2
    assert "eval_loss" in summary["metrics"]
    assert (Path(summary["checkpoint"]) / "checkpoint").is_dir()

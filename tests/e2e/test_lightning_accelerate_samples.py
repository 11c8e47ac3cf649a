"""Converted Lightning and Accelerate samples run under Ray Train on 2 CPU workers (gloo).

Each sample under ``fixtures/samples/{lightning,accelerate}/`` is a plain script that runs with
``python x.py`` on CPU. Here it is converted with ``--num-workers 2 --no-use-gpu`` and run through
the shared ``run_converted`` fixture (``tests/e2e/conftest.py``), which returns ``error``,
``metrics`` and ``checkpoint``. Accelerate reports metrics without checkpoints, and Ray's
``result.metrics`` keeps only reports that carry one (RAY-FACTS.md), so the Accelerate metric keys
are checked against the latest report the launcher recorded (``latest_metrics``).

A converted ``pytorch_lightning`` script imports ``lightning.pytorch`` where it imports, else
``pytorch_lightning``, as Ray's integration does (``lightning_package_follows_ray``). It runs here,
with both packages installed, and once more where only ``pytorch_lightning`` is: that test starts a
private local Ray whose driver and workers see a ``lightning`` package that refuses to import.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import pytest

from migrator.runtime import privacy
from migrator.runtime.progress import final_metrics

from migrator.engine import convert_source
from migrator.options import ConvertOptions
from migrator.registry import all_codemods

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "fixtures" / "samples"
OPTIONS = ConvertOptions(num_workers=2, use_gpu=False)

pytestmark = pytest.mark.e2e


def convert(sample: Path, folder: Path, **options) -> Path:
    result = convert_source(sample.read_bytes(), all_codemods(), replace(OPTIONS, **options), path=str(sample))
    assert result.status == "converted", result.error or result.entries
    target = folder / sample.name
    target.write_bytes(result.output)
    return target


def assert_checkpoint(checkpoint) -> None:
    assert checkpoint, "no checkpoint reported"
    path = Path(str(getattr(checkpoint, "path", checkpoint)))
    if path.is_dir():  # local storage: Ray's Lightning callback writes checkpoint.ckpt
        assert (path / "checkpoint.ckpt").is_file()


# regression_module_level trains on 2 workers in test_runtime's validate run, checked there.
@pytest.mark.parametrize("name", ["gpu_ddp", "experiment_class", "experiment_attribute"])
def test_lightning_sample_reports_and_checkpoints(name: str, tmp_path: Path, run_converted) -> None:
    summary = run_converted(convert(SAMPLES / "lightning" / f"{name}.py", tmp_path))
    assert summary["error"] is None
    assert {"val_loss", "epoch", "step"} <= set(summary["metrics"])
    assert_checkpoint(summary["checkpoint"])


def test_config_driven_module_level_script_trains_and_reloads(tmp_path: Path, run_converted) -> None:
    """jdonley/Speech-Dereverberation's shape: the strategy comes from a config (ray_strategy() maps
    it on the workers), and the work after fit that reads the Trainer (test the best checkpoint,
    reload it from the removed ``tested_ckpt_path``, plot) moves to the workers with the training."""
    script = convert(SAMPLES / "lightning" / "config_module_level.py", tmp_path)
    text = script.read_text()
    assert 'strategy=ray_strategy(get_config()["strategy"])' in text and "trainer.ckpt_path" in text
    summary = run_converted(script)
    assert {"val_loss", "epoch"} <= set(summary["metrics"])
    assert_checkpoint(summary["checkpoint"])
    prediction = json.loads((tmp_path / "prediction.json").read_text())
    assert set(prediction) == {"prediction", "target"}
    assert (tmp_path / "prediction.png").is_file()


def test_pytorch_lightning_sample_trains_where_both_packages_are_installed(tmp_path: Path, run_converted) -> None:
    """The README's environment: `lightning` and `pytorch_lightning` both importable, neither hidden.
    Ray binds to lightning.pytorch here, and so do the converted script's imports."""
    script = convert(SAMPLES / "lightning" / "classifier_main_argparse.py", tmp_path)
    assert "try:\n    import lightning.pytorch as pl\n" in script.read_text()
    summary = run_converted(script)
    assert summary["error"] is None
    assert {"val_acc", "val_loss", "epoch"} <= set(summary["metrics"])
    assert_checkpoint(summary["checkpoint"])


@pytest.mark.parametrize(
    "name, keys",
    [
        ("classifier_main_argparse", {"epoch", "accuracy", "loss"}),
        ("notebook_launcher_style", {"epoch", "loss"}),
        ("trainer_class_method", {"epoch", "train_loss"}),
    ],
)
def test_accelerate_sample_reports_metrics(name: str, keys: set[str], tmp_path: Path, run_converted) -> None:
    summary = run_converted(convert(SAMPLES / "accelerate" / f"{name}.py", tmp_path), events=True)
    assert summary["error"] is None
    # Ray fills result.metrics only from reports that carry a checkpoint; these may carry none.
    # With events on, the launcher records every ray.train.report of the workers: "latest_metrics".
    assert keys <= set(final_metrics(summary)), summary


# -- pytorch_lightning, with `lightning` hidden -----------------------------------------------
HIDDEN = 'raise ModuleNotFoundError("No module named \'lightning\' (hidden for this test)", name="lightning")\n'
RUNNER = '''
import json, runpy, sys
import ray
from ray.train.torch import TorchTrainer

from migrator.runtime.local_runs import apply_here, trim_train_runs

# The settings migrate's own local clusters run with (a 0.2 s poll, two helper actors fewer).
apply_here()
trim_train_runs()
script, summary, temp_dir = sys.argv[1:4]
ray.init(address="local", num_cpus=2, include_dashboard=False, _temp_dir=temp_dir)
fit = TorchTrainer.fit

def record(self):
    result = fit(self)
    with open(summary, "w") as out:
        json.dump({"error": repr(result.error) if result.error else None, "metrics": result.metrics,
                   "checkpoint": result.checkpoint.path if result.checkpoint else None}, out)
    return result

TorchTrainer.fit = record
sys.argv = [script]
runpy.run_path(script, run_name="__main__")
ray.shutdown()
'''


def run_hiding_lightning(script: Path, folder: Path, timeout: int = 480) -> dict:
    """Run ``script`` on a private local Ray where ``import lightning`` fails, driver and workers alike."""
    shadow = folder / "shadow"
    (shadow / "lightning").mkdir(parents=True)
    (shadow / "lightning" / "__init__.py").write_text(HIDDEN)
    (folder / "runner.py").write_text(RUNNER)
    summary = folder / "summary.json"
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "PYTHONPATH")}
    env.update(PYTHONPATH=str(shadow))
    privacy.private_env(env)  # token authentication stays on (migrator/runtime/privacy.py)
    with tempfile.TemporaryDirectory(prefix="ray-pl-", dir="/tmp") as temp_dir:  # short: Ray's sockets live there
        done = subprocess.run(
            [sys.executable, str(folder / "runner.py"), str(script), str(summary), temp_dir],
            cwd=folder, env=env, capture_output=True, text=True, timeout=timeout,
        )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(summary.read_text())


def test_pytorch_lightning_sample_runs_where_lightning_is_hidden(tmp_path: Path) -> None:
    pytest.importorskip("pytorch_lightning")
    script = convert(SAMPLES / "lightning" / "classifier_main_argparse.py", tmp_path)  # the same conversion
    assert "except ModuleNotFoundError:\n    import pytorch_lightning as pl\n" in script.read_text()
    summary = run_hiding_lightning(script, tmp_path)
    assert summary["error"] is None
    assert {"val_acc", "val_loss", "epoch"} <= set(summary["metrics"])
    assert_checkpoint(summary["checkpoint"])

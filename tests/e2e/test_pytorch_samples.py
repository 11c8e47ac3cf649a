"""Converted plain PyTorch samples train under Ray Train on 2 CPU workers, and validate.

Each sample under ``fixtures/samples/pytorch/`` runs as it is (``python x.py``, ``torchrun``, or
``mp.spawn`` on CPU). Here it is converted with ``--num-workers 2 --no-use-gpu`` and run through
the shared ``run_converted`` fixture (``tests/e2e/conftest.py``); the checkpoint the run reported
must hold a state dict that loads into the bare model. ``migrate validate`` then checks, for the
single-process and torchrun samples, that one worker logs the same per-step losses as the
original (the torchrun original runs as a world of one, as ``torchrun --nproc_per_node 1`` would).
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

from migrator.engine import convert_source
from migrator.options import ConvertOptions
from migrator.registry import all_codemods
from tests.e2e.test_runtime import assert_all_pass, validate_json, verdicts

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "fixtures" / "samples" / "pytorch"
OPTIONS = ConvertOptions(num_workers=2, use_gpu=False)

pytestmark = pytest.mark.e2e


def convert(sample: Path, folder: Path) -> Path:
    result = convert_source(sample.read_bytes(), all_codemods(), OPTIONS, path=str(sample))
    assert result.status == "converted", result.error or result.entries
    assert any(e.codemod == "pytorch_loop" for e in result.changes)
    target = folder / sample.name
    target.write_bytes(result.output)
    return target


def load_into(sample: Path, class_name: str, checkpoint: str, file: str, *args) -> None:
    """The reported checkpoint holds ``file``, a state dict the bare model (no DDP prefix) loads."""
    import torch

    spec = importlib.util.spec_from_file_location(f"sample_{sample.stem}", sample)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)  # the samples train only under their main guard or via the harness
    path = Path(checkpoint) / file
    assert path.is_file(), f"{file} not in the checkpoint: {sorted(p.name for p in Path(checkpoint).iterdir())}"
    state = torch.load(path, map_location="cpu")
    assert not any(k.startswith("module.") for k in state)
    getattr(module, class_name)(*args).load_state_dict(state)


@pytest.mark.parametrize(
    "name, keys, model, file, args",
    [
        ("mlp_main_argparse", {"epoch", "train_loss", "val_loss"}, "MLP", "mlp.pt", (16,)),
        ("cnn_torchrun_ddp", {"epoch", "accuracy"}, "SmallCNN", "cnn.pt", ()),
        ("mp_spawn_ddp", {"epoch", "loss"}, "ToyModel", "toy.pt", ()),
    ],
)
def test_sample_trains_on_two_workers(name: str, keys: set[str], model: str, file: str, args: tuple,
                                      tmp_path: Path, run_converted) -> None:
    summary = run_converted(convert(SAMPLES / f"{name}.py", tmp_path))
    assert summary["error"] is None
    assert keys <= set(summary["metrics"])
    load_into(SAMPLES / f"{name}.py", model, summary["checkpoint"], file, *args)


def test_module_level_sample_trains_on_two_workers(tmp_path: Path, run_converted) -> None:
    summary = run_converted(convert(SAMPLES / "regression_module_level.py", tmp_path))
    assert summary["error"] is None
    assert {"epoch", "epoch_loss"} <= set(summary["metrics"])
    assert (Path(summary["checkpoint"]) / "regression.pt").is_file()


def test_launcher_over_a_sibling_module(tmp_path: Path, run_converted) -> None:
    """launch.py is converted; trainlib.py, which it imports the training function from, is not."""
    shutil.copy(SAMPLES / "launcher" / "trainlib.py", tmp_path / "trainlib.py")
    script = convert(SAMPLES / "launcher" / "launch.py", tmp_path)
    assert "start_processes" not in script.read_text()
    summary = run_converted(script, "--epochs", "2")
    assert summary["error"] is None
    assert summary.get("world_size") in (None, 2)


@pytest.mark.parametrize("name", ["mlp_main_argparse", "regression_module_level", "cnn_torchrun_ddp"])
def test_validate_passes_with_loss_agreement(name: str, ray_cluster, tmp_path: Path) -> None:
    script = tmp_path / f"{name}.py"
    script.write_bytes((SAMPLES / f"{name}.py").read_bytes())
    report, done = validate_json(str(script), "--max-steps", "8", "--address", ray_cluster.ensure_started(), cwd=tmp_path,
                                 auth=ray_cluster.auth_env)
    assert_all_pass(report, done)
    agreement = report["figures"]["loss_agreement"]
    assert agreement["original_steps"] == agreement["converted_steps"] == 8
    assert agreement["max_difference"] <= 1e-4
    checks = verdicts(report)
    assert checks["conversion"] == "pass" and checks["losses finite"] == "pass"
    assert checks["checkpoint loads"] == "pass"

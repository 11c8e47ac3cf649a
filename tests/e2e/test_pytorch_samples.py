"""Converted plain PyTorch samples train under Ray Train on 2 CPU workers, and validate.

Each sample under ``fixtures/samples/pytorch/`` runs as it is (``python x.py``, ``torchrun``, or
``mp.spawn`` on CPU). ``migrate validate`` converts it and checks, for the single-process and
torchrun samples, that one worker logs the same per-step losses as the original (the torchrun
original runs as a world of one, as ``torchrun --nproc_per_node 1`` would); for the ``mp.spawn``
sample, which starts 2 processes itself, that 2 workers log the same per-step losses as those 2
processes, rank by rank. Its run on 2 workers is the sample's training on Ray, checked once, not
run again: it must report the sample's metrics, and the checkpoint it reported must hold a state
dict that loads into the bare model. The launcher sample is converted with ``--num-workers 2
--no-use-gpu`` and run through the shared ``run_converted`` fixture (``tests/e2e/conftest.py``).
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
from tests.e2e.test_runtime import assert_all_pass, assert_compared_in_one_process, validate_json, verdicts

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "fixtures" / "samples" / "pytorch"
SPAWN_WITH_SAMPLER = ROOT / "tests" / "e2e" / "data" / "runtime" / "spawn_ddp_sampler.py"
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


def test_launcher_over_a_sibling_module(tmp_path: Path, run_converted) -> None:
    """launch.py is converted; trainlib.py, which it imports the training function from, is not."""
    shutil.copy(SAMPLES / "launcher" / "trainlib.py", tmp_path / "trainlib.py")
    script = convert(SAMPLES / "launcher" / "launch.py", tmp_path)
    assert "start_processes" not in script.read_text()
    summary = run_converted(script, "--epochs", "2")
    assert summary["error"] is None
    assert summary.get("world_size") in (None, 2)


#: What each sample's run on 2 workers must report, and the model its checkpoint file loads into.
TRAINED = {
    "mlp_main_argparse": ({"epoch", "train_loss", "val_loss"}, "MLP", "mlp.pt", (16,)),
    "cnn_torchrun_ddp": ({"epoch", "accuracy"}, "SmallCNN", "cnn.pt", ()),
    "regression_module_level": ({"epoch", "epoch_loss"}, None, "regression.pt", ()),
    "mp_spawn_ddp": ({"epoch", "loss"}, "ToyModel", "toy.pt", ()),
    # Seeded with its own seed before its definitions: the loss agreement shows the workers seeded alike.
    "seed_before_definitions": ({"epoch", "val_loss"}, None, "best_weights.pt", ()),
}


def assert_trained_on_two_workers(name: str, report: dict) -> None:
    """The 2-worker run of ``migrate validate`` is this sample's training on Ray: it reported its
    metrics, and its checkpoint holds a state dict the bare model loads."""
    keys, model, file, args = TRAINED[name]
    run = report["figures"]["runs"]["converted_2_workers"]
    assert run["world_size"] == 2
    assert keys <= set(run["metrics"]), run["metrics"]
    if model:
        load_into(SAMPLES / f"{name}.py", model, run["checkpoint"], file, *args)
    else:
        assert (Path(run["checkpoint"]) / file).is_file()


@pytest.mark.parametrize("name", ["mlp_main_argparse", "regression_module_level", "cnn_torchrun_ddp",
                                  "seed_before_definitions"])
def test_validate_passes_with_loss_agreement(name: str, ray_cluster, tmp_path: Path) -> None:
    script = tmp_path / f"{name}.py"
    script.write_bytes((SAMPLES / f"{name}.py").read_bytes())
    report, done = validate_json(str(script), "--max-steps", "8", "--address", ray_cluster.ensure_started(), cwd=tmp_path,
                                 auth=ray_cluster.driver_env)
    assert_all_pass(report, done)
    agreement = report["figures"]["loss_agreement"]
    assert agreement["original_steps"] == agreement["converted_steps"] == 8
    assert agreement["max_difference"] <= 1e-4
    if name != "cnn_torchrun_ddp":  # its DistributedSampler needs a Ray worker's process group
        assert_compared_in_one_process(report)
    checks = verdicts(report)
    assert checks["conversion"] == "pass" and checks["losses finite"] == "pass"
    assert checks["checkpoint loads"] == "pass"
    assert_trained_on_two_workers(name, report)


@pytest.mark.parametrize("original", [SAMPLES / "mp_spawn_ddp.py", SPAWN_WITH_SAMPLER], ids=lambda p: p.stem)
def test_validate_compares_an_mp_spawn_original_on_as_many_workers(original: Path, ray_cluster, tmp_path: Path) -> None:
    """Both start 2 processes themselves: each is recorded, and compared rank by rank with the
    converted script on 2 Ray workers (not with 1 worker, which would be another training). The
    sample draws the same batches on both ranks; the other gives each rank its half of the data
    through a DistributedSampler, as Ray's prepare_data_loader does."""
    script = tmp_path / original.name
    script.write_bytes(original.read_bytes())
    report, done = validate_json(str(script), "--max-steps", "4", "--num-workers", "2",
                                 "--address", ray_cluster.ensure_started(), cwd=tmp_path, auth=ray_cluster.driver_env)
    assert_all_pass(report, done)
    checks = verdicts(report)
    assert checks["loss agreement (2 workers)"] == "pass"
    assert checks["loss agreement (1 worker)"] == "skip"
    agreement = report["figures"]["loss_agreement"]
    assert agreement["workers"] == 2 and set(agreement["by_rank"]) == {"0", "1"}
    for figures in agreement["by_rank"].values():  # 4 steps: the cap, or the sample's 4 epochs of one step
        assert figures["original_steps"] == figures["converted_steps"] == 4
        assert figures["max_difference"] <= 1e-4
    if original.stem in TRAINED:
        assert_trained_on_two_workers(original.stem, report)
    steps = {key: [step for step, _ in series] for key, series in report["losses"].items()}
    assert steps["original"] == steps["converted_2_workers_rank0"] == [1, 2, 3, 4]

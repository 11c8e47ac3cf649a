"""The GPU path of ``migrate run`` and ``migrate validate``: skipped where there is no CUDA GPU.

With one GPU, two workers share it (``GPU: 0.5`` each, gloo backend, since NCCL refuses two ranks
on one device); with several, one worker each (NCCL). ``migrate run`` with no address starts an
embedded cluster, which sees the machine's GPUs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.test_runtime import GUIDE, DATA, assert_all_pass, assert_ok, converted_sample, run_json, validate_json


def _gpus() -> int:
    try:
        import torch
    except ImportError:
        return 0
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


GPUS = _gpus()
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.e2e,
    pytest.mark.skipif(GPUS == 0, reason="needs a CUDA GPU: torch.cuda.is_available() is False on this machine"),
]


def test_two_gpu_workers_transformers(tmp_path: Path) -> None:
    script = converted_sample("module_level.py", tmp_path)
    data, done = run_json("run", str(script), "--gpu", "--num-workers", "2", "--max-steps", "6",
                          "--storage-path", str(tmp_path / "results"), cwd=tmp_path)
    assert_ok(data, done)
    scaling = data["scaling"]
    assert scaling["use_gpu"] is True and data["world_size"] == 2 and data["steps"] == 6
    if GPUS == 1:  # two workers share the one GPU
        assert scaling["resources_per_worker"]["GPU"] == 0.5 and scaling["backend"] == "gloo"
    else:  # one GPU each
        assert scaling["resources_per_worker"]["GPU"] == 1 and scaling["backend"] == "nccl"
    assert all(str(device).startswith("cuda") for device in data["devices"].values())


def test_fractional_gpus_per_worker_accelerate(tmp_path: Path) -> None:
    data, done = run_json("run", str(DATA / "accelerate_regression_converted.py"), "--gpus-per-worker", "0.5",
                          "--num-workers", "2", "--max-steps", "4", "--storage-path", str(tmp_path / "results"),
                          cwd=tmp_path)
    assert_ok(data, done)
    assert data["scaling"]["resources_per_worker"]["GPU"] == 0.5 and data["scaling"]["backend"] == "gloo"
    assert data["steps"] == 4


def test_validate_the_guide_example_on_gpu(tmp_path: Path) -> None:
    script = tmp_path / GUIDE.name
    script.write_bytes(GUIDE.read_bytes())
    report, done = validate_json(str(script), "--gpu", "--offline-standins", "--max-steps", "8", cwd=tmp_path)
    assert_all_pass(report, done)

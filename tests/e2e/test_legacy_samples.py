"""Convert each retired-trainer sample and run the result under Ray Train (V2) on 2 CPU workers.

Each sample in ``fixtures/samples/legacy/`` is written against an API that no longer imports
(``TransformersTrainer``, ``AccelerateTrainer``, ``LightningTrainer``). The test converts it with
every codemod, runs the converted script as ``python -m`` would in its folder (forked from the test
process's warm interpreter where it takes the run, ``tests/drivers.py``), and checks that it exited
cleanly, left a checkpoint in the default ``~/ray_results`` storage, and reported metrics with it.

The scripts connect to the session's cluster (``tests/e2e/conftest.py``), shared with every e2e
module, with its token.
"""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path

import pytest

from migrator.engine import convert_source
from migrator.options import ConvertOptions
from migrator.registry import all_codemods
from tests.drivers import Drivers

SAMPLES = Path(__file__).resolve().parents[2] / "fixtures" / "samples" / "legacy"
CASES = [
    pytest.param("transformers_trainer.py", None, "transformers", id="transformers"),
    # Ray 1.12's path (ray.ml) and its plain-dict scaling_config.
    pytest.param("ray_ml_huggingface_trainer.py", None, "transformers", id="ray-ml-huggingface"),
    pytest.param("accelerate_trainer.py", None, "accelerate", id="accelerate"),
    # lightning_trainer.py trains on 2 workers in the validate run below, checked there, not run twice.
    # Converted with the defaults and run with both packages installed: its imports follow Ray's.
    pytest.param("lightning_trainer_pytorch_lightning.py", None, "pytorch_lightning", id="pytorch_lightning"),
]
SCRIPT_TIMEOUT_S = 480

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def ray_address(ray_cluster) -> str:
    """The session's cluster (``tests/e2e/conftest.py``), shared with every e2e module."""
    return ray_cluster.ensure_started()


@pytest.fixture(scope="module")
def ray_cluster_auth(ray_cluster) -> dict[str, str]:
    """Its token: the cluster keeps token authentication on (``migrator/runtime/privacy.py``)."""
    return dict(ray_cluster.driver_env)


@pytest.mark.parametrize(("sample", "lightning_package", "framework"), CASES)
def test_converted_legacy_sample_trains(sample: str, lightning_package: str | None, framework: str,
                                        ray_address: str, ray_cluster_auth: dict[str, str], warm_driver: Drivers,
                                        tmp_path: Path) -> None:
    for package in ("ray", "torch", framework):  # find_spec: importing torch here would cost seconds
        if importlib.util.find_spec(package) is None:
            pytest.skip(f"{package} is not installed")
    options = ConvertOptions(num_workers=2, use_gpu=False, lightning_package=lightning_package)
    result = convert_source((SAMPLES / sample).read_bytes(), all_codemods(), options, path=sample)
    assert result.status == "converted", result.error
    assert not result.follow_ups, [e.message for e in result.follow_ups]
    script = tmp_path / sample
    script.write_bytes(result.output)
    results = warm_driver.home / "ray_results"  # the default storage: ~/ray_results
    before = set(results.iterdir()) if results.exists() else set()
    env = {**ray_cluster_auth, "RAY_ADDRESS": ray_address,
           "RAY_TRAIN_V2_ENABLED": None}  # what users get: the default, V2

    # `python -m NAME` in its folder, as `python NAME.py` there: from the warm interpreter if it takes it
    started = time.monotonic()
    done = warm_driver.run(script.stem, [], cwd=tmp_path, extra_env=env, timeout=SCRIPT_TIMEOUT_S)
    wall = time.monotonic() - started
    print(f"{sample}: {wall:.1f} s wall")
    assert done.returncode == 0 and not done.timed_out, f"exit {done.returncode}\n{done.output[-8000:]}"

    runs = [p for p in results.iterdir() if p.is_dir() and p not in before]
    assert len(runs) == 1, runs
    checkpoints = sorted(runs[0].glob("checkpoint_*"))
    assert checkpoints and any(any(c.iterdir()) for c in checkpoints), f"no checkpoint under {runs[0]}"
    reported = _reported_metrics(runs[0])
    assert reported and all(reported), f"no metrics were reported with the checkpoints under {runs[0]}"
    assert "final metrics: None" not in done.output


def _reported_metrics(run_dir: Path) -> list[dict]:
    """The metrics Ray Train stored with each checkpoint (its checkpoint manager snapshot)."""
    found = []
    for path in run_dir.glob("*.json"):
        data = json.loads(path.read_text())
        found += [entry.get("metrics") for entry in _checkpoint_entries(data)]
    return found


def _checkpoint_entries(data) -> list[dict]:
    if isinstance(data, dict):
        if "metrics" in data and isinstance(data["metrics"], dict):
            return [data]
        return [e for value in data.values() for e in _checkpoint_entries(value)]
    if isinstance(data, list):
        return [e for value in data for e in _checkpoint_entries(value)]
    return []


def test_legacy_lightning_trainer_validates_on_the_emulation(ray_cluster, tmp_path: Path) -> None:
    """The original's LightningTrainer runs on migrate's one-worker emulation (the builder's module
    fit on Ray Data batches): the conversion's losses agree with it, step for step."""
    from tests.e2e.test_runtime import assert_all_pass, validate_json, verdicts

    script = tmp_path / "lightning_trainer.py"
    script.write_bytes((SAMPLES / script.name).read_bytes())
    report, done = validate_json(str(script), "--cpu", "--num-workers", "2", "--max-steps", "4", "--address",
                                 ray_cluster.ensure_started(), cwd=tmp_path, auth=ray_cluster.driver_env)
    assert_all_pass(report, done)
    checks = verdicts(report)
    assert checks["original runs"] == "pass" and checks["loss agreement (1 worker)"] == "pass"
    assert any("retired LightningTrainer" in note for note in report["notes"]), report["notes"]
    agreement = report["figures"]["loss_agreement"]
    assert agreement["original_steps"] == agreement["converted_steps"] == 4
    assert agreement["max_difference"] <= 1e-4
    assert checks["workers share the work"] == "pass"
    # Its run on 2 workers is the converted sample's training: a checkpoint, with metrics reported.
    run = report["figures"]["runs"]["converted_2_workers"]
    assert run["world_size"] == 2 and run["metrics"], run
    assert checks["checkpoint loads"] == "pass" and (Path(run["checkpoint"]) / "checkpoint.ckpt").is_file()

"""A retired trainer wrapped in a Tuner, converted and tuned for real: two trials on 2 CPU workers each.

Train V2 cannot tune a trainer object; the conversion makes Tune run a function that fits a
TorchTrainer and reports through TuneReportCallback. The run must finish both trials without
errors, and each trial must have received the metrics its training reported.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from migrator.engine import convert_source
from migrator.options import ConvertOptions
from migrator.registry import all_codemods
from tests.drivers import Drivers

SAMPLE = Path(__file__).resolve().parents[2] / "fixtures" / "samples" / "legacy" / "tuner_accelerate_trainer.py"
TIMEOUT_S = 480

pytestmark = pytest.mark.e2e


def test_tuner_wrapped_retired_trainer_tunes(ray_cluster, warm_driver: Drivers, tmp_path: Path) -> None:
    options = ConvertOptions(num_workers=2, use_gpu=False)
    result = convert_source(SAMPLE.read_bytes(), all_codemods(), options, path=SAMPLE.name)
    assert result.status == "converted", result.error
    assert not result.follow_ups, [e.message for e in result.follow_ups]
    assert any(e.codemod == "tuner_trainer" for e in result.changes)
    script = tmp_path / SAMPLE.name
    script.write_bytes(result.output)
    address = ray_cluster.ensure_started()  # first: the cluster's driver_env is known once it started
    env = {**ray_cluster.driver_env,  # token authentication, loopback (runtime/privacy.py)
           "RAY_ADDRESS": address, "RAY_TRAIN_V2_ENABLED": None}  # V2: what users get, the default
    started = time.monotonic()
    # `python -m NAME` in its folder, as `python NAME.py` there: from the warm interpreter if it takes it
    done = warm_driver.run(script.stem, [], cwd=tmp_path, extra_env=env, timeout=TIMEOUT_S)
    print(f"{SAMPLE.name}: {time.monotonic() - started:.1f} s wall, forked: {done.forked}")
    assert done.returncode == 0 and not done.timed_out, f"exit {done.returncode}\n{done.output[-8000:]}"
    assert "trials: 2 errors: 0" in done.output, done.output[-3000:]
    trials = [line for line in done.output.splitlines() if line.startswith("trial metrics:")]
    assert len(trials) == 2 and all("'epoch': 1" in line and "'loss': None" not in line for line in trials), trials
    assert "best lr: 0.1" in done.output or "best lr: 0.05" in done.output

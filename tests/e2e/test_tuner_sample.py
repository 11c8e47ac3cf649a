"""A retired trainer wrapped in a Tuner, converted and tuned for real: two trials on 2 CPU workers each.

Train V2 cannot tune a trainer object; the conversion makes Tune run a function that fits a
TorchTrainer and reports through TuneReportCallback. The run must finish both trials without
errors, and each trial must have received the metrics its training reported.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from migrator.engine import convert_source
from migrator.options import ConvertOptions
from migrator.registry import all_codemods

SAMPLE = Path(__file__).resolve().parents[2] / "fixtures" / "samples" / "legacy" / "tuner_accelerate_trainer.py"
TIMEOUT_S = 480

pytestmark = pytest.mark.e2e


def test_tuner_wrapped_retired_trainer_tunes(ray_cluster, tmp_path: Path) -> None:
    options = ConvertOptions(num_workers=2, use_gpu=False)
    result = convert_source(SAMPLE.read_bytes(), all_codemods(), options, path=SAMPLE.name)
    assert result.status == "converted", result.error
    assert not result.follow_ups, [e.message for e in result.follow_ups]
    assert any(e.codemod == "tuner_trainer" for e in result.changes)
    script = tmp_path / SAMPLE.name
    script.write_bytes(result.output)
    home = tmp_path / "home"
    home.mkdir()
    env = dict(os.environ, HOME=str(home), PYTHONUNBUFFERED="1", RAY_ADDRESS=ray_cluster.ensure_started())
    env.update(ray_cluster.driver_env)  # the cluster keeps token authentication on (runtime/privacy.py)
    env.pop("RAY_TRAIN_V2_ENABLED", None)  # what users get: the default, V2
    started = time.monotonic()
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT_S)
    print(f"{SAMPLE.name}: {time.monotonic() - started:.1f} s wall")
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout[-5000:]}\n{proc.stderr[-5000:]}"
    assert "trials: 2 errors: 0" in proc.stdout, proc.stdout[-3000:]
    trials = [line for line in proc.stdout.splitlines() if line.startswith("trial metrics:")]
    assert len(trials) == 2 and all("'epoch': 1" in line and "'loss': None" not in line for line in trials), trials
    assert "best lr: 0.1" in proc.stdout or "best lr: 0.05" in proc.stdout

"""The launcher without a cluster: overrides, argv, fit recording, errors, the summary file.

Fast (no Ray cluster starts: a TorchTrainer is only built, or its fit() is faked), so these run
in the default test selection, not under the e2e marker.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from migrator.runtime.launch import Overrides, _parse, main, run_script


def write(tmp_path: Path, body: str) -> Path:
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(body), encoding="utf-8")
    return script


def test_importing_the_runtime_loads_no_ray_or_torch() -> None:
    code = "import sys, migrator.runtime.launch; print(sorted({'ray', 'torch'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_parse_splits_script_args_at_double_dash() -> None:
    options, rest = _parse(["s.py", "--num-workers", "3", "--gpu", "--summary", "x.json", "--", "--lr", "1", "--"])
    assert (options.script, options.num_workers, options.use_gpu, options.summary) == ("s.py", 3, True, "x.json")
    assert rest == ["--lr", "1", "--"]
    assert _parse(["s.py", "--cpu"])[0].use_gpu is False
    assert _parse(["s.py"])[0].use_gpu is None


def test_overrides_reach_scaling_and_run_config(tmp_path: Path) -> None:
    out = tmp_path / "seen.json"
    script = write(tmp_path, f"""
        import json, sys
        from ray.train import RunConfig, ScalingConfig
        from ray.train.torch import TorchTrainer

        t = TorchTrainer(lambda: None, scaling_config=ScalingConfig(num_workers=8, use_gpu=True),
                         run_config=RunConfig(name="kept"))
        s, r = t.scaling_config, t.run_config
        json.dump({{"argv": sys.argv[1:], "name": __name__, "isinstance": isinstance(t, TorchTrainer),
                   "scaling": [s.num_workers, s.use_gpu, s.resources_per_worker],
                   "run": [r.name, r.storage_path]}}, open({str(out)!r}, "w"))
    """)
    overrides = Overrides(num_workers=2, use_gpu=False, resources_per_worker={"CPU": 1}, storage_path=str(tmp_path))
    summary = run_script(str(script), ["--lr", "1"], overrides)
    assert summary.ok and summary.fits == []
    seen = json.loads(out.read_text())
    assert seen == {"argv": ["--lr", "1"], "name": "__main__", "isinstance": True,
                    "scaling": [2, False, {"CPU": 1}], "run": ["kept", str(tmp_path)]}


class FakeResult:
    def __init__(self, n: int) -> None:
        self.metrics = {"loss": 1.0 / n}
        self.checkpoint = type("C", (), {"path": f"/ckpt/{n}"})()
        self.path = f"/run/{n}"
        self.error = None


@pytest.fixture
def fake_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    """A TorchTrainer whose fit() returns at once: recording is all that is under test."""
    import ray.train.torch

    class FakeTorchTrainer:
        calls = 0

        def __init__(self, fn, **kwargs) -> None:
            self.fn = fn

        def fit(self):
            FakeTorchTrainer.calls += 1
            if self.fn == "boom":
                raise RuntimeError("worker died")
            return FakeResult(FakeTorchTrainer.calls)

    monkeypatch.setattr(ray.train.torch, "TorchTrainer", FakeTorchTrainer)


def test_every_fit_is_recorded_and_the_summary_written(tmp_path: Path, fake_fit: None) -> None:
    script = write(tmp_path, """
        from ray.train.torch import TorchTrainer
        TorchTrainer(None).fit()
        TorchTrainer(None).fit()
    """)
    summary_path = tmp_path / "summary.json"
    assert main([str(script), "--summary", str(summary_path)]) == 0
    summary = json.loads(summary_path.read_text())
    assert summary["fit_calls"] == 2 and summary["ok"] and summary["error"] is None
    assert summary["metrics"] == {"loss": 0.5} and summary["checkpoint"] == "/ckpt/2" and summary["path"] == "/run/2"


def test_a_failing_fit_is_an_error(tmp_path: Path, fake_fit: None) -> None:
    script = write(tmp_path, """
        from ray.train.torch import TorchTrainer
        TorchTrainer("boom").fit()
    """)
    summary = run_script(str(script))
    assert not summary.ok
    assert summary.fits[0].error == summary.error == "RuntimeError: worker died"


@pytest.mark.parametrize("body, error", [
    ("import sys; sys.exit(0)", None),
    ("import sys; sys.exit(3)", "SystemExit: 3"),
    ("raise ValueError('bad data')", "ValueError: bad data"),
])
def test_script_exits_and_errors(tmp_path: Path, body: str, error: str | None) -> None:
    summary = run_script(str(write(tmp_path, body)))
    assert summary.error == error
    assert summary.to_dict()["fit_calls"] == 0


def test_the_patch_is_undone(tmp_path: Path) -> None:
    import ray.train.torch

    before = ray.train.torch.TorchTrainer
    run_script(str(write(tmp_path, "raise KeyError('x')")))
    assert ray.train.torch.TorchTrainer is before


@pytest.mark.parametrize("workers, gpus, share", [(2, 1, 0.5), (3, 1, 0.3333), (3, 2, 0.5), (2, 2, None), (4, 8, None), (2, 0, None)])
def test_gpu_share(workers: int, gpus: float, share: float | None) -> None:
    from migrator.runtime.launch import gpu_share

    assert gpu_share(workers, gpus) == share


def test_fractional_gpus_use_gloo_and_cpu_drops_gpu_resources(tmp_path: Path) -> None:
    out = tmp_path / "seen.json"
    script = write(tmp_path, f"""
        import json
        from ray.train import ScalingConfig
        from ray.train.torch import TorchTrainer

        seen = []
        for scaling in (ScalingConfig(num_workers=2), ScalingConfig(num_workers=2, use_gpu=True, resources_per_worker={{"GPU": 1, "CPU": 2}})):
            t = TorchTrainer(lambda: None, scaling_config=scaling)
            seen.append([t.scaling_config.use_gpu, t.scaling_config.resources_per_worker, t.backend_config.backend])
        json.dump(seen, open({str(out)!r}, "w"))
    """)
    run_script(str(script), [], Overrides(gpus_per_worker=0.5))
    assert json.loads(out.read_text()) == [[True, {"GPU": 0.5}, "gloo"], [True, {"GPU": 0.5, "CPU": 2}, "gloo"]]
    run_script(str(script), [], Overrides(use_gpu=False))
    assert [seen[:2] for seen in json.loads(out.read_text())] == [[False, None], [False, {"CPU": 2}]]


def test_a_lightning_mismatch_stops_before_anything_runs(tmp_path: Path) -> None:
    script = write(tmp_path, """
        import pytorch_lightning as pl
        from ray.train.lightning import prepare_trainer
        raise SystemExit("the script body must not run")
    """)
    summary = run_script(str(script))
    assert summary.error.startswith("LightningPackageMismatch: line 2: the script imports pytorch_lightning")

"""Which runs ``migrate validate`` starts, and how their outcomes become checks (no Ray here: the
runs are recorded and answered, the rest of the validation is real)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from migrator.runtime import runner, validate

DATA = Path(__file__).resolve().parents[1] / "e2e" / "data" / "runtime"


def _summary(workers: int, losses: list, checkpoint: str) -> dict:
    return {
        "ok": True, "fit_calls": 1, "fits": [{"wall_s": 1.0}], "steps": len(losses), "world_size": workers,
        "losses": {str(rank): losses for rank in range(workers)},
        "steps_by_rank": {str(rank): len(losses) for rank in range(workers)},
        "checkpoint": checkpoint, "checkpoint_load": {"ok": True, "how": "torch.load"},
        "metrics": {"epoch": 2, "loss": losses[-1][1]},
    }


@pytest.fixture
def recorded_runs(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[tuple[str, list[str]]]:
    """Every run validate starts, as (module, flags); each answers with the same losses."""
    runs: list[tuple[str, list[str]]] = []
    local_mode_fails = request.param if hasattr(request, "param") else False
    losses = [[1, 0.9], [2, 0.7], [3, 0.5]]

    def fake_run(settings, module, script, flags, env, label, outputs=None, warm=None) -> runner.Outcome:
        runs.append((module, list(flags)))
        warms.append(warm)
        workers = int(flags[flags.index("--num-workers") + 1]) if "--num-workers" in flags else 1
        if workers == 0 and local_mode_fails:  # what a script that only trains on a Ray worker does
            return runner.Outcome({"ok": False, "error": "AssertionError: not on a Ray worker", "fit_calls": 1},
                                  1, [], "address")
        # Local mode (0 workers) is a world of one.
        return runner.Outcome(_summary(max(workers, 1), losses, str(tmp_path / "checkpoint")), 0, [], "address")

    monkeypatch.setattr(validate, "_run", fake_run)
    monkeypatch.setattr(runner, "WarmInterpreter", FakeWarm)
    monkeypatch.chdir(tmp_path)
    warms.clear()
    return runs


warms: list = []  # the warm interpreter each recorded run was given


class FakeWarm:
    """Stands for ``runner.WarmInterpreter``: records what it would import from."""

    def __init__(self, scripts, *, env, cwd, standins=False) -> None:
        self.scripts, self.imported, self.runs, self.refusals, self.closed = scripts, [], 0, [], False
        self.shared = None

    @classmethod
    def attach(cls, path: str) -> "FakeWarm | None":
        """One serving at ``path`` (``MIGRATE_WARM_SERVER``): takes runs unless ``path`` ends in "refuses"."""
        if not path.startswith("/serving"):
            return None
        attached = cls([], env={}, cwd="")
        attached.shared = path
        return attached

    def accepts(self, env, cwd, standins=False) -> bool:
        if self.shared.endswith("refuses"):
            self.refusals.append("another environment: HOME")
            return False
        return True

    def close(self) -> None:
        self.closed = True


def _validate(tmp_path: Path, workers: int, use_gpu: bool = False) -> validate.Report:
    for name in ("accelerate_regression.py", "accelerate_regression_converted.py"):
        shutil.copy(DATA / name, tmp_path / name)
    settings = validate.Settings(original=tmp_path / "accelerate_regression.py",
                                 converted=tmp_path / "accelerate_regression_converted.py",
                                 num_workers=workers, address="127.0.0.1:1", use_gpu=use_gpu)
    return validate.run_validation(settings)


def test_n_workers_take_a_second_run_that_loads_the_checkpoint(recorded_runs, tmp_path: Path) -> None:
    report = _validate(tmp_path, 2)
    launches = [flags for module, flags in recorded_runs if module == "migrator.runtime.launch"]
    assert [module for module, _ in recorded_runs][0] == "migrator.runtime.original"
    assert len(launches) == 2
    one, many = launches
    # The run compared with the original is made in one process (Ray Train's local mode).
    assert one[one.index("--num-workers") + 1] == "0" and "--same-sampler" in one and "--check-checkpoint" not in one
    assert many[many.index("--num-workers") + 1] == "2" and "--check-checkpoint" in many
    assert report.ok, validate.render_table(report)
    assert report.figures["runs"]["converted_2_workers"]["world_size"] == 2
    checks = {c.name: c for c in report.checks}
    assert "local mode" in checks["converted runs on 1 worker"].detail
    assert checks["loss agreement (1 worker)"].verdict == validate.PASS
    assert not any("compared on 1 Ray worker instead" in note for note in report.notes)


@pytest.mark.parametrize("recorded_runs", [True], indirect=True)
def test_a_script_that_fails_in_local_mode_is_compared_on_one_ray_worker(recorded_runs, tmp_path: Path) -> None:
    """A limit of Ray Train's local mode never fails a validation: that run is made again on 1 worker."""
    report = _validate(tmp_path, 2)
    launches = [flags for module, flags in recorded_runs if module == "migrator.runtime.launch"]
    assert [flags[flags.index("--num-workers") + 1] for flags in launches] == ["0", "1", "2"]
    assert "--same-sampler" in launches[1] and "--check-checkpoint" not in launches[1]
    assert report.ok, validate.render_table(report)
    checks = {c.name: c for c in report.checks}
    assert checks["converted runs on 1 worker"].verdict == validate.PASS
    assert "local mode" not in checks["converted runs on 1 worker"].detail
    assert checks["loss agreement (1 worker)"].verdict == validate.PASS
    assert any("not on a Ray worker" in note and "1 Ray worker instead" in note for note in report.notes), report.notes


def test_one_worker_is_run_once_for_every_check(recorded_runs, tmp_path: Path) -> None:
    report = _validate(tmp_path, 1)
    launches = [flags for module, flags in recorded_runs if module == "migrator.runtime.launch"]
    assert len(launches) == 1
    assert "--same-sampler" in launches[0] and "--check-checkpoint" in launches[0]
    checks = {c.name: c.verdict for c in report.checks}
    assert checks["converted runs on 1 worker"] == checks["finishes on 1 workers"] == validate.PASS
    assert checks["loss agreement (1 worker)"] == checks["checkpoint loads"] == validate.PASS
    assert report.figures["runs"]["converted_1_worker"]["metrics"] == {"epoch": 2, "loss": 0.5}


def test_with_gpus_the_comparison_runs_on_one_ray_worker(recorded_runs, tmp_path: Path) -> None:
    """The driver holds none of Ray's GPUs: local mode would train the converted script on the CPU."""
    _validate(tmp_path, 2, use_gpu=True)
    launches = [flags for module, flags in recorded_runs if module == "migrator.runtime.launch"]
    assert [flags[flags.index("--num-workers") + 1] for flags in launches] == ["1", "2"]
    assert all("--gpu" in flags for flags in launches)
    assert warms == [None, None, None]  # fresh interpreters: CUDA does not survive a fork


def test_on_cpu_every_run_starts_from_one_warm_interpreter(recorded_runs, tmp_path: Path, monkeypatch) -> None:
    report = _validate(tmp_path, 2)
    assert len(warms) == 3 and isinstance(warms[0], FakeWarm) and warms.count(warms[0]) == 3
    # It imports from both scripts, and is closed at the end.
    assert [Path(s).name for s in warms[0].scripts] == ["accelerate_regression.py", "accelerate_regression_converted.py"]
    assert warms[0].closed and report.figures["warm"] == {"imported": [], "runs": 0, "refused": [], "shared": None}
    # MIGRATE_FRESH_PROCESSES=1: none.
    recorded_runs.clear()
    warms.clear()
    monkeypatch.setenv("MIGRATE_FRESH_PROCESSES", "1")
    report = _validate(tmp_path, 2)
    assert warms == [None, None, None] and "warm" not in report.figures


def test_a_script_that_uses_torch_distributed_is_compared_on_one_ray_worker(recorded_runs, tmp_path: Path) -> None:
    """Local mode starts no process group: a DistributedSampler of the script's own would fail there."""
    source = (DATA / "accelerate_regression_converted.py").read_text()
    (tmp_path / "accelerate_regression_converted.py").write_text(
        "from torch.utils.data.distributed import DistributedSampler\n" + source
        + "\n\ndef loader(data):\n    return DistributedSampler(data)\n")
    shutil.copy(DATA / "accelerate_regression.py", tmp_path / "accelerate_regression.py")
    settings = validate.Settings(original=tmp_path / "accelerate_regression.py",
                                 converted=tmp_path / "accelerate_regression_converted.py",
                                 num_workers=2, address="127.0.0.1:1", use_gpu=False)
    validate.run_validation(settings)
    launches = [flags for module, flags in recorded_runs if module == "migrator.runtime.launch"]
    assert [flags[flags.index("--num-workers") + 1] for flags in launches] == ["1", "2"]


class _Torch:
    """A stand-in for torch in ``sys.modules``: says whether it was asked."""

    def __init__(self, available: bool) -> None:
        self.asked = False
        self.cuda = self
        self._available = available

    def is_available(self) -> bool:
        self.asked = True
        return self._available


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the device files are Linux's")
def test_without_gpu_device_files_no_torch_is_imported_to_ask(tmp_path: Path, monkeypatch) -> None:
    torch = _Torch(available=True)
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setattr(validate, "GPU_DEVICE_FILES", (str(tmp_path / "nvidiactl"),))
    assert validate._gpu_available() is False and not torch.asked
    (tmp_path / "nvidiactl").touch()  # a driver's device file: only torch can tell
    assert validate._gpu_available() is True and torch.asked
    monkeypatch.setitem(sys.modules, "torch", _Torch(available=False))  # a CPU build on a GPU machine
    assert validate._gpu_available() is False


@pytest.mark.parametrize(("server", "shared"), [("/serving/warm.sock", True), ("/serving/refuses", False),
                                                ("/nothing/there", False)])
def test_a_warm_interpreter_already_serving_is_used_if_it_takes_the_runs(recorded_runs, tmp_path: Path, monkeypatch,
                                                                         capsys, server: str, shared: bool) -> None:
    monkeypatch.setenv("MIGRATE_WARM_SERVER", server)
    report = _validate(tmp_path, 2)
    assert len(warms) == 3 and warms.count(warms[0]) == 3 and warms[0].closed
    assert (warms[0].shared == server) is shared and (warms[0].scripts == []) is shared
    assert report.figures["warm"]["shared"] == (server if shared else None)
    said = capsys.readouterr().err
    if not shared:  # it says why, then imports the scripts' libraries itself
        assert f"not using the warm interpreter at {server}: " in said and ("HOME" in said or "nothing answers" in said)
        assert "importing the scripts' libraries once" in said

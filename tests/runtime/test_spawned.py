"""An original that starts its own processes (``torch.multiprocessing``) is recorded in each of them.

The runner cases run ``python -m migrator.runtime.original`` in a subprocess, as
``tests/runtime/test_instrument.py`` does; the children are real ``spawn`` processes on gloo.
No Ray here.
"""

from __future__ import annotations

import json
import pickle
import re
import textwrap
from pathlib import Path
from typing import Callable

import pytest

from migrator.runtime import runner, standins
from migrator.runtime.spawned import SpawnedWorker, launches_processes
from migrator.runtime.validate import FAIL, PASS, SKIP, Report, Settings, spawned_agreement

ROOT = Path(__file__).resolve().parents[2]

# DDP on 2 spawned processes, each with its own half of the data (DistributedSampler), 6 batches
# per rank; each child prints what it computed, to compare with what the runner recorded.
SCRIPT = ROOT / "tests" / "e2e" / "data" / "runtime" / "spawn_ddp_sampler.py"


def write(tmp_path: Path) -> Path:
    script = tmp_path / SCRIPT.name
    script.write_bytes(SCRIPT.read_bytes())
    return script


def printed_losses(output: str) -> dict[str, list[list]]:
    out: dict[str, list[list]] = {}
    for rank, step, value in re.findall(r"LOSS rank=(\d) step=(\d+) value=(\S+)", output):
        out.setdefault(rank, []).append([int(step), float(value)])
    return out


def test_each_spawned_process_is_seeded_capped_and_recorded(run_original_printing: Callable, tmp_path: Path) -> None:
    summary, output = run_original_printing(write(tmp_path), "--seed", "7", "--max-steps", "4", cwd=tmp_path)
    assert summary["ok"], summary["error"]
    assert summary["spawned"] == {"processes": 2,
                                  "calls": [{"processes": 2, "start_method": "spawn", "function": "train"}]}
    # Each child was seeded with the run's seed, and was not told it is a world of one.
    assert sorted(re.findall(r"CHILD rank=(\d) seed=(\d+) WORLD_SIZE=(\S+)", output)) == [
        ("0", "7", "None"), ("1", "7", "None")]
    # The cap stopped each child after 4 of its 6 batches, and the runner recorded, per rank,
    # exactly the losses the children computed.
    printed = printed_losses(output)
    assert {rank: len(series) for rank, series in printed.items()} == {"0": 4, "1": 4}
    assert summary["losses"] == printed
    assert summary["steps_by_rank"] == {"0": 4, "1": 4} and summary["world_size"] == 2
    # Each rank trained on its own half of the data: the two series differ.
    assert summary["losses"]["0"] != summary["losses"]["1"]


def test_a_failing_child_fails_the_run_and_keeps_its_steps(run_original_printing: Callable, tmp_path: Path) -> None:
    summary, output = run_original_printing(write(tmp_path), "--seed", "0", "--", "3", cwd=tmp_path)
    assert not summary["ok"]
    assert "broken on purpose at step 3" in summary["error"]
    recorded = summary["losses"]
    assert recorded["0"] == printed_losses(output)["0"] and len(recorded["0"]) == 2


def test_processes_a_module_of_the_script_starts_are_recorded_too(run_original_printing: Callable,
                                                                  tmp_path: Path) -> None:
    (tmp_path / "helper.py").write_text(
        "import torch.multiprocessing as mp\n\n\ndef launch(fn, n):\n    mp.spawn(fn, args=(n,), nprocs=n)\n")
    script = tmp_path / "main.py"
    script.write_text(textwrap.dedent("""
        import torch
        from helper import launch


        def work(rank, n):
            w = torch.zeros(3, requires_grad=True)
            for _ in range(3):
                loss = ((w - rank - 1) ** 2).sum()  # 3 * (rank + 1)**2 at first, then 0.64 times that
                loss.backward()
                with torch.no_grad():
                    w -= 0.1 * w.grad
                    w.grad.zero_()


        if __name__ == "__main__":
            launch(work, 2)
    """))
    summary, _ = run_original_printing(script, cwd=tmp_path)
    assert summary["ok"] and summary["spawned"]["processes"] == 2
    for rank, series in summary["losses"].items():
        start = 3.0 * (int(rank) + 1) ** 2
        assert [step for step, _ in series] == [1, 2, 3]
        assert [loss for _, loss in series] == pytest.approx([start, start * 0.64, start * 0.64**2], rel=1e-5)


ABORTS = """
import atexit, os, signal, sys, time

import torch
import torch.multiprocessing as mp


def work(rank, n, when):
    w = torch.zeros(3, requires_grad=True)
    for step in range(3):
        if when == "training" and rank == 0 and step == 1:
            os.kill(os.getpid(), signal.SIGABRT)
        loss = ((w - 1) ** 2).sum()
        loss.backward()
        with torch.no_grad():
            w -= 0.1 * w.grad
            w.grad.zero_()
    if when == "exit" and rank == 1:
        with open("rank1.pid", "w") as f:
            f.write(str(os.getpid()))
    if when == "exit" and rank == 0:  # what torch's gloo teardown now and then does
        atexit.register(abort_after_rank_1)


def abort_after_rank_1():
    # Once rank 1 is gone (it finished too), as when gloo's teardown aborts the last one out.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            os.kill(int(open("rank1.pid").read()), 0)
        except (OSError, ValueError):  # not written yet, or the process is gone
            if os.path.exists("rank1.pid") and open("rank1.pid").read():
                break
        time.sleep(0.05)
    os.kill(os.getpid(), signal.SIGABRT)


if __name__ == "__main__":
    mp.spawn(work, args=(2, sys.argv[1]), nprocs=2)
    print("AFTER SPAWN", flush=True)
"""


def test_a_process_that_dies_on_exit_after_training_does_not_fail_the_run(run_original_printing: Callable,
                                                                          tmp_path: Path) -> None:
    script = tmp_path / "aborts.py"
    script.write_text(ABORTS)
    summary, output = run_original_printing(script, "--", "exit", cwd=tmp_path)
    assert summary["ok"], summary["error"]
    assert "AFTER SPAWN" in output  # the script went on, as after a clean join
    assert {rank: len(series) for rank, series in summary["losses"].items()} == {"0": 3, "1": 3}
    assert any("died with SIGABRT as it exited" in w for w in summary["warnings"]), summary["warnings"]


def test_a_process_that_dies_while_training_fails_the_run(run_original_printing: Callable, tmp_path: Path) -> None:
    script = tmp_path / "aborts.py"
    script.write_text(ABORTS)
    summary, output = run_original_printing(script, "--", "training", cwd=tmp_path)
    assert not summary["ok"] and "SIGABRT" in summary["error"]
    assert "AFTER SPAWN" not in output
    assert not any("died with" in w for w in summary["warnings"])


def test_the_wrapper_pickles_whatever_the_settings_hold() -> None:
    """The spawn start method pickles it: a setting that cannot travel is left behind, not fatal."""
    settings = {"seed": 3, "standins": {"keys": []}, "standins_install": standins.install, "local": lambda: None}
    clone = pickle.loads(pickle.dumps(SpawnedWorker(json.dumps, settings, 2, "/tmp/events", 0)))
    assert clone.fn is json.dumps and clone.nprocs == 2 and clone.folder == "/tmp/events"
    assert clone.settings == {"seed": 3, "standins": {"keys": []}, "standins_install": standins.install}


@pytest.mark.parametrize("source, expected", [
    ("import torch.multiprocessing as mp\nmp.spawn(f, nprocs=2)\n", True),
    ("from torch import multiprocessing as mp\nmp.start_processes(f, nprocs=2, start_method='fork')\n", True),
    ("from torch.multiprocessing import spawn\nspawn(f, nprocs=2)\n", True),
    ("import multiprocessing as mp\nmp.Process(target=f).start()\n", False),  # not wrapped: see the module
    ("import torch\nx = torch.randn(3)\n", False),
    ("def broken(:\n", False),
])
def test_which_scripts_launch_processes(source: str, expected: bool) -> None:
    assert launches_processes(source) is expected


def outcome(losses: dict[str, list]) -> runner.Outcome:
    return runner.Outcome(summary={"ok": True, "losses": losses}, returncode=0, output_tail=[], mode="local")


ORIGINAL = {"spawned": {"processes": 2}, "losses": {"0": [[1, 2.0], [2, 1.5]], "1": [[1, 3.0], [2, 2.5]]}}


def agreement(original: dict, many: runner.Outcome, workers: int = 2) -> tuple[Report, dict]:
    report = Report("x.py", None)
    spawned_agreement(original, many, Settings(Path("x.py"), num_workers=workers), report)
    (check,) = report.checks
    return report, {"name": check.name, "verdict": check.verdict, "detail": check.detail}


def test_agreement_compares_every_rank_with_the_same_worker_rank() -> None:
    report, check = agreement(ORIGINAL, outcome({"0": [[1, 2.0], [2, 1.5]], "1": [[1, 3.0], [2, 2.50001]]}))
    assert check["name"] == "loss agreement (2 workers)" and check["verdict"] == PASS
    assert "rank 1" in check["detail"]  # the worst rank is named
    figures = report.figures["loss_agreement"]
    assert figures["workers"] == 2 and figures["rank"] == 1 and 0 < figures["max_difference"] < 1e-4
    assert report.losses["original"] == ORIGINAL["losses"]["0"]

    _, check = agreement(ORIGINAL, outcome({"0": [[1, 2.0], [2, 1.5]], "1": [[1, 3.0], [2, 2.6]]}))
    assert check["verdict"] == FAIL and check["detail"].startswith("rank 1:")
    _, check = agreement(ORIGINAL, outcome({"0": [[1, 2.0], [2, 1.5]]}))  # rank 1 recorded nothing
    assert check["verdict"] == FAIL and "no losses recorded" in check["detail"]


def test_agreement_skips_with_a_reason_when_the_counts_differ() -> None:
    _, check = agreement(ORIGINAL, outcome(ORIGINAL["losses"]), workers=3)
    assert check["verdict"] == SKIP and "--num-workers 2" in check["detail"]
    failed = runner.Outcome(summary=None, returncode=1, output_tail=[], mode="local")
    _, check = agreement(ORIGINAL, failed)
    assert check["verdict"] == SKIP and "did not run on 2 workers" in check["detail"]

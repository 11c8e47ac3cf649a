"""The hooks inside the training process, without Ray: the original runner on small scripts.

Each case runs ``python -m migrator.runtime.original`` in a process of its own (the hooks patch torch,
Lightning and Accelerate classes, which must not leak into the test process).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Callable

import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "e2e" / "data" / "runtime"


PLAIN_LOOP = """
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    x = torch.randn(64, 4)
    loader = DataLoader(TensorDataset(x, x.sum(1, keepdim=True)), batch_size=8, shuffle=True)
    eval_loader = DataLoader(TensorDataset(x, x.sum(1, keepdim=True)), batch_size=8)
    model = torch.nn.Linear(4, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    seen = []
    for epoch in range(3):
        batches = 0
        for xb, yb in loader:
            loss = torch.nn.functional.mse_loss(model(xb), yb)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            batches += 1
        with torch.no_grad():
            evaluated = sum(1 for _ in eval_loader)
        seen.append((batches, evaluated))
    print("SEEN", seen)
"""


def test_plain_loop_is_seeded_capped_and_recorded(run_original: Callable, tmp_path: Path) -> None:
    script = tmp_path / "loop.py"
    script.write_text(textwrap.dedent(PLAIN_LOOP))
    first = run_original(script, "--seed", "3", "--max-steps", "10", cwd=tmp_path)
    second = run_original(script, "--seed", "3", "--max-steps", "10", cwd=tmp_path)
    assert first["ok"] and first["framework"] == "torch"
    assert [s for s, _ in first["losses"]["0"]] == list(range(1, 11))
    assert first["losses"] == second["losses"]  # same seed, same losses
    other = run_original(script, "--seed", "4", "--max-steps", "10", cwd=tmp_path)
    assert other["losses"] != first["losses"]


def test_plain_loop_cap_stops_training_loaders_only(run_original: Callable, tmp_path: Path) -> None:
    script = tmp_path / "loop.py"
    script.write_text(textwrap.dedent(PLAIN_LOOP).replace('print("SEEN", seen)', 'open("seen.json", "w").write(repr(seen))'))
    run_original(script, "--max-steps", "10", cwd=tmp_path)
    # 8 batches an epoch: epoch 1 full, epoch 2 stops after 2, epoch 3 empty; evaluation untouched.
    assert (tmp_path / "seen.json").read_text() == "[(8, 8), (2, 8), (0, 8)]"


@pytest.mark.parametrize("name, framework", [("accelerate_regression.py", "accelerate"),
                                             ("lightning_regression.py", "lightning")])
def test_framework_hooks_record_each_step(run_original: Callable, name: str, framework: str, tmp_path: Path) -> None:
    data = run_original(DATA / name, "--seed", "0", "--max-steps", "5", cwd=tmp_path)
    assert data["ok"], data["error_traceback"]
    assert data["framework"] == framework
    assert [s for s, _ in data["losses"]["0"]] == [1, 2, 3, 4, 5]
    assert all(isinstance(v, float) for _, v in data["losses"]["0"])


def test_a_failing_original_reports_its_traceback(run_original: Callable, tmp_path: Path) -> None:
    script = tmp_path / "bad.py"
    script.write_text("import torch\nmodel = torch.nn.Linear(2, 2).cuda()\n")
    data = run_original(script, cwd=tmp_path)
    assert not data["ok"]
    assert "bad.py" in data["error_traceback"] and "line 2" in data["error_traceback"]


MIXED_PRECISION = """
    import torch
    from transformers import TrainingArguments

    args = TrainingArguments(output_dir="out", {flags}report_to="none")
    print("PRECISION", args.bf16, args.fp16, args.use_cpu)
    open("precision.txt", "w").write(repr((args.bf16, args.fp16, args.use_cpu)))
"""


@pytest.mark.parametrize("flags, expected, warned", [
    ("bf16=True, ", (False, False, False), "bf16"),  # what trl's SFTConfig does by default
    ("fp16=True, ", (False, False, False), "fp16"),
    ("bf16=True, use_cpu=True, ", (True, False, True), None),  # CPU bf16, chosen: kept
    ("", (False, False, False), None),
])
def test_mixed_precision_without_a_gpu_trains_in_fp32(run_original: Callable, flags: str, expected: tuple,
                                                       warned: str | None, tmp_path: Path) -> None:
    script = tmp_path / "precision.py"
    script.write_text(textwrap.dedent(MIXED_PRECISION.format(flags=flags)))
    data = run_original(script, cwd=tmp_path)
    assert data["ok"], data["error_traceback"]
    assert (tmp_path / "precision.txt").read_text() == repr(expected)
    notes = [w for w in data["warnings"] if "mixed precision" in w]
    assert [warned in w for w in notes] == ([True] if warned else [])


RESEED_PROBE = """
import json, os, sys
import torch
import lightning.pytorch as pl
from lightning.pytorch.strategies import ddp
from migrator.runtime import instrument

instrument.install({"frameworks": ["lightning"], "same_sampler": %s}, record=False)
pl.seed_everything(0, verbose=False)  # what the script did: PL_GLOBAL_SEED is set
torch.randn(3)  # the script draws its model and data
expected = torch.randn(2).tolist()
pl.seed_everything(0, verbose=False)
torch.randn(3)
pl.Trainer(logger=False, enable_progress_bar=False, enable_checkpointing=False)
ddp.reset_seed()  # what DDPStrategy.setup_distributed calls
print(json.dumps(torch.randn(2).tolist() == expected))
"""


@pytest.mark.parametrize(("same_sampler", "kept"), [(True, True), (False, False)])
def test_one_compared_worker_keeps_the_random_state_at_strategy_setup(same_sampler: bool, kept: bool) -> None:
    """Lightning's DDP strategy seeds again at set-up from seed_everything's PL_GLOBAL_SEED, which a
    one-device original never does: on validate's one compared worker it keeps the state instead."""
    pytest.importorskip("lightning")
    done = subprocess.run([sys.executable, "-c", RESEED_PROBE % same_sampler], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[2], timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) is kept

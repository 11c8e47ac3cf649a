"""Unit tests for the plain PyTorch codemod: what it owns, what it rewrites, what it reports."""

from __future__ import annotations

import ast

import pytest

from codemods.pytorch_loop import PytorchLoopToTorchTrainer
from migrator.engine import convert_source
from migrator.registry import all_codemods
from tests.codemods.helpers import check_noop, follow_ups, run

LOOP = """
import torch
from torch.utils.data import DataLoader

model = torch.nn.Linear(4, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
loader = DataLoader(dataset, batch_size=8)
for epoch in range(3):
    for x, y in loader:
        loss = (model(x) - y).pow(2).mean()
        loss.backward()
        optimizer.step()
"""


def converted(source: str) -> str:
    result = run(PytorchLoopToTorchTrainer, source)
    assert result.status == "converted"
    output = result.text("output")
    ast.parse(output)
    again = convert_source(output.encode(), [PytorchLoopToTorchTrainer])
    assert again.status == "unchanged", again.text("output")
    return output


def test_plain_loop_prepares_model_and_loader_and_reports() -> None:
    out = converted(LOOP)
    assert "model = ray.train.torch.prepare_model(model)" in out
    assert "loader = ray.train.torch.prepare_data_loader(DataLoader(dataset, batch_size=8))" in out
    assert 'ray.train.report({"epoch": epoch})' in out
    assert "TorchTrainer(" in out and "def train_func(" in out


def test_no_metric_found_is_a_follow_up() -> None:
    result = run(PytorchLoopToTorchTrainer, LOOP)
    assert any("no per-epoch metric" in f for f in follow_ups(result))


@pytest.mark.parametrize(
    "source",
    [
        # Accelerate, Lightning and Transformers scripts belong to their own codemods.
        "from accelerate import Accelerator\naccelerator = Accelerator()\noptimizer = torch.optim.SGD(model.parameters())\nloss.backward()\n",
        "import lightning as L\nimport torch\noptimizer = torch.optim.SGD(model.parameters())\nloss.backward()\n",
        "from transformers import Trainer\nimport torch\ntrainer = Trainer(model=model)\noptimizer = torch.optim.SGD(model.parameters())\nloss.backward()\n",
        # Already on Ray Train.
        LOOP + "from ray.train.torch import TorchTrainer\nTorchTrainer(f).fit()\n",
        # A backward pass without an optimizer: a utility, not a training.
        "import torch\n\ndef grad_norm(model, x):\n    model(x).sum().backward()\n",
    ],
    ids=["accelerate", "lightning", "transformers", "already-ray", "no-optimizer"],
)
def test_leaves_what_is_not_its_own(source: str) -> None:
    check_noop(PytorchLoopToTorchTrainer, source)


def test_whole_pipeline_leaves_accelerate_loops_to_accelerate() -> None:
    source = "from accelerate import Accelerator\naccelerator = Accelerator()\nmodel, optimizer, loader = accelerator.prepare(model, optimizer, loader)\nfor epoch in range(2):\n    for batch in loader:\n        loss = model(batch)\n        accelerator.backward(loss)\n        optimizer.step()\n"
    result = convert_source(source.encode(), all_codemods())
    assert {e.codemod for e in result.entries} == {"accelerate_script"}


def test_torchrun_pieces_are_replaced() -> None:
    out = converted("""
import os
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel


def main():
    dist.init_process_group("nccl")
    local_rank = int(os.environ["LOCAL_RANK"])
    world = int(os.environ.get("WORLD_SIZE", 1))
    torch.cuda.set_device(local_rank)
    model = DistributedDataParallel(Net().cuda(local_rank), device_ids=[local_rank])
    optimizer = torch.optim.AdamW(model.parameters())
    for epoch in range(2):
        batch = next(data).to(local_rank)
        loss = model(batch).mean()
        loss.backward()
        optimizer.step()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
""")
    for gone in ("init_process_group", "destroy_process_group", "set_device", "os.environ", "DistributedDataParallel("):
        assert gone not in out.split("def main")[0], gone
    assert "local_rank = ray.train.get_context().get_local_rank()" in out
    assert "world = ray.train.get_context().get_world_size()" in out
    assert "model = ray.train.torch.prepare_model(Net().to(ray.train.torch.get_device()))" in out
    assert "batch = next(data).to(ray.train.torch.get_device())" in out


def test_rank_guarded_save_reports_after_the_guard() -> None:
    out = converted(LOOP + """
if dist.get_rank() == 0:
    torch.save(model.module.state_dict(), "model.pt")
""")
    body = out[out.index("def train_func"):]
    guard = body.index("if dist.get_rank() == 0:")
    report = body.index("ray.train.report({\"epoch\": epoch}, checkpoint=ray_checkpoint)")
    assert guard < report
    assert 'torch.save(getattr(model, "module", model).state_dict(), "model.pt")' in body
    assert 'shutil.copy("model.pt", checkpoint_dir)' in body
    # The report is at the function's top level, so every worker makes it.
    assert "\n    with tempfile.TemporaryDirectory() as checkpoint_dir:" in body


def test_loading_a_state_dict_goes_to_the_bare_model() -> None:
    out = converted(LOOP + 'model.load_state_dict(torch.load("model.pt"))\n')
    assert 'getattr(model, "module", model).load_state_dict(torch.load("model.pt"))' in out


def test_custom_sampler_and_model_parallelism_are_follow_ups() -> None:
    source = LOOP.replace("DataLoader(dataset, batch_size=8)", "DataLoader(dataset, batch_size=8, sampler=WeightedRandomSampler(w, 8))")
    source = source.replace("for epoch", "model = torch.distributed.fsdp.FullyShardedDataParallel(model)\ntorch.distributed.new_group([0, 1])\nfor epoch")
    result = run(PytorchLoopToTorchTrainer, source)
    notes = follow_ups(result)
    assert any("custom `sampler=`" in n for n in notes)
    assert any("model parallelism" in n for n in notes)
    assert any("torch.distributed.new_group" in n for n in notes)


@pytest.mark.parametrize(("sampler", "custom"), [
    ("RandomSampler(dataset)", False),  # prepare_data_loader's DistributedSampler shuffles too
    ("SequentialSampler(dataset)", False),  # ...and keeps the order
    ("torch.utils.data.RandomSampler(dataset)", False),
    ("RandomSampler(dataset, replacement=True)", True),  # draws with replacement: not the same
    ("RandomSampler(dataset, num_samples=64)", True),
])
def test_a_whole_dataset_sampler_is_what_prepare_data_loader_does(sampler: str, custom: bool) -> None:
    source = LOOP.replace("from torch.utils.data import DataLoader", "from torch.utils.data import DataLoader, RandomSampler, SequentialSampler")
    source = source.replace("DataLoader(dataset, batch_size=8)", f"DataLoader(dataset, batch_size=8, sampler={sampler})")
    notes = follow_ups(run(PytorchLoopToTorchTrainer, source))
    assert any("custom `sampler=`" in n for n in notes) == custom, notes


@pytest.mark.parametrize(("loader", "told"), [
    ("DataLoader(dataset, batch_size=8, shuffle=True)", True),
    ("DataLoader(dataset, batch_size=8, sampler=RandomSampler(dataset))", True),
    ("DataLoader(dataset, batch_size=8, shuffle=False)", False),  # one order: nothing to tell
    ("DataLoader(dataset, batch_size=8)", False),
])
def test_a_shuffled_loader_is_told_the_epoch_on_several_workers(loader: str, told: bool) -> None:
    source = LOOP.replace("from torch.utils.data import DataLoader", "from torch.utils.data import DataLoader, RandomSampler")
    out = converted(source.replace("DataLoader(dataset, batch_size=8)", loader))
    guard = ("    for epoch in range(3):\n        # On several workers: a new shuffle each epoch, as the original's loader drew.\n"
             "        if ray.train.get_context().get_world_size() > 1:\n            loader.sampler.set_epoch(epoch)\n")
    assert (guard in out) == told, out
    # A loop that tells its sampler the epoch itself is left to do so.
    own = source.replace("DataLoader(dataset, batch_size=8)", loader).replace(
        "    for x, y in loader:", "    loader.sampler.set_epoch(epoch)\n    for x, y in loader:")
    assert converted(own).count("set_epoch") == 1


def test_two_trainings_are_left_with_a_follow_up() -> None:
    source = """
import torch

def first():
    opt = torch.optim.SGD(a.parameters())
    a(x).sum().backward()

def second():
    opt = torch.optim.SGD(b.parameters())
    b(x).sum().backward()
"""
    result = check_noop(PytorchLoopToTorchTrainer, source)
    assert any("several trainings" in n for n in follow_ups(result))


def test_notebook_launcher_over_an_imported_function() -> None:
    out = converted("""
from accelerate import notebook_launcher
from project.train import loop

notebook_launcher(loop, (1e-3, 4), num_processes=3)
""")
    assert "notebook_launcher" not in out
    assert 'loop(config["args"][0], config["args"][1])' in out
    assert '"args": (1e-3, 4)' in out and "num_workers=3" in out


def test_spawn_passes_rank_and_world_size_from_ray() -> None:
    out = converted("""
import torch
import torch.multiprocessing as mp

def worker(rank, world_size, lr):
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    for epoch in range(2):
        loss = model(x.to(rank)).sum()
        loss.backward()
        opt.step()

if __name__ == "__main__":
    n = torch.cuda.device_count()
    mp.spawn(worker, args=(n, 0.1), nprocs=n)
""")
    assert "worker(context.get_world_rank(), context.get_world_size(), config[\"args\"][0])" in out
    assert "import torch.multiprocessing" not in out
    assert "x.to(ray.train.torch.get_device())" in out


def test_training_in_a_nested_function_is_a_follow_up_not_a_silent_miss() -> None:
    source = """
import torch

class Runner:
    def fit(self):
        opt = torch.optim.SGD(self.model.parameters())
        self.model(x).sum().backward()
        opt.step()
"""
    result = check_noop(PytorchLoopToTorchTrainer, source)
    assert any("not converted: the training runs inside" in n for n in follow_ups(result))


HELPERS = """
import torch
from torch.utils.data import DataLoader


def train_epoch(model, loader, optimizer):
    for x, y in loader:
        loss = (model(x) - y).pow(2).mean()
        loss.backward()
        optimizer.step()


def evaluate(model, loader):
    val_loss = 0.0
    correct = 0
    for x, y in loader:
        val_loss += (model(x) - y).pow(2).sum().item()
    val_loss /= len(loader.dataset)
    print(val_loss, correct)


def evaluate_with_return(model, loader):
    mse = 0.0
    if not loader:
        return
    print(mse)


def main():
    model = torch.nn.Linear(4, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    loader = DataLoader(dataset, batch_size=8)
    val_loss = None
    for epoch in range(3):
        train_epoch(model, loader, optimizer)
        evaluate(model, loader)
        evaluate_with_return(model, loader)
"""


def test_a_helper_that_prints_its_metric_returns_it_and_the_epoch_loop_reports_it() -> None:
    result = run(PytorchLoopToTorchTrainer, HELPERS)
    out = result.text("output")
    tree = ast.parse(out)
    functions = {f.name: f for f in tree.body if isinstance(f, ast.FunctionDef)}
    # The loss is bound at the helper's top level, so always bound at its end; it wins over `correct`.
    assert ast.unparse(functions["evaluate"].body[-1]) == "return val_loss"
    # A loss bound only inside a loop may be unbound at the end: left alone. A helper with a
    # `return` of its own is left alone too.
    assert not isinstance(functions["train_epoch"].body[-1], ast.Return)
    assert sum(isinstance(n, ast.Return) for n in ast.walk(functions["evaluate_with_return"])) == 1
    loop = ast.unparse(functions["train_func"])
    # `val_loss` is a name the moved code binds already: the loop keeps the metric under another.
    assert "evaluate_val_loss = evaluate(model, loader)" in loop
    assert 'ray.train.report({"epoch": epoch, "evaluate_val_loss": float(evaluate_val_loss)})'.replace('"', "'") in loop
    assert "evaluate_with_return(model, loader)" in loop and "train_epoch(model, loader, optimizer)" in loop
    assert not any("no per-epoch metric" in f for f in follow_ups(result))
    assert any("evaluate() computed `val_loss`" in e.message for e in result.changes)


TRAINER_CLASS = """
import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP


class Trainer:
    def __init__(self, model, train_data, val_data, optimizer):
        self.model = DDP(model)
        self.train_data = train_data
        self.val_data = val_data
        self.optimizer = optimizer

    def _run_batch(self, source, targets):
        self.optimizer.zero_grad()
        loss = F.cross_entropy(self.model(source), targets)
        loss.backward()
        self.optimizer.step()

    def _run_epoch(self, epoch):
        for source, targets in self.train_data:
            self._run_batch(source, targets)

    def _validate(self):
        val_acc = 0.0
        for source, targets in self.val_data:
            val_acc += (self.model(source).argmax(1) == targets).float().mean()
        val_acc = val_acc / len(self.val_data)

    def _log(self, epoch):
        print(epoch)
        return epoch

    def _history(self):
        losses = [0.5, 0.25]  # collections: float() would fail on them in the report
        metrics = {"loss": 0.25}
        print(losses, metrics)

    def train(self, max_epochs):
        loss = None  # a name of the loop's own: the epoch's loss is kept under another
        for epoch in range(max_epochs):
            self._run_epoch(epoch)
            self._validate()
            self._log(epoch)
            self._history()


def main(epochs):
    model = torch.nn.Linear(4, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    Trainer(model, train_loader, val_loader, optimizer).train(epochs)


if __name__ == "__main__":
    main(3)
"""


def test_trainer_class_methods_hand_their_metrics_to_the_epoch_loop() -> None:
    """The DDP tutorial series' Trainer: the loss two calls down, a metric one call down."""
    result = run(PytorchLoopToTorchTrainer, TRAINER_CLASS)
    tree = ast.parse(result.text("output"))
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef))
    methods = {f.name: f for f in cls.body if isinstance(f, ast.FunctionDef)}
    assert ast.unparse(methods["_run_batch"].body[-1]) == "return loss"
    assert ast.unparse(methods["_run_epoch"].body[-1]) == "return loss"
    assert "loss = self._run_batch(source, targets)" in ast.unparse(methods["_run_epoch"])
    assert ast.unparse(methods["_validate"].body[-1]) == "return val_acc"
    # A method that returns something already is left alone, and so is its call.
    assert sum(isinstance(n, ast.Return) for n in ast.walk(methods["_log"])) == 1
    train = ast.unparse(methods["train"])
    assert "run_epoch_loss = self._run_epoch(epoch)" in train and "val_acc = self._validate()" in train
    assert "self._log(epoch)" in train and "= self._log(epoch)" not in train
    assert "= self._history()" not in train and not isinstance(methods["_history"].body[-1], ast.Return)
    assert "ray.train.report({'epoch': epoch, 'run_epoch_loss': float(run_epoch_loss), 'val_acc': float(val_acc)})" in train
    assert not any("no per-epoch metric" in f for f in follow_ups(result))
    assert any("_run_batch() computed `loss`" in e.message for e in result.changes)


WHOLE_MODEL_SAVE = """\
import torch
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 1)

    def forward(self, x):
        return self.fc(x)


def main():
    model = Net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.randn(8, 4)
    for epoch in range(2):
        loss = model(x).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        torch.save({saved}, "best.pt")


if __name__ == "__main__":
    main()
"""


def test_a_whole_model_of_a_class_defined_here_saved_on_the_workers_is_a_follow_up() -> None:
    """On a Ray worker the class lives in the driver's __main__: pickle cannot find it by name."""
    notes = follow_ups(run(PytorchLoopToTorchTrainer, WHOLE_MODEL_SAVE.format(saved="model")))
    assert any("torch.save(model, ...)" in n and "`Net`" in n and "PicklingError" in n for n in notes), notes
    # Its state dict is saved by rank 0 and reported: nothing to say.
    notes = follow_ups(run(PytorchLoopToTorchTrainer, WHOLE_MODEL_SAVE.format(saved="model.state_dict()")))
    assert not any("PicklingError" in n for n in notes), notes


SEEDED_ABOVE = """\
import argparse
import random

import torch
import torch.nn as nn

parser = argparse.ArgumentParser()
parser.add_argument("--seed", type=int, default=7)
args = parser.parse_args()
{seeding}


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 1)


def data():
    return torch.randn(8, 4)


x = data()
model = Net()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1 * args.seed)
for epoch in range(2):
    loss = model.fc(x).pow(2).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
"""


def _train_func(output: str) -> str:
    return output[output.index("def train_func"):output.index("# Launch train_func")]


def test_seeding_left_on_the_driver_runs_first_in_the_train_function_too() -> None:
    result = run(PytorchLoopToTorchTrainer, SEEDED_ABOVE.format(seeding="torch.manual_seed(args.seed)\nrandom.seed(0)"))
    out = result.text("output")
    body = _train_func(out)
    assert body.index("torch.manual_seed(args.seed)") < body.index("random.seed(0)") < body.index("x = data()")
    assert out[:out.index("def train_func")].count("torch.manual_seed(args.seed)") == 1  # the driver keeps its own
    # random.seed(0), which nothing left on the driver needs, moved as before: it is not copied.
    assert out.count("random.seed(0)") == 1
    assert [e.message.split(" also")[0] for e in result.entries if "first thing in the train function" in e.message] == [
        "`torch.manual_seed(args.seed)`"]


def test_seeding_that_reads_a_module_global_runs_in_the_train_function_too() -> None:
    # `offset` stays global (a constant), so the train function reads it as the driver did.
    source = SEEDED_ABOVE.format(seeding="offset = 3\ntorch.manual_seed(args.seed + offset)")
    out = run(PytorchLoopToTorchTrainer, source).text("output")
    assert "torch.manual_seed(args.seed + offset)" in _train_func(out)
    assert out[:out.index("def train_func")].count("offset = 3") == 1


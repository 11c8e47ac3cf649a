"""Ray's retired trainers on their one-worker emulation: how validate runs an AIR-era original.

The scripts run in ``python -m migrator.runtime.original`` subprocesses (the emulation patches
Ray's modules, which must not leak into the test process). No Ray cluster is started: these
scripts build no Ray Data.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Callable

import pytest

from migrator.runtime import preflight, retired_ray
from tests.runtime.test_instrument import ROOT

SAMPLES = ROOT / "fixtures" / "samples" / "legacy"

AIR_TORCH_LOOP = """
    import torch
    from ray.air import session, Checkpoint
    from ray.air.config import ScalingConfig
    from ray.train.torch import TorchTrainer

    def loop(config):
        start = 0
        checkpoint = session.get_checkpoint()
        if checkpoint:
            start = checkpoint.to_dict()["epoch"] + 1
        model = torch.nn.Linear(2, 1)
        opt = torch.optim.SGD(model.parameters(), lr=config["lr"])
        x = torch.randn(32, 2)
        for epoch in range(start, 3):
            loss = ((model(x) - x.sum(1, keepdim=True)) ** 2).mean()
            opt.zero_grad(); loss.backward(); opt.step()
            assert session.get_world_rank() == 0 and session.get_world_size() == 1
            session.report({"epoch": epoch, "loss": loss.item()}, checkpoint=Checkpoint.from_dict({"epoch": epoch}))

    trainer = TorchTrainer(loop, train_loop_config={"lr": 0.1}, scaling_config=ScalingConfig(num_workers=4),
                           resume_from_checkpoint=Checkpoint.from_dict({"epoch": 0}))
    result = trainer.fit()
    with result.checkpoint.as_directory() as d:
        restored = Checkpoint.from_directory(d).to_dict()
    open("result.txt", "w").write(repr((result.metrics["epoch"], restored, len(result.metrics_dataframe))))
"""


def test_air_session_torch_trainer_runs_once_as_rank_0_and_resumes(run_original: Callable, tmp_path: Path) -> None:
    script = tmp_path / "air_loop.py"
    script.write_text(textwrap.dedent(AIR_TORCH_LOOP))
    data = run_original(script, "--seed", "0", cwd=tmp_path)
    assert data["ok"], data["error_traceback"]
    # Resumed from epoch 0's checkpoint: epochs 1 and 2, one step each, each reported with a
    # checkpoint that survives a round trip through a directory.
    assert (tmp_path / "result.txt").read_text() == repr((2, {"epoch": 2}, 2))
    assert [step for step, _ in data["losses"]["0"]] == [1, 2]
    assert data["checkpoints_reported"] == 2


def test_dict_checkpoint_accelerate_trainer_sample_is_seeded_like_a_worker(run_original: Callable,
                                                                           tmp_path: Path) -> None:
    sample = SAMPLES / "accelerate_trainer_dict_checkpoints.py"
    first = run_original(sample, "--seed", "0", "--max-steps", "4", cwd=tmp_path)
    second = run_original(sample, "--seed", "0", "--max-steps", "4", cwd=tmp_path)
    assert first["ok"], first["error_traceback"]
    assert first["emulated"] == {"AccelerateTrainer": "loop"}
    assert len(first["losses"]["0"]) == 4 and first["losses"] == second["losses"]
    assert first["checkpoints_reported"] == 3


@pytest.mark.parametrize("source, expected", [
    ("from ray.train.huggingface import AccelerateTrainer", None),
    ("from ray.train.huggingface import TransformersTrainer", None),
    ("from ray.ml.train.integrations.huggingface import HuggingFaceTrainer", None),
    ("from ray.train.lightning import LightningConfigBuilder, LightningTrainer", None),
    ("from ray.air import session", None),
])
def test_what_is_emulated(source: str, expected: str | None) -> None:
    assert preflight.retired_ray_api(source)
    assert retired_ray.unsupported(source) == expected


def test_the_emulated_paths_are_the_conversions_table() -> None:
    # One table: every retired trainer the codemods convert has an emulation for its original.
    classes = retired_ray.retired_classes()
    assert {"ray.train.huggingface.AccelerateTrainer", "ray.train.huggingface.TransformersTrainer",
            "ray.train.lightning.LightningTrainer", "ray.ml.train.integrations.huggingface.HuggingFaceTrainer"} <= set(classes)
    assert {retired_ray.KINDS.get(codemod) for codemod in classes.values()} == {"loop", "transformers", "lightning"}


LIGHTNING_TRAINER = """
    import pytorch_lightning as pl
    import torch
    from ray.train.lightning import LightningConfigBuilder, LightningTrainer

    class Regression(pl.LightningModule):
        def __init__(self, lr):
            super().__init__()
            self.lr, self.layer = lr, torch.nn.Linear(1, 1)

        def training_step(self, batch, batch_idx):
            x, y = batch
            return torch.nn.functional.mse_loss(self.layer(x), y)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=self.lr)

    x = torch.linspace(-1, 1, 64).unsqueeze(1)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, 2 * x), batch_size=8)
    config = (LightningConfigBuilder().module(cls=Regression, lr=0.1)
              .trainer(max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False)
              .fit_params(train_dataloaders=loader).checkpointing(monitor="loss").build())
    LightningTrainer(lightning_config=config).fit()
"""


def test_lightning_trainer_fits_the_builders_module_once(run_original: Callable, tmp_path: Path) -> None:
    script = tmp_path / "lightning_trainer.py"
    script.write_text(textwrap.dedent(LIGHTNING_TRAINER))
    data = run_original(script, "--seed", "0", cwd=tmp_path)
    assert data["ok"], data["error_traceback"]
    assert data["emulated"] == {"LightningTrainer": "lightning"}
    assert [step for step, _ in data["losses"]["0"]] == list(range(1, 9))  # 64 points, batches of 8

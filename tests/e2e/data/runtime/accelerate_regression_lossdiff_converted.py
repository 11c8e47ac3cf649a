"""A deliberately wrong conversion of ``accelerate_regression.py``: the train function uses
another learning rate (0.08, not 0.05). Static checks pass; ``migrate validate`` must fail on
the loss curves.
"""
import os

import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader, TensorDataset
import ray.train
from ray.train import ScalingConfig
from ray.train.torch import TorchTrainer


# Ray Train runs this function on every worker.
def train_func(config):
    # Ray starts each worker in a directory of its own: go back to where the script
    # was launched, so relative paths (output_dir, data files) resolve as before.
    os.chdir(config["launch_dir"])

    accelerator = Accelerator()
    x = torch.randn(512, 8)
    y = x @ torch.linspace(-1, 1, 8).unsqueeze(1)
    train_loader = DataLoader(TensorDataset(x[:448], y[:448]), batch_size=32, shuffle=True)
    val_loader = DataLoader(TensorDataset(x[448:], y[448:]), batch_size=32)
    model = torch.nn.Linear(8, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.08)
    model, optimizer, train_loader, val_loader = accelerator.prepare(model, optimizer, train_loader, val_loader)

    for epoch in range(3):
        model.train()
        for xb, yb in train_loader:
            loss = torch.nn.functional.mse_loss(model(xb), yb)
            accelerator.backward(loss)
            optimizer.step()
            optimizer.zero_grad()
        model.eval()
        with torch.no_grad():
            errors = [accelerator.gather_for_metrics(torch.nn.functional.mse_loss(model(xb), yb, reduction="none")) for xb, yb in val_loader]
        metrics = {"train_loss": loss.item(), "val_loss": torch.cat(errors).mean().item()}
        accelerator.print(f"epoch {epoch}: {metrics}")
        accelerator.save_state("accelerate_regression_state")
        checkpoint = None
        if accelerator.is_main_process:
            checkpoint = ray.train.Checkpoint.from_directory("accelerate_regression_state")
        ray.train.report({"epoch": epoch, **metrics}, checkpoint=checkpoint)

    accelerator.end_training()


# Launch train_func on Ray Train workers.
ray_trainer = TorchTrainer(
    train_func,
    train_loop_config={"launch_dir": os.getcwd()},
    scaling_config=ScalingConfig(num_workers=2, use_gpu=True),
    # For multi-node clusters, configure persistent storage that every worker can reach:
    # run_config=RunConfig(storage_path="s3://..."),
)
result = ray_trainer.fit()

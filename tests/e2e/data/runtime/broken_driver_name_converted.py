"""A deliberately broken conversion of ``accelerate_regression.py``: the data is built in
``main()`` on the driver, and ``train_func`` reads ``x`` and ``y``, names that exist only there.
On a worker that is a NameError; ``migrate validate`` must say so before anything runs.
"""
import os

import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader, TensorDataset
import ray.train
from ray.train import ScalingConfig
from ray.train.torch import TorchTrainer


def train_func(config):
    os.chdir(config["launch_dir"])
    accelerator = Accelerator()
    train_loader = DataLoader(TensorDataset(x[:448], y[:448]), batch_size=32, shuffle=True)
    model = torch.nn.Linear(8, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    model, optimizer, train_loader = accelerator.prepare(model, optimizer, train_loader)
    for epoch in range(3):
        for xb, yb in train_loader:
            loss = torch.nn.functional.mse_loss(model(xb), yb)
            accelerator.backward(loss)
            optimizer.step()
            optimizer.zero_grad()
        ray.train.report({"epoch": epoch, "train_loss": loss.item()})


def main():
    x = torch.randn(512, 8)
    y = x @ torch.linspace(-1, 1, 8).unsqueeze(1)
    ray_trainer = TorchTrainer(
        train_func,
        train_loop_config={"launch_dir": os.getcwd(), "rows": len(x), "targets": y.shape[1]},
        scaling_config=ScalingConfig(num_workers=2, use_gpu=True),
    )
    ray_trainer.fit()


if __name__ == "__main__":
    main()

"""A tiny regression trained with an Accelerate loop at module level: the original.

Runs on CPU in seconds with ``python accelerate_regression.py``. Its converted form, written the
way ``migrate convert`` converts Accelerate scripts, is ``accelerate_regression_converted.py``.
"""
import os

import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader, TensorDataset

accelerator = Accelerator()
x = torch.randn(512, 8)
y = x @ torch.linspace(-1, 1, 8).unsqueeze(1)
train_loader = DataLoader(TensorDataset(x[:448], y[:448]), batch_size=32, shuffle=True)
val_loader = DataLoader(TensorDataset(x[448:], y[448:]), batch_size=32)
model = torch.nn.Linear(8, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
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

accelerator.end_training()

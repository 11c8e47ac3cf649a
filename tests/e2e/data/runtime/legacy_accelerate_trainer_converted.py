"""``legacy_accelerate_trainer.py`` converted by hand the way the retired-trainer migration does
it: ``AccelerateTrainer`` becomes ``TorchTrainer`` and what ``accelerate_config`` set for each
process (``use_cpu``, ``mixed_precision``) moves into ``Accelerator(...)``; the rest of the config
goes (Ray sets up the processes). The train loop is untouched.
"""

import os
import tempfile

import torch
import torch.nn.functional as F
from accelerate import Accelerator

import ray
from ray.train import Checkpoint, ScalingConfig
from ray.train.torch import TorchTrainer


def train_loop_per_worker(config):
    accelerator = Accelerator(cpu=True, mixed_precision="bf16")
    model = torch.nn.Linear(1, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=config["lr"])
    model, optimizer = accelerator.prepare(model, optimizer)

    shard = ray.train.get_dataset_shard("train")
    for epoch in range(config["epochs"]):
        for batch in shard.iter_torch_batches(batch_size=16, dtypes=torch.float32):
            x, y = batch["x"].unsqueeze(1), batch["y"].unsqueeze(1)
            with accelerator.accumulate(model):
                loss = F.mse_loss(model(x), y)
                accelerator.backward(loss)
                optimizer.step()
                optimizer.zero_grad()
        with tempfile.TemporaryDirectory() as tmp:
            checkpoint = None
            if accelerator.is_main_process:
                torch.save(accelerator.unwrap_model(model).state_dict(), os.path.join(tmp, "model.pt"))
                checkpoint = Checkpoint.from_directory(tmp)
            ray.train.report({"epoch": epoch, "loss": loss.item()}, checkpoint=checkpoint)


train_dataset = ray.data.from_items([{"x": x / 64, "y": 2 * x / 64 + 1} for x in range(128)])
trainer = TorchTrainer(
    train_loop_per_worker,
    train_loop_config={"lr": 0.1, "epochs": 2},
    scaling_config=ScalingConfig(num_workers=2),
    datasets={"train": train_dataset},
)
result = trainer.fit()
print("final metrics:", result.metrics)

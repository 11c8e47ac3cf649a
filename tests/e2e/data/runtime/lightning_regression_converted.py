"""The Lightning regression of ``lightning_regression.py``, converted by hand the way
``migrate convert`` converts Lightning scripts (RayDDPStrategy, RayLightningEnvironment,
RayTrainReportCallback, prepare_trainer). ``use_gpu=True`` as the converter writes it: the tests
run it with ``--cpu``.
"""
import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, TensorDataset
import os
from ray.train import ScalingConfig
from ray.train.lightning import RayDDPStrategy, RayLightningEnvironment, RayTrainReportCallback, prepare_trainer
from ray.train.torch import TorchTrainer


class Regressor(pl.LightningModule):
    def __init__(self, lr=0.05):
        super().__init__()
        self.save_hyperparameters()
        self.layer = torch.nn.Linear(8, 1)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.layer(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self.layer(x), y), sync_dist=True)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


# Ray Train runs this function on every worker.
def train_func(config):
    # Ray starts each worker in a directory of its own: go back to where the script
    # was launched, so relative paths (output_dir, data files) resolve as before.
    os.chdir(config["launch_dir"])

    x = torch.randn(512, 8)
    y = x @ torch.linspace(-1, 1, 8).unsqueeze(1) + 0.01 * torch.randn(512, 1)
    train_loader = DataLoader(TensorDataset(x[:448], y[:448]), batch_size=32, shuffle=True)
    val_loader = DataLoader(TensorDataset(x[448:], y[448:]), batch_size=32)

    model = Regressor()
    trainer = pl.Trainer(
        max_epochs=3,
        accelerator="auto",
        devices="auto",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        strategy=RayDDPStrategy(),
        plugins=[RayLightningEnvironment()],
        callbacks=[RayTrainReportCallback()],
    )
    trainer = prepare_trainer(trainer)
    trainer.fit(model, train_loader, val_loader)
    print("val_loss", trainer.callback_metrics["val_loss"].item())


# Launch train_func on Ray Train workers.
ray_trainer = TorchTrainer(
    train_func,
    train_loop_config={"launch_dir": os.getcwd()},
    scaling_config=ScalingConfig(num_workers=2, use_gpu=True),
    # For multi-node clusters, configure persistent storage that every worker can reach:
    # run_config=RunConfig(storage_path="s3://..."),
)
result = ray_trainer.fit()

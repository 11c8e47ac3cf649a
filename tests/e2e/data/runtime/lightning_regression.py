"""A tiny Lightning regression at module level (``lightning.pytorch``): the original.

Runs on CPU in seconds with ``python lightning_regression.py``. Its converted form, written the
way ``migrate convert`` writes Lightning scripts, is ``lightning_regression_converted.py``.
"""
import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, TensorDataset


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


x = torch.randn(512, 8)
y = x @ torch.linspace(-1, 1, 8).unsqueeze(1) + 0.01 * torch.randn(512, 1)
train_loader = DataLoader(TensorDataset(x[:448], y[:448]), batch_size=32, shuffle=True)
val_loader = DataLoader(TensorDataset(x[448:], y[448:]), batch_size=32)

model = Regressor()
trainer = pl.Trainer(
    max_epochs=3,
    accelerator="cpu",
    devices=1,
    logger=False,
    enable_progress_bar=False,
    enable_model_summary=False,
    enable_checkpointing=False,
)
trainer.fit(model, train_loader, val_loader)
print("val_loss", trainer.callback_metrics["val_loss"].item())

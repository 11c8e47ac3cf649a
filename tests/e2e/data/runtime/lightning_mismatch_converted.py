"""A converted Lightning script that imports ``pytorch_lightning`` while the ``lightning``
package is installed: Ray's integration then binds to ``lightning.pytorch`` and
``prepare_trainer`` rejects the strategy. ``migrate run`` must refuse it in one line, before
any worker starts.
"""
import pytorch_lightning as pl
import torch
from ray.train import ScalingConfig
from ray.train.lightning import RayDDPStrategy, RayLightningEnvironment, RayTrainReportCallback, prepare_trainer
from ray.train.torch import TorchTrainer


def train_func():
    model = pl.LightningModule()
    trainer = pl.Trainer(max_epochs=1, strategy=RayDDPStrategy(), plugins=[RayLightningEnvironment()],
                         callbacks=[RayTrainReportCallback()])
    trainer = prepare_trainer(trainer)
    trainer.fit(model, torch.utils.data.DataLoader(range(8)))


TorchTrainer(train_func, scaling_config=ScalingConfig(num_workers=2, use_gpu=False)).fit()

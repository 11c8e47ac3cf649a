from __future__ import annotations

import pytest

from codemods.lightning_trainer_legacy import LightningTrainerLegacy as L
from tests.codemods.legacy_helpers import check_noop, check_transformed, convert, messages

HEAD = '''\
import lightning.pytorch as pl
from ray.train import ScalingConfig
from ray.train.lightning import LightningConfigBuilder, LightningTrainer
'''


@pytest.mark.parametrize("source", [
    "# LightningTrainer and LightningConfigBuilder are gone\n",
    "from my.lightning import LightningTrainer\n\nLightningTrainer(lightning_config=cfg)\n",
])
def test_noop(source: str) -> None:
    check_noop(L, source)


def test_inline_chain() -> None:
    before = HEAD + '''
trainer = LightningTrainer(
    lightning_config=LightningConfigBuilder()
    .module(cls=Model, lr=0.1)  # the model
    .trainer(max_epochs=2)
    .build(),
    scaling_config=ScalingConfig(num_workers=2),
)
'''
    after = '''\
import lightning.pytorch as pl
from ray.train import CheckpointConfig, RunConfig, ScalingConfig
from ray.train.lightning import RayDDPStrategy, RayLightningEnvironment, RayTrainReportCallback, prepare_trainer
from ray.train.torch import TorchTrainer


# the model
def train_func():
    model = Model(lr=0.1)
    trainer = pl.Trainer(
        max_epochs=2,
        devices="auto",
        accelerator="auto",
        strategy=RayDDPStrategy(),
        plugins=[RayLightningEnvironment()],
        callbacks=[RayTrainReportCallback()],
    )
    trainer = prepare_trainer(trainer)
    trainer.fit(model)


trainer = TorchTrainer(
    train_func,
    scaling_config=ScalingConfig(num_workers=2),
    run_config=RunConfig(checkpoint_config=CheckpointConfig(num_to_keep=1)),
)
'''
    result = check_transformed(L, before, after)
    assert messages(result) == []


def test_builder_statements_and_strategy_options() -> None:
    before = HEAD + '''
builder = LightningConfigBuilder()
builder.module(Model, lr=0.1)
builder.strategy("fsdp", cpu_offload=True)
builder.trainer(max_epochs=3, devices=4, accelerator="gpu", plugins=my_plugins, callbacks=[EarlyStopping("val_loss")])
builder.fit_params(datamodule=dm, ckpt_path="last.ckpt")
builder.checkpointing(monitor="val_loss", save_top_k=-1)

trainer = LightningTrainer(builder.build(), scaling_config=ScalingConfig(num_workers=2))
'''
    result = convert(L, before)
    output = result.text("output")
    assert "builder" not in output
    assert '''        max_epochs=3,
        accelerator="gpu",
        devices="auto",
        strategy=RayFSDPStrategy(cpu_offload=True),
        plugins=my_plugins + [RayLightningEnvironment()],
        callbacks=[EarlyStopping("val_loss"), RayTrainReportCallback()],
''' in output
    assert 'trainer.fit(model, datamodule=dm, ckpt_path="last.ckpt")' in output
    # save_top_k=-1 keeps every checkpoint: only the score settings are left to carry over
    assert '''
    run_config=RunConfig(
        checkpoint_config=CheckpointConfig(
            checkpoint_score_attribute="val_loss",
            checkpoint_score_order="min",
        ),
    ),
)
''' in output
    assert ".trainer(devices=...) was ignored by LightningTrainer; dropped" in messages(result, "change")


def test_ray_datasets_become_dataloaders() -> None:
    before = HEAD + '''
config = LightningConfigBuilder().module(cls=Model).fit_params(datamodule=dm).build()
trainer = LightningTrainer(
    lightning_config=config,
    scaling_config=ScalingConfig(num_workers=2),
    datasets={"train": train_ds, "val": val_ds},
    datasets_iter_config={"batch_size": 32, "drop_last": True},
)
'''
    result = convert(L, before)
    output = result.text("output")
    assert '''    train_dataset = ray.train.get_dataset_shard("train")
    val_dataset = ray.train.get_dataset_shard("val")
    train_dataloader = train_dataset.iter_torch_batches(batch_size=32, drop_last=True)
    val_dataloader = val_dataset.iter_torch_batches(batch_size=32, drop_last=True)
''' in output
    assert "    trainer.fit(\n        model,\n        train_dataloaders=train_dataloader,\n" in output
    assert "datasets_iter_config" not in output and "import ray\n" in output
    assert any("datamodule" in m for m in messages(result, "change"))


def test_existing_checkpoint_config_wins_and_run_config_variable_is_completed() -> None:
    kept = convert(L, HEAD + '''
cfg = LightningConfigBuilder().module(cls=Model).checkpointing(monitor="acc", mode="max").build()
t = LightningTrainer(cfg, scaling_config=s, run_config=RunConfig(checkpoint_config=CheckpointConfig(num_to_keep=5)))
''')
    assert "CheckpointConfig(num_to_keep=5))" in kept.text("output")
    completed = convert(L, HEAD + '''
cfg = LightningConfigBuilder().module(cls=Model).checkpointing(monitor="acc", mode="max", save_top_k=2).build()
run_config = RunConfig(name="exp")
t = LightningTrainer(cfg, scaling_config=s, run_config=run_config)
''').text("output")
    assert '''run_config = RunConfig(
    name="exp",
    checkpoint_config=CheckpointConfig(
        num_to_keep=2,
        checkpoint_score_attribute="acc",
        checkpoint_score_order="max",
    ),
)
''' in completed


@pytest.mark.parametrize(("source", "reason"), [
    (HEAD + "cfg = LightningConfigBuilder().module(cls=M).build()\nt = LightningTrainer(cfg)\nprint(cfg)\n",
     "'cfg' is assigned more than once or used elsewhere too"),
    (HEAD + "b = LightningConfigBuilder()\nt = LightningTrainer(b.build())\nb.trainer(max_epochs=1)\n",
     "the builder is set up in another block or after the trainer"),
    (HEAD + "t = LightningTrainer(lightning_config=make_config())\n",
     "lightning_config is not a LightningConfigBuilder chain ending in .build()"),
    (HEAD + "t = LightningTrainer(LightningConfigBuilder().trainer(max_epochs=1).build())\n",
     "the builder names no LightningModule class (.module(cls=...))"),
    (HEAD + "t = LightningTrainer(LightningConfigBuilder().module(cls=M).strategy(name).build())\n",
     ".strategy(...) names Ellipsis, not one of ['ddp', 'deepspeed', 'fsdp']"),
    (HEAD + "t = LightningTrainer(LightningConfigBuilder().module(cls=M, model=model).build())\n",
     "the builder's arguments use ['model'], names the train function needs"),
])
def test_refused_conversions_leave_the_trainer_alone(source: str, reason: str) -> None:
    result = convert(L, source)
    assert "t = LightningTrainer(" in result.text("output")
    assert messages(result) == [f"LightningTrainer was left as it is: {reason}; convert it by hand "
                                "(LightningTrainer Migration Guide)"]


def test_pytorch_lightning_is_kept_without_a_follow_up() -> None:
    """Its imports are made to follow Ray's package by lightning_package_follows_ray, which runs next."""
    source = HEAD.replace("import lightning.pytorch as pl", "from pytorch_lightning import Trainer") + \
        "t = LightningTrainer(LightningConfigBuilder().module(cls=M).build(), scaling_config=s)\n"
    result = convert(L, source)
    assert "    trainer = Trainer(\n" in result.text("output")
    assert "from pytorch_lightning import Trainer" in result.text("output")
    assert not [m for m in messages(result) if "pytorch_lightning" in m]
    flagged = convert(L, source, lightning_package="pytorch_lightning")
    assert messages(flagged)[-1].startswith("the converted script imports pytorch_lightning")


def test_lightning_package_option_rewrites_the_imports() -> None:
    source = '''\
import pytorch_lightning
from pytorch_lightning.callbacks import EarlyStopping
from ray.train.lightning import LightningConfigBuilder, LightningTrainer

t = LightningTrainer(LightningConfigBuilder().module(cls=M).build(), scaling_config=s)
'''
    result = convert(L, source, lightning_package="lightning")
    output = result.text("output")
    assert output.startswith("import lightning.pytorch as pytorch_lightning\nfrom lightning.pytorch.callbacks import")
    assert "    trainer = pytorch_lightning.Trainer(\n" in output
    assert messages(result) == []


def test_back_to_pytorch_lightning_and_a_new_import_when_there_is_none() -> None:
    source = '''\
from ray.train.lightning import LightningConfigBuilder, LightningTrainer

t = LightningTrainer(LightningConfigBuilder().module(cls=M).build(), scaling_config=s)
'''
    assert "import pytorch_lightning as pl\n" in convert(L, source, lightning_package="pytorch_lightning").text("output")
    assert "import lightning.pytorch as pl\n" in convert(L, source).text("output")


def test_spread_trainer_arguments_get_a_follow_up() -> None:
    source = HEAD + "t = LightningTrainer(LightningConfigBuilder().module(cls=M).trainer(**kw).build(), scaling_config=s)\n"
    result = convert(L, source)
    assert "        **kw,\n" in result.text("output")
    assert messages(result)[0].startswith("make sure kw sets none of devices, accelerator, strategy")

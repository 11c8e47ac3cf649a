"""Edge cases of the Lightning Trainer codemod, as short before/after checks."""

from __future__ import annotations

import ast
import textwrap

import pytest

from migrator.checks import check_converted
from migrator.options import ConvertOptions
from tests.golden import convert_text


def convert(source: str, **options):
    return convert_text(textwrap.dedent(source), ConvertOptions(**options) if options else None)


def check_noop(source: str, **options) -> None:
    result = convert(source, **options)
    assert result.status == "unchanged", result.text("output")


def converted(source: str, **options) -> str:
    result = convert(source, **options)
    assert result.status == "converted", result.entries
    out = result.text("output")
    ast.parse(out)
    assert check_converted(out, textwrap.dedent(source)) == []
    return out


def messages(source: str, **options) -> list[str]:
    return [e.message for e in convert(source, **options).entries]


def test_files_without_a_lightning_trainer_are_left_alone() -> None:
    check_noop("import torch\nmodel = torch.nn.Linear(2, 2)\nmodel.fit = None\n")
    check_noop("from lightning.pytorch import LightningModule\nclass M(LightningModule):\n    pass\n")
    check_noop("from sklearn.linear_model import LinearRegression\nm = LinearRegression()\nm.fit(x, y)\n")


@pytest.mark.parametrize(
    "strategy, expected",
    [
        ('"ddp"', "RayDDPStrategy()"),
        ('"ddp_spawn"', "RayDDPStrategy()"),
        ('"ddp_find_unused_parameters_true"', "RayDDPStrategy(find_unused_parameters=True)"),
        ('"fsdp"', "RayFSDPStrategy()"),
        ('"deepspeed"', "RayDeepSpeedStrategy()"),
        ('"deepspeed_stage_3_offload"', "RayDeepSpeedStrategy(stage=3, offload_optimizer=True, offload_parameters=True)"),
        ("DDPStrategy(static_graph=True)", "RayDDPStrategy(static_graph=True)"),
        ("FSDPStrategy(cpu_offload=True)", "RayFSDPStrategy(cpu_offload=True)"),
    ],
)
def test_strategies_map_to_their_ray_subclass(strategy: str, expected: str) -> None:
    out = converted(
        f"""
        import lightning.pytorch as pl
        from lightning.pytorch.strategies import DDPStrategy, FSDPStrategy
        trainer = pl.Trainer(strategy={strategy})
        trainer.fit(model)
        """
    )
    assert f"strategy={expected}" in out
    if "Strategy(" in strategy:  # the Lightning class is no longer used, so its import goes
        assert f"import DDPStrategy, FSDPStrategy" not in out


@pytest.mark.parametrize("strategy", ['"single_device"', '"xla"'])
def test_strategies_without_ray_equivalent_are_follow_ups(strategy: str) -> None:
    result = convert(
        f"""
        import lightning.pytorch as pl
        trainer = pl.Trainer(strategy={strategy})
        trainer.fit(model)
        """
    )
    assert result.status == "converted"
    assert f"strategy={strategy}" in result.text("output")
    assert any("strategy" in e.message for e in result.follow_ups)


@pytest.mark.parametrize("strategy", ["my_strategy", 'cfg["strategy"]', "args.strategy", "getConfig()['strategy']"])
def test_strategy_known_only_at_run_time_is_mapped_by_the_script(strategy: str) -> None:
    """A strategy from a config or the command line: the script maps it when it runs, with the
    codemod's own table (ray_strategy(), written once into the file)."""
    result = convert(
        f"""
        import lightning.pytorch as pl

        def main(cfg, args, my_strategy):
            trainer = pl.Trainer(strategy={strategy})
            trainer.fit(model)
        """
    )
    out = result.text("output")
    assert f"strategy=ray_strategy({strategy})" in out
    assert out.count("def ray_strategy(strategy):") == 1
    assert not result.follow_ups
    assert any("known only at run time" in e.message for e in result.changes)


def test_ray_strategy_helper_maps_names_like_the_codemod() -> None:
    pytest.importorskip("ray.train.lightning")
    from ray.train.lightning import RayDDPStrategy, RayFSDPStrategy

    from codemods._lightning import STRATEGY_STRINGS, strategy_helper_source

    namespace: dict = {}
    exec(strategy_helper_source(), namespace)
    ray_strategy = namespace["ray_strategy"]
    for name, (ray, args) in STRATEGY_STRINGS.items():
        if ray == "RayDeepSpeedStrategy":
            continue  # needs deepspeed installed to construct
        made = ray_strategy(name)
        assert type(made).__name__ == ray, name
        if "find_unused_parameters=True" in args:
            assert made._ddp_kwargs["find_unused_parameters"] is True
    assert isinstance(ray_strategy(None), RayDDPStrategy)
    mine = RayFSDPStrategy()
    assert ray_strategy(mine) is mine
    for unknown in ("dp", "single_device", object()):
        with pytest.raises(ValueError, match="has no Ray Train equivalent"):
            ray_strategy(unknown)


def test_strategy_built_elsewhere_is_renamed_where_it_is_built() -> None:
    out = converted(
        """
        from pytorch_lightning import Trainer
        from pytorch_lightning.strategies import DDPStrategy
        ddp = DDPStrategy(find_unused_parameters=True, process_group_backend="gloo")
        trainer = Trainer(strategy=ddp)
        trainer.fit(model)
        """
    )
    assert "ddp = RayDDPStrategy(find_unused_parameters=True" in out and "strategy=ddp," in out
    result = convert(
        """
        from pytorch_lightning import Trainer
        from pytorch_lightning.strategies import DDPStrategy
        trainer = Trainer(strategy=DDPStrategy(process_group_backend="gloo"))
        trainer.fit(model)
        """
    )
    assert any("TorchConfig" in e.message for e in result.follow_ups)


@pytest.mark.parametrize(
    "arguments, workers",
    [
        ("devices=[0, 1]", 2),
        ("devices=4, num_nodes=2", 8),
        ('devices="0,1,2"', 3),
        ("gpus=2", 2),
        ('devices="auto"', None),
        ("devices=-1", None),
        ("devices=n", None),
        ("", None),
    ],
)
def test_worker_count_comes_from_placement_arguments(arguments: str, workers: int | None) -> None:
    source = f"""
        import lightning as L
        trainer = L.Trainer({arguments})
        trainer.fit(model)
        """
    assert f"num_workers={workers or 2}," in converted(source)
    assert "num_workers=5," in converted(source, num_workers=5)
    placement = [m for m in messages(source) if m.startswith("placement left to Ray")]
    if workers:
        assert f"the script asked for {workers} workers" in placement[0]


def test_placement_arguments_go_and_devices_accelerator_become_auto() -> None:
    out = converted(
        """
        import lightning.pytorch as pl
        trainer = pl.Trainer(accelerator="gpu", devices=[0, 1], num_nodes=1, auto_select_gpus=True)
        trainer.fit(model)
        """
    )
    assert 'accelerator="auto",' in out and 'devices="auto",' in out
    assert "num_nodes" not in out and "auto_select_gpus" not in out


def test_a_removed_last_argument_keeps_the_closing_layout() -> None:
    out = converted(
        """
        import lightning.pytorch as pl
        trainer = pl.Trainer(
            max_epochs=1,
            devices="auto",
            accelerator="auto",
            strategy="ddp",
            plugins=[],
            callbacks=[],
            num_nodes=2,
        )
        trainer.fit(model)
        """
    )
    assert "        callbacks=[RayTrainReportCallback()],\n    )\n" in out


def test_user_callbacks_are_kept_and_the_report_callback_appended() -> None:
    out = converted(
        """
        import lightning.pytorch as pl
        from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
        trainer = pl.Trainer(callbacks=[EarlyStopping("val_loss"), ModelCheckpoint()])
        trainer.fit(model)
        """
    )
    assert "callbacks=[EarlyStopping(\"val_loss\"), ModelCheckpoint(), RayTrainReportCallback()]" in out
    out = converted(
        """
        import lightning.pytorch as pl
        from lightning.pytorch.callbacks import EarlyStopping
        trainer = pl.Trainer(callbacks=EarlyStopping("val_loss"))
        trainer.fit(model)
        """
    )
    assert 'callbacks=[EarlyStopping("val_loss"), RayTrainReportCallback()]' in out


def test_callbacks_from_a_function_are_a_follow_up() -> None:
    result = convert(
        """
        import lightning.pytorch as pl
        trainer = pl.Trainer(callbacks=make_callbacks())
        trainer.fit(model)
        """
    )
    assert any("RayTrainReportCallback() to these callbacks" in e.message for e in result.follow_ups)


@pytest.mark.parametrize("built", [
    "callbacks: List[Callback] = utils.instantiate_callbacks(cfg)",
    "callbacks = make_callbacks()",
    "callbacks = [cb for cb in make_all()]",
])
def test_callbacks_known_to_be_a_list_get_the_report_callback_appended(built: str) -> None:
    out = converted(
        f"""
        import lightning.pytorch as pl
        from typing import List
        from lightning.pytorch import Callback
        def make_callbacks():
            found = []
            found.append(pl.callbacks.EarlyStopping("val_loss"))
            return found
        {built}
        trainer = pl.Trainer(callbacks=callbacks)
        trainer.fit(model)
        """
    )
    assert "callbacks=[*callbacks, RayTrainReportCallback()]" in out


def test_callbacks_set_on_a_namespace_from_a_list_helper_get_the_report_callback() -> None:
    out = converted(
        """
        import lightning.pytorch as pl
        def make_callbacks():
            return [pl.callbacks.EarlyStopping("val_loss")]
        args.callbacks = make_callbacks()
        trainer = pl.Trainer(callbacks=args.callbacks)
        trainer.fit(model)
        """
    )
    assert "callbacks=[*args.callbacks, RayTrainReportCallback()]" in out


def test_callbacks_from_a_helper_that_may_return_something_else_are_a_follow_up() -> None:
    result = convert(
        """
        import lightning.pytorch as pl
        def make_callbacks(flag):
            if flag:
                return None
            return [pl.callbacks.EarlyStopping("val_loss")]
        callbacks = make_callbacks(True)
        trainer = pl.Trainer(callbacks=callbacks)
        trainer.fit(model)
        """
    )
    assert any("RayTrainReportCallback() to these callbacks" in e.message for e in result.follow_ups)


def test_plugins_keep_other_plugins_and_lose_cluster_environments() -> None:
    out = converted(
        """
        import lightning.pytorch as pl
        from lightning.pytorch.plugins.environments import SLURMEnvironment
        trainer = pl.Trainer(plugins=[MyPrecision(), SLURMEnvironment()])
        trainer.fit(model)
        """
    )
    assert "plugins=[MyPrecision(), RayLightningEnvironment()]" in out
    assert "SLURMEnvironment" not in out
    out = converted(
        """
        import lightning.pytorch as pl
        trainer = pl.Trainer(plugins=[MyPrecision()])
        trainer.fit(model)
        """
    )
    assert "plugins=[MyPrecision(), RayLightningEnvironment()]" in out


def test_fit_in_a_nested_block_gets_prepare_trainer_right_before_it() -> None:
    out = converted(
        """
        import lightning.pytorch as pl
        def main(train):
            trainer = pl.Trainer(max_epochs=1)
            if train:
                trainer.fit(model)
        """
    )
    assert "        trainer = prepare_trainer(trainer)\n        trainer.fit(model)\n" in out


def test_trainer_built_in_branches_is_edited_in_each() -> None:
    out = converted(
        """
        import lightning.pytorch as pl
        if fast:
            trainer = pl.Trainer(max_steps=10)
        else:
            trainer = pl.Trainer(max_epochs=10)
        trainer.fit(model)
        """
    )
    assert out.count("RayTrainReportCallback()") == 2 and out.count("prepare_trainer(trainer)") == 1


def test_checkpoint_config_is_mirrored_only_for_literal_monitor_and_mode() -> None:
    source = """
        import lightning.pytorch as pl
        from lightning.pytorch.callbacks import ModelCheckpoint
        trainer = pl.Trainer(callbacks=[ModelCheckpoint(monitor={monitor}, mode="max", save_top_k={k})])
        trainer.fit(model)
        """
    out = converted(source.format(monitor='"val_acc"', k=2))
    assert 'num_to_keep=2,' in out and 'checkpoint_score_attribute="val_acc",' in out and 'checkpoint_score_order="max"' in out
    result = convert(source.format(monitor="args.monitor", k=2))
    assert "CheckpointConfig" not in result.text("output")
    assert any("mirror them" in e.message for e in result.follow_ups)


def test_from_argparse_args_is_left_with_a_follow_up() -> None:
    # LightningCLI converts now: tests/codemods/test_training_shapes.py.
    for source in (
        "import pytorch_lightning as pl\ntrainer = pl.Trainer.from_argparse_args(args)\ntrainer.fit(model)\n",
    ):
        result = convert(source)
        assert result.status == "unchanged"
        # (from_argparse_args without add_argparse_args: lightning_removed_arguments says why too)
        assert {e.line for e in result.follow_ups} == {2}


def test_strategy_dp_becomes_ray_ddp_through_lightning_removed_arguments() -> None:
    result = convert("import lightning.pytorch as pl\ntrainer = pl.Trainer(strategy=\"dp\")\ntrainer.fit(model)\n")
    assert "strategy=RayDDPStrategy()" in result.text("output")
    assert any("batch_size" in e.message for e in result.follow_ups)


def test_already_converted_script_is_left_alone() -> None:
    source = textwrap.dedent(
        """
        import lightning.pytorch as pl
        trainer = pl.Trainer(max_epochs=1)
        trainer.fit(model)
        """
    )
    out = converted(source)
    assert convert_text(out).status == "unchanged"


@pytest.mark.parametrize(
    "target, before, after",
    [
        ("lightning", "import pytorch_lightning as pl", "import lightning.pytorch as pl"),
        ("lightning", "from pytorch_lightning.callbacks import EarlyStopping", "from lightning.pytorch.callbacks import EarlyStopping"),
        ("pytorch_lightning", "import lightning.pytorch as pl", "import pytorch_lightning as pl"),
        ("pytorch_lightning", "from lightning import LightningModule", "from pytorch_lightning import LightningModule"),
        ("pytorch_lightning", "from lightning.pytorch.loggers import CSVLogger", "from pytorch_lightning.loggers import CSVLogger"),
    ],
)
def test_lightning_package_option_moves_imports(target: str, before: str, after: str) -> None:
    out = converted(f"{before}\nx = 1\n", lightning_package=target)
    assert out.splitlines()[0] == after


def test_plain_module_imports_are_rewritten_with_their_uses() -> None:
    out = converted("import pytorch_lightning\nm = pytorch_lightning.LightningModule\n", lightning_package="lightning")
    assert out == "import lightning.pytorch\nm = lightning.pytorch.LightningModule\n"
    out = converted("import lightning.pytorch\nm = lightning.pytorch.callbacks.EarlyStopping\n", lightning_package="pytorch_lightning")
    assert out == "import pytorch_lightning\nm = pytorch_lightning.callbacks.EarlyStopping\n"


def test_fabric_is_not_moved_to_pytorch_lightning() -> None:
    source = "import lightning as L\nfabric = L.Fabric()\n"
    result = convert(source, lightning_package="pytorch_lightning")
    assert result.status == "unchanged"
    assert any("no pytorch_lightning equivalent" in e.message for e in result.follow_ups)
    check_noop("from lightning.fabric import Fabric\nfabric = Fabric()\n", lightning_package="pytorch_lightning")


def test_report_says_which_package_ray_needs() -> None:
    trainer = "trainer = pl.Trainer()\ntrainer.fit(model)\n"
    result = convert("import pytorch_lightning as pl\n" + trainer)  # its imports now follow Ray's choice
    assert not result.follow_ups and any("try lightning.pytorch first" in e.message for e in result.changes)
    assert "except ModuleNotFoundError:\n    import pytorch_lightning as pl\n" in result.text("output")
    result = convert("import lightning.pytorch as pl\n" + trainer, lightning_package="pytorch_lightning")
    assert any("pytorch_lightning" in e.message and "without --lightning-package" in e.message for e in result.follow_ups)
    result = convert("import lightning.pytorch as pl\n" + trainer)
    assert any("install `lightning`" in e.message for e in result.changes)
    result = convert("import pytorch_lightning as pl\n" + trainer, lightning_package="lightning")
    assert not result.follow_ups and any("install `lightning`" in e.message for e in result.changes)


def test_self_local_rank_in_a_lightning_module_is_not_a_follow_up() -> None:
    result = convert(
        """
        import lightning.pytorch as pl
        class M(pl.LightningModule):
            def on_fit_start(self):
                print(self.local_rank)
        trainer = pl.Trainer()
        trainer.fit(M())
        """
    )
    assert not [e for e in result.follow_ups if "local_rank" in e.message]


@pytest.mark.parametrize(("flag", "expected", "kind"), [
    ({}, "use_gpu=False", "change"),
    ({"use_gpu": True}, "use_gpu=True", "follow-up"),
])
def test_accelerator_cpu_gives_cpu_workers_unless_gpus_are_asked_for(flag, expected, kind) -> None:
    from migrator.options import ConvertOptions
    from tests.golden import convert_text

    source = (
        "import lightning.pytorch as pl\n\n"
        "trainer = pl.Trainer(max_epochs=1, accelerator=\"cpu\", devices=2, strategy=\"ddp\")\n"
        "trainer.fit(model)\n"
    )
    result = convert_text(source, ConvertOptions(**flag))
    assert f"ScalingConfig(num_workers=2, {expected})" in result.text("output")
    assert [e.kind for e in result.entries if 'trains on CPU (accelerator="cpu")' in e.message] == [kind]

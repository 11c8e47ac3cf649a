"""lightning_removed_arguments alone: what Lightning 2.0 removed becomes what 2.x accepts."""

from __future__ import annotations

import ast

import pytest

from codemods.lightning_removed_arguments import FLAGS, LightningRemovedArguments
from tests.codemods.helpers import check_noop, check_transformed, follow_ups, run

C = LightningRemovedArguments


@pytest.mark.parametrize("package", ["pytorch_lightning", "lightning.pytorch"])
def test_gpus_and_strategy_values(package):
    check_transformed(
        C,
        f"""\
        import {package} as pl
        trainer = pl.Trainer(gpus=2, accelerator="ddp", max_epochs=1)
        """,
        f"""\
        import {package} as pl
        trainer = pl.Trainer(strategy="ddp", max_epochs=1, accelerator="gpu", devices=2)
        """,
    )


@pytest.mark.parametrize(("written", "expected"), [
    ("0", 'accelerator="cpu"'),
    ("None", 'accelerator="cpu"'),
    ("-1", 'accelerator="gpu", devices=-1'),
    ('"0,1"', 'accelerator="gpu", devices="0,1"'),
    ("[0, 1]", 'accelerator="gpu", devices=[0, 1]'),
    ("args.gpus", 'accelerator="gpu" if args.gpus else "cpu", devices=args.gpus or 1'),
])
def test_gpus_keeps_its_1x_meaning(written, expected):
    check_transformed(C, f"from pytorch_lightning import Trainer\nTrainer(gpus={written})\n",
                      f"from pytorch_lightning import Trainer\nTrainer({expected})\n")


def test_gpus_with_devices_is_a_follow_up():
    result = check_noop(C, "from pytorch_lightning import Trainer\nTrainer(gpus=2, devices=2)\n")
    assert any("accelerator= or devices= is given too" in f for f in follow_ups(result))


def test_resume_from_checkpoint_moves_to_the_one_fit():
    check_transformed(
        C,
        """\
        from pytorch_lightning import Trainer
        def main(path):
            trainer = Trainer(max_epochs=2, resume_from_checkpoint=path)
            trainer.fit(model, loader)
        """,
        """\
        from pytorch_lightning import Trainer
        def main(path):
            trainer = Trainer(max_epochs=2)
            trainer.fit(model, loader, ckpt_path=path)
        """,
    )


def test_resume_from_checkpoint_without_a_fit_beside_it_stays():
    result = check_noop(C, "from pytorch_lightning import Trainer\ntrainer = Trainer(resume_from_checkpoint='a.ckpt')\n")
    assert any("ckpt_path=" in f for f in follow_ups(result))


def test_values_from_the_table():
    check_transformed(
        C,
        "import pytorch_lightning as pl\npl.Trainer(checkpoint_callback=False, weights_summary=None, progress_bar_refresh_rate=1, max_steps=None)\n",
        "import pytorch_lightning as pl\npl.Trainer(enable_checkpointing=False, enable_model_summary=False, max_steps=-1)\n",
    )


def test_argparse_pair_becomes_explicit_flags():
    result = run(C, """\
        from argparse import ArgumentParser
        import pytorch_lightning as pl

        parser = ArgumentParser()
        parser = pl.Trainer.add_argparse_args(parser)
        args = parser.parse_args(["--devices", "1", "--max_steps", "5"])
        trainer = pl.Trainer.from_argparse_args(args, max_epochs=3)
        """)
    output = result.text("output")
    tree = ast.parse(output)
    call = next(n for n in ast.walk(tree) if isinstance(n, ast.Call) and ast.unparse(n.func) == "pl.Trainer")
    keywords = {k.arg: ast.unparse(k.value) for k in call.keywords}
    assert keywords["max_epochs"] == "3"  # the script's own keyword wins over the flag
    assert keywords["devices"] == "args.devices" and len(keywords) == len(FLAGS)
    assert ".from_argparse_args(" not in output and ".add_argparse_args(" not in output
    # The generated parser parses what 1.x command lines passed, with the Trainer's defaults.
    namespace: dict = {}
    parsing = output.split("trainer = pl.Trainer(")[0].replace("import pytorch_lightning as pl", "")
    exec(compile(parsing, "<converted>", "exec"), namespace)
    assert namespace["args"].devices == "1" and namespace["args"].max_steps == 5 and namespace["args"].num_nodes == 1


def test_from_argparse_args_without_add_argparse_args_is_a_follow_up():
    result = check_noop(C, "import pytorch_lightning as pl\ntrainer = pl.Trainer.from_argparse_args(hparams)\n")
    assert any("never calls" in f for f in follow_ups(result))


def test_epoch_end_hooks_become_the_hooks_that_replace_them():
    check_transformed(C, """\
        import lightning.pytorch as L
        class Model(L.LightningModule):
            def validation_step(self, batch, batch_idx):
                return {"val_loss": batch}

            def validation_epoch_end(self, outs):
                \"\"\"Average.\"\"\"
                self.log("val_loss", sum(o["val_loss"] for o in outs))
        """, """\
        import lightning.pytorch as L
        class Model(L.LightningModule):
            def validation_step(self, batch, batch_idx):
                return {"val_loss": batch}

            def on_validation_batch_end(self, outputs, batch, batch_idx, dataloader_idx=0):
                # Lightning 2 no longer gathers what validation_step returns for the epoch's end: keep it here.
                if not hasattr(self, "validation_step_outputs"):
                    self.validation_step_outputs = []
                self.validation_step_outputs.append(outputs)

            def on_validation_epoch_end(self):
                \"\"\"Average.\"\"\"
                outs = getattr(self, "validation_step_outputs", [])
                self.validation_step_outputs = []
                self.log("val_loss", sum(o["val_loss"] for o in outs))
        """)


@pytest.mark.parametrize("body, why", [
    ("def validation_step(self, batch, batch_idx, dataloader_idx):\n        pass\n"
     "    def validation_epoch_end(self, outputs):\n        pass\n", "takes dataloader_idx"),
    ("def on_validation_epoch_end(self):\n        pass\n"
     "    def validation_epoch_end(self, outputs):\n        pass\n", "defines on_validation_epoch_end already"),
    ("def validation_epoch_end(self, outputs, extra=None):\n        pass\n", "(self, outputs) alone"),
])
def test_epoch_end_hooks_that_cannot_be_rewritten_get_the_exact_replacement(body: str, why: str):
    result = check_noop(C, "import lightning.pytorch as L\nclass Model(L.LightningModule):\n    " + body)
    assert any("on_validation_epoch_end(self)" in f and why in f for f in follow_ups(result)), follow_ups(result)


def test_a_2x_script_is_left_alone():
    check_noop(C, "import lightning.pytorch as L\ntrainer = L.Trainer(accelerator='gpu', devices=2, strategy='ddp', max_steps=-1)\ntrainer.fit(model)\n")


def test_0x_spellings_get_their_1x_names():
    check_transformed(
        C,
        """\
        from pytorch_lightning import Trainer
        trainer = Trainer(max_nb_epochs=5, nb_gpu_nodes=2, use_amp=args.amp, val_percent_check=0.1)
        """,
        """\
        from pytorch_lightning import Trainer
        trainer = Trainer(max_epochs=5, num_nodes=2, precision=16 if args.amp else 32, limit_val_batches=0.1)
        """,
    )


def test_a_keyword_the_2x_trainer_does_not_take_is_a_follow_up():
    result = check_noop(C, "from pytorch_lightning import Trainer\nTrainer(max_epochs=1, weights_save_path='w', terminate_on_nan=True)\n")
    found = follow_ups(result)
    assert len(found) == 2
    assert all("not an argument of Lightning 2.x's Trainer" in f for f in found)
    assert "weights_save_path" in found[0] and "terminate_on_nan" in found[1]


def test_a_trainer_subclass_keeps_its_own_keywords():
    source = """\
    import pytorch_lightning as pl
    class KFoldTrainer(pl.Trainer):
        def __init__(self, *args, num_folds=5, **kwargs):
            super().__init__(*args, **kwargs)
    trainer = KFoldTrainer(num_folds=3, max_epochs=1)
    """
    assert not follow_ups(check_noop(C, source))


def test_method_keywords_of_a_trainer_get_their_2x_names():
    check_transformed(
        C,
        """\
        import pytorch_lightning as pl
        trainer = pl.Trainer(max_epochs=1)
        trainer.fit(model, train_dataloader=train, val_dataloaders=val)
        trainer.validate(model, val_dataloaders=val)
        trainer.test(test_dataloaders=test)
        """,
        """\
        import pytorch_lightning as pl
        trainer = pl.Trainer(max_epochs=1)
        trainer.fit(model, train_dataloaders=train, val_dataloaders=val)
        trainer.validate(model, dataloaders=val)
        trainer.test(dataloaders=test)
        """,
    )


def test_method_keywords_of_something_else_stay():
    check_noop(C, "import pytorch_lightning as pl\nrunner = make_runner()\nrunner.test(test_dataloaders=test)\n")


def test_from_argparse_args_passes_trainer_parameters_set_on_the_namespace():
    result = run(C, """\
        import pytorch_lightning as pl
        parser = pl.Trainer.add_argparse_args(parser)
        args = parser.parse_args()
        args.callbacks = make_callbacks()
        args.logger = logger
        args.seed = 3
        trainer = pl.Trainer.from_argparse_args(args)
        """)
    out = result.text("output")
    assert "callbacks=args.callbacks" in out and "logger=args.logger" in out
    assert "seed=" not in out  # not a Trainer parameter


@pytest.mark.parametrize("package", ["pytorch_lightning", "lightning.pytorch"])
def test_progress_bar_refresh_rate_becomes_a_tqdm_progress_bar_callback(package):
    check_transformed(
        C,
        f"""\
        import {package} as pl
        trainer = pl.Trainer(progress_bar_refresh_rate=20, max_epochs=1)
        other = pl.Trainer(callbacks=[stop], progress_bar_refresh_rate=args.rate)
        """,
        f"""\
        import {package} as pl
        from {package}.callbacks import TQDMProgressBar

        trainer = pl.Trainer(max_epochs=1, callbacks=[TQDMProgressBar(refresh_rate=20)])
        other = pl.Trainer(callbacks=[stop, TQDMProgressBar(refresh_rate=args.rate)])
        """,
    )


def test_progress_bar_refresh_rate_beside_computed_callbacks_is_a_follow_up():
    result = check_noop(C, "import pytorch_lightning as pl\npl.Trainer(callbacks=make(), progress_bar_refresh_rate=20)\n")
    assert any("TQDMProgressBar(refresh_rate=" in f for f in follow_ups(result))


def test_keywords_beside_the_namespace_of_from_argparse_args_get_the_table():
    result = run(C, """\
        import pytorch_lightning as pl
        parser = pl.Trainer.add_argparse_args(parser)
        args = parser.parse_args()
        trainer = pl.Trainer.from_argparse_args(args, checkpoint_callback=False, progress_bar_refresh_rate=5)
        """)
    assert "enable_checkpointing=False" in result.text("output")
    assert any("progress_bar_refresh_rate" in f for f in follow_ups(result))


def test_trainer_tune_is_a_follow_up():
    result = check_noop(C, "import pytorch_lightning as pl\ntrainer = pl.Trainer(max_epochs=1)\ntrainer.tune(model)\ntrainer.fit(model)\n")
    assert any(f.startswith("3:") and "Tuner(trainer)" in f for f in follow_ups(result))


def test_add_argparse_args_of_an_argument_group_gets_the_parser():
    result = run(C, """\
        import pytorch_lightning as pl
        parser = pl.Trainer.add_argparse_args(parser.add_argument_group(title="pl.Trainer args"))
        args = parser.parse_args()
        """)
    assert "parser = add_trainer_arguments(parser)\n" in result.text("output")


def test_a_training_step_returning_logs_alone_is_left_without_an_entry():
    """The loss must come back from training_step: a dict of logs alone is not 0.x's shape, and nothing is claimed."""
    result = check_noop(C, """\
        import lightning.pytorch as L
        class Model(L.LightningModule):
            def training_step(self, batch, batch_idx):
                return {"log": {"seen": batch_idx}}
        """)
    assert not result.entries, result.entries

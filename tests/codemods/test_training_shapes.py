"""Training shapes beyond one Trainer in one block: nested and decorated training functions,
several trainings in one script, LightningCLI, Hydra apps (issue 9, items 3-6)."""

from __future__ import annotations

import ast
import textwrap

from tests.codemods.helpers import convert_all as convert
from tests.golden import convert_text


def follow_ups(result) -> list[str]:
    return [e.message for e in result.entries if e.kind == "follow-up"]


# -- nested and decorated functions (item 6) -----------------------------------------------------
def test_lightning_fit_in_a_function_nested_in_main_moves_with_main():
    result, out = convert('''
        import lightning.pytorch as pl
        from model import Net

        def main():
            def run(epochs):
                trainer = pl.Trainer(max_epochs=epochs)
                trainer.fit(Net())
            run(2)

        if __name__ == "__main__":
            main()
    ''')
    tree = ast.parse(out)
    train_func = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "train_func")
    # The nested def and its call both run on the workers, in order.
    assert [type(s).__name__ for s in train_func.body[-2:]] == ["FunctionDef", "Expr"]
    assert "trainer = prepare_trainer(trainer)" in out
    assert not follow_ups(result)


def test_training_in_a_method_is_still_a_follow_up():
    result = convert_text(textwrap.dedent('''
        import lightning.pytorch as pl

        class Experiment:
            def run(self):
                trainer = pl.Trainer()
                trainer.fit(self.model)
    '''), None)
    assert result.status == "unchanged"
    assert any("the method run() of class Experiment; move it into a top-level function" in m for m in follow_ups(result))


# -- several trainings (item 3) -------------------------------------------------------------------
def test_one_trainer_name_built_twice_is_two_trainings_in_order():
    result, out = convert('''
        import lightning.pytorch as pl
        from project import Net, data

        model = Net()
        trainer = pl.Trainer(max_epochs=1)
        trainer.fit(model, data("a"))
        trainer = pl.Trainer(max_epochs=2)
        trainer.fit(model, data("b"))
    ''')
    assert out.index("def train_func_1") < out.index("result_1 = ray_trainer_1.fit()") < out.index("def train_func_2")
    assert '"checkpoint": result_1.checkpoint' in out
    assert 'model.load_state_dict(state["state_dict"])' in out
    assert not follow_ups(result)


def test_independent_trainings_hand_over_no_checkpoint():
    result, out = convert('''
        from transformers import Trainer, TrainingArguments
        from project import build_model, data

        def main():
            small = Trainer(model=build_model(1), args=TrainingArguments("small"), train_dataset=data())
            small.train()
            large = Trainer(model=build_model(8), args=TrainingArguments("large"), train_dataset=data())
            large.train()

        main()
    ''')
    assert "def train_func_1(config)" in out and "def train_func_2(config)" in out
    assert "checkpoint" not in out.split("def main")[1].split("result_2")[0].replace("checkpoints", "")
    assert not follow_ups(result)


def test_trainings_in_different_functions_get_a_follow_up_each():
    result = convert_text(textwrap.dedent('''
        import lightning.pytorch as pl
        from project import Net

        def pretrain(net):
            trainer = pl.Trainer()
            trainer.fit(net)

        def finetune(net):
            trainer = pl.Trainer()
            trainer.fit(net)
    '''), None)
    assert result.status == "unchanged"
    messages = follow_ups(result)
    assert len(messages) == 2 and all("different functions" in m for m in messages)


def test_a_later_training_reading_an_earlier_trainers_result_is_not_split():
    result = convert_text(textwrap.dedent('''
        from transformers import Trainer, TrainingArguments
        from project import model, data

        first = Trainer(model=model, args=TrainingArguments("a"), train_dataset=data())
        first.train()
        steps = first.state.global_step
        second = Trainer(model=model, args=TrainingArguments("b", max_steps=steps), train_dataset=data())
        second.train()
    '''), None)
    assert result.status == "unchanged"
    messages = follow_ups(result)
    assert len(messages) == 2 and all("training 2 uses `first`" in m for m in messages)


# -- LightningCLI (item 4) ------------------------------------------------------------------------
def test_lightning_cli_with_its_own_args_keeps_them():
    result, out = convert('''
        from lightning.pytorch.cli import LightningCLI
        from project import LitModel

        LightningCLI(LitModel, args=["fit", "--trainer.max_epochs=1"])
    ''')
    assert 'RayLightningCLI(LitModel, args=["fit", "--trainer.max_epochs=1"])' in out
    assert "sys.argv" not in out
    assert "class RayLightningCLI(LightningCLI):" in out


def test_lightning_cli_ray_trainer_hook_builds_a_prepared_trainer():
    _, out = convert('''
        from lightning.pytorch.cli import LightningCLI
        from project import LitModel

        def main():
            LightningCLI(LitModel)
    ''')
    hook = out.split("def instantiate_trainer")[1].split("def train_func")[0]
    assert "strategy=RayDDPStrategy()" in hook and "plugins=[RayLightningEnvironment()]" in hook
    assert "trainer.callbacks.append(RayTrainReportCallback())" in hook
    assert "return prepare_trainer(trainer)" in hook
    assert '"cli_args": sys.argv[1:]' in out


# -- Hydra (item 5) -------------------------------------------------------------------------------
def test_hydra_trainer_without_callbacks_gets_a_follow_up_about_the_configs_callbacks():
    result, out = convert('''
        import hydra

        @hydra.main(version_base=None, config_path="conf", config_name="train")
        def main(cfg):
            model = hydra.utils.instantiate(cfg.model)
            trainer = hydra.utils.instantiate(cfg.trainer)
            trainer.fit(model)
    ''')
    assert "callbacks=[RayTrainReportCallback()]" in out and "strategy=RayDDPStrategy()" in out
    assert '"cfg": OmegaConf.to_container(cfg, resolve=True)' in out
    assert 'cfg = OmegaConf.create(config["cfg"])' in out
    assert any("replaces any callbacks the config's trainer section lists" in m for m in follow_ups(result))
    # The model is built by instantiate too, but it is not a Trainer: no follow-up about it.
    assert len(follow_ups(result)) == 1


def test_a_trained_model_inside_a_container_is_not_rebuilt_untrained():
    result = convert_text(textwrap.dedent('''
        import lightning.pytorch as pl
        from project import Net, data

        nets = {"a": Net()}
        first = pl.Trainer()
        first.fit(nets["a"], data())
        second = pl.Trainer()
        second.fit(nets["a"], data())
    '''), None)
    assert result.status == "unchanged"
    messages = follow_ups(result)
    assert len(messages) == 2 and all("training 2 uses `nets`, which holds the model training 1 trained" in m for m in messages)


def test_hydra_instantiated_trainer_that_is_not_fitted_is_no_lightning_follow_up():
    result = convert_text(textwrap.dedent('''
        import hydra

        @hydra.main(version_base=None, config_path="conf", config_name="train")
        def main(cfg):
            trainer = hydra.utils.instantiate(cfg.trainer)
            trainer.train()
    '''), None)
    assert not [e for e in result.entries if e.codemod == "lightning_trainer"]

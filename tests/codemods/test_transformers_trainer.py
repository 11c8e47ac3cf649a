"""Edge cases of the Transformers Trainer codemod, as short before/after checks."""

from __future__ import annotations

import ast
import textwrap

from migrator.checks import check_converted
from tests.golden import convert_text


def convert(source: str):
    return convert_text(textwrap.dedent(source))


def check_noop(source: str) -> None:
    result = convert(source)
    assert result.status == "unchanged", result.text("output")


def converted(source: str) -> str:
    result = convert(source)
    assert result.status == "converted", result.entries
    out = result.text("output")
    ast.parse(out)
    assert check_converted(out, textwrap.dedent(source)) == []
    return out


def test_not_a_trainer_script_is_left_alone() -> None:
    check_noop("from transformers import TrainerCallback\nclass CB(TrainerCallback):\n    pass\n")
    check_noop("import torch\nmodel = torch.nn.Linear(2, 2)\nmodel.train()\n")


def test_attribute_access_through_module_alias() -> None:
    out = converted(
        """
        import transformers
        trainer = transformers.Trainer(model=m, args=transformers.TrainingArguments("o"))
        trainer.train()
        """
    )
    assert "def train_func(config):" in out and "trainer = prepare_trainer(trainer)" in out


def test_own_variable_name_is_used() -> None:
    out = converted(
        """
        from transformers import Trainer
        my_trainer = Trainer(model=m)
        my_trainer.train()
        """
    )
    assert "my_trainer.add_callback(SyncedRayTrainReportCallback())" in out
    assert "my_trainer = prepare_trainer(my_trainer)" in out


def test_trainer_built_in_branches_gets_the_callback_in_each() -> None:
    out = converted(
        """
        from transformers import Trainer
        def main():
            if fast:
                trainer = Trainer(model=small)
            else:
                trainer = Trainer(model=big)
            trainer.train()
        """
    )
    assert out.count("trainer.add_callback(SyncedRayTrainReportCallback())") == 2


def test_imports_are_merged_not_duplicated() -> None:
    out = converted(
        """
        import os
        from ray.train import RunConfig
        from transformers import Trainer
        trainer = Trainer(model=m)
        trainer.train()
        """
    )
    assert "from ray.train import ScalingConfig, RunConfig" in out
    assert out.count("import os") == 1


def test_comments_outside_moved_code_are_kept_verbatim() -> None:
    source = textwrap.dedent(
        """
        # header comment
        from transformers import Trainer  # trailing comment


        def helper():  # helper comment
            return   1  # odd spacing kept


        trainer = Trainer(model=m)  # build
        # train it
        trainer.train()
        """
    )
    out = converted(source)
    assert "# header comment\nfrom transformers import Trainer  # trailing comment\n" in out
    assert "def helper():  # helper comment\n    return   1  # odd spacing kept\n" in out
    assert "    trainer = Trainer(model=m)  # build\n" in out
    assert "    # train it\n    trainer.train()\n" in out


def test_parse_known_args_stays_on_driver() -> None:
    out = converted(
        """
        import argparse
        from transformers import Trainer
        parser = argparse.ArgumentParser()
        parser.add_argument("--lr", type=float)
        args, unknown = parser.parse_known_args()
        trainer = Trainer(model=m, lr=args.lr)
        trainer.train()
        """
    )
    head, func = out.split("def train_func", 1)
    assert "parse_known_args" in head and "parse_known_args" not in func
    assert 'args = config["args"]' in func


def test_expected_output_is_a_fixed_point_even_with_odd_names() -> None:
    out = converted(
        """
        from transformers import Trainer
        config = {"lr": 1}
        trainer = Trainer(model=m, lr=config["lr"])
        trainer.train()
        """
    )
    # The script reads a global named `config`, so the train function's parameter is renamed.
    assert "def train_func(loop_config):" in out
    assert convert_text(out).status == "unchanged"


def test_schedules_that_differ_are_aligned_at_run_time() -> None:
    result = convert(
        """
        from transformers import Trainer, TrainingArguments
        args = TrainingArguments("o", eval_strategy="epoch", save_strategy="steps")
        trainer = Trainer(model=m, args=args)
        trainer.train()
        """
    )
    assert any("evaluates per \"epoch\" but saves per \"steps\"" in e.message for e in result.changes)
    assert not result.follow_ups
    assert "control.should_save = True" in result.text("output")  # the report callback aligns them


def test_training_in_one_function_built_in_another_is_a_follow_up() -> None:
    result = convert(
        """
        from transformers import Trainer
        trainer = Trainer(model=m)
        def main():
            trainer.train()
        """
    )
    assert result.status == "unchanged"


HYDRA_APP = """
    import hydra
    from transformers import AutoModel, TrainingArguments

    @hydra.main(version_base=None, config_path="conf", config_name="train")
    def main(cfg):
        model = AutoModel.from_pretrained(cfg.model)
        {build}
        trainer.train()
"""


def test_hydra_instantiated_trainer_given_training_arguments_is_converted() -> None:
    for build in (
        "args = TrainingArguments(output_dir='out', save_strategy='epoch')\n        trainer = hydra.utils.instantiate(cfg.trainer, model=model, args=args)",
        "trainer = hydra.utils.instantiate(cfg.trainer, model=model, args=hydra.utils.instantiate(cfg.training_args))",
        "trainer = hydra.utils.instantiate(cfg.trainer, model=model, processing_class=cfg.model)",
    ):
        out = converted(HYDRA_APP.format(build=build))
        assert "trainer.add_callback(SyncedRayTrainReportCallback())" in out
        assert 'cfg = OmegaConf.create(config["cfg"])' in out and "@hydra.main" in out


def test_hydra_instantiated_trainer_of_unknown_class_is_a_follow_up_not_a_conversion() -> None:
    result = convert(HYDRA_APP.format(build="trainer = hydra.utils.instantiate(cfg.trainer, model=model, optimizer=cfg.optim)"))
    assert result.status == "unchanged"
    messages = [e.message for e in result.follow_ups]
    assert len(messages) == 1 and "nothing here says it is a Transformers/trl Trainer" in messages[0]


def test_hydra_instantiated_trainer_that_is_fitted_is_not_a_transformers_follow_up() -> None:
    result = convert(HYDRA_APP.format(build="trainer = hydra.utils.instantiate(cfg.trainer)").replace("trainer.train()", "trainer.fit(model)"))
    assert not [e for e in result.entries if e.codemod == "transformers_trainer"]


SIBLING_SCRIPT = """
    from transformers import HfArgumentParser, TrainingArguments, AutoModel
    from {module} import QATrainer

    def main():
        parser = HfArgumentParser(TrainingArguments)
        (training_args,) = parser.parse_args_into_dataclasses()
        model = AutoModel.from_pretrained("bert-base-uncased")
        trainer = QATrainer({arguments})
        trainer.train()
"""


def test_a_trainer_subclass_from_a_sibling_file_built_like_a_transformers_trainer_is_converted() -> None:
    for module in ("trainer_qa", ".trainer_qa"):
        out = converted(SIBLING_SCRIPT.format(module=module, arguments="model=model, args=training_args, post_process_function=None"))
        assert "trainer.add_callback(SyncedRayTrainReportCallback())" in out and "TorchTrainer(" in out


def test_a_sibling_trainer_built_without_transformers_arguments_is_left_to_the_audit() -> None:
    result = convert(SIBLING_SCRIPT.format(module="my_trainers", arguments="model, training_args"))
    assert result.status == "unchanged"
    assert [e.codemod for e in result.follow_ups] == ["training_audit"]


def test_a_module_of_trainer_subclasses_says_there_is_nothing_to_launch() -> None:
    result = convert("""
        from transformers import Trainer

        class QuestionAnsweringTrainer(Trainer):
            def evaluate(self, eval_dataset=None):
                return super().evaluate(eval_dataset)
    """)
    assert result.status == "unchanged"
    messages = [e.message for e in result.follow_ups]
    assert len(messages) == 1 and "neither built nor trained in this file" in messages[0]


def test_the_driver_using_a_model_trained_on_the_workers_after_fit_gets_a_follow_up() -> None:
    result = convert("""
        from transformers import Trainer, TrainingArguments

        def train(model, dataset):
            args = TrainingArguments(output_dir="out", eval_strategy="epoch", save_strategy="epoch")
            trainer = Trainer(model=model, args=args, train_dataset=dataset)
            trainer.train()
            path = "models/final"
            model.save_pretrained(path)
            return path
    """)
    assert result.status == "converted"
    follow_ups = [e for e in result.follow_ups if "uses the driver's untrained `model`" in e.message]
    assert len(follow_ups) == 1 and follow_ups[0].line == 9


def test_arguments_parsed_on_the_driver_are_rebuilt_on_the_worker_whatever_the_parse_shape() -> None:
    # TrainingArguments parsed on the driver carry its device set-up: each shape of parse is rebuilt.
    for parse in (
        "parser = HfArgumentParser(TrainingArguments)\n    args = parser.parse_args_into_dataclasses()[0]",
        "args = HfArgumentParser((TrainingArguments,)).parse_args_into_dataclasses()[0]",
        "_, args = TrlParser((Script, TrainingArguments)).parse_args_and_config()",
    ):
        source = (
            "from transformers import HfArgumentParser, Trainer, TrainingArguments\nfrom trl import TrlParser\n\n\n"
            f"def main():\n    {parse}\n    trainer = Trainer(model=build(), args=args, train_dataset=data())\n    trainer.train()\n\n\n"
            'if __name__ == "__main__":\n    main()\n'
        )
        out = converted(source)
        assert 'args = dataclasses.replace(config["args"])' in out, parse


TRAINS_IN_A_METHOD = """
    import argparse
    from transformers import Trainer, TrainingArguments

    class Run:
        def __init__(self, args):
            self.args = args
            self.model = build(args)

        def fit(self):
            trainer = Trainer(model=self.model, args=TrainingArguments("out"), train_dataset=data())
            trainer.train()

    def main():
        args = argparse.ArgumentParser().parse_args()
        {call}

    if __name__ == "__main__":
        main()
    """


def test_a_trainer_built_and_trained_in_a_method_moves_with_the_call_of_that_method() -> None:
    for call in ("run = Run(args)\n        run.fit()", "Run(args).fit()"):
        out = converted(TRAINS_IN_A_METHOD.format(call=call))
        tree = ast.parse(out)
        train_func = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "train_func")
        moved = ast.unparse(train_func)
        assert "Run(args)" in moved and ".fit()" in moved, moved
        # The callback goes to the Hugging Face Trainer, inside the method.
        method = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "fit")
        assert "trainer = prepare_trainer(trainer)" in ast.unparse(method)
        main = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "main")
        assert "Run(" not in ast.unparse(main) and "TorchTrainer(" in ast.unparse(main)


def test_a_method_called_twice_or_only_by_the_class_itself_stays_a_follow_up() -> None:
    for call in ("run = Run(args)\n        run.fit()\n        run.fit()", "pass"):
        result = convert(TRAINS_IN_A_METHOD.format(call=call))
        assert result.status == "unchanged"
        assert any("the method fit() of class Run" in e.message for e in result.follow_ups), result.entries

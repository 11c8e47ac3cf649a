"""Seeding left on the driver also runs on the workers, for every framework codemod.

A seeding call above the definitions of a module-level script stays global (the class after it
reads the module it calls), so without a copy the workers would build the model and draw the
data order unseeded (``_train_function.seeding_left_behind``).
"""

from __future__ import annotations

import ast

from tests.codemods.helpers import convert_all as convert


def train_func(out: str, name: str = "train_func") -> str:
    start = out.index(f"def {name}(")
    return out[start:out.index("\n\n\n", start)]


def driver(out: str) -> str:
    return out[:out.index("def train_func")]


LIGHTNING = '''
    import argparse

    import lightning.pytorch as pl
    import torch

    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    {seeding}


    class Net(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(4, 1)


    model = Net()
    trainer = pl.Trainer(max_epochs=2)
    trainer.fit(model)
'''


def test_a_seed_only_the_seeding_reads_is_handed_over_in_the_config():
    result, out = convert(LIGHTNING.format(seeding="pl.seed_everything(args.seed)"))
    body = train_func(out)
    # The moved code never reads `args`: the copy does, so the config carries it.
    assert body.index('args = config["args"]') < body.index("pl.seed_everything(args.seed)") < body.index("model = Net()")
    assert '"args": args' in out
    assert driver(out).count("pl.seed_everything(args.seed)") == 1  # the driver keeps its own
    assert [e.line for e in result.entries if "first thing in the train function" in e.message] == [10]


def test_two_seeding_calls_on_one_line_are_copied_together():
    _, out = convert(LIGHTNING.format(seeding="torch.manual_seed(args.seed); pl.seed_everything(args.seed)"))
    assert "torch.manual_seed(args.seed); pl.seed_everything(args.seed)" in train_func(out)


def test_a_call_that_is_not_seeding_stays_on_the_driver_alone():
    _, out = convert(LIGHTNING.format(seeding="torch.set_printoptions(precision=3)"))
    assert "set_printoptions" not in train_func(out)


def test_a_seeding_left_between_moved_statements_runs_where_it_stood():
    _, out = convert('''
        import numpy as np
        from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments, set_seed

        set_seed(1)
        np.random.seed(2)


        def data():
            return np.random.rand(4)


        model = BertForSequenceClassification(BertConfig())
        trainer = Trainer(model=model, args=TrainingArguments("out"), train_dataset=data())
        trainer.train()
    ''')
    body = train_func(out)
    # set_seed(1) is the first work and moves; np.random.seed(2) stays (data() reads np) and runs
    # again after it, as in the original.
    assert body.index("set_seed(1)") < body.index("np.random.seed(2)") < body.index("model = ")
    assert "set_seed(1)" not in driver(out) and driver(out).count("np.random.seed(2)") == 1


def test_the_first_of_several_trainings_seeds_its_workers():
    _, out = convert('''
        import lightning.pytorch as pl
        import torch

        pl.seed_everything(0)


        class Net(pl.LightningModule):
            pass


        pretrainer = pl.Trainer(max_epochs=1)
        pretrainer.fit(Net())
        finetuner = pl.Trainer(max_epochs=1)
        finetuner.fit(Net())
    ''')
    functions = [n.name for n in ast.parse(out).body if isinstance(n, ast.FunctionDef)]
    assert functions == ["train_func_1", "train_func_2"]
    assert "pl.seed_everything(0)" in train_func(out, "train_func_1")
    # The second training went on from the first's random state in the original; its workers
    # start afresh, and no copy of the seed is made for them (a reseed would differ too).
    assert "seed_everything" not in train_func(out, "train_func_2")


ABOVE_MAIN = '''
    import argparse

    import lightning.pytorch as pl
    import torch

    {seeding}


    class Net(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(4, 1)


    def main(args):
        model = Net()
        trainer = pl.Trainer(max_epochs=args.epochs)
        trainer.fit(model)


    if __name__ == "__main__":
        parser = argparse.ArgumentParser()
        parser.add_argument("--epochs", type=int, default=2)
        main(parser.parse_args())
'''


def test_a_seed_at_module_level_above_the_training_function_seeds_the_workers():
    # The workers get train_func without running the module: the seed must be in it.
    result, out = convert(ABOVE_MAIN.format(seeding="SEED = 3\n    pl.seed_everything(SEED)"))
    body = train_func(out)
    assert body.index('args = config["args"]') < body.index("pl.seed_everything(SEED)") < body.index("model = Net()")
    assert driver(out).count("pl.seed_everything(SEED)") == 1
    assert any("`pl.seed_everything(SEED)` also runs" in e.message for e in result.entries)


def test_a_module_seed_reading_a_name_the_train_function_binds_is_not_copied():
    # `args` in train_func is main()'s parameter, not this module-level name.
    _, out = convert(ABOVE_MAIN.format(seeding="args = argparse.Namespace(seed=1)\n    torch.manual_seed(args.seed)"))
    assert "manual_seed" not in train_func(out)


IN_THE_GUARD = '''
    import argparse

    import lightning.pytorch as pl
    import torch


    class Net(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(4, 1)


    def main(args):
        model = Net()
        trainer = pl.Trainer(max_epochs=args.epochs)
        trainer.fit(model)


    if __name__ == "__main__":
        parser = argparse.ArgumentParser()
        parser.add_argument("--epochs", type=int, default=2)
        parser.add_argument("--seed", type=int, default=0)
        {parse}
        pl.seed_everything({seed}.seed)
        main({call})
        print("done")
'''


def test_a_seed_in_the_main_guard_before_the_call_runs_in_the_train_function():
    result, out = convert(IN_THE_GUARD.format(parse="args = parser.parse_args()", seed="args", call="args"))
    body = train_func(out)
    # `args` is main()'s parameter and the guard passes its own `args`: the same object.
    assert body.index('args = config["args"]') < body.index("pl.seed_everything(args.seed)") < body.index("model = Net()")
    assert driver(out).count("pl.seed_everything(args.seed)") == 0  # the guard comes after train_func
    assert out.count("pl.seed_everything(args.seed)") == 2


def test_a_guard_seed_reading_another_object_under_a_parameters_name_is_not_copied():
    # The guard seeds from its `args` but hands main() `other`: in train_func `args` is `other`,
    # which has no seed, so a copy would fail there.
    _, out = convert(IN_THE_GUARD.format(parse="args = parser.parse_args()\n        other = argparse.Namespace(epochs=1)",
                                         seed="args", call="other"))
    assert "seed_everything" not in train_func(out)


def test_the_train_functions_parameter_is_not_named_like_a_global_a_seeding_copy_reads():
    # `config` stays global; were the parameter called `config`, the copy would index it instead.
    seeding = 'config = {"seed": 3}\n    pl.seed_everything(config["seed"])'
    for template in (LIGHTNING, ABOVE_MAIN):
        _, out = convert(template.format(seeding=seeding))
        body = train_func(out)
        assert body.startswith("def train_func(loop_config):"), body[:60]
        assert 'pl.seed_everything(config["seed"])' in body

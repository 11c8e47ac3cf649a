"""A training function that returns a value keeps returning it once its training runs on Ray workers.

The helper the codemods write into the script (``for_the_driver``) is run here on what real
scripts return: Lightning's ``callback_metrics`` (tensors), lightning-hydra-template's
``object_dict`` (a model, a Trainer), Transformers' ``TrainOutput`` (a named tuple).
"""

from __future__ import annotations

import ast
import pickle
import textwrap
import threading
from collections import namedtuple

import pytest

from codemods import _return_value as rv
from migrator.checks import check_converted
from tests.golden import convert_text

LIGHTNING = """\
    import lightning.pytorch as pl


    def train(cfg):
        model = Model(cfg)
        trainer = pl.Trainer(max_epochs=cfg.epochs)
        trainer.fit(model)
        if cfg.test:
            trainer.test(model)
            return trainer.callback_metrics, {"model": model}

        def later():
            return 1

        return dict(trainer.callback_metrics), {"model": model, "trainer": trainer}


    def main(cfg):
        metrics, _ = train(cfg)
        return metrics["val_loss"].item()
"""


def converted(source: str) -> tuple[str, list[str]]:
    result = convert_text(textwrap.dedent(source))
    assert result.status == "converted", result.entries
    out = result.text("output")
    assert check_converted(out, textwrap.dedent(source)) == []
    return out, [e.message for e in result.entries]


def test_every_return_of_the_training_goes_through_the_helper_and_the_launch_returns_it() -> None:
    out, messages = converted(LIGHTNING)
    tree = ast.parse(out)
    functions = {f.name: f for f in tree.body if isinstance(f, ast.FunctionDef)}
    assert "for_the_driver" in functions
    # `return a, b` becomes one tuple handed to the helper; a nested function's return is its own.
    assert "return for_the_driver((trainer.callback_metrics, {'model': model}))" in ast.unparse(functions["train_func"])
    assert "return for_the_driver((dict(trainer.callback_metrics), {'model': model, 'trainer': trainer}))" in ast.unparse(
        functions["train_func"])
    assert "def later():\n        return 1" in ast.unparse(functions["train_func"])
    launch = functions["train"]
    assert ast.unparse(launch.body[-1]) == "return result.return_value"
    assert any("result.return_value" in m for m in messages)
    assert not any("callers get None" in m for m in messages)


def test_several_trainings_in_one_block_return_what_the_last_one_returns() -> None:
    out, messages = converted("""\
        import lightning.pytorch as pl


        def train(cfg):
            net = Model(cfg)
            pretrainer = pl.Trainer(max_epochs=1)
            pretrainer.fit(net)
            finetuner = pl.Trainer(max_epochs=1)
            finetuner.fit(net)
            return finetuner.callback_metrics
    """)
    tree = ast.parse(out)
    functions = {f.name: f for f in tree.body if isinstance(f, ast.FunctionDef)}
    assert out.count("def for_the_driver(") == 1
    assert ast.unparse(functions["train_func_2"].body[-1]) == "return for_the_driver(finetuner.callback_metrics)"
    assert "return" not in ast.unparse(functions["train_func_1"])
    assert ast.unparse(functions["train"].body[-1]) == "return result_2.return_value"
    assert sum("result.return_value" in m for m in messages) == 1


def test_a_training_that_returns_nothing_gets_no_helper() -> None:
    out, _ = converted("""\
        import lightning.pytorch as pl


        def train(cfg):
            trainer = pl.Trainer(max_epochs=cfg.epochs)
            trainer.fit(Model(cfg))
    """)
    assert "for_the_driver" not in out and "return_value" not in out


@pytest.fixture(scope="module")
def for_the_driver():
    namespace: dict = {}
    exec(rv.HELPER_SOURCE, namespace)
    return namespace[rv.HELPER]


def test_tensors_become_numpy_and_keep_item(for_the_driver) -> None:
    torch = pytest.importorskip("torch")
    metrics = {"val_loss": torch.tensor(0.25), "step": torch.tensor(7), "bf16": torch.tensor(1.5, dtype=torch.bfloat16),
               "weights": torch.ones(2, 3, requires_grad=True)}
    out = for_the_driver(metrics)
    assert out["val_loss"].item() == 0.25 and float(out["val_loss"]) == 0.25
    assert out["step"].item() == 7
    assert out["bf16"].item() == 1.5
    assert out["weights"].shape == (2, 3)
    from ray.air._internal.torch_utils import contains_tensor  # what Train V2 refuses to hand back
    assert not contains_tensor(out)
    pickle.dumps(out)


def test_models_and_unpicklable_objects_become_none(for_the_driver) -> None:
    torch = pytest.importorskip("torch")
    objects = {"cfg": {"lr": 0.1}, "model": torch.nn.Linear(2, 2), "lock": threading.Lock(), "name": "run"}
    out = for_the_driver((objects, [torch.tensor(1.0)]))
    assert out[0] == {"cfg": {"lr": 0.1}, "model": None, "lock": None, "name": "run"}
    assert isinstance(out, tuple) and out[1][0].item() == 1.0


def test_named_tuples_keep_their_type(for_the_driver) -> None:
    torch = pytest.importorskip("torch")
    TrainOutput = namedtuple("TrainOutput", "global_step training_loss metrics")
    out = for_the_driver(TrainOutput(21, torch.tensor(3.5), {"train_runtime": 1.2}))
    assert type(out) is TrainOutput and out.global_step == 21 and out.training_loss.item() == 3.5
    assert out.metrics == {"train_runtime": 1.2}

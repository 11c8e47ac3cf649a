"""The launch code is formatted as black formats it, with black imported only where it must be.

``_train_function._as_black_formats`` writes the launch (``TorchTrainer(...)`` and ``.fit()``) the
way black would, for the shapes it knows; everything else goes to black. Compared here with black
itself over many generated launches: names of every length, a few items to many, so that the
``train_loop_config`` line fits, just fits, or must be split.
"""

from __future__ import annotations

import random

import libcst as cst
import pytest

from codemods import _train_function as tf
from migrator.options import ConvertOptions

VALUES = ["args", "os.getcwd()", "sys.argv[1:]", "result_1.checkpoint", "cfg.model", "training_args",
          "OmegaConf.to_container(cfg, resolve=True)", "vars(args)", "dict(a=b, c=d)"]


def _launch(config_items, options=ConvertOptions(), run_config=(), func="train_func") -> str:
    statements = tf._launch_statements(func, "ray_trainer", "result", config_items, options, list(run_config), 2, blank=0)
    return cst.Module(body=statements).code


def _black_of(config_items, options=ConvertOptions(), run_config=(), func="train_func") -> str:
    """What the launch was before the fast path: black over the same lines."""
    original = tf._as_black_formats
    tf._as_black_formats = lambda lines, items: None
    try:
        return _launch(config_items, options, run_config, func)
    finally:
        tf._as_black_formats = original


def _names(rng: random.Random, n: int) -> list[tuple[str, str]]:
    items = []
    for i in range(n):
        name = "".join(rng.choice("abcdefghij_") for _ in range(rng.randint(1, 40))).strip("_") or "x"
        name = f"{name}_{i}"
        items.append((name, rng.choice([name, name, *VALUES])))
    return items


@pytest.mark.parametrize("seed", range(40))
def test_launches_come_out_as_black_writes_them(seed: int) -> None:
    rng = random.Random(seed)
    fast = 0
    for n in range(0, 14):
        items = _names(rng, n)
        func = rng.choice(["train_func", "train_func_2", "train_" + "x" * rng.randint(0, 60)])
        assert _launch(items, func=func) == _black_of(items, func=func), (items, func)
        lines = [f'"{k}": {v}' for k, v in items]
        fast += tf._as_black_formats(["    train_loop_config={" + ", ".join(lines) + "},"], lines) is not None
    assert fast > 5  # the comparison exercised the fast path, not only black


@pytest.mark.parametrize("seed", range(10))
def test_checkpoint_configs_come_out_as_black_writes_them(seed: int) -> None:
    """The Lightning codemods' RunConfig(checkpoint_config=CheckpointConfig(...)): short, split once, split twice."""
    rng = random.Random(seed)
    for _ in range(20):
        keep = f"num_to_keep={rng.randint(1, 300)}, " if rng.random() < 0.6 else ""
        monitor = "".join(rng.choice("abcdefgh_/") for _ in range(rng.randint(1, 60)))
        run_config = [f'checkpoint_config=CheckpointConfig({keep}checkpoint_score_attribute="{monitor}", '
                      f'checkpoint_score_order="{rng.choice(["min", "max"])}")']
        items = _names(rng, rng.randint(0, 4))
        assert _launch(items, run_config=run_config) == _black_of(items, run_config=run_config), run_config


def test_what_it_does_not_know_goes_to_black() -> None:
    storage = ConvertOptions(storage_path="s3://bucket/runs")
    checkpoint = ['checkpoint_config=CheckpointConfig(num_to_keep=1, checkpoint_score_attribute="val_acc", '
                  'checkpoint_score_order="max")']
    for items, options, run_config in [([("a", "a")], storage, ()), ([("a", "a")], ConvertOptions(), checkpoint),
                                       ([("args", "( vars(args), )")], ConvertOptions(), ()),
                                       ([("cfg", "to_container(cfg,resolve = True)")], ConvertOptions(), ())]:
        assert _launch(items, options, run_config) == _black_of(items, options, run_config)
    # A value black would rewrite (its spaces) is not taken as written.
    assert "(vars(args),)" in _launch([("args", "( vars(args), )")])
    assert "to_container(cfg, resolve=True)" in _launch([("cfg", "to_container(cfg,resolve = True)")])

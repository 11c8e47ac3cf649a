import pytest

from codemods.ray_air_to_ray_train import RayAirToRayTrain as CODEMOD
from tests.codemods.helpers import check_noop, check_transformed, follow_ups


@pytest.mark.parametrize(
    "source",
    [
        "import ray.train\nray.train.report({'a': 1})\nray.train.get_context().get_world_rank()\n",
        # Not Ray's air / session.
        "from mypkg import air\nair.session.report({})\n",
        "import requests\nsession = requests.Session()\nsession.report()\n",
        # A .fit() result that is not a Ray Train result.
        "from ray import tune\nresult = tune.Tuner(f).fit()\nprint(result.log_dir)\n",
        "print(model.fit(x).log_dir)\n",
    ],
)
def test_noop(source):
    check_noop(CODEMOD, source)


def test_aliased_session_module():
    check_transformed(
        CODEMOD,
        """\
        from ray.air import session as s
        s.report({"loss": 1.0})
        """,
        """\
        import ray.train

        ray.train.report({"loss": 1.0})
        """,
    )


def test_from_import_of_a_function_keeps_its_name():
    check_transformed(
        CODEMOD,
        """\
        from ray.air.session import report
        report({"loss": 1.0})
        """,
        """\
        from ray.train import report
        report({"loss": 1.0})
        """,
    )


def test_aliased_class_import_moves_with_its_alias():
    check_transformed(
        CODEMOD,
        """\
        from ray.air import Checkpoint as C, ScalingConfig
        ckpt = C.from_directory("/tmp/x")
        """,
        """\
        from ray.train import Checkpoint as C, ScalingConfig
        ckpt = C.from_directory("/tmp/x")
        """,
    )


def test_parenthesized_import_split_keeps_the_rest():
    check_transformed(
        CODEMOD,
        """\
        from ray.air.config import (
            DatasetConfig,  # still used
            ScalingConfig,
        )
        cfg = DatasetConfig(split=True)
        """,
        """\
        from ray.air.config import (
            DatasetConfig,  # still used
        )
        from ray.train import ScalingConfig

        cfg = DatasetConfig(split=True)
        """,
    )


def test_torch_checkpoint_renamed_only_when_exact():
    check_transformed(
        CODEMOD,
        """\
        from ray.train.torch import TorchCheckpoint
        ckpt = TorchCheckpoint.from_directory("/tmp/x")
        """,
        """\
        from ray.train import Checkpoint
        ckpt = Checkpoint.from_directory("/tmp/x")
        """,
    )
    result = check_noop(
        CODEMOD,
        """\
        from ray.train.torch import TorchCheckpoint
        ckpt = TorchCheckpoint.from_state_dict(model.state_dict())
        """,
    )
    assert "TorchCheckpoint still works" in follow_ups(result)[0]


def test_torch_checkpoint_keeps_its_name_when_checkpoint_is_taken():
    check_transformed(
        CODEMOD,
        """\
        from lightning.pytorch.callbacks import Checkpoint
        from ray.train.torch import TorchCheckpoint
        ckpt = TorchCheckpoint.from_directory("/tmp/x")
        """,
        """\
        from lightning.pytorch.callbacks import Checkpoint
        from ray.train import Checkpoint as TorchCheckpoint
        ckpt = TorchCheckpoint.from_directory("/tmp/x")
        """,
    )


def test_context_function_not_called_is_a_follow_up():
    result = check_noop(CODEMOD, "from ray.air import session\nrank = session.get_world_rank\n")
    assert "is not called here" in follow_ups(result)[0]


def test_log_dir_of_fit_result():
    check_transformed(
        CODEMOD,
        """\
        from ray.train.torch import TorchTrainer
        trainer = TorchTrainer(f)
        result = trainer.fit()
        print(result.log_dir, TorchTrainer(g).fit().log_dir)
        """,
        """\
        from ray.train.torch import TorchTrainer
        trainer = TorchTrainer(f)
        result = trainer.fit()
        print(result.path, TorchTrainer(g).fit().path)
        """,
    )


def test_dict_checkpoint_methods_are_follow_ups():
    result = check_noop(
        CODEMOD,
        """\
        import ray.train
        ckpt = ray.train.get_checkpoint()
        state = ckpt.to_dict()
        other = ray.train.Checkpoint.from_dict(state)
        unrelated = frame.to_dict()
        """,
    )
    assert [f.split(":")[0] for f in follow_ups(result)] == ["3", "4"]


# -- dict checkpoints ----------------------------------------------------------------------------
DICT_SCRIPT = """\
from ray.air import session
from ray.air.checkpoint import Checkpoint


def train_loop(config):
    checkpoint = session.get_checkpoint()
    start = checkpoint.to_dict()["epoch"] + 1 if checkpoint else 0
    for epoch in range(start, 3):
        # one report per epoch
        session.report({"epoch": epoch}, checkpoint=Checkpoint.from_dict({"epoch": epoch}))
"""


def test_dict_checkpoints_become_directory_checkpoints():
    from codemods.ray_air_to_ray_train import RayAirToRayTrain
    from tests.codemods.helpers import run

    result = run(RayAirToRayTrain, DICT_SCRIPT)
    out = result.text("output")
    assert "        # one report per epoch\n        with dict_checkpoint({\"epoch\": epoch}) as checkpoint_to_report:\n" \
           "            ray.train.report({\"epoch\": epoch}, checkpoint=checkpoint_to_report)\n" in out
    assert 'load_dict_checkpoint(checkpoint)["epoch"]' in out
    assert out.count("def dict_checkpoint(") == 1 and out.count("def load_dict_checkpoint(") == 1
    assert not result.follow_ups
    again = run(RayAirToRayTrain, out)
    assert again.status == "unchanged"


def test_dict_checkpoint_helpers_round_trip_and_only_rank_0_writes(tmp_path, monkeypatch):
    """Run the generated helpers: rank 0 reports a directory that loads back the same dict; others None."""
    import types

    import torch

    pytest.importorskip("ray")
    import ray.train

    from codemods.ray_air_to_ray_train import DICTS

    rank = {"value": 0}
    fake_ray = types.SimpleNamespace(train=types.SimpleNamespace(
        Checkpoint=ray.train.Checkpoint, get_context=lambda: types.SimpleNamespace(get_world_rank=lambda: rank["value"])))
    namespace: dict = {}
    exec("import contextlib, os, tempfile, torch\n" + DICTS["writer"] + DICTS["reader"], namespace)
    namespace["ray"] = fake_ray
    state = {"epoch": 2, "model": {"w": torch.ones(2)}}
    with namespace["dict_checkpoint"](state) as checkpoint:
        loaded = namespace["load_dict_checkpoint"](checkpoint)
    assert loaded["epoch"] == 2 and torch.equal(loaded["model"]["w"], torch.ones(2))
    rank["value"] = 1
    with namespace["dict_checkpoint"](state) as checkpoint:
        assert checkpoint is None


def test_dict_checkpoint_readers_alone_and_tune_scripts_keep_follow_ups():
    from codemods.ray_air_to_ray_train import RayAirToRayTrain
    from tests.codemods.helpers import follow_ups, run

    reader_only = "from ray.air import session\ncheckpoint = session.get_checkpoint()\nstate = checkpoint.to_dict()\n"
    result = run(RayAirToRayTrain, reader_only)
    assert "to_dict()" in result.text("output") and any("to_dict" in f for f in follow_ups(result))
    tune = DICT_SCRIPT + "\nfrom ray import tune\ntune.Tuner(train_loop).fit()\n"
    result = run(RayAirToRayTrain, tune)
    assert "Checkpoint.from_dict(" in result.text("output") and any("from_dict" in f for f in follow_ups(result))

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

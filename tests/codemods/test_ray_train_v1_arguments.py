import pytest

from codemods.ray_train_v1_arguments import RayTrainV1Arguments as CODEMOD
from tests.codemods.helpers import check_noop, check_transformed, follow_ups


@pytest.mark.parametrize(
    "source",
    [
        # Ray Tune's own configs still take these.
        "from ray import tune\ntune.RunConfig(stop={'x': 1}, verbose=0, local_dir='/r')\n",
        "from ray.tune import CheckpointConfig\nCheckpointConfig(checkpoint_frequency=5)\n",
        # V2 arguments.
        "from ray.train import RunConfig\nRunConfig(storage_path='/r', name='x')\n",
        # A ray.air config in a script that runs Tune may be meant for the Tuner.
        "from ray import air, tune\ntune.Tuner(f, run_config=air.RunConfig(stop={'x': 1}))\n",
    ],
)
def test_noop(source):
    check_noop(CODEMOD, source)


def test_local_dir_absolute_and_relative():
    check_transformed(
        CODEMOD,
        """\
        from ray.train import RunConfig
        a = RunConfig(local_dir="/mnt/results")
        b = RunConfig(local_dir="results")
        """,
        """\
        from ray.train import RunConfig
        import os

        a = RunConfig(storage_path="/mnt/results")
        b = RunConfig(storage_path=os.path.abspath(os.path.expanduser("results")))
        """,
    )


def test_retired_trainer_gets_its_arguments_checked_too():
    check_transformed(
        CODEMOD,
        "from ray.train.huggingface import TransformersTrainer\nTransformersTrainer(f, resume_from_checkpoint=None)\n",
        "from ray.train.huggingface import TransformersTrainer\nTransformersTrainer(f)\n",
    )


def test_tune_callbacks_are_follow_ups():
    result = check_noop(
        CODEMOD,
        """\
        from ray import tune
        from ray.train import RunConfig, UserCallback

        class Progress(tune.Callback):
            pass

        class Mine(UserCallback):
            pass

        RunConfig(callbacks=[Progress(), Mine()])
        """,
    )
    assert len(follow_ups(result)) == 1 and "`Progress()`" in follow_ups(result)[0]


def test_result_metrics_follow_up_only_without_checkpoint_reports():
    source = """\
        import ray.train
        from ray.train.torch import TorchTrainer

        def f(config):
            ray.train.report({{"loss": 1.0}}{checkpoint})

        result = TorchTrainer(f).fit()
        print(result.metrics)
        """
    result = check_noop(CODEMOD, source.format(checkpoint=""))
    assert follow_ups(result)[0].startswith("8: `result.metrics`")
    check_noop(CODEMOD, source.format(checkpoint=", checkpoint=ckpt"))
    check_noop(CODEMOD, source.format(checkpoint=", ckpt"))


def test_framework_callbacks_count_as_checkpoint_reports():
    check_noop(
        CODEMOD,
        """\
        from ray.train.tensorflow.keras import ReportCheckpointCallback
        from ray.train.tensorflow import TensorflowTrainer

        def f(config):
            model.fit(ds, callbacks=[ReportCheckpointCallback()])

        result = TensorflowTrainer(f).fit()
        print(result.metrics)
        """,
    )

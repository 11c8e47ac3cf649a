"""Tuner(trainer) -> a Tune function that fits the trainer with TuneReportCallback (Train V2)."""

from __future__ import annotations

from codemods.tuner_trainer import TunerTrainer
from tests.codemods.helpers import check_noop, check_transformed, follow_ups


def test_tuner_over_a_trainer_becomes_a_tune_function():
    check_transformed(TunerTrainer, """\
        from ray.tune import Tuner
        from ray.train.torch import TorchTrainer

        trainer = TorchTrainer(train_func)
        Tuner(trainer, param_space={"train_loop_config": {"lr": 0.1}}).fit()
        """, """\
        from ray.tune import Tuner
        from ray.train.torch import TorchTrainer
        import ray.tune
        from ray.train import RunConfig
        from ray.tune.integration.ray_train import TuneReportCallback


        def tune_train_func(config):
            trainer = TorchTrainer(
                train_func,
                train_loop_config=config.get("train_loop_config", {}),
                run_config=RunConfig(name=ray.tune.get_context().get_trial_id(), callbacks=[TuneReportCallback()]),
            )
            trainer.fit()


        Tuner(tune_train_func, param_space={"train_loop_config": {"lr": 0.1}}).fit()
        """)


def test_trial_values_win_over_the_trainers_own_config():
    result = check_transformed(TunerTrainer, """\
        from ray import tune
        from ray.train.torch import TorchTrainer

        t = TorchTrainer(f, train_loop_config=base)
        tune.Tuner(t).fit()
        """, """\
        from ray import tune
        from ray.train.torch import TorchTrainer
        import ray.tune
        from ray.train import RunConfig
        from ray.tune.integration.ray_train import TuneReportCallback


        def tune_train_func(config):
            t = TorchTrainer(
                f,
                train_loop_config=base,
                run_config=RunConfig(name=ray.tune.get_context().get_trial_id(), callbacks=[TuneReportCallback()]),
            )
            t.fit()


        tune.Tuner(tune_train_func).fit()
        """)
    assert not result.follow_ups


def test_a_shared_run_name_and_other_search_keys_get_follow_ups():
    result = check_transformed(TunerTrainer, """\
        from ray import tune
        from ray.train import RunConfig
        from ray.train.torch import TorchTrainer

        t = TorchTrainer(f, train_loop_config={"a": 1}, run_config=RunConfig(name="fixed"))
        tune.Tuner(t, param_space={"train_loop_config": {"a": tune.choice([1, 2])}}).fit()
        """, """\
        from ray import tune
        from ray.train import RunConfig
        from ray.train.torch import TorchTrainer
        import ray.tune
        from ray.tune.integration.ray_train import TuneReportCallback


        def tune_train_func(config):
            t = TorchTrainer(f, train_loop_config={"a": 1, **config.get("train_loop_config", {})}, run_config=RunConfig(name="fixed", callbacks=[TuneReportCallback()]))
            t.fit()


        tune.Tuner(tune_train_func, param_space={"train_loop_config": {"a": tune.choice([1, 2])}}).fit()
        """)
    assert [line.split(":")[0] for line in follow_ups(result)] == ["5"]
    assert "resume one another" in follow_ups(result)[0]
    refused = check_noop(TunerTrainer, """\
        from ray import tune
        from ray.train.torch import TorchTrainer

        t = TorchTrainer(f)
        tune.Tuner(t, param_space={"scaling_config": s}).fit()
        """)
    assert follow_ups(refused)[0].startswith("5: Train V2 cannot tune a trainer object")


def test_a_tune_function_is_left_alone():
    result = check_noop(TunerTrainer, """\
        from ray import tune

        def trainable(config):
            tune.report({"x": 1})

        tune.Tuner(trainable, param_space={"lr": tune.uniform(0, 1)}).fit()
        """)
    assert result.entries == ()

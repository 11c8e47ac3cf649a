from __future__ import annotations

from codemods.ray_train_v1_trainer import RayTrainV1Trainer as V1
from tests.codemods.helpers import check_noop, check_transformed, follow_ups, run


def test_start_run_shutdown_becomes_one_torch_trainer_fit() -> None:
    before = '''\
from ray.train import Trainer


def main(train_func):
    trainer = Trainer(backend="torch", num_workers=3, resources_per_worker={"CPU": 2})
    trainer.start()
    trainer.run(train_func, config={"lr": 0.1})
    trainer.shutdown()
'''
    after = '''\
from ray.train import ScalingConfig
from ray.train.torch import TorchTrainer


def main(train_func):
    TorchTrainer(
        train_func,
        train_loop_config={"lr": 0.1},
        scaling_config=ScalingConfig(num_workers=3, resources_per_worker={"CPU": 2}),
    ).fit()
'''
    result = check_transformed(V1, before, after)
    assert follow_ups(result) == []


def test_report_keywords_become_one_metrics_dict_and_ranks_come_from_the_context() -> None:
    before = '''\
import ray.train as train


def train_func(config):
    train.report(loss=1.0, **config)
    train.report(epoch=train.world_rank())
    return train.local_rank(), train.world_size()
'''
    result = run(V1, before)
    output = result.text("output")
    # Train V2 raises on tensors in metrics, Ray 1.x took them: every converted report filters them.
    assert 'ray.train.report(without_tensors({"loss": 1.0, **config}))' in output
    assert 'ray.train.report(without_tensors({"epoch": ray.train.get_context().get_world_rank()}))' in output
    assert "return ray.train.get_context().get_local_rank(), ray.train.get_context().get_world_size()" in output
    assert output.count("def without_tensors(value):") == 1
    # Only the report whose values the codemod cannot see (**config) gets a follow-up.
    assert [m.split(":")[0] for m in follow_ups(result)] == ["5"]
    namespace: dict = {}
    exec(output.split("def train_func")[0].replace("import ray.train as train\nimport ray.train\n", ""), namespace)
    import torch
    kept = namespace["without_tensors"]({"loss": torch.tensor(0.5), "model": {"w": torch.ones(2)}, "epoch": 1})
    assert kept == {"loss": 0.5, "epoch": 1}
    assert namespace["without_tensors"]([{"loss": torch.tensor(1.0), "model": {"w": torch.ones(2)}}, 3]) == [{"loss": 1.0}, 3]


def test_current_report_and_other_trainers_are_left_alone() -> None:
    check_noop(V1, '''\
import ray.train
from transformers import Trainer


def train_func(config):
    ray.train.report({"loss": 1.0})
    ray.train.report(metrics={"loss": 1.0}, checkpoint=None)
    Trainer(model=None).train()
''')


def test_to_tune_trainable_becomes_a_tune_function_fitting_a_torch_trainer() -> None:
    result = run(V1, '''\
from ray import tune
from ray.train import Trainer


def search(train_func, n):
    trainer = Trainer("torch", num_workers=n)
    trainable = trainer.to_tune_trainable(train_func)
    return tune.run(trainable, config={"lr": tune.uniform(0, 1)})
''')
    output = result.text("output")
    assert "    def tune_train_func(config):\n" in output
    assert "            train_loop_config=config,\n            scaling_config=ScalingConfig(num_workers=n),\n" in output
    assert "callbacks=[TuneReportCallback()]" in output and "    trainable = tune_train_func\n" in output
    assert "from ray.tune.integration.ray_train import TuneReportCallback" in output
    assert follow_ups(result) == []


def test_to_tune_trainable_beside_run_is_refused_with_the_tune_way() -> None:
    result = check_noop(V1, '''\
from ray.train import Trainer

trainer = Trainer("torch", num_workers=2)
trainer.start()
trainable = trainer.to_tune_trainable(train_func)
''')
    [message] = follow_ups(result)
    assert message.startswith("3: ray.train.Trainer (Ray 1.x, gone since Ray 2.0) left as it is")
    assert "TorchTrainer(train_func" in message and "ray.tune.report" in message


def test_other_backends_and_unknown_arguments_are_refused() -> None:
    tf = check_noop(V1, 'from ray.train import Trainer\n\nt = Trainer("tensorflow", num_workers=2)\nt.start()\nt.run(f)\n')
    assert "is not torch" in follow_ups(tf)[0]
    logdir = check_noop(V1, 'from ray.train import Trainer\n\nt = Trainer("torch", num_workers=2, logdir="/tmp")\nt.run(f)\n')
    assert 'Trainer(logdir="/tmp")' in follow_ups(logdir)[0]
    dataset = check_noop(V1, 'from ray.train import Trainer\n\nt = Trainer("torch")\nt.run(f, dataset=ds)\n')
    assert "run(dataset=ds)" in follow_ups(dataset)[0]


def test_checkpoint_functions_get_a_follow_up() -> None:
    result = run(V1, 'from ray import train\n\ndef f():\n    train.save_checkpoint(epoch=1)\n    train.load_checkpoint()\n')
    assert [m.split(":")[0] for m in follow_ups(result)] == ["4", "5"]
    assert "ray.train.get_checkpoint()" in follow_ups(result)[1]


def test_a_used_run_result_gets_a_follow_up() -> None:
    result = run(V1, '''\
from ray.train import Trainer

t = Trainer("torch", num_workers=2)
out = t.run(f)
print(out[0])
''')
    assert follow_ups(result) == [
        "4: `out` held each worker's return value (a list); TorchTrainer.fit() returns a ray.train.Result: "
        "rank 0's return value is result.return_value, the last metrics result.metrics"]


def test_the_train_functions_return_value_loses_its_tensors_but_not_its_helpers() -> None:
    result = run(V1, '''\
from ray.train import Trainer


def train_func(config):
    def helper():
        return 1
    if config:
        return helper()
    return [helper()]


t = Trainer("torch", num_workers=2)
t.run(train_func)
''')
    output = result.text("output")
    assert "        return 1\n" in output  # the nested function keeps its value
    assert "    if config:\n        return without_tensors(helper())\n    return without_tensors([helper()])\n" in output

from __future__ import annotations

import pytest

from codemods._hf_reporting import _CLASS

from codemods.transformers_trainer_legacy import TransformersTrainerLegacy as T
from tests.codemods.legacy_helpers import check_noop, check_transformed, convert, messages

INIT = '''\
from transformers import Trainer, TrainingArguments
from ray.train import ScalingConfig
from ray.train.huggingface import TransformersTrainer


def init(train_dataset, eval_dataset, **config):
    args = TrainingArguments("out", per_device_train_batch_size=16, max_steps=10)
    return Trainer(args=args, train_dataset=train_dataset, eval_dataset=eval_dataset)
'''

# The report callback class, as codemods/_hf_reporting writes it (its behaviour is tested in
# test_hf_reporting.py), then the train function.
GENERATED = _CLASS.format(name="SyncedRayTrainReportCallback", base="RayTrainReportCallback") + '''

def train_func():
    # Without a GPU, the Trainer trains distributed only when told to use the CPU.
    if get_device().type == "cpu":
        os.environ["ACCELERATE_USE_CPU"] = "true"
    train_dataset = ray.train.get_dataset_shard("train")
    train_iterable_ds = train_dataset.iter_torch_batches(batch_size=16)
    trainer = init(train_iterable_ds, None)
    trainer.add_callback(SyncedRayTrainReportCallback())
    trainer = prepare_trainer(trainer)
    trainer.train()
'''

IMPORTS_AFTER = '''\
from transformers import Trainer, TrainingArguments
from ray.train import ScalingConfig
import os
import ray
import torch.distributed
from ray.train.huggingface.transformers import RayTrainReportCallback, prepare_trainer
from ray.train.torch import TorchTrainer, get_device
'''


@pytest.mark.parametrize("source", [
    "# TransformersTrainer was removed in Ray 2.9\nx = 'TransformersTrainer'\n",
    "class TransformersTrainer:\n    pass\n\n\nTransformersTrainer(trainer_init_per_worker=f)\n",
    "from mylib import HuggingFaceTrainer\n\nHuggingFaceTrainer(trainer_init_per_worker=f, datasets={})\n",
    # Other libraries' classes of the same name
    "from transformers import Trainer as TransformersTrainer\n\nt = TransformersTrainer(model=m, args=a)\n",
    "from kubeflow.trainer.rhai.transformers import TransformersTrainer\n\nt = TransformersTrainer(func=f)\n",
])
def test_noop(source: str) -> None:
    check_noop(T, source)


def test_positional_init_function_becomes_the_train_function() -> None:
    before = INIT + '''
trainer = TransformersTrainer(init, scaling_config=ScalingConfig(num_workers=2), datasets={"train": ds})
'''
    after = IMPORTS_AFTER + INIT.split("\n", 3)[3] + "\n\n" + GENERATED + '''

trainer = TorchTrainer(train_func, scaling_config=ScalingConfig(num_workers=2), datasets={"train": ds})
'''
    result = check_transformed(T, before, after)
    assert messages(result) == []


def test_keyword_init_function_moves_to_the_front_and_keeps_the_layout() -> None:
    before = INIT + '''
trainer = TransformersTrainer(
    scaling_config=ScalingConfig(num_workers=2),
    datasets={"train": ds},
    trainer_init_per_worker=init,  # builds the HF Trainer
)
'''
    result = convert(T, before)
    assert result.text("output").endswith('''
trainer = TorchTrainer(
    train_func,
    scaling_config=ScalingConfig(num_workers=2),
    datasets={"train": ds},
)
''')


def test_eval_key_kept_as_written_and_config_passed_through() -> None:
    before = INIT + '''
trainer = TransformersTrainer(
    trainer_init_per_worker=init,
    trainer_init_config={"lr": 1e-3},
    scaling_config=ScalingConfig(num_workers=2),
    datasets={"train": ds, "evaluation": eval_ds},
)
'''
    output = convert(T, before).text("output")
    assert 'eval_dataset = ray.train.get_dataset_shard("evaluation")' in output
    assert "eval_iterable_ds = eval_dataset.iter_torch_batches(batch_size=8)" in output  # the HF default
    assert "trainer = init(train_iterable_ds, eval_iterable_ds, **config)" in output
    assert "def train_func(config):" in output
    assert '    train_loop_config={"lr": 1e-3},\n' in output


def test_missing_scaling_config_comes_from_the_options() -> None:
    before = INIT + '\ntrainer = TransformersTrainer(init, datasets={"train": ds})\n'
    result = convert(T, before, num_workers=4, use_gpu=False)
    # The line would pass 88 columns: the call is split one argument per line.
    assert result.text("output").endswith(
        'trainer = TorchTrainer(\n    train_func,\n    datasets={"train": ds},\n'
        "    scaling_config=ScalingConfig(num_workers=4, use_gpu=False),\n)\n")


def test_storage_path_option_adds_a_run_config() -> None:
    before = INIT + '\ntrainer = TransformersTrainer(init, scaling_config=ScalingConfig(num_workers=2), datasets={"train": ds})\n'
    output = convert(T, before, storage_path="s3://bucket/runs").text("output")
    assert 'run_config=RunConfig(storage_path="s3://bucket/runs")' in output
    assert "from ray.train import RunConfig, ScalingConfig" in output


def test_follow_ups_for_what_cannot_be_read_off_the_code() -> None:
    before = '''\
from transformers import Trainer, TrainingArguments
from ray.train.huggingface import HuggingFaceTrainer


def init(train_dataset, eval_dataset, **config):
    args = TrainingArguments("out", per_device_train_batch_size=config["bs"], save_strategy="no")
    return Trainer(args=args, train_dataset=train_dataset)


trainer = HuggingFaceTrainer(init, datasets=all_datasets, resume_from_checkpoint=ckpt, preprocessor=prep)
'''
    follow_ups = messages(convert(T, before))
    assert any(m.startswith("per_device_train_batch_size is not a literal") for m in follow_ups)
    assert any(m.startswith("TrainingArguments needs max_steps") for m in follow_ups)
    assert any(m.startswith('save_strategy="no"') for m in follow_ups)
    assert any(m.startswith("datasets= is not a dict literal") for m in follow_ups)
    assert any("resume_from_checkpoint" in m for m in follow_ups)
    assert any("preprocessor" in m for m in follow_ups)


def test_a_lambda_is_left_alone_with_a_follow_up() -> None:
    before = '''\
from ray.train.huggingface import TransformersTrainer

trainer = TransformersTrainer(trainer_init_per_worker=lambda t, e, **c: make(t, e), datasets={"train": ds})
'''
    result = check_noop(T, before)
    assert messages(result)[0].startswith("TransformersTrainer: trainer_init_per_worker is not a function name")


def test_inside_a_function_the_train_function_is_nested_and_names_do_not_clash() -> None:
    before = '''\
from transformers import Trainer, TrainingArguments
from ray.train.huggingface.transformers import TransformersTrainer


def main(train_func):
    def init(train_dataset, eval_dataset):
        return Trainer(args=TrainingArguments("out", max_steps=5), train_dataset=train_dataset)

    trainer = TransformersTrainer(init, datasets={"train": ds}, scaling_config=scaling)
    return trainer.fit()
'''
    output = convert(T, before).text("output")
    assert '''
            return control

    def train_func_2():
        # Without a GPU, the Trainer trains distributed only when told to use the CPU.
        if get_device().type == "cpu":
            os.environ["ACCELERATE_USE_CPU"] = "true"
        train_dataset = ray.train.get_dataset_shard("train")
''' in output
    assert '''        trainer.train()

    trainer = TorchTrainer(train_func_2, datasets={"train": ds}, scaling_config=scaling)
''' in output
    assert "    \n" not in output


def test_module_attribute_call_and_other_uses() -> None:
    before = '''\
import ray.train.huggingface
from transformers import Trainer, TrainingArguments


def init(train_dataset, eval_dataset):
    return Trainer(args=TrainingArguments("out", max_steps=5), train_dataset=train_dataset)


trainer = ray.train.huggingface.TransformersTrainer(init, datasets={"train": ds}, scaling_config=s)
restored = ray.train.huggingface.TransformersTrainer.restore("/tmp/run")
'''
    result = convert(T, before)
    assert "trainer = TorchTrainer(train_func, datasets" in result.text("output")
    assert messages(result) == ["TransformersTrainer no longer exists in Ray (ImportError since 2.9): rewrite this "
                                "use for TorchTrainer by hand"]


def test_unused_import_is_removed() -> None:
    result = check_transformed(T, "import os\nfrom ray.train.huggingface import TransformersTrainer\n", "import os\n")
    assert messages(result, "change")[0].startswith("removed the import of TransformersTrainer")


def test_two_trainers_share_the_init_function() -> None:
    before = INIT + '''
a = TransformersTrainer(init, datasets={"train": ds}, scaling_config=s)
b = TransformersTrainer(init, datasets={"train": ds}, scaling_config=s)
'''
    output = convert(T, before).text("output")
    assert "a = TorchTrainer(train_func, " in output and "b = TorchTrainer(train_func_2, " in output
    assert output.count("def train_func") == 2


def test_windows_line_endings_are_kept() -> None:
    before = (INIT + '\ntrainer = TransformersTrainer(init, datasets={"train": ds}, scaling_config=s)\n').replace("\n", "\r\n")
    output = convert(T, before).text("output")
    assert "def train_func():\r\n" in output
    assert output.count("\r\n") == output.count("\n")

from __future__ import annotations

from codemods.accelerate_trainer_legacy import AccelerateTrainerLegacy as A
from tests.codemods.legacy_helpers import check_noop, check_transformed, convert, messages

LOOP = '''\
from accelerate import Accelerator
from ray.train import ScalingConfig
from ray.train.huggingface import AccelerateTrainer


def train_loop(config):
    accelerator = Accelerator(cpu=False)
    model = accelerator.prepare(make_model())
'''


def trainer(accelerate_config: str) -> str:
    return LOOP + f'''

trainer = AccelerateTrainer(
    train_loop,
    train_loop_config={{"lr": 0.1}},
    accelerate_config={accelerate_config},
    scaling_config=ScalingConfig(num_workers=2),
)
'''


def test_noop_without_a_ray_accelerate_trainer() -> None:
    check_noop(A, "from mylib import AccelerateTrainer\n\nAccelerateTrainer(f, accelerate_config={})\n")


def test_dict_settings_move_into_the_accelerator_call() -> None:
    before = trainer('{"mixed_precision": "fp16", "gradient_accumulation_steps": 4, "num_processes": 8, '
                     '"distributed_type": "MULTI_GPU", "use_cpu": False}')
    after = '''\
from accelerate import Accelerator
from ray.train import ScalingConfig
from ray.train.torch import TorchTrainer


def train_loop(config):
    accelerator = Accelerator(
        cpu=False,
        mixed_precision="fp16",
        gradient_accumulation_steps=4,
    )
    model = accelerator.prepare(make_model())


trainer = TorchTrainer(
    train_loop,
    train_loop_config={"lr": 0.1},
    scaling_config=ScalingConfig(num_workers=2),
)
'''
    result = check_transformed(A, before, after)
    assert messages(result) == []
    assert messages(result, "change") == ["AccelerateTrainer -> TorchTrainer; accelerate_config removed; moved "
                                          'mixed_precision="fp16", gradient_accumulation_steps=4 into Accelerator(...) '
                                          "in train_loop"]


def test_defaults_and_ray_managed_keys_are_dropped_silently() -> None:
    result = convert(A, trainer('{"mixed_precision": "no", "num_machines": 1, "compute_environment": "LOCAL_MACHINE"}'))
    assert "Accelerator(cpu=False)" in result.text("output")
    assert messages(result) == []


def test_a_config_file_becomes_a_follow_up() -> None:
    result = convert(A, trainer('"accelerate_config.yaml"'))
    assert "accelerate_config" not in result.text("output").split("trainer = ")[1]
    assert messages(result) == ['accelerate_config="accelerate_config.yaml" is no longer applied: pass its settings '
                                "(mixed_precision, gradient accumulation, DeepSpeed/FSDP plugins) to the "
                                "Accelerator(...) in train_loop"]


def test_settings_without_an_accelerator_equivalent_are_listed() -> None:
    result = convert(A, trainer('{"distributed_type": "DEEPSPEED", "deepspeed_config": {"zero_stage": 2}}'))
    assert messages(result) == ["accelerate_config also said distributed_type=\"DEEPSPEED\", deepspeed_config="
                                '{"zero_stage": 2}: TorchTrainer does not apply it; configure it on the Accelerator(...) '
                                "in train_loop (e.g. with a DeepSpeedPlugin or FullyShardedDataParallelPlugin) or drop it"]


def test_an_explicit_accelerator_argument_wins_and_a_difference_is_flagged() -> None:
    source = trainer('{"mixed_precision": "bf16"}').replace("Accelerator(cpu=False)", 'Accelerator(mixed_precision="fp16")')
    result = convert(A, source)
    assert 'Accelerator(mixed_precision="fp16")' in result.text("output")
    assert messages(result)[0].startswith('accelerate_config said mixed_precision="bf16" but this Accelerator(...)')


def test_no_single_accelerator_call_means_a_follow_up_with_the_values() -> None:
    source = trainer('{"mixed_precision": "bf16"}').replace("Accelerator(cpu=False)", "Accelerator(**kwargs)")
    result = convert(A, source)
    assert messages(result) == ['accelerate_config said mixed_precision="bf16": pass it to the Accelerator(...) in '
                                "train_loop (it could not be moved there automatically)"]


def test_aliased_accelerator_and_a_config_bound_to_a_name() -> None:
    before = '''\
from accelerate import Accelerator as Acc
from ray.train.huggingface.accelerate import AccelerateTrainer

ACCELERATE = {"mixed_precision": "fp16"}


def loop():
    acc = Acc()


AccelerateTrainer(train_loop_per_worker=loop, accelerate_config=ACCELERATE, scaling_config=s)
'''
    output = convert(A, before).text("output")
    assert 'acc = Acc(mixed_precision="fp16")' in output
    assert "TorchTrainer(train_loop_per_worker=loop, scaling_config=s)" in output


def test_without_accelerate_config_only_the_class_changes() -> None:
    before = "from ray.train.huggingface import AccelerateTrainer\n\nt = AccelerateTrainer(loop, datasets={'train': ds})\n"
    result = convert(A, before, num_workers=3, use_gpu=False)
    assert result.text("output").endswith(
        "t = TorchTrainer(\n    loop,\n    datasets={'train': ds},\n"
        "    scaling_config=ScalingConfig(num_workers=3, use_gpu=False),\n)\n")
    assert "default config file" in messages(result, "change")[-1]


def test_comments_about_the_removed_argument_go_with_it() -> None:
    source = trainer('{"mixed_precision": "fp16"}').replace(
        "    accelerate_config=", "    # Written by `accelerate config`\n    accelerate_config=")
    output = convert(A, source).text("output")
    assert "accelerate config`" not in output
    assert '    train_loop_config={"lr": 0.1},\n    scaling_config=' in output

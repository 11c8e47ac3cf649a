"""Every path a retired Ray trainer ever had (codemods/data/retired_ray_trainers.toml) is converted,
and a Ray 1.x scaling_config dict becomes a ScalingConfig."""

from __future__ import annotations

import pytest

from codemods._names import load_table
from tests.golden import convert_text

PATHS = sorted(load_table("retired_ray_trainers")["trainers"].items())
#: A minimal call of each codemod's trainer that it converts without a follow-up.
CALLS = {
    "transformers_trainer_legacy": "def init(train_dataset, eval_dataset, **config):\n"
                                   "    return Trainer(args=TrainingArguments('o', max_steps=2))\n\n\n"
                                   "t = {cls}(init, scaling_config={{'num_workers': 2, 'use_gpu': False}}, "
                                   "datasets={{'train': ds}})\nt.fit()\n",
    "accelerate_trainer_legacy": "def loop(config):\n    ...\n\n\n"
                                 "t = {cls}(loop, scaling_config={{'num_workers': 2, 'use_gpu': False}})\nt.fit()\n",
}


@pytest.mark.parametrize(("path", "entry"), [p for p in PATHS if p[1]["codemod"] in CALLS], ids=lambda v: v if isinstance(v, str) else "")
def test_every_path_of_a_retired_trainer_is_converted(path, entry):
    module, cls = path.rsplit(".", 1)
    header = "from transformers import Trainer, TrainingArguments\n" if "transformers" in entry["codemod"] else ""
    source = f"{header}from {module} import {cls}\n\n\n" + CALLS[entry["codemod"]].format(cls=cls)
    result = convert_text(source)
    output = result.text("output")
    assert result.status == "converted" and not result.follow_ups, [e.message for e in result.follow_ups]
    assert "TorchTrainer(" in output and f"from {module} import" not in output and cls not in output
    assert "scaling_config=ScalingConfig(num_workers=2, use_gpu=False)" in output


def test_the_lightning_paths_are_known_to_the_lightning_codemod():
    from codemods.lightning_trainer_legacy import LightningTrainerLegacy

    lightning = {tuple(p.rsplit(".", 1)) for p, e in PATHS if e["codemod"] == "lightning_trainer_legacy"}
    assert lightning == set(LightningTrainerLegacy.LEGACY) and ("ray.train.lightning", "LightningTrainer") in lightning


def test_a_scaling_config_dict_with_a_key_scaling_config_lacks_gets_a_follow_up():
    result = convert_text("from ray.train.hf_accelerate import AccelerateTrainer\n\n\n"
                          "AccelerateTrainer(loop, scaling_config={'num_workers': 2, 'trainer_resources': {}}).fit()\n")
    assert [e.line for e in result.follow_ups] == [4]
    assert "no 'trainer_resources'" in result.follow_ups[0].message


def test_preprocessor_is_fitted_and_applied_before_the_launch():
    """TorchTrainer has no preprocessor=: it is fitted on "train" and applied to each dataset before the
    trainer, as the retired trainer did, and the trainer's conversion still reads the datasets' keys."""
    result = convert_text("from ray.ml.train.integrations.huggingface import HuggingFaceTrainer\n\n\n"
                          "def init(train_dataset, eval_dataset, **config):\n    ...\n\n\n"
                          "HuggingFaceTrainer(\n    init,\n    datasets={'train': ds},\n"
                          "    preprocessor=Chain(tokenizer, scaler),\n).fit()\n")
    assert result.status == "converted"
    output = result.text("output")
    assert "preprocessor=Chain" not in output
    assert "preprocessor = Chain(tokenizer, scaler)\n" in output
    assert "    preprocessor.fit(ds)\n" in output
    assert "datasets={'train': preprocessor.transform(ds)}" in output
    assert 'ray.train.get_dataset_shard("train")' in output
    assert not [e for e in result.follow_ups if "preprocessor" in e.message]

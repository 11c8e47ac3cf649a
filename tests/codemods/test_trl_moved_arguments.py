"""trl_moved_arguments alone: trainer keywords trl moved into SFTConfig/DPOConfig."""

from __future__ import annotations

from codemods.trl_moved_arguments import TrlMovedArguments as C
from tests.codemods.helpers import check_noop, check_transformed, follow_ups


def test_keywords_move_into_the_training_arguments_passed_which_become_sft_config():
    check_transformed(
        C,
        """\
        from transformers import TrainingArguments
        from trl import SFTTrainer
        args = TrainingArguments(output_dir="o")
        trainer = SFTTrainer(model, args=args, max_seq_length=64, packing=True)
        """,
        """\
        from trl import SFTConfig, SFTTrainer
        args = SFTConfig(output_dir="o", max_length=64, packing=True)
        trainer = SFTTrainer(model, args=args)
        """,
    )


def test_inline_config_and_positional_args():
    check_transformed(
        C,
        "from trl import SFTTrainer, SFTConfig\nSFTTrainer(m, SFTConfig(output_dir='o'), dataset_text_field=field)\n",
        "from trl import SFTTrainer, SFTConfig\nSFTTrainer(m, SFTConfig(output_dir='o', dataset_text_field=field))\n",
    )


def test_no_args_gets_a_new_config():
    check_transformed(
        C,
        "from trl import SFTTrainer\nSFTTrainer('m', train_dataset=ds, max_seq_length=128)\n",
        "from trl import SFTConfig, SFTTrainer\nSFTTrainer('m', train_dataset=ds, args=SFTConfig(max_length=128))\n",
    )


def test_dpo_beta_moves_and_removed_keywords_are_follow_ups():
    result = check_transformed(
        C,
        "from trl import DPOTrainer, DPOConfig\nc = DPOConfig(output_dir='o')\nDPOTrainer(m, ref, c, beta=0.1, max_prompt_length=64)\n",
        "from trl import DPOTrainer, DPOConfig\nc = DPOConfig(output_dir='o', beta=0.1)\nDPOTrainer(m, ref, c, max_prompt_length=64)\n",
    )
    assert any("max_prompt_length" in f for f in follow_ups(result))


def test_a_computed_value_is_set_where_the_trainer_is_built():
    # `n` may not exist yet where the config is built: dataclasses.replace at the trainer.
    check_transformed(
        C,
        "from trl import SFTTrainer, SFTConfig\nc = SFTConfig(output_dir='o')\nSFTTrainer(m, args=c, max_seq_length=n)\n",
        "from trl import SFTTrainer, SFTConfig\nimport dataclasses\n\nc = SFTConfig(output_dir='o')\n"
        "SFTTrainer(m, args=dataclasses.replace(c, max_length=n))\n",
    )


def test_a_config_parsed_from_another_class_is_a_follow_up():
    source = (
        "from transformers import HfArgumentParser, TrainingArguments\nfrom trl import SFTTrainer\n"
        "args, = HfArgumentParser(TrainingArguments).parse_args_into_dataclasses()\n"
        "SFTTrainer(m, args=args, max_seq_length=128)\n"
    )
    result = check_noop(C, source)
    assert any("SFTConfig given as args=" in f for f in follow_ups(result))


def test_unknown_config_or_conflict_is_a_follow_up():
    for source in (
        "from trl import SFTTrainer\nSFTTrainer(m, args=parse(), max_seq_length=128)\n",
        "from trl import SFTTrainer, SFTConfig\nc = SFTConfig(max_length=64)\nSFTTrainer(m, args=c, max_seq_length=128)\n",
    ):
        result = check_noop(C, source)
        assert any("SFTConfig given as args=" in f for f in follow_ups(result)), source

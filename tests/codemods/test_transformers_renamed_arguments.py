import pytest

from codemods.transformers_renamed_arguments import TransformersRenamedArguments as CODEMOD
from tests.codemods.helpers import check_noop, check_transformed, follow_ups


@pytest.mark.parametrize(
    "source",
    [
        # Already on transformers 5.
        'from transformers import TrainingArguments\nTrainingArguments("o", eval_strategy="epoch", use_cpu=True)\n',
        # Not transformers' TrainingArguments.
        'from mylib import TrainingArguments\nTrainingArguments(evaluation_strategy="epoch")\n',
        'class TrainingArguments: ...\nTrainingArguments(evaluation_strategy="epoch")\n',
        # A receiver not known to be a Trainer.
        "from transformers import Trainer\ndef f(trainer):\n    return trainer.tokenizer\n",
        "from transformers import Trainer\npipe.tokenizer.decode(x)\n",
        # Shadowed: `trainer` is re-bound to something else too.
        "from transformers import Trainer\ntrainer = Trainer(m)\nif x:\n    trainer = other()\ntrainer.tokenizer\n",
        # **kwargs from a parameter: nothing to see.
        "from transformers import TrainingArguments\ndef f(**kw):\n    return TrainingArguments('o', **kw)\n",
    ],
)
def test_noop(source):
    check_noop(CODEMOD, source)


def test_alias_and_module_attribute():
    check_transformed(
        CODEMOD,
        """\
        import transformers as tf
        from transformers import TrainingArguments as TA
        a = TA("o", no_cuda=True)
        b = tf.Seq2SeqTrainingArguments("o", per_gpu_train_batch_size=4, per_gpu_eval_batch_size=8)
        """,
        """\
        import transformers as tf
        from transformers import TrainingArguments as TA
        a = TA("o", use_cpu=True)
        b = tf.Seq2SeqTrainingArguments("o", per_device_train_batch_size=4, per_device_eval_batch_size=8)
        """,
    )


def test_subclass_and_self_tokenizer():
    check_transformed(
        CODEMOD,
        """\
        from transformers import Seq2SeqTrainer

        class MyTrainer(Seq2SeqTrainer):
            def log_sample(self, ids):
                return self.tokenizer.decode(ids)

        trainer = MyTrainer(model, args, tokenizer=tok)
        """,
        """\
        from transformers import Seq2SeqTrainer

        class MyTrainer(Seq2SeqTrainer):
            def log_sample(self, ids):
                return self.processing_class.decode(ids)

        trainer = MyTrainer(model, args, processing_class=tok)
        """,
    )


def test_drop_keeps_own_line_comments_and_closing_paren():
    check_transformed(
        CODEMOD,
        """\
        from transformers import TrainingArguments
        args = TrainingArguments(
            "out",
            # why we overwrite
            overwrite_output_dir=True,
            # last one
            save_safetensors=True
        )
        """,
        """\
        from transformers import TrainingArguments
        args = TrainingArguments(
            "out"
            # why we overwrite
            # last one
        )
        """,
    )


def test_drop_only_argument():
    check_transformed(
        CODEMOD,
        "from transformers import TrainingArguments\nTrainingArguments(use_mps_device=True)\n",
        "from transformers import TrainingArguments\nTrainingArguments()\n",
    )


def test_value_decides_between_drop_replace_and_follow_up():
    result = check_transformed(
        CODEMOD,
        """\
        from transformers import TrainingArguments
        a = TrainingArguments("o", adafactor=False, group_by_length=True, fp16_backend="apex")
        b = TrainingArguments("o", warmup_ratio=ratio, save_safetensors=False)
        """,
        """\
        from transformers import TrainingArguments
        a = TrainingArguments("o", train_sampling_strategy="group_by_length", fp16_backend="apex")
        b = TrainingArguments("o", warmup_ratio=ratio, save_safetensors=False)
        """,
    )
    assert [f.split(":")[0] for f in follow_ups(result)] == ["2", "3", "3"]
    assert "apex is gone" in follow_ups(result)[0]


def test_conflicting_new_keyword_is_a_follow_up():
    result = check_noop(
        CODEMOD,
        "from transformers import TrainingArguments\nTrainingArguments(evaluation_strategy='no', eval_strategy='epoch')\n",
    )
    assert "both given" in follow_ups(result)[0]


def test_attribute_read_blocks_a_drop():
    result = check_noop(
        CODEMOD,
        """\
        from transformers import TrainingArguments
        args = TrainingArguments("o", overwrite_output_dir=True)
        if args.overwrite_output_dir:
            shutil.rmtree(args.output_dir)
        """,
    )
    assert "reads `.overwrite_output_dir`" in follow_ups(result)[0]


def test_kwargs_literal_and_name():
    result = check_transformed(
        CODEMOD,
        """\
        from transformers import TrainingArguments
        extra = {"logging_dir": "logs"}
        a = TrainingArguments("o", **{'evaluation_strategy': 'epoch', "no_cuda": True})
        b = TrainingArguments("o", **extra)
        """,
        """\
        from transformers import TrainingArguments
        extra = {"logging_dir": "logs"}
        a = TrainingArguments("o", **{'eval_strategy': 'epoch', "use_cpu": True})
        b = TrainingArguments("o", **extra)
        """,
    )
    assert follow_ups(result) == [
        "4: `**extra` passes 'logging_dir', retired in transformers 5.0; where the dict is built: "
        "drop it and set the TENSORBOARD_LOGGING_DIR environment variable to this directory instead"
    ]


def test_train_model_path_on_known_trainer_only():
    check_transformed(
        CODEMOD,
        """\
        from transformers import Trainer
        trainer = Trainer(model)
        trainer.train(model_path="ckpt")
        other.train(model_path="ckpt")
        """,
        """\
        from transformers import Trainer
        trainer = Trainer(model)
        trainer.train(resume_from_checkpoint="ckpt")
        other.train(model_path="ckpt")
        """,
    )


def test_reading_a_retired_field_is_a_follow_up():
    result = check_transformed(
        CODEMOD,
        """\
        from transformers import TrainingArguments
        args = TrainingArguments("o", evaluation_strategy="epoch")
        print(args.evaluation_strategy, other.evaluation_strategy)
        """,
        """\
        from transformers import TrainingArguments
        args = TrainingArguments("o", eval_strategy="epoch")
        print(args.evaluation_strategy, other.evaluation_strategy)
        """,
    )
    assert follow_ups(result) == [
        "3: `args.evaluation_strategy`: TrainingArguments has no `evaluation_strategy` since transformers 4.46: "
        "read `.eval_strategy` instead"
    ]


SIBLING_TRAINER = '''\
from transformers import Trainer


class QuestionAnsweringTrainer(Trainer):
    def __init__(self, *args, eval_examples=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.eval_examples = eval_examples
'''

SIBLING_SCRIPT = '''\
from transformers import BertConfig, BertForQuestionAnswering, PreTrainedTokenizerFast, TrainingArguments
from tokenizers import Tokenizer
from tokenizers.models import WordLevel

from trainer_qa import QuestionAnsweringTrainer

def build(output_dir):
    training_args = TrainingArguments(output_dir, use_cpu=True, report_to=[])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(WordLevel({"[UNK]": 0}, unk_token="[UNK]")))
    model = BertForQuestionAnswering(BertConfig(vocab_size=8, hidden_size=8, num_hidden_layers=1,
                                                num_attention_heads=1, intermediate_size=8))
    trainer = QuestionAnsweringTrainer(model=model, args=training_args, eval_examples=[], tokenizer=tokenizer)
    return trainer, trainer.tokenizer
'''


def test_a_sibling_trainer_built_like_a_trainer_takes_the_new_keywords(tmp_path, monkeypatch):
    """run_qa.py's QuestionAnsweringTrainer (a sibling file's Trainer subclass) hands `tokenizer=` to
    transformers 5's Trainer, which refuses it: the converted call builds, the original does not."""
    from migrator.engine import convert_source

    result = convert_source(SIBLING_SCRIPT.encode(), [CODEMOD])
    converted = result.output.decode()
    assert "tokenizer=tokenizer)" not in converted and "processing_class=tokenizer)" in converted
    assert "return trainer, trainer.processing_class" in converted
    (tmp_path / "trainer_qa.py").write_text(SIBLING_TRAINER)
    monkeypatch.syspath_prepend(str(tmp_path))
    for source, works in ((SIBLING_SCRIPT, False), (converted, True)):
        namespace: dict = {}
        exec(compile(source, "script.py", "exec"), namespace)
        if works:
            trainer, tokenizer = namespace["build"](str(tmp_path / "out"))
            assert tokenizer is trainer.processing_class and trainer.eval_examples == []
        else:
            with pytest.raises(TypeError, match="tokenizer"):
                namespace["build"](str(tmp_path / "out"))

"""hf_removed_apis alone: load_metric -> evaluate.load, use_auth_token= -> token=."""

from __future__ import annotations

import pytest

from codemods.hf_removed_apis import HfRemovedApis as C
from tests.codemods.helpers import check_noop, check_transformed, follow_ups, run


def test_load_metric_from_import_becomes_evaluate_load():
    check_transformed(
        C,
        'from datasets import load_dataset, load_metric\nmetric = load_metric("glue", "mrpc")\n',
        'from datasets import load_dataset\nimport evaluate\n\nmetric = evaluate.load("glue", "mrpc")\n',
    )


def test_load_metric_through_the_module_and_an_alias():
    check_transformed(
        C,
        'import datasets as ds\nm = ds.load_metric("accuracy", keep_in_memory=True)\nds.Dataset\n',
        'import datasets as ds\nimport evaluate\n\nm = evaluate.load("accuracy", keep_in_memory=True)\nds.Dataset\n',
    )


@pytest.mark.parametrize("call", ['load_metric("glue", "mrpc", 0)', 'load_metric("x", trust_remote_code=True)', "load_metric(*args)"])
def test_load_metric_with_arguments_evaluate_does_not_take_is_a_follow_up(call):
    result = check_noop(C, f"from datasets import load_metric\nm = {call}\n")
    assert any("evaluate.load" in f for f in follow_ups(result))


@pytest.mark.parametrize("call", [
    'AutoModel.from_pretrained("m", use_auth_token=True)',
    'load_dataset("glue", "mrpc", use_auth_token=tok)',
    'pipeline("fill-mask", model="m", use_auth_token=True)',
    'hf_hub_download("r", "f", use_auth_token=tok)',
])
def test_use_auth_token_becomes_token(call):
    before = "from transformers import AutoModel, pipeline\nfrom datasets import load_dataset\nfrom huggingface_hub import hf_hub_download\n"
    check_transformed(C, before + f"x = {call}\n", before + f"x = {call.replace('use_auth_token', 'token')}\n")


def test_use_auth_token_elsewhere_and_with_token_too():
    check_noop(C, "from mylib import Client\nClient.from_pretrained('m', use_auth_token=True)\n")
    result = check_noop(C, "from transformers import AutoModel\nAutoModel.from_pretrained('m', use_auth_token=True, token=t)\n")
    assert any("keep one" in f for f in follow_ups(result))


# -- tokenizers -------------------------------------------------------------------------------
TOKENIZING = '''\
def encode(tokenizer, sentences):
    rows = []
    for sent in sentences:
        encoded = tokenizer.encode_plus(sent, max_length=6, pad_to_max_length=True, return_tensors="pt")
        rows.append(encoded["input_ids"])
    return rows


def targets(tokenizer, sources, summaries):
    model_inputs = tokenizer(sources)
    # the labels
    with tokenizer.as_target_tokenizer():
        labels = tokenizer(summaries, max_length=3, truncation=True)
    model_inputs["labels"] = labels["input_ids"]
    return model_inputs
'''


def _tokenizer():
    tokenizers = pytest.importorskip("tokenizers")
    transformers = pytest.importorskip("transformers")
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace

    backend = tokenizers.Tokenizer(WordLevel({"[PAD]": 0, "[UNK]": 1, "a": 2, "b": 3}, unk_token="[UNK]"))
    backend.pre_tokenizer = Whitespace()
    return transformers.PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="[PAD]", unk_token="[UNK]")


def test_tokenizer_calls_do_on_transformers_5_what_they_did_on_4():
    """encode_plus(max_length=6, pad_to_max_length=True) gave rows of 6 ids (padded, truncated) that
    stack; as_target_tokenizer() tokenized labels. On transformers 5 the original stops at once; the
    converted calls give rows of 6 and labels of the targets."""
    import torch

    tokenizer = _tokenizer()
    result = run(C, TOKENIZING)
    converted = result.text("output")
    assert run(C, converted).status == "unchanged"
    assert "encode_plus" not in converted and "as_target_tokenizer" not in converted
    assert "    # the labels\n    labels = tokenizer(text_target=summaries, max_length=3, truncation=True)\n" in converted
    original, new = {}, {}
    exec(TOKENIZING, original)
    exec(converted, new)
    sentences = ["a b", "a b a b a b a b a"]  # shorter and longer than max_length
    with pytest.raises(AttributeError):
        original["encode"](tokenizer, sentences)
    rows = new["encode"](tokenizer, sentences)
    assert [r.shape[-1] for r in rows] == [6, 6]
    assert torch.cat(rows).tolist() == [[2, 3, 0, 0, 0, 0], [2, 3, 2, 3, 2, 3]]
    with pytest.raises(AttributeError):
        original["targets"](tokenizer, ["a"], ["b a b a"])
    assert new["targets"](tokenizer, ["a"], ["b a b a"])["labels"] == [[3, 2, 3]]


@pytest.mark.parametrize(("source", "expected"), [
    ("ids = tok.encode(t, max_length=8, pad_to_max_length=False)\n", "ids = tok.encode(t, max_length=8)\n"),
    ("ids = tokenizer(t, pad_to_max_length=flag)\n", "ids = tokenizer(t, padding=flag)\n"),
    ("b = self.tokenizer.batch_encode_plus(pairs, pad_to_max_length=True)\n", "b = self.tokenizer(pairs, padding=True)\n"),
    # The tokenizers library's own Tokenizer takes is_pretokenized=: left as it is.
    ("ids = tokenizer.encode(words, is_pretokenized=True)\n", None),
])
def test_tokenizer_keywords_as_4x_read_them(source, expected):
    if expected is None:
        check_noop(C, source)
    else:
        check_transformed(C, source, expected)


def test_a_tokenizer_method_of_the_files_own_and_unknown_callees_are_left():
    # build_inputs_with_special_tokens and the like are gone from transformers 5's fast tokenizers
    # only (its Python and sentencepiece ones keep them): nothing to say of them.
    check_noop(C, "ids = tokenizer.build_inputs_with_special_tokens(ids)\n")
    check_noop(C, "def encode_plus(x, **kw):\n    return x\n\nencode_plus(1)\nobj.encode_plus(2)\n")
    assert len(follow_ups(check_noop(C, "x = build(t, pad_to_max_length=True)\n"))) == 1
    # A with block that does more than tokenize targets is a follow-up, left as written.
    source = "with tok.as_target_tokenizer():\n    labels = tok(y)\n    print(labels)\n"
    assert len(follow_ups(check_noop(C, source))) == 1


def test_max_len_of_a_tokenizer_is_model_max_length():
    check_transformed(C, "n = self.tokenizer.max_len - 2\nm = args.max_len\n",
                      "n = self.tokenizer.model_max_length - 2\nm = args.max_len\n")


@pytest.mark.parametrize("method", ["prepare_seq2seq_batch"])
def test_a_removed_tokenizer_method_with_no_rewrite_is_a_follow_up(method):
    notes = follow_ups(check_noop(C, f"ids = tokenizer.{method}(ids)\n"))
    assert len(notes) == 1 and "no longer exists" in notes[0]


def test_imports_of_the_paths_transformers_4_moved_point_at_the_new_ones():
    check_transformed(
        C,
        "import transformers.modeling_bert as mb\n"
        "from transformers.modeling_bert import BertPreTrainedModel, BertModel  # the base\n"
        "from transformers.tokenization_roberta_fast import RobertaTokenizerFast\n"
        "from transformers.modeling_utils import PreTrainedModel\n"
        "from transformers.generation_utils import GenerationMixin\n",
        "import transformers.models.bert.modeling_bert as mb\n"
        "from transformers.models.bert.modeling_bert import BertPreTrainedModel, BertModel  # the base\n"
        "from transformers.models.roberta.tokenization_roberta import RobertaTokenizerFast\n"
        "from transformers.modeling_utils import PreTrainedModel\n"
        "from transformers.generation.utils import GenerationMixin\n",
    )
    # Without `as`, the code spells the old path itself: a follow-up.
    assert len(follow_ups(check_noop(C, "import transformers.modeling_gpt2\nm = transformers.modeling_gpt2.GPT2Model\n"))) == 1


def test_accelerator_keywords_accelerate_1_removed():
    check_transformed(
        C,
        "from accelerate import Accelerator\n"
        "a = Accelerator(fp16=args.fp16, cpu=args.cpu)\n"
        "b = Accelerator(fp16=True, logging_dir='logs')\n",
        "from accelerate import Accelerator\n"
        'a = Accelerator(mixed_precision="fp16" if args.fp16 else None, cpu=args.cpu)\n'
        "b = Accelerator(mixed_precision=\"fp16\", project_dir='logs')\n",
    )
    check_transformed(C, "from accelerate import Accelerator\nc = Accelerator(fp16=False)\n",
                      "from accelerate import Accelerator\nc = Accelerator()\n")
    notes = follow_ups(check_noop(C, "import accelerate\nacc = accelerate.Accelerator(dispatch_batches=True)\n"))
    assert len(notes) == 1 and "DataLoaderConfiguration" in notes[0]
    check_noop(C, "from mylib import Accelerator\nAccelerator(fp16=True)\n")  # not accelerate's

"""hf_removed_apis alone: load_metric -> evaluate.load, use_auth_token= -> token=."""

from __future__ import annotations

import pytest

from codemods.hf_removed_apis import HfRemovedApis as C
from tests.codemods.helpers import check_noop, check_transformed, follow_ups


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

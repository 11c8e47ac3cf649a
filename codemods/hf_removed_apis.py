"""Hugging Face APIs removed since older example scripts were written: ``datasets.load_metric`` and
``use_auth_token=``.

The decisions are data, each with the version it changed in: ``codemods/data/hf_removed_apis.toml``.

Before::

    from datasets import load_dataset, load_metric

    raw = load_dataset("glue", "mrpc", use_auth_token=True)
    metric = load_metric("glue", "mrpc")
    model = AutoModelForSequenceClassification.from_pretrained(name, use_auth_token=token)

After::

    from datasets import load_dataset
    import evaluate

    raw = load_dataset("glue", "mrpc", token=True)
    metric = evaluate.load("glue", "mrpc")
    model = AutoModelForSequenceClassification.from_pretrained(name, token=token)

``load_metric`` (removed in datasets 3.0) becomes ``evaluate.load``, which takes the same first two
arguments and the same keywords except ``trust_remote_code``/``token``/``script_version``: a call
with one of those, or more than two positional arguments (``evaluate.load``'s third is
``module_type``), keeps its name and gets a follow-up. The import goes through the import visitors.
``use_auth_token=`` becomes ``token=`` on ``from_pretrained`` of transformers/peft/trl classes,
``pipeline``, ``load_dataset`` and the huggingface_hub functions in the table.
"""

from __future__ import annotations

import libcst as cst

from codemods._keywords import KeywordCodemod
from codemods._names import load_table

TABLE = load_table("hf_removed_apis")
FUNCTIONS: dict[str, dict] = TABLE["functions"]
HUB_FUNCTIONS = frozenset(TABLE["groups"]["functions"])
PACKAGES = tuple(f"{p}." for p in TABLE["groups"]["from_pretrained_packages"])


class HfRemovedApis(KeywordCodemod):
    DESCRIPTION = "datasets.load_metric -> evaluate.load, use_auth_token= -> token= (removed Hugging Face APIs)."
    TRIGGERS = (b"load_metric", b"use_auth_token")
    ORDER = 12
    LIBRARY = "Hugging Face"

    def _takes_token(self, func: cst.BaseExpression) -> bool:
        if self.qnames(func) & HUB_FUNCTIONS:
            return True
        return (isinstance(func, cst.Attribute) and func.attr.value == "from_pretrained"
                and any(q.startswith(PACKAGES) for q in self.qnames(func.value)))

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        for name in self.qnames(original_node.func):
            if name in FUNCTIONS:
                return self._replace_function(original_node, updated_node, name, FUNCTIONS[name])
        if self._takes_token(original_node.func):
            return self.fix_keywords(original_node, updated_node, TABLE["keywords"]["hub"])
        return updated_node

    def _replace_function(self, original: cst.Call, updated: cst.Call, old: str, entry: dict) -> cst.Call:
        positional = [a for a in original.args if a.keyword is None and not a.star]
        unknown = [a.keyword.value for a in original.args if a.keyword and a.keyword.value not in entry["keywords"]]
        if len(positional) > entry["positional"] or unknown or any(a.star for a in original.args):
            why = f"`{', '.join(unknown)}=` has no equivalent there" if unknown else "its arguments do not line up"
            self.follow_up(original, f"`{old}` was removed in datasets {entry['version']}, and {why}: {entry['follow_up']}")
            return updated
        module, _, attr = entry["new"].rpartition(".")
        self.add_needed_import(module)
        self.remove_unused_import_by_node(original.func)
        self.change(original, f"`{self.source(original.func)}(...)` -> `{entry['new']}(...)` (removed in datasets {entry['version']}; same arguments)")
        return updated.with_changes(func=cst.parse_expression(entry["new"]))

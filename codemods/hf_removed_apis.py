"""Hugging Face APIs removed since older example scripts were written: ``datasets.load_metric``,
``transformers.AdamW`` and ``use_auth_token=``.

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
``transformers.AdamW`` (removed in transformers 5.0) becomes ``torch.optim.AdamW`` with the two
defaults that differ written out (``eps=1e-6, weight_decay=0.0``); ``correct_bias=True`` goes, and
``correct_bias=False`` goes with a follow-up (torch's AdamW always corrects the bias).
Names transformers removed with no one-to-one replacement (the legacy ``GlueDataset``/``TextDataset``
utilities, ``TFTrainer``, pytorch-transformers' ``WarmupLinearSchedule``...) get one follow-up per
kind, at the first use: the import alone would stop the converted script.
``use_auth_token=`` becomes ``token=`` on ``from_pretrained`` of transformers/peft/trl classes,
``pipeline``, ``load_dataset`` and the huggingface_hub functions in the table.
"""

from __future__ import annotations

import libcst as cst
import libcst.helpers
from libcst.metadata import ParentNodeProvider

from codemods._keywords import KeywordCodemod, drop_items
from codemods._lightning import append_items
from codemods._names import load_table
from migrator.walks import nodes

TABLE = load_table("hf_removed_apis")
FUNCTIONS: dict[str, dict] = TABLE["functions"]
HUB_FUNCTIONS = frozenset(TABLE["groups"]["functions"])
REMOVED: dict[str, dict] = {name: {**entry, "group": group} for group, entry in TABLE["removed"].items() for name in entry["names"]}
PACKAGES = tuple(f"{p}." for p in TABLE["groups"]["from_pretrained_packages"])
_EQUAL = cst.AssignEqual(whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace(""))


class HfRemovedApis(KeywordCodemod):
    DESCRIPTION = "datasets.load_metric -> evaluate.load, transformers.AdamW -> torch.optim.AdamW, use_auth_token= -> token=."
    # Literal (the registry reads it with ast); tests/test_rename_tables.py checks it covers the table.
    TRIGGERS = (
        b"load_metric", b"use_auth_token", b"AdamW", b"GlueDataset", b"GlueDataTrainingArguments",
        b"glue_compute_metrics", b"glue_convert_examples_to_features", b"glue_output_modes", b"glue_processors",
        b"glue_tasks_num_labels", b"xnli_compute_metrics", b"xnli_processors", b"SquadDataset",
        b"SquadDataTrainingArguments", b"squad_convert_examples_to_features", b"SquadExample", b"SquadFeatures",
        b"SquadV1Processor", b"SquadV2Processor", b"TextDataset", b"LineByLineTextDataset",
        b"LineByLineWithRefDataset", b"LineByLineWithSOPTextDataset", b"TextDatasetForNextSentencePrediction",
        b"DataCollatorForSOP", b"DataProcessor", b"InputExample", b"InputFeatures",
        b"SingleSentenceClassificationProcessor", b"is_torch_tpu_available", b"TFTrainer", b"WarmupLinearSchedule",
        b"WarmupCosineSchedule", b"WarmupConstantSchedule",
    )
    ORDER = 12
    METADATA_DEPENDENCIES = (*KeywordCodemod.METADATA_DEPENDENCIES, ParentNodeProvider)
    LIBRARY = "Hugging Face"

    def visit_Module(self, node: cst.Module) -> None:
        """A follow-up at the first use (its import, if that is all) of each name transformers removed."""
        found: dict[str, tuple[cst.CSTNode, list[str]]] = {}  # group -> (first use, names in order)
        for ref in nodes(node, (cst.ImportAlias, cst.Name, cst.Attribute)):
            names = self._imported(ref) if isinstance(ref, cst.ImportAlias) else self.qnames(ref)
            for name in sorted(names & REMOVED.keys()):
                where, listed = found.setdefault(REMOVED[name]["group"], (ref, []))
                if name not in listed:
                    listed.append(name)
        for group, (where, listed) in found.items():
            entry = TABLE["removed"][group]
            what = ", ".join(f"`{n}`" for n in listed)
            self.follow_up(where, f"{what} no longer {'exists' if len(listed) == 1 else 'exist'} (removed in "
                           f"transformers {entry['version']}: ImportError): {entry['follow_up']}")

    def _imported(self, alias: cst.ImportAlias) -> set[str]:
        parent = self.get_metadata(ParentNodeProvider, alias, None)
        if not isinstance(parent, cst.ImportFrom) or parent.module is None or parent.relative:
            return set()
        return {f"{cst.helpers.get_full_name_for_node(parent.module)}.{alias.evaluated_name}"}

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
        library = entry.get("library", "datasets")
        positional = [a for a in original.args if a.keyword is None and not a.star]
        drop, inexact = entry.get("drop", {}), entry.get("inexact", {})
        # Decided on the original arguments (they have positions), applied to the updated ones (same order).
        exact = [i for i, a in enumerate(original.args) if a.keyword and a.keyword.value in drop
                 and ("*" in drop[a.keyword.value] or self.source(a.value) in drop[a.keyword.value])]
        guessed = [i for i, a in enumerate(original.args) if a.keyword and a.keyword.value in inexact and i not in exact]
        dropped = [original.args[i] for i in exact + guessed]
        unknown = [a.keyword.value for a in original.args if a.keyword and a.keyword.value not in entry["keywords"]
                   and a.keyword.value not in {d.keyword.value for d in dropped}]
        if len(positional) > entry["positional"] or unknown or any(a.star for a in original.args):
            why = f"`{', '.join(unknown)}=` has no equivalent there" if unknown else "its arguments do not line up"
            self.follow_up(original, f"`{old}` was removed in {library} {entry['version']}, and {why}: {entry['follow_up']}")
            return updated
        module, _, attr = entry["new"].rpartition(".")
        self.add_needed_import(module)
        self.remove_unused_import_by_node(original.func)
        given = set(entry.get("parameters", ())[:len(positional)]) | {a.keyword.value for a in original.args if a.keyword}
        added = [f"{k}={v}" for k, v in entry.get("defaults", {}).items() if k not in given]
        args, opening = list(updated.args), updated.whitespace_before_args
        if dropped:
            args, opening = drop_items(args, set(exact + guessed), opening)
        if added:
            args = append_items(args, [cst.Arg(keyword=cst.Name(k), value=cst.parse_expression(v), equal=_EQUAL)
                                       for k, v in (text.split("=", 1) for text in added)], opening)
        how = "; ".join(filter(None, [
            "same arguments" if not (dropped or added) else "",
            f"{', '.join(added)} as {old.rsplit('.', 1)[1]} had them" if added else "",
            "dropped " + ", ".join(self.source(original.args[i]).rstrip(", ") for i in exact) + ", which changed nothing" if exact else "",
        ]))
        self.change(original, f"`{self.source(original.func)}(...)` -> `{entry['new']}(...)` (removed in {library} {entry['version']}; {how})")
        for arg in (original.args[i] for i in guessed):
            self.follow_up(arg, f"`{self.source(arg.keyword)}={self.source(arg.value)}` is dropped: {inexact[arg.keyword.value]}")
        return updated.with_changes(func=cst.parse_expression(entry["new"]), args=args, whitespace_before_args=opening)

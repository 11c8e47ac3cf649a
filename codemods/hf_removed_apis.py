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
``pipeline``, ``load_dataset`` and the huggingface_hub functions in the table. ``Accelerator(fp16=...)``
and ``logging_dir=``, which accelerate 1.0 refuses, become ``mixed_precision=`` and ``project_dir=``
(the data loader keywords it moved into ``DataLoaderConfiguration`` get a follow-up).

Imports of the module paths transformers 4.0 moved (``transformers.modeling_bert`` ->
``transformers.models.bert.modeling_bert``, which 5.0 no longer aliases) point at the new place.

The tokenizer methods transformers 5 removed, which every BERT fine-tuning tutorial of its day
used, and the keywords its tokenizers now ignore without a word::

    encoded = tokenizer.encode_plus(text, max_length=64, pad_to_max_length=True, return_tensors="pt")
    with tokenizer.as_target_tokenizer():
        labels = tokenizer(targets, max_length=32, truncation=True)

become::

    encoded = tokenizer(text, max_length=64, padding="max_length", truncation=True, return_tensors="pt")
    labels = tokenizer(text_target=targets, max_length=32, truncation=True)

(``pad_to_max_length=True`` padded to ``max_length`` and, with no ``truncation=``, truncated to it;
transformers 5 would pad nothing, and batches of unequal rows fail to stack.) A ``with`` block that
does more than tokenize the targets, and ``prepare_seq2seq_batch``, get a follow-up.
"""

from __future__ import annotations

import re

import libcst as cst
import libcst.helpers
from libcst.metadata import ParentNodeProvider

from codemods._keywords import KeywordCodemod, drop_items
from codemods._lightning import append_items
from codemods._names import defines_any, load_table, spelled_names, string_is_one_of
from migrator.walks import nodes

TABLE = load_table("hf_removed_apis")
FUNCTIONS: dict[str, dict] = TABLE["functions"]
HUB_FUNCTIONS = frozenset(TABLE["groups"]["functions"])
REMOVED: dict[str, dict] = {name: {**entry, "group": group} for group, entry in TABLE["removed"].items() for name in entry["names"]}
PACKAGES = tuple(f"{p}." for p in TABLE["groups"]["from_pretrained_packages"])
TOKENIZER_METHODS: dict[str, dict] = TABLE["tokenizer_methods"]
TOKENIZER_KEYWORDS: dict[str, dict] = TABLE["tokenizer_keywords"]
#: Calls whose keywords are a tokenizer's: these methods, whatever the receiver...
TOKENIZER_CALLS = frozenset({*(m for m, e in TOKENIZER_METHODS.items() if e.get("call")), "encode"})
#: ...or a callee whose own name says tokenizer (`tokenizer(...)`, `self.tok(...)`).
TOKENIZER_NAME = re.compile(r"tok", re.IGNORECASE)
TOKENIZER_ATTRIBUTES: dict[str, dict] = TABLE["tokenizer_attributes"]
ACCELERATOR = frozenset({"accelerate.Accelerator", "accelerate.accelerator.Accelerator"})
MOVED = TABLE["moved_modules"]
_FLAT = re.compile(rf"transformers\.({'|'.join(MOVED['kinds'])})_(\w+)\Z")
#: What nothing_to_do looks for: the qualified names the codemod acts on, the keywords of its tables.
_NAMES = frozenset(REMOVED) | frozenset(FUNCTIONS) | ACCELERATOR
_KEYWORDS = frozenset(k for group in TABLE["keywords"].values() for k in group) | frozenset(TOKENIZER_KEYWORDS)
_TOPS = frozenset(n.split(".", 1)[0] for n in _NAMES | HUB_FUNCTIONS) | {p.rstrip(".") for p in PACKAGES}


def moved_module(name: str) -> str | None:
    """Where transformers 5 has the module an older script imports as ``name`` (2.x-3.x's
    ``transformers.modeling_bert``), or None if it did not move (or went: TensorFlow, Flax)."""
    if name in MOVED["renamed"]:
        return MOVED["renamed"][name]
    match = _FLAT.match(name)
    if match is None or name.split(".", 1)[1] in MOVED["still_flat"]:
        return None
    kind, model = match.groups()
    if model.startswith(("tf_", "flax_")):
        return None
    if kind == "tokenization" and model.endswith("_fast"):
        model = model[: -len("_fast")]
    return f"transformers.models.{model}.{kind}_{model}"


_EQUAL = cst.AssignEqual(whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace(""))


class HfRemovedApis(KeywordCodemod):
    DESCRIPTION = ("datasets.load_metric -> evaluate.load, transformers.AdamW -> torch.optim.AdamW, use_auth_token= -> token=, "
                   "tokenizer.encode_plus(...) -> tokenizer(...), pad_to_max_length= -> padding=.")
    # Literal (the registry reads it with ast); tests/test_rename_tables.py checks it covers the table.
    TRIGGERS = (
        b"load_metric", b"use_auth_token", b"AdamW", b"pad_to_max_length", b"AutoModelWithLMHead",
        # Tokenizer methods and attributes: only ever rewritten after a dot (``tokenizer.max_len``).
        b".encode_plus", b".batch_encode_plus", b".as_target_tokenizer", b".prepare_seq2seq_batch", b".max_len",
        b"transformers.modeling_*", b"transformers.configuration_*", b"transformers.tokenization_*",
        b"transformers.generation_*", b"Accelerator",
        b"EvaluationStrategy", b"GlueDataset", b"GlueDataTrainingArguments",
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

    def nothing_to_do(self, tree: cst.Module) -> bool:
        """No removed name the file spells, no import of a moved module, no keyword of the tables
        (written as one or as a dict key), no removed tokenizer method or attribute: the scopes are
        not resolved. Most files that reach it name `max_len` or `encode_plus` in another sense."""
        if defines_any(tree, _TOPS):
            return False
        names = spelled_names(tree)
        if names & _NAMES or any(moved_module(n) or moved_module(n.rpartition(".")[0]) for n in names):
            return False
        for node in nodes(tree, (cst.Arg, cst.Attribute, cst.SimpleString)):
            if isinstance(node, cst.Arg):
                if node.keyword is not None and node.keyword.value in _KEYWORDS:
                    return False
            elif isinstance(node, cst.Attribute):
                if node.attr.value in TOKENIZER_METHODS or node.attr.value in TOKENIZER_ATTRIBUTES:
                    return False
            elif string_is_one_of(node, _KEYWORDS):
                return False
        return True

    def visit_Module(self, node: cst.Module) -> None:
        """A follow-up at the first use (its import, if that is all) of each name transformers removed."""
        # A file's own `def encode_plus` is not the tokenizer's.
        self._defined = {d.name.value for d in nodes(node, (cst.FunctionDef,))}
        self._target_blocks: set[int] = set()  # `with tokenizer.as_target_tokenizer():` rewritten
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

    # -- modules -----------------------------------------------------------------------------
    def leave_ImportFrom(self, original_node: cst.ImportFrom, updated_node: cst.ImportFrom) -> cst.ImportFrom:
        if original_node.module is None or original_node.relative:
            return updated_node
        return self._moved(original_node, updated_node, "module")

    def leave_ImportAlias(self, original_node: cst.ImportAlias, updated_node: cst.ImportAlias) -> cst.ImportAlias:
        # `import transformers.modeling_bert as mb`; without `as`, the code spells the old path itself.
        if original_node.asname is None:
            name = cst.helpers.get_full_name_for_node(original_node.name) or ""
            new = moved_module(name)
            if new:
                self.follow_up(original_node, f"`{name}` moved to `{new}` in transformers 4.0, and "
                               f"transformers {MOVED['version']} has no alias: import that module instead")
            return updated_node
        return self._moved(original_node, updated_node, "name")

    def _moved(self, original, updated, field: str):
        name = cst.helpers.get_full_name_for_node(getattr(original, field)) or ""
        new = moved_module(name)
        if new is None:
            return updated
        self.change(original, f"`{name}` -> `{new}` (moved in transformers 4.0; {MOVED['version']} keeps no alias)")
        return updated.with_changes(**{field: cst.parse_expression(new)})

    # -- tokenizers ---------------------------------------------------------------------------
    def visit_With(self, node: cst.With) -> None:
        """Remember a ``with T.as_target_tokenizer():`` whose body only assigns ``T(targets, ...)``."""
        if len(node.items) != 1 or node.items[0].asname is not None or not isinstance(node.body, cst.IndentedBlock):
            return
        call = node.items[0].item
        if not (isinstance(call, cst.Call) and not call.args and isinstance(call.func, cst.Attribute)
                and call.func.attr.value == "as_target_tokenizer"):
            return
        receiver = self.source(call.func.value)
        for stmt in node.body.body:
            small = stmt.body[0] if isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1 else None
            value = small.value if isinstance(small, (cst.Assign, cst.AnnAssign)) else None
            if not (isinstance(value, cst.Call) and self.source(value.func) == receiver and _target_argument(value) is not None):
                return
        self._target_blocks.add(id(call))
        self._target_blocks.add(id(node))

    def leave_With(self, original_node: cst.With, updated_node: cst.With):
        if id(original_node) not in self._target_blocks:
            return updated_node
        statements = []
        for stmt in updated_node.body.body:
            small = stmt.body[0]
            call = small.value
            i = _target_argument(call)
            args = list(call.args)
            args[i] = args[i].with_changes(keyword=cst.Name("text_target"), equal=_EQUAL)
            statements.append(stmt.with_changes(body=[small.with_changes(value=call.with_changes(args=args))]))
        statements[0] = statements[0].with_changes(leading_lines=[*updated_node.leading_lines, *statements[0].leading_lines])
        self.change(original_node, f"`with {self.source(original_node.items[0].item)}:` (removed in transformers "
                    f"{TOKENIZER_METHODS['as_target_tokenizer']['version']}) -> the targets tokenized with `text_target=`")
        return cst.FlattenSentinel(statements)

    def _tokenizer_method(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        """``T.encode_plus(...)`` -> ``T(...)``; a follow-up for a method with no one-to-one rewrite."""
        name = original.func.attr.value
        entry = TOKENIZER_METHODS[name]
        if not entry.get("call"):
            if id(original) not in self._target_blocks:
                self.follow_up(original, f"`{self.source(original.func)}()` no longer exists (removed in transformers "
                               f"{entry['version']}: AttributeError): {entry['follow_up']}")
            return updated
        renames = entry.get("keywords", {})
        args = [a.with_changes(keyword=cst.Name(renames[a.keyword.value])) if a.keyword and a.keyword.value in renames else a
                for a in updated.args]
        receiver = self.source(original.func.value)
        self.change(original, f"`{receiver}.{name}(...)` -> `{receiver}(...)` (removed in transformers "
                    f"{entry['version']}; the tokenizer's call takes the same arguments)")
        return self._tokenizer_keywords(original, updated.with_changes(func=updated.func.value, args=args))

    def _is_tokenizer_call(self, func: cst.BaseExpression) -> bool:
        if isinstance(func, cst.Attribute) and func.attr.value in TOKENIZER_CALLS:
            return True
        return self._named_tokenizer(func)

    def _named_tokenizer(self, node: cst.BaseExpression) -> bool:
        """``tokenizer``, ``self.tok``: an expression whose own name says it holds a tokenizer."""
        last = node.attr if isinstance(node, cst.Attribute) else node
        return isinstance(last, cst.Name) and bool(TOKENIZER_NAME.search(last.value)) and last.value not in self._defined

    def leave_Attribute(self, original_node: cst.Attribute, updated_node: cst.Attribute) -> cst.Attribute:
        entry = TOKENIZER_ATTRIBUTES.get(original_node.attr.value)
        if entry is None or not self._named_tokenizer(original_node.value):
            return updated_node
        old, new = original_node.attr.value, entry["rename"]
        self.change(original_node, f"`.{old}` -> `.{new}` (the same value; tokenizers have no `.{old}` since transformers {entry['version']})")
        return updated_node.with_changes(attr=cst.Name(new))

    def _tokenizer_keywords(self, original: cst.Call, updated: cst.Call) -> cst.Call:
        """``pad_to_max_length=``, which transformers 5 ignores, as 4.x read it."""
        given = {a.keyword.value: i for i, a in enumerate(original.args) if a.keyword}
        if given.keys().isdisjoint(TOKENIZER_KEYWORDS):
            return updated
        version = f"transformers {TOKENIZER_KEYWORDS['pad_to_max_length']['version']}"
        if not self._is_tokenizer_call(original.func):
            for name in sorted(given.keys() & TOKENIZER_KEYWORDS):
                self.follow_up(original.args[given[name]], f"`{name}=` is ignored by {version}'s tokenizers without a "
                               "word: if this calls one, pass padding=\"max_length\" (with truncation=True) instead")
            return updated
        args, drop = list(updated.args), set()
        if "pad_to_max_length" in given:
            i = given["pad_to_max_length"]
            written = self.source(original.args[i].value)
            if "padding" in given or written == "False":
                drop.add(i)
                self.change(original.args[i], f"dropped `pad_to_max_length={written}`: it changed nothing here, and {version} ignores it")
            else:
                bounded = "max_length" in given
                padding = ('"max_length"' if bounded else "True") if written == "True" else (
                    f'"max_length" if {written} else False' if bounded else written)
                args[i] = args[i].with_changes(keyword=cst.Name("padding"), value=cst.parse_expression(padding))
                added = ""
                if bounded and "truncation" not in given:
                    # 4.x truncated to max_length when truncation= was not given; padding= alone no longer does.
                    comma = args[i].comma
                    args[i] = args[i].with_changes(comma=comma if isinstance(comma, cst.Comma) else cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
                    args.insert(i + 1, cst.Arg(keyword=cst.Name("truncation"), value=cst.Name("True"), equal=args[i].equal, comma=comma))
                    added = ", truncation=True"
                self.change(original.args[i], f"`pad_to_max_length={written}` -> `padding={padding}{added}` (what it meant in "
                            f"transformers 4; {version} ignores it and would pad nothing)")
        if drop:
            args, opening = drop_items(args, drop, updated.whitespace_before_args)
            return updated.with_changes(args=args, whitespace_before_args=opening)
        return updated.with_changes(args=args)

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        func = original_node.func
        if isinstance(func, cst.Attribute) and func.attr.value in TOKENIZER_METHODS and func.attr.value not in self._defined:
            return self._tokenizer_method(original_node, updated_node)
        updated_node = self._tokenizer_keywords(original_node, updated_node)
        names = self.qnames(original_node.func)
        for name in names:
            if name in FUNCTIONS:
                return self._replace_function(original_node, updated_node, name, FUNCTIONS[name])
        if self._takes_token(original_node.func):
            return self.fix_keywords(original_node, updated_node, TABLE["keywords"]["hub"])
        if names & ACCELERATOR:
            return self.fix_keywords(original_node, updated_node, TABLE["keywords"]["accelerator"])
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


def _target_argument(call: cst.Call) -> int | None:
    """The index of the text a tokenizer call inside ``as_target_tokenizer()`` tokenizes: its one
    positional argument, or ``text=``; None when the call is not that simple."""
    positional = [i for i, a in enumerate(call.args) if a.keyword is None]
    if any(a.star for a in call.args):
        return None
    if len(positional) == 1 and positional[0] == 0:
        return 0
    named = [i for i, a in enumerate(call.args) if a.keyword is not None and a.keyword.value == "text"]
    return named[0] if not positional and named else None

"""Rename or drop the ``TrainingArguments`` / ``Trainer`` keywords that transformers 5 rejects.

Implements item 4 of the issue "Retired Ray trainers and the ray.air API", following the "Trainer"
section of transformers' ``MIGRATION_GUIDE_V5.md``. The decisions are data, one entry per keyword
with the version it changed in: ``codemods/data/transformers_renamed_arguments.toml``.

Before::

    args = TrainingArguments("out", evaluation_strategy="epoch", no_cuda=True, overwrite_output_dir=True)
    trainer = Trainer(model, args, tokenizer=tokenizer)
    trainer.tokenizer.save_pretrained("out")

After::

    args = TrainingArguments("out", eval_strategy="epoch", use_cpu=True)
    trainer = Trainer(model, args, processing_class=tokenizer)
    trainer.processing_class.save_pretrained("out")

Calls are matched through imports (aliases, ``transformers.TrainingArguments``, subclasses defined in
the file). A keyword with no exact replacement for the value it has (``logging_dir=``,
``fp16_backend="apex"``...) stays where it is, with a follow-up saying what to do. Keys of a dict
literal passed as ``**{...}`` are treated like keywords; a ``**name`` whose dict holds such a key
gets a follow-up.
"""

from __future__ import annotations

import libcst as cst

from codemods._names import TableCodemod, drop_items, load_table, trailing_comment, triggers

TABLE = load_table("transformers_renamed_arguments")
CLASSES = {group: frozenset(names) for group, names in TABLE["classes"].items()}

Outcome = tuple[str, str | None]  # ("rename" | "replace" | "drop" | "keep", payload)


class TransformersRenamedArguments(TableCodemod):
    DESCRIPTION = "Rename or drop TrainingArguments/Trainer keywords removed in transformers 5."
    TRIGGERS = triggers(*TABLE["classes"].values())
    ORDER = 10

    # -- matching ---------------------------------------------------------------------------
    def _group(self, func: cst.BaseExpression) -> str | None:
        """Which keyword table applies to a call of ``func``."""
        names = self.qnames(func)
        for group, classes in CLASSES.items():
            if group in TABLE["keywords"] and names & self.local_subclasses(classes):
                return group
        if isinstance(func, cst.Attribute):
            for key in TABLE["keywords"]:
                owner, _, method = key.partition(".")
                if method == func.attr.value and self.instance_of(func.value, CLASSES[owner]):
                    return key
        return None

    def leave_Attribute(self, original_node: cst.Attribute, updated_node: cst.Attribute) -> cst.Attribute:
        for group, entries in TABLE["attributes"].items():
            entry = entries.get(original_node.attr.value)
            if entry and self.instance_of(original_node.value, CLASSES[group]):
                old, new = original_node.attr.value, entry["rename"]
                self.change(original_node, f"`.{old}` -> `.{new}` (transformers {entry['version']} removed `.{old}`)")
                return updated_node.with_changes(attr=cst.Name(new))
        return updated_node

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.Call:
        group = self._group(original_node.func)
        if group is None:
            return updated_node
        entries = TABLE["keywords"][group]
        present = {a.keyword.value for a in original_node.args if a.keyword} | {
            key for arg in original_node.args if arg.star == "**" for key, _ in _literal_keys(arg.value)
        }
        args, drop = list(updated_node.args), set()
        for i, (orig, arg) in enumerate(zip(original_node.args, updated_node.args)):
            if arg.keyword is not None and arg.keyword.value in entries:
                kind, payload = self._decide(arg.keyword.value, entries, orig.value, present, orig)
                if kind == "rename":
                    args[i] = arg.with_changes(keyword=cst.Name(payload))
                elif kind == "replace":
                    keyword, _, value = payload.partition("=")
                    args[i] = arg.with_changes(keyword=cst.Name(keyword), value=cst.parse_expression(value))
                elif kind == "drop":
                    drop.add(i)
            elif arg.star == "**":
                args[i] = arg.with_changes(value=self._fix_kwargs(orig.value, arg.value, entries, present))
        if not drop:
            return updated_node.with_changes(args=args)
        args, opening = drop_items(args, drop, updated_node.whitespace_before_args)
        return updated_node.with_changes(args=args, whitespace_before_args=opening)

    # -- one keyword ------------------------------------------------------------------------
    def _decide(self, name: str, entries: dict, value: cst.BaseExpression, present: set[str], node: cst.CSTNode) -> Outcome:
        """What to do with ``name=value``; records the change or the follow-up."""
        entry = entries[name]
        written, version = self.source(value), f"transformers {entry['version']}"
        new = entry.get("rename")
        if new and ("rename_below" not in entry or _number_below(value, entry["rename_below"])):
            if new in present:
                return self._keep(node, f"`{name}=` and `{new}=` are both given; {version} only accepts `{new}=`: keep one")
            self.change(node, f"`{name}=` -> `{new}=` ({version} removed `{name}`)")
            return "rename", new
        replacement = entry.get("replace_if", {}).get(written)
        if replacement:
            keyword = replacement.partition("=")[0]
            if keyword in present:
                return self._keep(node, f"`{name}=` was removed in {version} and `{keyword}=` is given too: {entry['follow_up']}")
            self.change(node, f"`{name}={written}` -> `{replacement}` ({version} removed `{name}`)")
            return "replace", replacement
        removable = entry.get("remove_if", [])
        if ("*" in removable or written in removable) and name not in self.attributes_read():
            comment = trailing_comment(node) if isinstance(node, (cst.Arg, cst.DictElement)) else None
            went = f"; its comment `{comment}` went with it" if comment else ""
            self.change(node, f"dropped `{name}={written}`: {version} removed it and here it changed nothing{went}")
            return "drop", None
        reads = f", and this script reads `.{name}`" if name in self.attributes_read() else ""
        return self._keep(node, f"`{name}=` was removed in {version}{reads}: {entry['follow_up']}")

    def _keep(self, node: cst.CSTNode, message: str) -> Outcome:
        self.follow_up(node, message)
        return "keep", None

    def _fix_kwargs(self, original: cst.BaseExpression, updated: cst.BaseExpression, entries: dict, present: set[str]):
        """``**{"evaluation_strategy": ...}`` gets the keyword treatment; ``**name`` a follow-up."""
        if isinstance(original, cst.Name):
            for value in self.values_of(original) or ():
                for key, element in _literal_keys(value):
                    if key in entries:
                        entry = entries[key]
                        hint = f"use '{entry['rename']}'" if "rename" in entry else entry.get("follow_up", "")
                        self.follow_up(original, f"`**{original.value}` passes '{key}', which transformers {entry['version']} removed; where the dict is built: {hint}")
            return updated
        if not isinstance(updated, cst.Dict):
            return updated
        elements, drop = list(updated.elements), set()
        for i, (key, element) in enumerate(_literal_keys(original)):
            if key not in entries:
                continue
            kind, payload = self._decide(key, entries, element.value, present, element)
            if kind == "rename":
                elements[i] = elements[i].with_changes(key=_requote(element.key, payload))
            elif kind == "replace":
                keyword, _, value = payload.partition("=")
                elements[i] = elements[i].with_changes(key=_requote(element.key, keyword), value=cst.parse_expression(value))
            elif kind == "drop":
                drop.add(i)
        if not drop:
            return updated.with_changes(elements=elements)
        elements, opening = drop_items(elements, drop, updated.lbrace.whitespace_after)
        return updated.with_changes(elements=elements, lbrace=updated.lbrace.with_changes(whitespace_after=opening))


def _literal_keys(value: cst.BaseExpression) -> list[tuple[str | None, cst.BaseDictElement]]:
    """(key, element) for each element of a dict literal; the key is None unless a plain string."""
    if not isinstance(value, cst.Dict):
        return []
    return [
        (e.key.evaluated_value if isinstance(e, cst.DictElement) and isinstance(e.key, cst.SimpleString) else None, e)
        for e in value.elements
    ]


def _requote(key: cst.SimpleString, text: str) -> cst.SimpleString:
    quote = key.quote
    return key.with_changes(value=f"{key.prefix}{quote}{text}{quote}")


def _number_below(value: cst.BaseExpression, bound: float) -> bool:
    return isinstance(value, (cst.Integer, cst.Float)) and float(value.evaluated_value) < bound

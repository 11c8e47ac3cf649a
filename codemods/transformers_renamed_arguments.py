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
the file), and so is a ``...Trainer`` subclass imported from a sibling file when it is built like a
Trainer (run_qa.py's ``QuestionAnsweringTrainer(..., args=training_args, tokenizer=tokenizer)``: it
hands its keywords to ``Trainer.__init__``, which has no ``tokenizer`` in transformers 5). A keyword with no exact replacement for the value it has (``logging_dir=``,
``fp16_backend="apex"``...) stays where it is, with a follow-up saying what to do. Keys of a dict
literal passed as ``**{...}`` are treated like keywords; a ``**name`` whose dict holds such a key
gets a follow-up.
"""

from __future__ import annotations

import libcst as cst

from codemods import _hf_signature as hf_signature
from codemods._keywords import KeywordCodemod
from codemods._names import load_table, string_is_one_of
from codemods._save_strategy import is_training_arguments
from migrator.walks import nodes

TABLE = load_table("transformers_renamed_arguments")
CLASSES = {group: frozenset(names) for group, names in TABLE["classes"].items()}
#: Every name the codemod acts on: keywords (also read as attributes, or as keys of a ``**`` dict).
NAMES = frozenset(
    {k for entries in TABLE["keywords"].values() for k in entries} | {k for entries in TABLE["attributes"].values() for k in entries}
)



class TransformersRenamedArguments(KeywordCodemod):
    DESCRIPTION = "Rename or drop TrainingArguments/Trainer keywords removed in transformers 5."
    # It acts only on a call, attribute or subclass of a class in the table, which the file must
    # spell: the last part of each (every trainer's ends in ``Trainer``). A module that only passes
    # ``tokenizer=`` around is not parsed for it. Literal, so the registry reads it without
    # importing this module; a test derives it from the table.
    TRIGGERS = (
        b"*Trainer", b"CPOConfig", b"DPOConfig", b"GRPOConfig", b"KTOConfig", b"ORPOConfig", b"RewardConfig",
        b"SFTConfig", b"Seq2SeqTrainingArguments", b"TrainingArguments",
    )
    # The classes are resolved through the script's transformers / trl imports.
    MODULES = (b"transformers", b"trl")
    ORDER = 10
    LIBRARY = "transformers"

    def nothing_to_do(self, tree: cst.Module) -> bool:
        for node in nodes(tree, (cst.Arg, cst.Attribute, cst.SimpleString)):
            if isinstance(node, cst.Arg):
                if node.keyword is not None and node.keyword.value in NAMES:
                    return False
            elif isinstance(node, cst.Attribute):
                if node.attr.value in NAMES:
                    return False
            elif string_is_one_of(node, NAMES):
                return False
        return True

    # -- matching ---------------------------------------------------------------------------
    def local_subclasses(self, classes: frozenset[str]) -> frozenset[str]:
        """For the Trainer's table, also the sibling files' ``...Trainer`` classes this file builds
        like a Trainer (``migrator``'s Transformers codemod launches those too)."""
        known = super().local_subclasses(classes)
        if classes != CLASSES["trainer"]:
            return known
        if "_siblings" not in self.__dict__:
            calls = hf_signature.sibling_trainer_calls(self, self.module, is_training_arguments)
            self.__dict__["_siblings"] = frozenset(q for call in calls for q in self.qnames(call.func))
        return known | self.__dict__["_siblings"]

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
                self.change(original_node, f"`.{old}` -> `.{new}` (Trainer has no `.{old}` since transformers {entry['version']})")
                return updated_node.with_changes(attr=cst.Name(new))
        # Reading a retired field of a TrainingArguments built here: no exact rewrite (4.x kept the
        # raw value there, the new field holds the resolved one), so a follow-up.
        field = TABLE["keywords"]["training_arguments"].get(original_node.attr.value)
        if field and self.instance_of(original_node.value, CLASSES["training_arguments"]):
            hint = f"read `.{field['rename']}` instead" if "rename" in field else field["follow_up"]
            self.follow_up(
                original_node,
                f"`{self.source(original_node)}`: TrainingArguments has no `{original_node.attr.value}` "
                f"since transformers {field['version']}: {hint}",
            )
        return updated_node

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.Call:
        group = self._group(original_node.func)
        if group is None:
            return updated_node
        return self.fix_keywords(original_node, updated_node, TABLE["keywords"][group])

"""Move the ``SFTTrainer`` / ``DPOTrainer`` keywords that trl moved into ``SFTConfig`` / ``DPOConfig``.

The decisions are data, one entry per keyword: ``codemods/data/trl_moved_arguments.toml``.
(``tokenizer=`` -> ``processing_class=`` on these trainers is ``transformers_renamed_arguments``' job.)

Before::

    args = TrainingArguments(output_dir="out", max_steps=100)
    trainer = SFTTrainer(model, args=args, train_dataset=ds, max_seq_length=512,
                         dataset_text_field="text", packing=True)

After::

    args = SFTConfig(output_dir="out", max_steps=100, max_length=512, dataset_text_field="text", packing=True)
    trainer = SFTTrainer(model, args=args, train_dataset=ds)

Where the keywords go:

* ``args=`` is a ``SFTConfig(...)`` / ``TrainingArguments(...)`` call, written inline or assigned once
  to the name passed: the keywords are added to that call, and ``TrainingArguments`` becomes the
  trainer's config class (a subclass of it: every argument it had still means the same).
* no ``args=``: ``args=SFTConfig(<the keywords>)`` is added (the trainer built a default config then too).
* the config is built here but a value is computed (it may not exist yet where the config is
  built), or ``args=`` is a config parsed by ``HfArgumentParser``/``TrlParser`` from that class:
  ``args=dataclasses.replace(args, max_length=..., ...)`` at the trainer, where every value exists.
* anything else (built by a function, parsed from another class...) or a keyword the config
  already sets: a follow-up naming where the keyword has to go. Keywords with no field any more
  get their follow-up.
"""

from __future__ import annotations

import libcst as cst

from codemods import _lightning as lt
from codemods._keywords import drop_items, kwarg
from codemods._names import TableCodemod, load_table
from codemods._trainers import training_arguments_names

TABLE = load_table("trl_moved_arguments")
TRAINERS: dict[str, dict] = TABLE["trainers"]
TRAINING_ARGUMENTS = frozenset({"transformers.TrainingArguments", "transformers.training_args.TrainingArguments"})
_LITERALS = (cst.Integer, cst.Float, cst.SimpleString, cst.ConcatenatedString)


def _literal(expr: cst.BaseExpression) -> bool:
    if isinstance(expr, cst.Name):
        return expr.value in ("True", "False", "None")
    if isinstance(expr, (cst.Dict, cst.List, cst.Tuple)):
        return all(_literal(getattr(e, "value", e)) and (not isinstance(e, cst.DictElement) or _literal(e.key)) for e in expr.elements)
    return isinstance(expr, _LITERALS)


class TrlMovedArguments(TableCodemod):
    DESCRIPTION = "Move SFTTrainer/DPOTrainer keywords (max_seq_length=, packing=, beta=...) into SFTConfig/DPOConfig."
    TRIGGERS = (b"SFTTrainer", b"DPOTrainer")
    ORDER = 14

    def visit_Module(self, node: cst.Module) -> None:
        self._moves: dict[cst.Call, list[tuple[str, cst.BaseExpression]]] = {}  # config call -> keywords to add
        self._retype: dict[cst.Call, str] = {}  # TrainingArguments call -> config class
        self._drop: dict[cst.Call, set[str]] = {}  # trainer call -> keywords that leave it
        self._new_config: dict[cst.Call, tuple[str, list]] = {}  # trainer call without args= -> (class, keywords)
        self._replace: dict[cst.Call, tuple[cst.Arg, list]] = {}  # trainer call -> (its args= argument, keywords)
        outer, calls = self, []

        class Collect(cst.CSTVisitor):
            def visit_Call(self, call: cst.Call) -> None:
                calls.append(call)

        node.visit(Collect())
        for call in calls:
            trainer = next((q for q in self.qnames(call.func) if q in TRAINERS), None)
            if trainer:
                outer._plan(call, TRAINERS[trainer])

    def _plan(self, call: cst.Call, trainer: dict) -> None:
        moves = TABLE["moves"][trainer["short"]]
        config_class = trainer["config"]
        given = [a for a in call.args if a.keyword and a.keyword.value in moves]
        if not given:
            return
        short_class = config_class.rsplit(".", 1)[1]
        movable = []
        for arg in given:
            entry = moves[arg.keyword.value]
            if "new" not in entry:
                self.follow_up(arg, f"`{arg.keyword.value}=` was removed from {self.source(call.func)} in trl {entry['version']}: {entry['follow_up']}")
            else:
                movable.append(arg)
        if not movable:
            return
        args_arg = next((a for a in call.args if a.keyword and a.keyword.value == "args"), None)
        positional = [a for a in call.args if a.keyword is None and not a.star]
        if args_arg is None and len(positional) > trainer["args_position"]:
            args_arg = positional[trainer["args_position"]]  # SFTTrainer(model, args, ...)
        target, inline = self._config_call(args_arg.value, config_class) if args_arg is not None else (None, False)
        if args_arg is None:
            if any(a.star for a in call.args):
                return self._cannot(call, movable, short_class, "the trainer also takes unpacked arguments")
            self._new_config[call] = (short_class, [(moves[a.keyword.value]["new"], a.value) for a in movable])
            self._drop[call] = {a.keyword.value for a in movable}
            self.add_needed_import("trl", short_class)
            return
        if target is None:
            if self._parsed_as(args_arg.value, config_class):
                return self._replace_at(call, args_arg, movable, moves)
            return self._cannot(call, movable, short_class, f"`{self.source(args_arg.value)}` is not built by a {short_class}(...) or TrainingArguments(...) call here")
        already = {a.keyword.value for a in target.args if a.keyword}
        for arg in movable:
            new = moves[arg.keyword.value]["new"]
            if new in already:
                return self._cannot(call, movable, short_class, f"the config already sets `{new}=`")
        computed = not inline and not all(_literal(a.value) for a in movable)
        if computed:
            # The values may not exist yet where the config is built: set them where the trainer is.
            self._replace_at(call, args_arg, movable, moves)
        else:
            self._moves.setdefault(target, []).extend((moves[a.keyword.value]["new"], a.value) for a in movable)
            self._drop[call] = {a.keyword.value for a in movable}
        if self.qnames(target.func) & TRAINING_ARGUMENTS:
            self._retype[target] = short_class
            self.add_needed_import("trl", short_class)
            self.remove_unused_import_by_node(target.func)

    def _replace_at(self, call: cst.Call, args_arg: cst.Arg, movable: list[cst.Arg], moves: dict) -> None:
        self._replace[call] = (args_arg, [(moves[a.keyword.value]["new"], a.value) for a in movable])
        self._drop[call] = {a.keyword.value for a in movable}
        self.add_needed_import("dataclasses")

    def _parsed_as(self, value: cst.BaseExpression, config_class: str) -> bool:
        """Whether ``value`` names what ``HfArgumentParser``/``TrlParser`` parsed from ``config_class``.

        ``args = HfArgumentParser(SFTConfig).parse_args_into_dataclasses()[0]``, or
        ``script_args, training_args, model_args = parser.parse_args_and_config()`` with
        ``parser = TrlParser((ScriptArguments, SFTConfig, ModelConfig))``.
        """
        return isinstance(value, cst.Name) and value.value in training_arguments_names(
            self, self.module, lambda name: name == config_class)

    def _cannot(self, call: cst.Call, movable: list[cst.Arg], config: str, why: str) -> None:
        names = ", ".join(f"`{a.keyword.value}=`" for a in movable)
        self.follow_up(call, f"{names}: trl moved these keywords into {config}, and {why}: pass them to the {config} given as args= "
                             f"(max_seq_length= is max_length= there)")

    def _config_call(self, value: cst.BaseExpression, config_class: str) -> tuple[cst.Call | None, bool]:
        """The ``SFTConfig(...)``/``TrainingArguments(...)`` call that builds ``value``, and whether it is inline."""
        classes = TRAINING_ARGUMENTS | {config_class}
        if isinstance(value, cst.Call):
            return (value, True) if self.qnames(value.func) & classes else (None, False)
        values = self.values_of(value) if isinstance(value, cst.Name) else None
        if values and len(values) == 1 and isinstance(values[0], cst.Call) and self.qnames(values[0].func) & classes:
            return values[0], False
        return None, False

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        if original_node in self._moves:
            extra = [kwarg(name, value) for name, value in self._moves[original_node]]
            args = lt.append_items(updated_node.args, extra, updated_node.whitespace_before_args)
            moved = ", ".join(f"{name}=" for name, _ in self._moves[original_node])
            if original_node in self._retype:
                updated_node = updated_node.with_changes(func=cst.Name(self._retype[original_node]))
                self.change(original_node, f"TrainingArguments -> {self._retype[original_node]} (a subclass), to hold {moved} that trl moved out of the trainer")
            else:
                self.change(original_node, f"{moved} moved here from the trainer (trl moved them into the config)")
            updated_node = updated_node.with_changes(args=args)
        if original_node in self._drop:
            if original_node in self._replace:
                updated_node = self._replaced(original_node, updated_node)
            drop = {i for i, a in enumerate(updated_node.args) if a.keyword and a.keyword.value in self._drop[original_node]}
            args, opening = drop_items(list(updated_node.args), drop, updated_node.whitespace_before_args)
            updated_node = updated_node.with_changes(args=args, whitespace_before_args=opening)
            if original_node in self._new_config:
                config, keywords = self._new_config[original_node]
                new = cst.Call(func=cst.Name(config), args=[
                    kwarg(n, v).with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")) if i < len(keywords) - 1 else cst.MaybeSentinel.DEFAULT)
                    for i, (n, v) in enumerate(keywords)])
                updated_node = updated_node.with_changes(args=lt.append_items(updated_node.args, [kwarg("args", new)], updated_node.whitespace_before_args))
                self.change(original_node, f"{', '.join(n + '=' for n, _ in keywords)} moved into a new args={config}(...) (trl moved them into the config)")
        return updated_node

    def _replaced(self, original: cst.Call, updated: cst.Call) -> cst.Call:
        """``args=X`` -> ``args=dataclasses.replace(X, <the moved keywords>)``."""
        args_arg, keywords = self._replace[original]
        index = list(original.args).index(args_arg)
        old = updated.args[index]
        new_value = cst.Call(
            func=cst.parse_expression("dataclasses.replace"),
            args=[cst.Arg(old.value, comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))), *[
                kwarg(n, v).with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")) if i < len(keywords) - 1 else cst.MaybeSentinel.DEFAULT)
                for i, (n, v) in enumerate(keywords)]],
        )
        moved = ", ".join(f"{n}=" for n, _ in keywords)
        self.change(original, f"{moved} set on `{self.source(args_arg.value)}` with dataclasses.replace where the trainer is built (trl moved them into the config)")
        return updated.with_changes(args=[*updated.args[:index], old.with_changes(value=new_value), *updated.args[index + 1:]])


"""Make the Trainer save when it evaluates, so metrics and checkpoints reach Ray.

``RayTrainReportCallback`` reports in ``on_save`` only (RAY-FACTS.md): with ``save_strategy="no"``
Ray gets nothing, and when evaluation and saving run on different schedules the last
evaluation's metrics never reach ``result.metrics``. Ray's guide adds ``save_strategy="epoch"``
beside ``eval_strategy="epoch"``; this does the same for every ``TrainingArguments`` call whose
values are literals, so the code says what runs. Where they are not, the report callback every
converted script carries (``_hf_reporting``) aligns the schedule at run time, and the report says so.
"""

from __future__ import annotations

import libcst as cst
from libcst.metadata import QualifiedNameProvider

from codemods._trainers import qualified_names

NO_REPORT = "RayTrainReportCallback reports metrics and checkpoints only when the Trainer saves"
#: Where the schedule cannot be fixed in the code, the report callback fixes it when it runs (_hf_reporting).
AT_RUN_TIME = f"{NO_REPORT}, so the converted script's report callback makes it save after every evaluation (and at each epoch's end when it neither saves nor evaluates)"


def is_training_arguments(name: str) -> bool:
    last = name.rsplit(".", 1)[-1]
    return (name.startswith("transformers.") and last.endswith("TrainingArguments")) or (
        name.startswith("trl.") and last.endswith("Config")
    )


def _literal(arg: cst.Arg | None) -> str | None:
    """``"epoch"`` for ``"epoch"``, ``IntervalStrategy.EPOCH`` and ``SaveStrategy.EPOCH``."""
    if arg is None:
        return None
    value = arg.value
    if isinstance(value, cst.SimpleString):
        return str(value.evaluated_value).lower()
    if isinstance(value, cst.Attribute) and isinstance(value.value, cst.Name) and value.value.value.endswith("Strategy"):
        return value.attr.value.lower()
    return "?"


def _kwarg(call: cst.Call, *names: str) -> cst.Arg | None:
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value in names:
            return arg
    return None


def _with_kwarg_after(call: cst.Call, anchor: cst.Arg, keyword: str, value: str) -> cst.Call:
    args = list(call.args)
    i = next(k for k, a in enumerate(args) if a is anchor)
    comma = anchor.comma if isinstance(anchor.comma, cst.Comma) else cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
    new = cst.Arg(
        keyword=cst.Name(keyword),
        value=cst.SimpleString(f'"{value}"') if not value.isdigit() else cst.Integer(value),
        equal=anchor.equal,
        comma=anchor.comma,
    )
    args[i] = anchor.with_changes(comma=comma)
    args.insert(i + 1, new)
    return call.with_changes(args=args)


class SaveStrategyFixer(cst.CSTTransformer):
    """Runs over the codemod's own (metadata-resolved) tree; records changes on the codemod."""

    METADATA_DEPENDENCIES = (QualifiedNameProvider,)

    def __init__(self, codemod) -> None:
        super().__init__()
        self.codemod = codemod
        self.seen = 0

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        if not any(is_training_arguments(q) for q in qualified_names(self.codemod, original_node.func)):
            return updated_node
        self.seen += 1
        if any(a.star == "**" for a in original_node.args):
            self.codemod.change(original_node, f"save_strategy may be in the unpacked arguments: {AT_RUN_TIME}")
            return updated_node
        save_arg = _kwarg(updated_node, "save_strategy")
        eval_arg = _kwarg(updated_node, "eval_strategy", "evaluation_strategy")
        save, evaluate = _literal(save_arg), _literal(eval_arg)
        scheduled = evaluate if evaluate in ("epoch", "steps") else None
        if save == "?" or evaluate == "?":
            self.codemod.change(original_node, f"save_strategy and eval_strategy are computed: {AT_RUN_TIME}")
            return updated_node
        if save == "no":
            target = scheduled or "epoch"
            self.codemod.change(original_node, f'save_strategy="no" became "{target}": {NO_REPORT}')
            updated_node = updated_node.with_changes(
                args=[a.with_changes(value=cst.SimpleString(f'"{target}"')) if a is save_arg else a for a in updated_node.args]
            )
            return self._align_steps(original_node, updated_node, target)
        if save is None and scheduled is not None:
            self.codemod.change(original_node, f'save_strategy="{scheduled}" added to match eval_strategy, as Ray\'s guide does: {NO_REPORT}')
            updated_node = _with_kwarg_after(updated_node, _kwarg(updated_node, "eval_strategy", "evaluation_strategy"), "save_strategy", scheduled)
            return self._align_steps(original_node, updated_node, scheduled)
        if save is not None and scheduled is not None and save != scheduled:
            self.codemod.change(original_node, f'the Trainer evaluates per "{scheduled}" but saves per "{save}": {AT_RUN_TIME}')
        return updated_node

    def _align_steps(self, original: cst.Call, call: cst.Call, strategy: str) -> cst.Call:
        if strategy != "steps" or _kwarg(call, "save_steps") is not None:
            return call
        eval_steps = _kwarg(call, "eval_steps")
        if eval_steps is None:
            return call
        if isinstance(eval_steps.value, cst.Integer):
            return _with_kwarg_after(call, eval_steps, "save_steps", eval_steps.value.value)
        self.codemod.change(original, f"save_steps is not set beside a computed eval_steps: {AT_RUN_TIME}")
        return call

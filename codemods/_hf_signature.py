"""Telling a Transformers/trl Trainer by the arguments it is built with, where its class is out of sight.

Two shapes build a Trainer whose class this file cannot resolve: ``hydra.utils.instantiate(cfg.trainer,
...)`` (the class is in the config) and a subclass imported from a sibling file (``from trainer_qa import
QuestionAnsweringTrainer``, as in transformers' run_qa.py). Such a call is a Transformers/trl Trainer
when it passes ``args=`` a ``TrainingArguments`` (built here, filled by ``HfArgumentParser``, or
instantiated from a config section named like ``training_args``) or a keyword of ``KEYWORDS``, which
only such a Trainer takes (a script's own trainer class takes its own).
"""

from __future__ import annotations

from typing import Callable, Iterable

import libcst as cst

from codemods._trainers import qualified_names, training_arguments_names

KEYWORDS = frozenset({
    "processing_class", "data_collator", "compute_metrics", "peft_config", "model_init",
    "preprocess_logits_for_metrics", "optimizers", "eval_dataset",
})
INSTANTIATE = ("hydra.utils.instantiate", "hydra.utils.call")
LIBRARIES = ("transformers", "trl")


def transformers_calls(codemod, module: cst.Module, calls: Iterable[cst.Call], is_training_arguments: Callable[[str], bool]) -> set[cst.Call]:
    """The ``calls`` whose arguments identify a Transformers/trl Trainer."""
    calls = list(calls)
    if not calls:
        return set()
    arguments = set(training_arguments_names(codemod, module, is_training_arguments))

    def builds_arguments(value: cst.BaseExpression) -> bool:
        if not isinstance(value, cst.Call):
            return False
        names = qualified_names(codemod, value.func)
        if any(is_training_arguments(q) for q in names):
            return True
        return bool(names & set(INSTANTIATE)) and bool(value.args) and "args" in cst.Module([]).code_for_node(value.args[0].value).lower()

    class Visit(cst.CSTVisitor):
        def visit_Assign(self, node: cst.Assign) -> None:
            if len(node.targets) == 1 and isinstance(node.targets[0].target, cst.Name) and builds_arguments(node.value):
                arguments.add(node.targets[0].target.value)

    module.visit(Visit())

    def is_transformers(call: cst.Call) -> bool:
        for arg in call.args:
            name = arg.keyword.value if arg.keyword is not None else None
            if name in KEYWORDS:
                return True
            if name == "args" and ((isinstance(arg.value, cst.Name) and arg.value.value in arguments) or builds_arguments(arg.value)):
                return True
        return False

    return {c for c in calls if is_transformers(c)}


def sibling_trainer_calls(codemod, module: cst.Module, is_training_arguments: Callable[[str], bool]) -> set[cst.Call]:
    """Calls of a ``...Trainer`` class imported from another module of the project, built like a Transformers Trainer."""
    imported: set[str] = set()
    for stmt in module.body:
        for small in stmt.body if isinstance(stmt, cst.SimpleStatementLine) else ():
            if not isinstance(small, cst.ImportFrom) or isinstance(small.names, cst.ImportStar):
                continue
            top = cst.Module([]).code_for_node(small.module).split(".")[0] if small.module is not None else ""
            if not small.relative and top in LIBRARIES:
                continue  # the library's own classes resolve by name already
            for alias in small.names:
                bound = alias.asname.name.value if alias.asname else cst.Module([]).code_for_node(alias.name).rsplit(".", 1)[-1]
                if bound.endswith("Trainer"):
                    imported.add(bound)
    if not imported:
        return set()
    found: list[cst.Call] = []

    class Visit(cst.CSTVisitor):
        def visit_Call(self, node: cst.Call) -> None:
            if isinstance(node.func, cst.Name) and node.func.value in imported:
                found.append(node)

    module.visit(Visit())
    return transformers_calls(codemod, module, found, is_training_arguments)

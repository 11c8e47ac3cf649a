"""Finding trainer objects in a script: what builds one, what trains it, and where.

By default a Trainer class is a ``transformers`` or ``trl`` class whose name ends in ``Trainer``
(``Trainer``, ``Seq2SeqTrainer``, ``SFTTrainer``...), resolved through the script's imports, or a
class the script derives from one. A builder is a top-level function that returns a new
Trainer. A construction is a call of either, assigned to a name; its training is
``name.train(...)`` in the same function. In the methods of a top-level class, ``self.trainer``
counts as such a name for the whole class (built in ``__init__``, trained in ``run()``). Other frameworks pass their own ``is_library``
predicate on qualified names and their own training method (Lightning: ``fit``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import libcst as cst
from libcst.metadata import ParentNodeProvider, QualifiedNameProvider

from codemods._statements import Metadata
from migrator.walks import nodes

TRAINER_PACKAGES = ("transformers.", "trl.")


def qualified_names(codemod, node: cst.CSTNode) -> set[str]:
    return {q.name for q in codemod.get_metadata(QualifiedNameProvider, node, ())}


def _is_self(node: cst.BaseExpression) -> bool:
    return isinstance(node, cst.Name) and node.value == "self"


def is_library_trainer(name: str) -> bool:
    return name.startswith(TRAINER_PACKAGES) and name.rsplit(".", 1)[-1].endswith("Trainer")


@dataclass
class Site:
    """One trainer variable: where it is built and where it is trained."""

    var: str
    function: cst.CSTNode  # the enclosing top-level FunctionDef, or the Module
    constructions: list[tuple[cst.Call, cst.BaseStatement]] = field(default_factory=list)
    train_calls: list[cst.Call] = field(default_factory=list)

    @property
    def call(self) -> cst.Call:
        return self.constructions[0][0]

    @property
    def statement(self) -> cst.BaseStatement:
        return self.constructions[0][1]

    @property
    def train_call(self) -> cst.Call | None:
        return self.train_calls[0] if self.train_calls else None


class TrainerFinder:
    def __init__(
        self,
        codemod,
        module: cst.Module,
        is_library: Callable[[str], bool] = is_library_trainer,
        train_method: str = "train",
        built_elsewhere: frozenset[cst.Call] = frozenset(),
    ) -> None:
        self.codemod = codemod
        #: Calls that build a trainer though they name no trainer class (``hydra.utils.instantiate(cfg.trainer)``).
        self.built_elsewhere = built_elsewhere
        self.module = module
        self.is_library = is_library
        self.train_method = train_method
        self.parents = Metadata(codemod, ParentNodeProvider)
        self.local_classes = self._local_trainer_classes()
        self.builders = self._builders()
        self.sites: dict[tuple[str, int], Site] = {}
        self.problems: list[tuple[cst.CSTNode, str]] = []
        self.already_on_ray = False
        self._collect()

    # -- what counts as a Trainer ----------------------------------------------------------
    def is_trainer_call(self, call: cst.Call, builders: set[str] | None = None) -> bool:
        builders = self.builders if builders is None else builders
        if call in self.built_elsewhere:
            return True
        if isinstance(call.func, cst.Name) and (call.func.value in self.local_classes or call.func.value in builders):
            return True
        return any(self.is_library(q) for q in qualified_names(self.codemod, call.func))

    def _local_trainer_classes(self) -> set[str]:
        classes = [s for s in self.module.body if isinstance(s, cst.ClassDef)]
        found: set[str] = set()
        while True:
            more = {
                c.name.value
                for c in classes
                if c.name.value not in found
                and any(
                    (isinstance(b.value, cst.Name) and b.value.value in found)
                    or any(self.is_library(q) for q in qualified_names(self.codemod, b.value))
                    for b in c.bases
                )
            }
            if not more:
                return found
            found |= more

    def _builders(self) -> set[str]:
        functions = [s for s in self.module.body if isinstance(s, cst.FunctionDef)]
        found: set[str] = set()
        while True:
            more = {f.name.value for f in functions if f.name.value not in found and self._returns_trainer(f, found)}
            if not more:
                return found
            found |= more

    def _returns_trainer(self, fn: cst.FunctionDef, builders: set[str]) -> bool:
        built: set[str] = set()
        returned: list[cst.BaseExpression] = []
        finder = self

        class Visit(cst.CSTVisitor):
            def visit_Assign(self, node: cst.Assign) -> None:
                if isinstance(node.value, cst.Call) and finder.is_trainer_call(node.value, builders):
                    built.update(t.target.value for t in node.targets if isinstance(t.target, cst.Name))

            def visit_Return(self, node: cst.Return) -> None:
                if node.value is not None:
                    returned.append(node.value)

            def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
                return node is fn

        fn.visit(Visit())
        return any(
            (isinstance(v, cst.Call) and self.is_trainer_call(v, builders)) or (isinstance(v, cst.Name) and v.value in built)
            for v in returned
        )

    # -- constructions and trainings -------------------------------------------------------
    def enclosing_function(self, node: cst.CSTNode) -> cst.CSTNode:
        current = node
        while current is not self.module:
            current = self.parents[current]
            if isinstance(current, cst.FunctionDef):
                outer = self.parents[current]
                if outer is self.module:
                    return current
        return self.module

    def _statement_of(self, node: cst.CSTNode) -> cst.BaseStatement:
        current = node
        while not isinstance(current, (cst.SimpleStatementLine, cst.BaseCompoundStatement)):
            current = self.parents[current]
        return current

    def _collect(self) -> None:
        calls = list(nodes(self.module, (cst.Call,)))
        launched = self._functions_launched_by_ray(calls)
        for call in calls:
            if not self.is_trainer_call(call):
                continue
            function = self.enclosing_function(call)
            if isinstance(function, cst.FunctionDef) and function.name.value in self.builders:
                continue
            if isinstance(function, cst.FunctionDef) and function.name.value in launched:
                self.already_on_ray = True
                continue
            parent = self.parents[call]
            if isinstance(parent, (cst.Assign, cst.AnnAssign)) and parent.value is call:
                targets = [t.target for t in parent.targets] if isinstance(parent, cst.Assign) else [parent.target]
                key = self._key(targets[0], call) if len(targets) == 1 else None
                if key is not None:
                    site = self.sites.setdefault(key, Site(key[0], function))
                    site.constructions.append((call, self._statement_of(call)))
                    continue
            self.problems.append((call, "a Trainer built here is not assigned to a name, so it cannot be traced to its training: convert it by hand"))
        for call in calls:
            func = call.func
            if isinstance(func, cst.Attribute) and func.attr.value == self.train_method:
                key = self._key(func.value, call)
                site = self.sites.get(key) if key is not None else None
                if site is not None:
                    site.train_calls.append(call)

    def _key(self, target: cst.BaseExpression, node: cst.CSTNode) -> tuple[str, int] | None:
        """What a trainer variable is known by: ``(name, its function)`` for a name, ``("self.attr",
        its class)`` for an attribute of ``self`` set or read in a method (built in ``__init__``,
        trained in ``run()``)."""
        if isinstance(target, cst.Name):
            return target.value, id(self.enclosing_function(node))
        if isinstance(target, cst.Attribute) and _is_self(target.value):
            method = node
            while method is not self.module and not isinstance(method, cst.FunctionDef):
                method = self.parents[method]
            klass = self.parents.get(self.parents.get(method)) if isinstance(method, cst.FunctionDef) else None
            if isinstance(klass, cst.ClassDef) and self.parents.get(klass) is self.module:
                return f"self.{target.attr.value}", id(klass)
        return None

    def _functions_launched_by_ray(self, calls: list[cst.Call]) -> set[str]:
        names: set[str] = set()
        for call in calls:
            if not any(q.startswith("ray.train.") and q.endswith("Trainer") for q in qualified_names(self.codemod, call.func)):
                continue
            for i, arg in enumerate(call.args):
                positional = arg.keyword is None and arg.star == "" and i == 0
                if (positional or (arg.keyword is not None and arg.keyword.value == "train_loop_per_worker")) and isinstance(arg.value, cst.Name):
                    names.add(arg.value.value)
        return names

    @property
    def constructions(self) -> list[Site]:
        return list(self.sites.values())

    def trained(self) -> list[Site]:
        return [s for s in self.sites.values() if s.train_calls]


PARSE_INTO_DATACLASSES = frozenset({
    "parse_args_into_dataclasses", "parse_json_file", "parse_yaml_file", "parse_dict", "parse_args_and_config",
})
ARGUMENT_PARSERS = ("HfArgumentParser", "TrlParser")  # transformers', trl's subclass, and re-exports of them


def training_arguments_names(codemod, module: cst.Module, is_training_arguments) -> set[str]:
    """Names that ``HfArgumentParser`` (or trl's ``TrlParser``) fills with a ``TrainingArguments`` (matched by position).

    ``model_args, data_args, training_args = parser.parse_args_into_dataclasses()`` with
    ``parser = HfArgumentParser((ModelArguments, DataArguments, TrainingArguments))`` gives
    ``{"training_args"}``; so do ``training_args = parser.parse_args_into_dataclasses()[2]`` and a
    parser built on the same line.
    """
    parsers: dict[str, list[cst.BaseExpression]] = {}
    unpackings: list[tuple[list[cst.BaseExpression], list[cst.BaseExpression | None]]] = []

    def classes(parser: cst.Call) -> list[cst.BaseExpression]:
        if not parser.args:
            return []
        first = parser.args[0].value
        return [e.value for e in first.elements] if isinstance(first, (cst.Tuple, cst.List)) else [first]

    def is_parser(node: cst.BaseExpression) -> bool:
        return isinstance(node, cst.Call) and any(q.endswith(ARGUMENT_PARSERS) for q in qualified_names(codemod, node.func))

    def unpack(node: cst.Assign) -> None:
        value, target = node.value, node.targets[0].target
        index = None
        if isinstance(value, cst.Subscript) and len(value.slice) == 1 and isinstance(target, cst.Name):
            element = value.slice[0].slice
            if not (isinstance(element, cst.Index) and isinstance(element.value, cst.Integer)):
                return
            index, value = int(element.value.value), value.value
        if not isinstance(value, cst.Call):
            return
        func = value.func
        if isinstance(target, cst.Name) and index is None and is_parser(value):
            parsers[target.value] = classes(value)
        elif isinstance(func, cst.Attribute) and func.attr.value in PARSE_INTO_DATACLASSES:
            elements = [e.value for e in target.elements] if isinstance(target, (cst.Tuple, cst.List)) else [target]
            if index is not None:
                elements = [None] * index + elements
            if isinstance(func.value, cst.Name):
                unpackings.append((parsers.get(func.value.value, []), elements))
            elif is_parser(func.value):
                unpackings.append((classes(func.value), elements))

    for assign in nodes(module, (cst.Assign,)):  # in the order a visitor meets them
        unpack(assign)
    found: set[str] = set()
    for parsed, targets in unpackings:
        for cls, target in zip(parsed, targets):
            if isinstance(target, cst.Name) and any(is_training_arguments(q) for q in qualified_names(codemod, cls)):
                found.add(target.value)
    return found


#: How a training reports to Ray Tune when it is itself a Tune trial: a function trainable's
#: report, and the frameworks' Tune callbacks (TuneReportCallback, TuneReportCheckpointCallback).
TUNE_REPORTS = frozenset({"ray.tune.report", "ray.air.session.report"})
TUNE_INTEGRATION = "ray.tune.integration."
TUNE_TRIAL = ("this training already runs as a Ray Tune trial (it reports to Tune with {what}), so it is left as "
              "it is: to train each trial on several workers, have the trial function launch "
              "TorchTrainer(train_func, scaling_config=ScalingConfig(...)).fit() and report through "
              "ray.tune.integration.ray_train.TuneReportCallback (Train V2's Tune pattern, see the Ray Train + Tune guide)")


def tune_trial_report(codemod, module: cst.Module) -> tuple[cst.Call, str] | None:
    """The first call by which the file's training reports to Ray Tune as a trial, and its name.

    Moving such a training into a train function would have Train workers report to Tune, which
    Train V2 does not support: the trial function must launch the TorchTrainer instead."""
    for node in nodes(module, (cst.Call,)):
        for name in qualified_names(codemod, node.func):
            if name in TUNE_REPORTS or (name.startswith(TUNE_INTEGRATION) and not name.startswith(TUNE_INTEGRATION + "ray_train")):
                return node, ".".join(name.split(".")[-2:]) if name in TUNE_REPORTS else name.rsplit(".", 1)[-1]
    return None


def launches_ray_trainer(codemod, module: cst.Module) -> bool:
    """Whether the script already builds a Ray Train trainer (``TorchTrainer``...) anywhere.

    ``TrainerFinder.already_on_ray`` looks only at top-level functions handed to one; a script
    another codemod converted may launch a nested ``train_func``.
    """
    return any(
        any(q.startswith("ray.train.") and q.endswith("Trainer") for q in qualified_names(codemod, node.func))
        for node in nodes(module, (cst.Call,))
    )

"""A Ray trainer's ``preprocessor=`` becomes what the trainer did with it, before the launch.

Ray's AIR trainers (the ``ray.ml`` preview, Ray 2.0-2.6 ``TorchTrainer`` and the retired
framework trainers) took ``preprocessor=``: before training, the trainer fitted it on the
``"train"`` dataset (unless it was fitted already) and transformed every dataset with it. Train V2's
``TorchTrainer`` has no such argument (``TypeError`` on ray 2.60), so the same steps move in front
of the trainer::

    # before
    trainer = TorchTrainer(train_loop, datasets={"train": train_ds, "valid": valid_ds},
                           preprocessor=StandardScaler(columns=["x"]))

    # after
    preprocessor = StandardScaler(columns=["x"])
    # Train V2 has no preprocessor=: fit it on "train" as the trainer did, and hand over transformed datasets.
    if preprocessor.fit_status() != preprocessor.FitStatus.FITTED:
        preprocessor.fit(train_ds)
    trainer = TorchTrainer(train_loop, datasets={"train": preprocessor.transform(train_ds),
                           "valid": preprocessor.transform(valid_ds)})

It runs before the retired trainers' codemods, so they see the datasets as a dict literal still.
``datasets`` given as a name becomes a comprehension over it. A trainer built where statements
cannot go in front of it (in a lambda, a comprehension) gets a follow-up instead.
"""

from __future__ import annotations

import libcst as cst
import libcst.matchers as m
from libcst.metadata import ParentNodeProvider

from codemods._legacy_trainers import LegacyTrainerCodemod, drop_args, free_names, keyword_args, literal
from codemods._names import load_table

#: Every trainer class that took ``preprocessor=``: the Ray trainers whose V1 arguments
#: ``ray_train_v1_arguments`` knows, and every path a retired trainer ever had.
RETIRED = frozenset(load_table("retired_ray_trainers")["trainers"])
TRAINERS = frozenset(load_table("ray_train_v1_arguments")["classes"]["trainer"]) | RETIRED
#: The retired trainers' class names (TorchTrainer, DataParallelTrainer... are not among them).
RETIRED_CLASSES = frozenset(path.rsplit(".", 1)[1] for path in RETIRED)
#: Expressions inside which a statement cannot be put in front of the call.
NESTED = (cst.Lambda, cst.ListComp, cst.SetComp, cst.DictComp, cst.GeneratorExp)
COMMENT = '# Train V2 has no preprocessor=: fit it on "train" as the trainer did, and hand over transformed datasets.'


class RayTrainerPreprocessor(LegacyTrainerCodemod):
    DESCRIPTION = "A Ray trainer's preprocessor= (gone in Train V2) becomes its fit and transform before the launch."
    TRIGGERS = (b"preprocessor",)
    MODULES = (b"ray",)
    ORDER = 36
    # Matched as the retired-trainer codemods match theirs (``legacy_name``): a path and what lies below it.
    LEGACY = tuple(tuple(path.rsplit(".", 1)) for path in sorted(TRAINERS))

    def __init__(self, context, options=None) -> None:
        super().__init__(context, options)
        #: statement -> what goes right in front of it (it hands its comments to the first)
        self._inserts: dict[cst.BaseStatement, list[cst.BaseStatement]] = {}

    def visit_Module(self, node: cst.Module) -> None:
        self.tree = node
        self._lines = node.code.splitlines()
        for call in m.findall(node, m.Call(args=[m.ZeroOrMore(), m.Arg(keyword=m.Name("preprocessor")), m.ZeroOrMore()])):
            if self.legacy_name(call.func) is not None:
                self.plan(call)

    def plan(self, call: cst.Call) -> None:
        kwargs = keyword_args(call)
        pre, data = kwargs["preprocessor"], kwargs.get("datasets")
        if m.matches(pre.value, m.Name("None")):
            self.replace_call(call, call.with_changes(args=drop_args(call.args, [pre])))
            self.change(pre, "dropped preprocessor=None (Train V2 has no such argument)")
            return
        statement = self.statement_of(call)
        if not isinstance(statement, cst.SimpleStatementLine) or self._nested(call, statement):
            if self.legacy_name(call.func) not in RETIRED_CLASSES:  # a retired trainer's codemod flags what is left
                self.follow_up(pre, "Train V2's TorchTrainer has no preprocessor= (TypeError): fit the preprocessor on "
                               'the "train" dataset and pass transformed datasets (preprocessor.transform(ds)) instead')
            return
        if data is None:
            self.replace_call(call, call.with_changes(args=drop_args(call.args, [pre])))
            self.change(pre, "dropped preprocessor=: with no datasets= it transformed nothing (Train V2 has no such argument)")
            return
        before: list[str] = []
        if isinstance(pre.value, cst.Name):
            name = pre.value.value
        else:
            name = self.fresh_name("preprocessor")
            before.append(f"{name} = {self.code(pre.value)}")
        entries = self._entries(data.value)
        if entries is not None:
            train = next((el for el in entries if literal(el.key) == "train"), None)
            if train is not None and not m.matches(train.value, m.Name() | m.Attribute(value=m.Name())):
                bound = self.fresh_name("train_dataset")
                before.append(f"{bound} = {self.code(train.value)}")
                entries = [el.with_changes(value=cst.Name(bound)) if el is train else el for el in entries]
                train = train.with_changes(value=cst.Name(bound))
            if train is not None:
                before.append(f"if {name}.fit_status() != {name}.FitStatus.FITTED:\n"
                              f"{self.tree.default_indent}{name}.fit({self.code(train.value)})")
            value = data.value.with_changes(elements=[
                el.with_changes(value=cst.parse_expression(f"{name}.transform({self.code(el.value)})")) for el in entries])
        else:
            datasets = data.value
            if not isinstance(datasets, cst.Name):
                bound = self.fresh_name("datasets")
                before.append(f"{bound} = {self.code(datasets)}")
                datasets = cst.Name(bound)
            before.append(f'if "train" in {datasets.value} and {name}.fit_status() != {name}.FitStatus.FITTED:\n'
                          f'{self.tree.default_indent}{name}.fit({datasets.value}["train"])')
            value = cst.parse_expression(f"{{key: {name}.transform(ds) for key, ds in {datasets.value}.items()}}")
        new = [self.parse_statement(text + "\n") for text in before]
        new[-1] = new[-1].with_changes(leading_lines=[cst.EmptyLine(comment=cst.Comment(COMMENT))])
        # The comments written at the argument go with it (those above it sit in the comma before it).
        index = call.args.index(pre)
        above = call.args[index - 1].comma if index else None
        above = above.whitespace_after if isinstance(above, cst.Comma) else None
        moved = [line for line in getattr(above, "empty_lines", ()) if line.comment]
        moved += [cst.EmptyLine(comment=c) for c in m.findall(pre, m.Comment())]
        new[0] = new[0].with_changes(leading_lines=[*moved, *new[0].leading_lines])
        self._inserts[statement] = new
        args = drop_args([a.with_changes(value=value) if a is data else a for a in call.args], [pre])
        self.replace_call(call, call.with_changes(args=args))
        self.change(pre, "preprocessor= (gone in Train V2): fitted on the train dataset and applied to every dataset "
                    "before the trainer, as the trainer did")

    def leave_SimpleStatementLine(self, original: cst.SimpleStatementLine, updated: cst.SimpleStatementLine):
        new = self._inserts.get(original)
        if not new:
            return updated
        first = new[0].with_changes(leading_lines=[*updated.leading_lines, *new[0].leading_lines])
        return cst.FlattenSentinel([first, *new[1:], updated.with_changes(leading_lines=[])])

    def names_taken(self) -> set[str]:
        """Names read or bound (``preprocessor=`` as a keyword does not take the name ``preprocessor``)."""
        return free_names(self.tree)

    def _entries(self, value: cst.BaseExpression) -> list[cst.DictElement] | None:
        """The elements of an inline ``{...}`` whose keys are all string literals."""
        if isinstance(value, cst.Dict) and all(
                isinstance(el, cst.DictElement) and isinstance(literal(el.key), str) for el in value.elements):
            return list(value.elements)
        return None

    def _nested(self, call: cst.Call, statement: cst.BaseStatement) -> bool:
        node = self.get_metadata(ParentNodeProvider, call)
        while node is not statement:
            if isinstance(node, NESTED):
                return True
            node = self.get_metadata(ParentNodeProvider, node)
        return False

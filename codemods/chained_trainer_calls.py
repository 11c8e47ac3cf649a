"""A Trainer built and trained in one expression gets a name, so the framework codemods can follow it.

``transformers_trainer`` and ``lightning_trainer`` trace a Trainer from the name it is assigned to
to the ``train()``/``fit()`` of that name. Short scripts and notebooks often skip the name::

    # before
    Trainer(model=model, args=args, train_dataset=ds).train()
    result = pl.Trainer(max_epochs=2).fit(model, loader)

    # after (then converted by the framework's codemod as usual)
    trainer = Trainer(model=model, args=args, train_dataset=ds)
    trainer.train()
    trainer_2 = pl.Trainer(max_epochs=2)
    result = trainer_2.fit(model, loader)

Only a whole statement (an expression, or ``x = ...``) whose value is that chained call; a Trainer of
transformers/trl (``*Trainer``) for ``train``, Lightning's ``Trainer`` for ``fit``. Runs before both.
"""

from __future__ import annotations

import libcst as cst
from libcst.metadata import QualifiedNameProvider, ScopeProvider

from codemods._lightning import is_trainer as is_lightning_trainer
from codemods._names import TableCodemod
from codemods._train_function import unique_name
from codemods._trainers import is_library_trainer
from migrator.walks import nodes

#: training method -> whether a qualified class name is a trainer it trains
METHODS = {"train": is_library_trainer, "fit": is_lightning_trainer}


class ChainedTrainerCalls(TableCodemod):
    DESCRIPTION = "Trainer(...).train() / Trainer(...).fit(...) in one expression: the Trainer gets a name first."
    TRIGGERS = (b"train", b"fit")
    MODULES = (b"transformers", b"trl", b"lightning", b"pytorch_lightning")
    ORDER = 55  # before transformers_trainer and lightning_trainer (60)
    METADATA_DEPENDENCIES = (*TableCodemod.METADATA_DEPENDENCIES, QualifiedNameProvider, ScopeProvider)

    def nothing_to_do(self, tree: cst.Module) -> bool:
        return not any(isinstance(call.func, cst.Attribute) and call.func.attr.value in METHODS
                       and isinstance(call.func.value, cst.Call) for call in nodes(tree, (cst.Call,)))

    def visit_Module(self, node: cst.Module) -> None:
        self._taken: set[str] = set()

    def leave_SimpleStatementLine(self, original: cst.SimpleStatementLine, updated: cst.SimpleStatementLine):
        if len(updated.body) != 1:
            return updated
        small = updated.body[0]
        value = small.value if isinstance(small, (cst.Expr, cst.Assign)) else None
        if not (isinstance(value, cst.Call) and isinstance(value.func, cst.Attribute)
                and isinstance(value.func.value, cst.Call) and value.func.attr.value in METHODS):
            return updated
        built = value.func.value
        original_built = original.body[0].value.func.value
        is_trainer = METHODS[value.func.attr.value]
        if not any(is_trainer(q) for q in self.qnames(original_built.func)):
            return updated
        name = self._fresh("trainer")
        build = cst.SimpleStatementLine(
            body=[cst.Assign(targets=[cst.AssignTarget(cst.Name(name))], value=built)],
            leading_lines=updated.leading_lines,
        )
        train = updated.with_changes(
            body=[small.with_changes(value=value.with_changes(func=value.func.with_changes(value=cst.Name(name))))],
            leading_lines=[],
        )
        self.change(original, f"`{self.source(original_built.func)}(...)` built and trained in one expression: "
                    f"named `{name}` first, so that its training can be launched on Ray")
        return cst.FlattenSentinel([build, train])

    def _fresh(self, base: str) -> str:
        name = unique_name(self.module, base, self._taken)
        self._taken.add(name)
        return name

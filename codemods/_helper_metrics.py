"""Metrics an epoch loop's helper functions compute and only print, handed back so they can be reported.

pytorch/examples' MNIST and the scripts written from it compute the epoch's metrics in helpers
that return nothing (``test()`` sums ``test_loss`` and prints it), so the epoch loop has nothing
to report but the epoch number. A helper called as a bare statement in the loop, with no
``return`` of its own and a metric-like name bound in its own body (so it is always bound at its
end), now returns it, and the loop keeps it::

    def test(model, device, loader):            def test(model, device, loader):
        test_loss = 0                               test_loss = 0
        ...                                         ...
        print(test_loss)                            print(test_loss)
                                                    return test_loss
    for epoch in range(1, epochs + 1):          for epoch in range(1, epochs + 1):
        test(model, device, test_loader)            test_loss = test(model, device, test_loader)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import libcst as cst

from codemods._return_value import returns

#: Names that look like a metric worth reporting; the loss first when a helper binds several.
METRIC = re.compile(r"loss|acc|metric|score|f1|ppl|perplexity|error|mse|mae|auc|precision|recall|correct")


@dataclass(frozen=True)
class HelperMetric:
    function: str  # the helper's name
    metric: str  # the name it binds and now returns
    var: str  # the name the epoch loop assigns it to


def _bare_call(stmt: cst.BaseStatement) -> str | None:
    """``f`` for a statement that is only ``f(...)``."""
    if isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1 and isinstance(stmt.body[0], cst.Expr):
        call = stmt.body[0].value
        if isinstance(call, cst.Call) and isinstance(call.func, cst.Name):
            return call.func.value
    return None


def _top_level_names(function: cst.FunctionDef) -> list[str]:
    """Names the function's own body binds at its top level, in order (always bound at its end)."""
    names: list[str] = []
    for stmt in function.body.body:
        if not isinstance(stmt, cst.SimpleStatementLine):
            continue
        for small in stmt.body:
            targets = []
            if isinstance(small, cst.Assign):
                targets = [t.target for t in small.targets]
            elif isinstance(small, (cst.AugAssign, cst.AnnAssign)) and getattr(small, "value", None) is not None:
                targets = [small.target]
            names += [t.value for t in targets if isinstance(t, cst.Name) and t.value not in names]
    return names


def find(module: cst.Module, loop: cst.For, taken: set[str]) -> list[HelperMetric]:
    """The helpers ``loop`` calls as bare statements that can hand back a metric; ``taken`` are names not to bind."""
    functions = {s.name.value: s for s in module.body if isinstance(s, cst.FunctionDef)}
    found: list[HelperMetric] = []
    for stmt in loop.body.body:
        name = _bare_call(stmt)
        function = functions.get(name) if name else None
        if function is None or function.asynchronous or returns(function.body.body, with_value=False) or any(h.function == name for h in found):
            continue
        params = {p.name.value for p in (*function.params.params, *function.params.kwonly_params, *function.params.posonly_params)}
        metrics = [n for n in _top_level_names(function) if METRIC.search(n.lower()) and n not in params]
        if not metrics:
            continue
        metric = next((m for m in metrics if "loss" in m.lower()), metrics[0])
        var = metric if metric not in taken else f"{name}_{metric}"
        if var in taken:
            continue
        taken.add(var)
        found.append(HelperMetric(name, metric, var))
    return found


def returning(module: cst.Module, found: list[HelperMetric]) -> cst.Module:
    """``module`` with each helper in ``found`` returning its metric at the end of its body."""
    by_name = {h.function: h for h in found}

    def edit(stmt: cst.BaseStatement) -> cst.BaseStatement:
        if not isinstance(stmt, cst.FunctionDef) or stmt.name.value not in by_name:
            return stmt
        line = cst.parse_statement(f"return {by_name[stmt.name.value].metric}")
        return stmt.with_changes(body=stmt.body.with_changes(body=[*stmt.body.body, line]))

    return module.with_changes(body=[edit(s) for s in module.body])


def assigned(loop: cst.For, found: list[HelperMetric]) -> cst.For:
    """``loop`` (possibly rewritten already) with each helper call's result kept in its variable."""
    by_name = {h.function: h for h in found}
    body = []
    for stmt in loop.body.body:
        name = _bare_call(stmt)
        if name in by_name:
            small = stmt.body[0]
            assign = cst.Assign(targets=[cst.AssignTarget(cst.Name(by_name[name].var))], value=small.value)
            stmt = stmt.with_changes(body=[assign])
        body.append(stmt)
    return loop.with_changes(body=loop.body.with_changes(body=body))

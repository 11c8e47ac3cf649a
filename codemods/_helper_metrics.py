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
import libcst.matchers as matchers

from codemods._return_value import returns
from codemods._train_function import _all_names

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


_CONTAINERS = (cst.List, cst.ListComp, cst.Dict, cst.DictComp, cst.Set, cst.SetComp, cst.Tuple, cst.GeneratorExp)


def _metric_names(function: cst.FunctionDef) -> list[str]:
    """Metric-like names ``function`` binds at its top level, not its parameters, the loss first.

    The report turns each into a number with ``float()``, so a name that looks like a collection
    is left out: a plural (``losses``, ``metrics``, ``scores``) or one bound to a list, dict, set or
    tuple display or comprehension (``losses = [...]``).
    """
    params = {p.name.value for p in (*function.params.params, *function.params.kwonly_params, *function.params.posonly_params)}
    containers = set()
    for stmt in function.body.body:
        for small in getattr(stmt, "body", ()) if isinstance(stmt, cst.SimpleStatementLine) else ():
            if isinstance(small, cst.Assign) and isinstance(small.value, _CONTAINERS):
                containers |= {t.target.value for t in small.targets if isinstance(t.target, cst.Name)}
    plural = lambda n: n.lower().endswith("es") or (n.lower().endswith("s") and not n.lower().endswith("ss"))  # noqa: E731
    metrics = [n for n in _top_level_names(function)
               if METRIC.search(n.lower()) and n not in params and n not in containers and not plural(n)]
    return sorted(metrics, key=lambda n: "loss" not in n.lower())


def find(module: cst.Module, loop: cst.For, taken: set[str]) -> list[HelperMetric]:
    """The helpers ``loop`` calls as bare statements that can hand back a metric; ``taken`` are names not to bind."""
    functions = {s.name.value: s for s in module.body if isinstance(s, cst.FunctionDef)}
    found: list[HelperMetric] = []
    for stmt in loop.body.body:
        name = _bare_call(stmt)
        function = functions.get(name) if name else None
        metric = _metric_of(function) if function is not None and not any(h.function == name for h in found) else None
        if metric is None:
            continue
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


# -- methods: the DDP tutorial series' ``Trainer`` class ------------------------------------------
# pytorch/examples' distributed/ddp-tutorial-series counts epochs in ``Trainer.train`` and computes
# the loss two calls down: ``train`` calls ``self._run_epoch(epoch)``, whose batch loop calls
# ``self._run_batch(source, targets)``, which binds ``loss`` and returns nothing. The loss of the
# epoch's last batch is handed back up the same way::
#
#     def _run_batch(self, source, targets):      def _run_batch(self, source, targets):
#         loss = F.cross_entropy(...)                 loss = F.cross_entropy(...)
#         loss.backward()                             loss.backward()
#                                                     return loss
#     def _run_epoch(self, epoch):                def _run_epoch(self, epoch):
#         for source, targets in self.data:           for source, targets in self.data:
#             self._run_batch(source, targets)            loss = self._run_batch(source, targets)
#                                                     return loss
#     def train(self, max_epochs):                def train(self, max_epochs):
#         for epoch in range(max_epochs):             for epoch in range(max_epochs):
#             self._run_epoch(epoch)                      loss = self._run_epoch(epoch)


@dataclass(frozen=True)
class MethodMetric:
    chain: tuple[str, ...]  # the method the epoch loop calls, then (maybe) the one its batch loop calls
    metric: str  # the name the last method binds and now returns
    var: str  # the name the epoch loop assigns it to


def _self_call(stmt: cst.BaseStatement) -> str | None:
    """``m`` for a statement that is only ``self.m(...)``."""
    if isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1 and isinstance(stmt.body[0], cst.Expr):
        call = stmt.body[0].value
        if (isinstance(call, cst.Call) and isinstance(call.func, cst.Attribute)
                and isinstance(call.func.value, cst.Name) and call.func.value.value == "self"):
            return call.func.attr.value
    return None


def _metric_of(function: cst.FunctionDef) -> str | None:
    """The metric-like name ``function`` binds at its top level (the loss first), if it returns nothing."""
    if function.asynchronous or returns(function.body.body, with_value=False):
        return None
    return next(iter(_metric_names(function)), None)


def holds(outer: cst.CSTNode, loop: cst.For) -> bool:
    """Whether ``loop`` is inside ``outer``."""
    return any(f is loop for f in matchers.findall(outer, matchers.For()))


def find_in_class(cls: cst.ClassDef, loop: cst.For, taken: set[str]) -> list[MethodMetric]:
    """The methods ``loop`` (an epoch loop in a method of ``cls``) calls as bare statements that can
    hand back a metric, directly or from the method their batch loop calls."""
    methods = {s.name.value: s for s in cls.body.body if isinstance(s, cst.FunctionDef)}
    found: list[MethodMetric] = []
    for stmt in loop.body.body:
        name = _self_call(stmt)
        outer = methods.get(name) if name else None
        if outer is None or any(m.chain[0] == name for m in found):
            continue
        chain, metric = (name,), _metric_of(outer)
        if metric is None and not returns(outer.body.body, with_value=False):
            for inner in (s for s in outer.body.body if isinstance(s, cst.For) and isinstance(s.body, cst.IndentedBlock)):
                called = [n for n in map(_self_call, inner.body.body) if n in methods and n != name]
                deeper = [(n, _metric_of(methods[n])) for n in called]
                deeper = [(n, m) for n, m in deeper if m is not None and m not in _all_names(outer)]
                if len(deeper) == 1:
                    chain, metric = (name, deeper[0][0]), deeper[0][1]
                    break
        if metric is None:
            continue
        var = metric if metric not in taken else f"{name.lstrip('_')}_{metric}"
        if var in taken:
            continue
        taken.add(var)
        found.append(MethodMetric(chain, metric, var))
    return found


class _KeepSelfCalls(cst.CSTTransformer):
    """Bare ``self.m(...)`` statements in the loops it is run on become ``name = self.m(...)``."""

    def __init__(self, names: dict[str, str]) -> None:
        self.names = names  # method -> the name its result is kept in

    def leave_SimpleStatementLine(self, original_node, updated_node):
        name = _self_call(updated_node)
        if name not in self.names:
            return updated_node
        assign = cst.Assign(targets=[cst.AssignTarget(cst.Name(self.names[name]))], value=updated_node.body[0].value)
        return updated_node.with_changes(body=[assign])


def _with_return(function: cst.FunctionDef, name: str) -> cst.FunctionDef:
    return function.with_changes(body=function.body.with_changes(body=[*function.body.body, cst.parse_statement(f"return {name}")]))


def methods_returning(cls: cst.ClassDef, found: list[MethodMetric]) -> cst.ClassDef:
    """``cls`` (possibly rewritten already) with each chain in ``found`` handing its metric up to
    the epoch loop (a ``for epoch ...`` loop at the top of a method), which keeps it."""
    if not found:
        return cls
    kept_by_loop = {m.chain[0]: m.var for m in found}
    body = []
    for stmt in cls.body.body:
        if isinstance(stmt, cst.FunctionDef):
            for m in found:
                if stmt.name.value == m.chain[-1]:
                    stmt = _with_return(stmt, m.metric)
                if len(m.chain) == 2 and stmt.name.value == m.chain[0]:
                    keep = _KeepSelfCalls({m.chain[1]: m.metric})
                    stmt = stmt.with_changes(body=stmt.body.with_changes(body=[
                        s.visit(keep) if isinstance(s, cst.For) else s for s in stmt.body.body]))
                    stmt = _with_return(stmt, m.metric)
            if isinstance(stmt.body, cst.IndentedBlock):
                keep = _KeepSelfCalls(kept_by_loop)
                stmt = stmt.with_changes(body=stmt.body.with_changes(body=[
                    s.with_changes(body=s.body.with_changes(body=[x.visit(keep) for x in s.body.body]))
                    if isinstance(s, cst.For) and isinstance(s.target, cst.Name) and "epoch" in s.target.value
                    and isinstance(s.body, cst.IndentedBlock) else s
                    for s in stmt.body.body]))
        body.append(stmt)
    return cls.with_changes(body=cls.body.with_changes(body=body))

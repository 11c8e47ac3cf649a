"""What the Accelerate codemod finds in a script: launchers, launch instructions, epoch-end metrics.

``notebook_launcher(fn, args, num_processes=N)`` and ``accelerate launch --num_processes N x.py``
start the processes that Ray Train now starts; both tell how many workers the script wanted.
Metrics are reported to Ray only where they are plainly a dict computed once per epoch, on every
rank (see ``epoch_metrics``); anything less certain is a follow-up.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

import libcst as cst

#: ``accelerate launch`` options that take no value.
_FLAGS = frozenset({
    "--multi_gpu", "--cpu", "--use_cpu", "--use_deepspeed", "--use_fsdp", "--use_megatron_lm", "--tpu", "--quiet",
    "-q", "--debug", "--no_python", "--same_network", "--dynamo_use_fullgraph",
})
_LAUNCH = re.compile(r"accelerate\s+launch\b([^\n]*)")
_SCRIPT = re.compile(r"(?:(?<=\s)|^)(?:[^\s-]\S*\.py\b|-m\s)")


@dataclass
class LaunchText:
    """What ``accelerate launch`` lines in comments and docstrings asked for."""

    processes: int | None = None
    machines: int = 1
    mixed_precision: str | None = None
    dropped: list[str] = field(default_factory=list)

    def rewrite(self, text: str) -> str:
        return _LAUNCH.sub(lambda m: self._replace(m), text)

    def _replace(self, match: re.Match) -> str:
        rest = match.group(1)
        script = _SCRIPT.search(rest)
        if script is None:  # no script named: not a command line
            return match.group(0)
        try:
            tokens = shlex.split(rest[: script.start()])
        except ValueError:
            tokens = rest[: script.start()].split()
        i = 0
        while i < len(tokens):
            option, _, value = tokens[i].partition("=")
            if not value and option not in _FLAGS and i + 1 < len(tokens):
                value = tokens[i + 1]
                i += 1
            self.dropped.append(f"{option} {value}".strip())
            if option == "--num_processes" and value.isdigit():
                self.processes = int(value)
            elif option == "--num_machines" and value.isdigit():
                self.machines = int(value)
            elif option == "--mixed_precision":
                self.mixed_precision = value
            i += 1
        return "python " + rest[script.start():]

    @property
    def workers(self) -> int | None:
        return self.processes * self.machines if self.processes else None


class LaunchTextRewriter(cst.CSTTransformer):
    """Rewrite ``accelerate launch ...`` into ``python ...`` in comments and docstrings."""

    def __init__(self, launch: LaunchText) -> None:
        super().__init__()
        self.launch = launch
        self.hits: list[cst.CSTNode] = []

    def leave_Comment(self, original_node: cst.Comment, updated_node: cst.Comment) -> cst.Comment:
        new = self.launch.rewrite(updated_node.value)
        if new != updated_node.value:
            self.hits.append(original_node)
            return updated_node.with_changes(value=new)
        return updated_node

    def leave_Expr(self, original_node: cst.Expr, updated_node: cst.Expr) -> cst.Expr:
        value = updated_node.value
        if isinstance(value, cst.SimpleString):
            new = self.launch.rewrite(value.value)
            if new != value.value:
                self.hits.append(original_node)
                return updated_node.with_changes(value=value.with_changes(value=new))
        return updated_node


# -- metrics at epoch end -----------------------------------------------------------------------
_PURE_CALLS = frozenset({"item", "float", "int", "round", "len", "tolist"})


def _pure(node: cst.CSTNode) -> bool:
    """No call in it but ``.item()``, ``float()`` and the like: safe to evaluate twice."""
    found = []

    class Visit(cst.CSTVisitor):
        def visit_Call(self, call: cst.Call) -> None:
            func = call.func
            name = func.attr.value if isinstance(func, cst.Attribute) else func.value if isinstance(func, cst.Name) else None
            if name not in _PURE_CALLS:
                found.append(call)

    node.visit(Visit())
    return not found


def _names(node: cst.CSTNode) -> set[str]:
    found: set[str] = set()

    class Visit(cst.CSTVisitor):
        def visit_Name(self, name: cst.Name) -> None:
            found.add(name.value)

    node.visit(Visit())
    return found


@dataclass
class Metrics:
    loop: cst.For
    after: cst.BaseStatement  # the statement of the loop body the report follows
    report: str  # the ray.train.report(...) line


def with_nested_bodies(statements) -> list[cst.BaseStatement]:
    """``statements`` and, in place of a nested ``def`` (``@find_executable_batch_size``'s inner loop)
    or of a loop around the trainings (``for train_idxs, valid_idxs in folds:``, Accelerate's
    cross_validation.py), its body: every rank runs those too."""
    out: list[cst.BaseStatement] = []
    for stmt in statements:
        if isinstance(stmt, cst.FunctionDef) and isinstance(stmt.body, cst.IndentedBlock):
            out.extend(with_nested_bodies(stmt.body.body))
        elif is_outer_loop(stmt):
            out.append(stmt)
            out.extend(with_nested_bodies(stmt.body.body))
        else:
            out.append(stmt)
    return out


def is_outer_loop(stmt: cst.BaseStatement) -> bool:
    """A ``for`` (no ``else``) whose target names no epoch: a loop that may hold the epoch loop."""
    return (isinstance(stmt, cst.For) and isinstance(stmt.body, cst.IndentedBlock) and stmt.orelse is None
            and "epoch" not in cst.Module([]).code_for_node(stmt.target))


def epoch_metrics(statements, accelerator: str, dict_calls: set[str]) -> Metrics | str:
    """The metrics dict one epoch loop among ``statements`` computes, or why none was found.

    An epoch loop is a top-level ``for`` whose target names an epoch. In its body (top level
    only, so every rank runs it) the metrics are the last of: ``accelerator.log(d)``, ``name =
    {...}``, ``name = metric.compute()`` where ``metric`` comes from ``evaluate.load``.
    """
    loops = [s for s in with_nested_bodies(statements) if isinstance(s, cst.For) and isinstance(s.target, cst.Name) and "epoch" in s.target.value]
    if len(loops) != 1 or not isinstance(loops[0].body, cst.IndentedBlock):
        return "no single `for epoch in ...` loop at the top of the training code"
    loop, epoch = loops[0], loops[0].target.value
    body = list(loop.body.body)
    found: tuple[int, str | cst.Dict] | None = None
    for i, stmt in enumerate(body):
        if not isinstance(stmt, cst.SimpleStatementLine) or len(stmt.body) != 1:
            continue
        small = stmt.body[0]
        if isinstance(small, cst.Expr) and isinstance(small.value, cst.Call):
            call = small.value
            if (isinstance(call.func, cst.Attribute) and call.func.attr.value == "log" and isinstance(call.func.value, cst.Name)
                    and call.func.value.value == accelerator and call.args and call.args[0].keyword is None):
                value = call.args[0].value
                if isinstance(value, cst.Name) or (isinstance(value, cst.Dict) and _pure(value)):
                    found = (i, value.value if isinstance(value, cst.Name) else value)
        elif isinstance(small, cst.Assign) and len(small.targets) == 1 and isinstance(small.targets[0].target, cst.Name):
            value = small.value
            is_dict = isinstance(value, cst.Dict)
            computes = (isinstance(value, cst.Call) and isinstance(value.func, cst.Attribute) and value.func.attr.value == "compute"
                        and isinstance(value.func.value, cst.Name) and value.func.value.value in dict_calls)
            if is_dict or computes:
                found = (i, small.targets[0].target.value)
    if found is None:
        return "no metrics dict found at the end of the epoch loop"
    i, metrics = found
    if isinstance(metrics, str):
        last = max(j for j, s in enumerate(body) if j >= i and metrics in _names(s))
        return Metrics(loop, body[last], f'ray.train.report({{"epoch": {epoch}, **{metrics}}})')
    code = cst.Module([]).code_for_node(metrics)
    keys = {e.key.evaluated_value for e in metrics.elements if isinstance(e, cst.DictElement) and isinstance(e.key, cst.SimpleString)}
    if "epoch" not in keys:
        code = f'{{"epoch": {epoch}, ' + code[1:] if len(metrics.elements) else f'{{"epoch": {epoch}}}'
    return Metrics(loop, body[i], f"ray.train.report({code})")

"""Static checks on a converted script: names that will be missing, parsing on the workers.

Used by the tests on every golden file and by ``migrate validate``. Pure LibCST, no imports of
the user's code or of any ML framework.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider, QualifiedNameProvider, ScopeProvider

from codemods._train_function import argv_functions, reads_argv

BUILTINS = frozenset(dir(builtins)) | {"__file__", "__name__", "__doc__", "__spec__", "__builtins__"}


@dataclass(frozen=True)
class Problem:
    line: int
    message: str


def unresolved_names(source: str) -> dict[str, int]:
    """Names read somewhere that no scope binds and that are not builtins, with a line each."""
    wrapper = MetadataWrapper(cst.parse_module(source))
    scopes = wrapper.resolve(ScopeProvider)
    positions = wrapper.resolve(PositionProvider)
    found: dict[str, int] = {}
    seen_scopes = {s for s in scopes.values() if s is not None}
    for scope in seen_scopes:
        for access in scope.accesses:
            node = access.node
            if access.referents or not isinstance(node, cst.Name) or node.value in BUILTINS:
                continue
            # A name defined by `global` statements or star imports is beyond static reach.
            found.setdefault(node.value, positions[node].start.line)
    return found


def train_functions(module: cst.Module, wrapper: MetadataWrapper | None = None) -> list[cst.FunctionDef]:
    """Top-level functions handed to a Ray ``TorchTrainer`` (positionally or by keyword)."""
    wrapper = wrapper or MetadataWrapper(module)
    names = wrapper.resolve(QualifiedNameProvider)
    launched: set[str] = set()

    class Visit(cst.CSTVisitor):
        def visit_Call(self, node: cst.Call) -> None:
            value = names.get(node.func, ())
            qualified = {q.name for q in (value() if callable(value) else value)}
            if not any(q.startswith("ray.train.") and q.endswith("Trainer") for q in qualified):
                return
            for i, arg in enumerate(node.args):
                if (i == 0 and arg.keyword is None) or (arg.keyword and arg.keyword.value == "train_loop_per_worker"):
                    if isinstance(arg.value, cst.Name):
                        launched.add(arg.value.value)

    wrapper.module.visit(Visit())
    return [s for s in wrapper.module.body if isinstance(s, cst.FunctionDef) and s.name.value in launched]


def check_converted(converted: str, original: str | None = None) -> list[Problem]:
    """Problems a converted script would hit on the workers; none means the checks passed."""
    problems: list[Problem] = []
    missing = unresolved_names(converted)
    known = set(unresolved_names(original)) if original is not None else set()
    for name, line in sorted(missing.items(), key=lambda item: item[1]):
        if name not in known:
            problems.append(Problem(line, f"`{name}` is read but defined nowhere the code runs"))
    wrapper = MetadataWrapper(cst.parse_module(converted))
    functions = train_functions(wrapper.module, wrapper)
    parsing = argv_functions(wrapper.module)
    positions = wrapper.resolve(PositionProvider)
    for fn in functions:
        if reads_argv(fn.body, parsing):
            problems.append(Problem(positions[fn].start.line, f"{fn.name.value}() parses the command line, but workers have other argv"))
    return problems

"""A transform skips the subtrees it has nothing to do in (``migrator.codemod._visit``), and
converts every file exactly as a transform that visits every node does.

LibCST's transform rebuilds every node it passes into an equal copy, even where none of the
transformer's methods is ever called. With plain hooks (or hooks that declare the node types
they act on, ``HOOK_TYPES``), a subtree holding no node of a handled type comes back as the very
same object. What must not change is the result: every golden input and every sample is
converted with and without the skipping, and compared whole (status, output, report entries).
"""

from __future__ import annotations

from pathlib import Path

import libcst as cst
import pytest

from migrator import codemod
from migrator.engine import convert_source
from migrator.registry import all_codemods
from tests.golden import cases, options_for

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = sorted((ROOT / "fixtures" / "samples").rglob("*.py"))

pytestmark = pytest.mark.skipif(not codemod.LIBCST_FAST, reason="this LibCST release is not in CHECKED_LIBCST: the fast path is off")

SOURCE = '''\
import torch

x = 1  # no call here
model = torch.nn.Linear(2, 3)


def train(a, b=2):
    total = a + b
    return step(total)
'''


def _both(data: bytes, options, monkeypatch: pytest.MonkeyPatch):
    pruned = convert_source(data, all_codemods(), options, path="case.py")
    with monkeypatch.context() as patch:
        patch.setattr(codemod, "PRUNE", False)
        full = convert_source(data, all_codemods(), options, path="case.py")
    return pruned, full


@pytest.mark.parametrize("case", cases()[::3], ids=lambda c: c.id)
def test_goldens_convert_the_same_with_and_without_skipping(case, monkeypatch: pytest.MonkeyPatch) -> None:
    data = case.input.read_bytes()
    pruned, full = _both(data, options_for(data.decode("utf-8")), monkeypatch)
    assert (pruned.status, pruned.output, pruned.entries) == (full.status, full.output, full.entries)


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: str(p.relative_to(ROOT / "fixtures" / "samples")))
def test_samples_convert_the_same_with_and_without_skipping(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pruned, full = _both(path.read_bytes(), None, monkeypatch)
    assert (pruned.status, pruned.output, pruned.entries) == (full.status, full.output, full.entries)


class _Calls(cst.CSTTransformer):
    """Renames ``step(...)`` calls; counts the nodes it is asked about."""

    def __init__(self) -> None:
        super().__init__()
        self.left: list[type] = []

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.Call:
        self.left.append(type(original_node))
        if isinstance(updated_node.func, cst.Name) and updated_node.func.value == "step":
            return updated_node.with_changes(func=cst.Name("train_step"))
        return updated_node


class _OwnLeave(_Calls):
    """A hook of its own, which may act on any node: nothing may be skipped."""

    def on_leave(self, original_node, updated_node):
        self.left.append(type(original_node))
        return super().on_leave(original_node, updated_node)


class _DeclaredLeave(_OwnLeave):
    HOOK_TYPES = (cst.BaseStatement,)


def _transformed(transformer: cst.CSTTransformer, *, prune: bool, monkeypatch: pytest.MonkeyPatch):
    module = cst.parse_module(SOURCE)
    with monkeypatch.context() as patch:
        patch.setattr(codemod, "PRUNE", prune)
        return module, module.visit(transformer)


def test_a_subtree_without_a_handled_node_comes_back_as_the_same_object(monkeypatch: pytest.MonkeyPatch) -> None:
    module, new = _transformed(_Calls(), prune=True, monkeypatch=monkeypatch)
    _, full = _transformed(_Calls(), prune=False, monkeypatch=monkeypatch)
    assert new.code == full.code == SOURCE.replace("step(total)", "train_step(total)")
    import_line, assign_line, model_line, function = new.body
    assert import_line is module.body[0] and assign_line is module.body[1]  # no call inside: skipped
    assert model_line is module.body[2]  # a call inside, visited, and left as it was: not rebuilt
    assert function is not module.body[3]  # the call it renamed, and the nodes above it: rebuilt
    # Inside a rebuilt statement, the parts without a call are skipped too.
    assert function.params is module.body[3].params
    assert function.body.body[0] is module.body[3].body.body[0]
    # LibCST's own visit gives a rebuilt copy of every node.
    assert all(a is not b for a, b in zip(full.body, module.body))


def test_a_transformer_with_a_hook_of_its_own_sees_every_node(monkeypatch: pytest.MonkeyPatch) -> None:
    pruned, full = _OwnLeave(), _OwnLeave()
    _transformed(pruned, prune=True, monkeypatch=monkeypatch)
    _transformed(full, prune=False, monkeypatch=monkeypatch)
    assert pruned.left == full.left and cst.Comma in pruned.left


def test_declared_hook_types_are_visited_and_the_rest_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    pruned, full = _DeclaredLeave(), _DeclaredLeave()
    _, new = _transformed(pruned, prune=True, monkeypatch=monkeypatch)
    _, old = _transformed(full, prune=False, monkeypatch=monkeypatch)
    assert new.code == old.code
    statements = (cst.SimpleStatementLine, cst.FunctionDef)
    assert [t for t in pruned.left if t in statements] == [t for t in full.left if t in statements]
    assert cst.Comma not in pruned.left and cst.Comma in full.left


def test_a_node_of_no_recorded_module_is_visited_in_full(monkeypatch: pytest.MonkeyPatch) -> None:
    """A statement built by a codemod, in no module yet: nothing tells what it holds."""
    with monkeypatch.context() as patch:
        patch.setattr(codemod, "PRUNE", True)
        for source, expected in (("y = f(1)\n", "y = f(1)\n"), ("y = step(1)\n", "y = train_step(1)\n")):
            statement = cst.parse_statement(source)
            transformer = _Calls()
            new = statement.visit(transformer)
            assert transformer.left == [cst.Call]  # visited: its call was met
            assert cst.Module(body=[new]).code == expected
            assert (new is statement) == (source == expected)  # rebuilt only where it changed


# -- a transform rebuilds only what changed (``codemod._transform``), with LibCST's hooks and sentinels --

EDITED = '''\
import os
from torch import nn, optim
from pkg import *


def train(a: int, b=2, *, c) -> float:
    """Doc."""
    total = step(a, b, c,)
    drop_me(total)
    value = f"{total:>{width}}"
    return total
'''


class _Recording(cst.CSTTransformer):
    """Records every hook LibCST calls, attribute hooks included, and edits: removes an argument
    (a sequence's sentinel), a return annotation (an optional field), a trailing comma (a
    MaybeSentinel field) and an import's name, and replaces a statement with two."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple] = []

    def on_visit(self, node):
        self.calls.append(("visit", type(node).__name__))
        if isinstance(node, cst.Arg):
            self.arg = node
        return True

    def on_visit_attribute(self, node, attribute):
        self.calls.append(("visit_attribute", type(node).__name__, attribute))

    def on_leave_attribute(self, original_node, attribute):
        self.calls.append(("leave_attribute", type(original_node).__name__, attribute))

    def on_leave(self, original_node, updated_node):
        self.calls.append(("leave", type(original_node).__name__, original_node is updated_node))
        if isinstance(updated_node, cst.Arg) and isinstance(updated_node.value, cst.Name) and updated_node.value.value == "b":
            return cst.RemoveFromParent()
        if isinstance(original_node, cst.Annotation) and original_node.annotation.deep_equals(cst.Name("float")):
            return cst.RemoveFromParent()
        if isinstance(updated_node, cst.Comma) and getattr(self, "arg", None) is not None \
                and original_node is self.arg.comma and self.arg.value.deep_equals(cst.Name("c")):
            return cst.RemoveFromParent()  # Arg.comma: MaybeSentinel.DEFAULT where it stood
        if isinstance(updated_node, cst.ImportAlias) and updated_node.evaluated_name == "optim":
            return cst.RemoveFromParent()
        if isinstance(updated_node, cst.SimpleStatementLine) and "drop_me" in cst.Module([updated_node]).code:
            return cst.FlattenSentinel([cst.parse_statement("a = 1\n"), cst.parse_statement("b = 2\n")])
        return updated_node


def _both_ways(transformer_class, source: str, monkeypatch: pytest.MonkeyPatch):
    outcomes = []
    for prune in (True, False):
        module = cst.parse_module(source)
        transformer = transformer_class()
        with monkeypatch.context() as patch:
            patch.setattr(codemod, "PRUNE", prune)
            try:
                outcomes.append((module, module.visit(transformer), transformer.calls))
            except Exception as exc:  # what LibCST raises, raised the same
                outcomes.append((module, f"{type(exc).__name__}: {exc}", transformer.calls))
    return outcomes


def test_hooks_sentinels_and_results_are_libcsts_own(monkeypatch: pytest.MonkeyPatch) -> None:
    (module, new, calls), (_, full, full_calls) = _both_ways(_Recording, EDITED, monkeypatch)
    assert new.code == full.code and new.deep_equals(full)
    assert "b" not in new.code.split("step(")[1].split(")")[0] and "-> float" not in new.code
    assert "optim" not in new.code and "    a = 1\n    b = 2\n" in new.code and "step(a, c)" in new.code
    # The same hooks in the same order, attributes included; only whether a node came back as it was differs.
    assert [c[:3] if c[0] != "leave" else c[:2] for c in calls] == [c[:3] if c[0] != "leave" else c[:2] for c in full_calls]
    kept = {c[1] for c in calls if c[0] == "leave" and c[-1]}
    kept_by_libcst = {c[1] for c in full_calls if c[0] == "leave" and c[-1]}
    assert {"Import", "FormattedString", "Param", "Expr"} <= kept - kept_by_libcst  # visited, left alone: not rebuilt
    assert new.body[0] is module.body[0] and new.body[2] is module.body[2]


class _RemovesARequiredChild(cst.CSTTransformer):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list = []

    def leave_Name(self, original_node, updated_node):
        return cst.RemoveFromParent() if updated_node.value == "total" else updated_node


def test_a_removal_libcst_refuses_is_refused_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    (_, new, _), (_, full, _) = _both_ways(_RemovesARequiredChild, "x = g(total)\n", monkeypatch)
    assert isinstance(new, str) and new == full and new.startswith("TypeError: We got a RemovalSentinel")

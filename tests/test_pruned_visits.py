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
    assert model_line is not module.body[2] and function is not module.body[3]  # a call inside: visited
    # Inside a visited statement, the parts without a call are skipped too.
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
    statement = cst.parse_statement("y = 1\n")
    transformer = _OwnLeave.__base__()
    with monkeypatch.context() as patch:
        patch.setattr(codemod, "PRUNE", True)
        new = statement.visit(transformer)
    assert new is not statement and new.deep_equals(statement)

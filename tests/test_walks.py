"""``migrator.walks`` records a tree without LibCST's visit, and must meet its nodes exactly as a
``CSTVisitor`` does: same nodes, same order, same parents, same subtree ends, on every fixture,
sample and e2e data script (their golden outputs too: trees our codemods build)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import libcst as cst
import pytest

from migrator import walks

ROOT = Path(__file__).resolve().parent.parent
FILES = sorted((ROOT / "fixtures").rglob("*.py")) + sorted((ROOT / "tests" / "e2e" / "data").rglob("*.py"))


def _empty_walk() -> walks._Walk:
    walk = walks._Walk.__new__(walks._Walk)
    walk.order, walk.end, walk.up, walk.at, walk.ids, walk.repeats, walk.by_type = [], [], [], {}, set(), False, None
    walk.holding = {}
    return walk


def _parsed(paths: list[Path]):
    """``(path, module)`` for each of ``paths`` LibCST parses (some fixtures are bad input on purpose)."""
    for path in paths:
        try:
            yield path, cst.parse_module(path.read_bytes())
        except cst.ParserSyntaxError:
            continue


class _RenameCalls(cst.CSTTransformer):
    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.Call:
        if isinstance(updated_node.func, cst.Name):
            return updated_node.with_changes(func=cst.Name(updated_node.func.value + "_"))
        return updated_node


def test_a_transformed_tree_copied_from_the_given_trees_walk_is_walked_as_if_recorded_afresh() -> None:
    """A transform gives back what it had nothing to do in as the same objects: those subtrees
    are copied from the given tree's walk, and the result is the walk recorded from scratch."""
    checked = 0
    for path, tree in _parsed(FILES[::4]):
        given, _ = walks._walk_of(tree)
        for new in (tree.visit(_RenameCalls()), tree.with_changes(body=[*tree.body, *tree.body[:1]])):
            copied, fresh = walks._Walk(new, given), _empty_walk()
            walks._record(fresh, new, -1)
            assert [id(n) for n in copied.order] == [id(n) for n in fresh.order], path
            assert (copied.end, copied.up, copied.repeats) == (fresh.end, fresh.up, fresh.repeats), path
            assert copied.at == fresh.at, path
        checked += 1
    assert checked > 50


def test_every_file_is_walked_as_libcst_visits_it() -> None:
    checked = 0
    for path, tree in _parsed(FILES):
        fast, libcst_walk = _empty_walk(), _empty_walk()
        walks._record(fast, tree, -1)
        tree.visit(walks._Recorder(libcst_walk))
        assert [id(n) for n in fast.order] == [id(n) for n in libcst_walk.order], path
        assert (fast.end, fast.up, fast.repeats) == (libcst_walk.end, libcst_walk.up, libcst_walk.repeats), path
        checked += 1
    assert checked > 300


def test_the_stored_fields_are_what_libcsts_source_says() -> None:
    """``migrator/data/libcst_fields.json`` saves a cold process reading LibCST's source; for the
    installed release it must say what that source says (after an upgrade, rewrite it:
    ``python -c "from migrator import walks; walks.write_fields_table()"``)."""
    stored = json.loads(walks.FIELDS_TABLE.read_text(encoding="utf-8"))
    assert stored == walks.fields_table(), "stale: rewrite it with walks.write_fields_table()"
    assert len(stored["fields"]) > 150 and stored["fields"]["Module"] == ["header", "body", "footer"]
    # A cold process takes them from the table, for exactly the node classes it names.
    code = ("import libcst as cst\nfrom migrator import walks\nwalks._read_children = None\n"
            "print((walks._child_fields(cst.Call), walks._child_fields(cst.Name), walks.child_visits(cst.ImportFrom)))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    names = lambda kind: tuple(field for field, _ in walks._read_children(kind))  # noqa: E731
    assert done.stdout.split("\n")[0] == str((names(cst.Call), names(cst.Name), walks._read_children(cst.ImportFrom)))


def test_a_node_rebuilt_from_its_visited_fields_is_what_libcst_builds() -> None:
    """A transform rebuilds a changed node with ``dataclasses.replace`` of the fields that changed
    (``codemod._transform``): the same as LibCST's constructor call only where that call passes
    every field the class takes, each either visited (as ``child_visits`` says) or copied over."""
    import ast
    import dataclasses
    import inspect
    import textwrap

    from libcst._nodes import internal

    checked = 0
    for kind in walks.node_classes():
        visits = walks.child_visits(kind)
        if not visits:
            continue
        call = ast.parse(textwrap.dedent(inspect.getsource(kind._visit_and_replace_children))).body[0].body[-1].value
        assert {k.arg for k in call.keywords} == {f.name for f in dataclasses.fields(kind) if f.init}, kind
        assert all(how == walks.EITHER or callable(getattr(internal, how)) for _, how in visits), kind
        checked += 1
    assert checked > 120


def test_node_classes_are_read_from_libcst_not_walked_by_it() -> None:
    tree = cst.parse_module("import a\nfrom .b import (c as d,)\nx = f'{y!r:>{w}}'\nclass C[T](B):\n    def f(self, *a, **k) -> int:\n        return [i async for i in a if i]\n")
    walks._record(_empty_walk(), tree, -1)
    fallen_back = {kind.__name__ for kind, fields in walks._FIELDS.items() if fields is None}
    # TypeParam's method computes a default first: LibCST walks those (PEP 695, rare), still in order.
    assert fallen_back <= {"TypeParam"}, fallen_back
    assert walks._FIELDS[cst.Module] == ("header", "body", "footer")


@pytest.mark.parametrize("code", ["x = 1\n", "", "# only a comment\n"])
def test_small_modules(code: str) -> None:
    tree = cst.parse_module(code)
    fast = _empty_walk()
    walks._record(fast, tree, -1)
    assert fast.order[0] is tree and fast.end[0] == len(fast.order) and fast.up[0] == -1


# -- read-only visits replayed from the walk (``walks.replay``, installed as ``CSTNode.visit``) --
class _LogPlain(cst.CSTVisitor):
    """Only typed handlers, no hook of its own: the replay looks each handler up once per node type.
    Skips what is inside classes (``visit_`` False)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, int]] = []

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        self.calls.append(("visit_ClassDef", id(node)))
        return False

    def visit_Call(self, node: cst.Call) -> None:
        self.calls.append(("visit_Call", id(node)))

    def leave_Call(self, node: cst.Call) -> None:
        self.calls.append(("leave_Call", id(node)))

    def leave_Name(self, node: cst.Name) -> None:
        self.calls.append(("leave_Name", id(node)))


class _Log(_LogPlain):
    """Logs every call a visit makes, through a hook of its own; skips lambdas too."""

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        return False

    def visit_Call(self, node: cst.Call) -> None:
        super().visit_Call(node)
        if isinstance(node.func, cst.Name):
            node.args and node.args[0].visit(self)  # a handler that visits a subtree itself, as ScopeVisitor does

    def on_leave(self, original_node: cst.CSTNode) -> None:  # a hook of its own
        self.calls.append(("on_leave", id(original_node)))
        super().on_leave(original_node)


class _LogOddHandlers(_LogPlain):
    """Handlers a class table cannot hold as functions: a static method, one set on the instance."""

    seen: list = []

    @staticmethod
    def visit_Name(node: cst.Name) -> None:
        _LogOddHandlers.seen.append(("visit_Name", id(node)))

    def __init__(self) -> None:
        super().__init__()
        _LogOddHandlers.seen = self.calls
        self.leave_Attribute = lambda node: self.calls.append(("leave_Attribute", id(node)))


class _LogFields(_Log):
    """A visitor with a per-field handler: LibCST calls it around one field, so such nodes go to LibCST."""

    def visit_Call_args(self, node: cst.Call) -> None:
        self.calls.append(("visit_Call_args", id(node)))


def _calls(tree, kind, libcst_only: bool = False) -> list[tuple[str, int]]:
    """The calls ``tree.visit(kind())`` makes; with ``libcst_only``, as LibCST's own visit makes them."""
    from migrator import codemod

    visitor = kind()
    installed = cst.CSTNode.visit
    if libcst_only:
        cst.CSTNode.visit = codemod._LIBCST_VISIT  # children are visited through the class attribute
    try:
        tree.visit(visitor)
    finally:
        cst.CSTNode.visit = installed
    return visitor.calls


@pytest.mark.parametrize("kind", [_Log, _LogFields, _LogPlain, _LogOddHandlers])
def test_a_read_only_visit_makes_the_calls_libcst_makes(kind) -> None:
    checked = 0
    for path, tree in _parsed(FILES[::3]):
        libcst_calls = _calls(tree, kind, libcst_only=True)
        assert _calls(tree, kind) == libcst_calls, path
        first = tree.body[0] if tree.body else tree  # a subtree of a walked module, from that walk
        assert _calls(first, kind) == _calls(first, kind, libcst_only=True), path
        checked += any(call == "visit_Call_args" for call, _ in libcst_calls) or kind is not _LogFields
    assert checked > 50


def test_a_replayed_visit_rebuilds_nothing_and_a_transformer_still_transforms() -> None:
    from migrator import codemod

    if not codemod.LIBCST_FAST:
        pytest.skip("this LibCST release is not in CHECKED_LIBCST: visits are LibCST's own")
    tree = cst.parse_module("def f(x):\n    return g(x)\n")
    built = []

    class Count(cst.CSTVisitor):
        def visit_Name(self, node: cst.Name) -> None:
            built.append(node)

    real_init = cst.Name.__post_init__
    made = []
    cst.Name.__post_init__ = lambda self: made.append(self) or real_init(self)
    try:
        tree.visit(Count())
    finally:
        cst.Name.__post_init__ = real_init
    assert [n.value for n in built] == ["f", "x", "g", "x"] and made == []

    class Upper(cst.CSTTransformer):
        def leave_Name(self, original_node: cst.Name, updated_node: cst.Name) -> cst.Name:
            return updated_node.with_changes(value=updated_node.value.upper())

    assert tree.visit(Upper()).code == "def F(X):\n    return G(X)\n"


def test_a_matcher_visitor_without_decorators_is_replayed_too() -> None:
    """LibCST's own gatherers (exports, string annotations) are matcher-decoratable visitors with no
    decorator: the engine gives them plain per-field hooks, so their visits are replayed as well."""
    import libcst.matchers as m

    from migrator import codemod

    if not codemod.LIBCST_FAST:
        pytest.skip("this LibCST release is not in CHECKED_LIBCST: visits are LibCST's own")

    class Names(m.MatcherDecoratableVisitor):
        def __init__(self) -> None:
            super().__init__()
            self.calls: list[tuple[str, int]] = []

        def visit_Name(self, node: cst.Name) -> None:
            self.calls.append(("visit_Name", id(node)))

        def leave_Call(self, node: cst.Call) -> None:
            self.calls.append(("leave_Call", id(node)))

    tree = cst.parse_module("import os\n\ndef f(x):\n    return os.path.join(x, g(x))\n")
    assert _calls(tree, Names) == _calls(tree, Names, libcst_only=True)
    made = []
    real_init = cst.Name.__post_init__
    cst.Name.__post_init__ = lambda self: made.append(self) or real_init(self)
    try:
        tree.visit(Names())
    finally:
        cst.Name.__post_init__ = real_init
    assert made == []

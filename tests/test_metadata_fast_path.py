"""The engine's metadata fast path (``migrator.codemod``) gives what LibCST's own resolution gives.

``_resolve_without_batched_walk`` fills a wrapper's cache itself for the providers that do all
their work in ``visit_Module`` (parents from ``migrator.walks``, qualified names over the
recorded walk), skipping LibCST's batched walks. It leans on LibCST internals, so it is used only
on the releases in ``CHECKED_LIBCST``; this test is what checks a release: every node of every
sample and golden input, provider by provider, against a second wrapper LibCST resolves alone.
The conversions themselves are compared by the golden tests.
"""

from __future__ import annotations

from pathlib import Path

import libcst as cst
import pytest
from libcst.metadata import (
    ExpressionContextProvider,
    MetadataWrapper,
    ParentNodeProvider,
    PositionProvider,
    QualifiedNameProvider,
    ScopeProvider,
)

from migrator import codemod, walks

ROOT = Path(__file__).resolve().parents[1]
FILES = sorted((ROOT / "fixtures" / "samples").rglob("*.py"))[::2] + sorted((ROOT / "fixtures").glob("*/*.input.py"))[::5]
PROVIDERS = (PositionProvider, ParentNodeProvider, QualifiedNameProvider, ScopeProvider, ExpressionContextProvider)

pytestmark = pytest.mark.skipif(not codemod.LIBCST_FAST, reason="this LibCST release is not in CHECKED_LIBCST: the fast path is off")


def _value(value):
    return value() if callable(value) else value  # LibCST stores some qualified names as LazyValue


def _scope_key(scope):
    return None if scope is None else (type(scope).__name__, id(getattr(scope, "node", None)))


def _scope_facts(scope):
    """What a scope found: each assignment (name, node) and each access (node, the nodes it refers to)."""
    if scope is None:
        return None
    assignments = {(a.name, id(getattr(a, "node", None)), getattr(a, "_index", None)) for a in scope.assignments}
    accesses = {(id(a.node), frozenset(id(getattr(r, "node", None)) for r in a.referents), a._index)
                for a in scope.accesses}
    return assignments, accesses, scope._assignment_count


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT / "fixtures")))
def test_fast_metadata_matches_libcsts(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = cst.parse_module(path.read_bytes())
    ours = MetadataWrapper(module, unsafe_skip_copy=True)
    theirs = MetadataWrapper(module, unsafe_skip_copy=True)
    leaving = codemod._ScopeVisitor.on_leave
    left = []
    monkeypatch.setattr(codemod._ScopeVisitor, "on_leave", lambda self, node: (left.append(node), leaving(self, node)))
    codemod._resolve_without_batched_walk(ours, PROVIDERS)
    monkeypatch.undo()
    assert {QualifiedNameProvider, ParentNodeProvider, ScopeProvider} <= set(ours._metadata)  # it did the work
    assert left and codemod.scope_provider.ScopeVisitor is codemod._LIBCST_SCOPE_VISITOR  # its scope visitor, then LibCST's
    assert isinstance(ours._metadata[PositionProvider], codemod._Positions)  # generated when first read
    fast = ours.resolve_many(PROVIDERS)
    with monkeypatch.context() as patch:  # LibCST alone: its own visit too, not the replay of read-only visits
        patch.setattr(cst.CSTNode, "visit", codemod._LIBCST_VISIT)
        slow = theirs.resolve_many(PROVIDERS)
        for provider in PROVIDERS:  # LibCST hands out qualified names lazily: computed here, with its visit
            slow[provider] = {node: _value(value) for node, value in slow[provider].items()}
    assert len(fast[PositionProvider]) == len(slow[PositionProvider])  # migrator.positions: the same nodes
    checked = 0
    scopes = set()
    for node in walks.nodes(module, ()):
        for provider in (PositionProvider, ParentNodeProvider, ExpressionContextProvider):
            assert fast[provider].get(node) == slow[provider].get(node), (provider.__name__, node)
        assert _scope_key(fast[ScopeProvider].get(node)) == _scope_key(slow[ScopeProvider].get(node)), node
        if _scope_key(fast[ScopeProvider].get(node)) not in scopes:
            scopes.add(_scope_key(fast[ScopeProvider].get(node)))
            assert _scope_facts(fast[ScopeProvider].get(node)) == _scope_facts(slow[ScopeProvider].get(node)), node
        assert (node in fast[QualifiedNameProvider]) == (node in slow[QualifiedNameProvider])
        if node in slow[QualifiedNameProvider]:
            assert _value(fast[QualifiedNameProvider][node]) == _value(slow[QualifiedNameProvider][node]), node
        checked += 1
    assert checked > 10


# -- matcher-decoratable visitors without decorators visit like plain visitors ------------------
SOURCE = "import os\n\ndef f(x):\n    return os.path.join(x, 'a')\n"


def test_an_undecorated_visitor_visits_every_node_and_keeps_its_own_hooks():
    import libcst.matchers as m

    seen, left = [], []

    class Names(m.MatcherDecoratableVisitor):
        def visit_Name(self, node):
            seen.append(node.value)

        def on_leave(self, original_node):  # a hook of its own: it must still run, with its super()
            left.append(type(original_node).__name__)
            super().on_leave(original_node)

    visitor = Names()
    cst.parse_module(SOURCE).visit(visitor)
    assert seen == ["os", "f", "x", "os", "path", "join", "x"]
    assert left.count("Name") == 7 and left[-1] == "Module"
    assert "on_leave" not in vars(visitor) and "on_visit" in vars(visitor)  # plain hooks, its override kept


def test_a_decorated_visitor_keeps_its_matchers():
    import libcst.matchers as m

    class Inside(m.MatcherDecoratableVisitor):
        def __init__(self):
            super().__init__()
            self.found = []

        @m.call_if_inside(m.FunctionDef())
        def visit_Name(self, node):
            self.found.append(node.value)

        @m.visit(m.Import())
        def imports(self, node):
            self.found.append("import")

    class Subclass(Inside):  # a decorated method it inherits from a class of the user's still counts
        pass

    for _ in range(2):  # the second instance of a class takes what the first found out
        visitor = Inside() if _ == 0 else Subclass()
        cst.parse_module(SOURCE).visit(visitor)
        assert visitor.found == ["import", "f", "x", "os", "path", "join", "x"]
        assert "on_visit" not in vars(visitor)


def test_transformers_scan_for_decorators_once_per_class_and_keep_them(monkeypatch):
    import libcst.matchers as m
    import libcst.matchers._visitors as matcher_visitors

    scans = []
    real = matcher_visitors._gather_constructed_visit_funcs
    monkeypatch.setattr(matcher_visitors, "_gather_constructed_visit_funcs", lambda obj: scans.append(obj) or real(obj))

    class Plain(m.MatcherDecoratableTransformer):
        def leave_Name(self, original_node, updated_node):
            return updated_node.with_changes(value=updated_node.value.upper())

    class Decorated(m.MatcherDecoratableTransformer):
        @m.call_if_inside(m.FunctionDef())
        def leave_Name(self, original_node, updated_node):
            return updated_node.with_changes(value=updated_node.value.upper())

        @m.leave(m.Import())
        def imports(self, original_node, updated_node):
            return cst.RemoveFromParent()

    for _ in range(3):  # the later instances of each class take what the first scan found
        assert cst.parse_module(SOURCE).visit(Plain()).code == "import OS\n\ndef F(X):\n    return OS.PATH.JOIN(X, 'a')\n"
        assert cst.parse_module(SOURCE).visit(Decorated()).code == "\ndef F(X):\n    return OS.PATH.JOIN(X, 'a')\n"
    # A class none of whose functions carries a decorator's mark is never scanned; one that does is
    # scanned by LibCST, every instance (its tables hold the instance's bound methods).
    assert [type(obj).__name__ for obj in scans] == ["Decorated", "Decorated", "Decorated"]

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


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT / "fixtures")))
def test_fast_metadata_matches_libcsts(path: Path) -> None:
    module = cst.parse_module(path.read_bytes())
    ours = MetadataWrapper(module, unsafe_skip_copy=True)
    theirs = MetadataWrapper(module, unsafe_skip_copy=True)
    codemod._resolve_without_batched_walk(ours, PROVIDERS)
    assert {QualifiedNameProvider, ParentNodeProvider, ScopeProvider} <= set(ours._metadata)  # it did the work
    fast = ours.resolve_many(PROVIDERS)
    slow = theirs.resolve_many(PROVIDERS)
    checked = 0
    for node in walks.nodes(module, ()):
        for provider in (PositionProvider, ParentNodeProvider, ExpressionContextProvider):
            assert fast[provider].get(node) == slow[provider].get(node), (provider.__name__, node)
        assert _scope_key(fast[ScopeProvider].get(node)) == _scope_key(slow[ScopeProvider].get(node)), node
        assert (node in fast[QualifiedNameProvider]) == (node in slow[QualifiedNameProvider])
        if node in slow[QualifiedNameProvider]:
            assert _value(fast[QualifiedNameProvider][node]) == _value(slow[QualifiedNameProvider][node]), node
        checked += 1
    assert checked > 10

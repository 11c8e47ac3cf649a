"""``migrator.walks`` records a tree without LibCST's visit, and must meet its nodes exactly as a
``CSTVisitor`` does: same nodes, same order, same parents, same subtree ends, on every fixture,
sample and e2e data script (their golden outputs too: trees our codemods build)."""

from __future__ import annotations

from pathlib import Path

import libcst as cst
import pytest

from migrator import walks

ROOT = Path(__file__).resolve().parent.parent
FILES = sorted((ROOT / "fixtures").rglob("*.py")) + sorted((ROOT / "tests" / "e2e" / "data").rglob("*.py"))


def _empty_walk() -> walks._Walk:
    walk = walks._Walk.__new__(walks._Walk)
    walk.order, walk.end, walk.up, walk.at, walk.repeats, walk.by_type = [], [], [], {}, False, None
    return walk


def test_every_file_is_walked_as_libcst_visits_it() -> None:
    checked = 0
    for path in FILES:
        try:
            tree = cst.parse_module(path.read_bytes())
        except cst.ParserSyntaxError:
            continue
        fast, libcst_walk = _empty_walk(), _empty_walk()
        walks._record(fast, tree, -1)
        tree.visit(walks._Recorder(libcst_walk))
        assert [id(n) for n in fast.order] == [id(n) for n in libcst_walk.order], path
        assert (fast.end, fast.up, fast.repeats) == (libcst_walk.end, libcst_walk.up, libcst_walk.repeats), path
        checked += 1
    assert checked > 300


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

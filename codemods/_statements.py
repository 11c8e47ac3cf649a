"""What each statement of a block binds, reads and mutates, from LibCST's scope analysis.

The train-function machinery decides which statements move onto the workers and which stay on
the driver by following names: a statement that binds a name something else still needs must
stay where that something can see it. Scope analysis (not a textual scan) keeps that honest:
a comprehension variable or a nested function's parameter is not a read of a global.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Sequence

import libcst as cst
from libcst.metadata import Scope

from migrator import walks


@dataclass
class StatementFacts:
    index: int
    node: cst.BaseStatement
    binds: set[str] = field(default_factory=set)
    reads: set[str] = field(default_factory=set)
    #: Names whose object the statement changes in place (``parser.add_argument(...)``, ``x.a = 1``).
    mutates: set[str] = field(default_factory=set)
    #: Where each name is first bound by this statement, to keep source order: the binding
    #: node's place in a visit of the module (a visit meets nodes in source order).
    bound_at: dict[str, int] = field(default_factory=dict)


def root_name(node: cst.BaseExpression) -> str | None:
    """``a`` for ``a``, ``a.b.c``, ``a[0].b`` and ``a.b(...)``; None otherwise."""
    while True:
        if isinstance(node, cst.Name):
            return node.value
        if isinstance(node, cst.Attribute):
            node = node.value
        elif isinstance(node, cst.Subscript):
            node = node.value
        elif isinstance(node, cst.Call):
            node = node.func
        else:
            return None


def _mutated_roots(stmt: cst.BaseStatement) -> set[str]:
    found: set[str] = set()
    if not isinstance(stmt, cst.SimpleStatementLine):
        return found
    for small in stmt.body:
        if isinstance(small, cst.Expr) and isinstance(small.value, cst.Call):
            func = small.value.func
            if isinstance(func, cst.Attribute):
                name = root_name(func.value)
                if name:
                    found.add(name)
        elif isinstance(small, (cst.Assign, cst.AugAssign, cst.AnnAssign)):
            targets = (
                [t.target for t in small.targets] if isinstance(small, cst.Assign) else [small.target]
            )
            for target in targets:
                if isinstance(target, (cst.Attribute, cst.Subscript)):
                    name = root_name(target)
                    if name:
                        found.add(name)
    return found


def analyse_block(statements: Sequence[cst.BaseStatement], scope: Scope, module: cst.Module) -> list[StatementFacts]:
    """Facts for each statement of one block of ``module`` whose names live in ``scope``.

    Reads include reads from nested functions, lambdas and comprehensions inside the statement
    (they run later, but they still need the name to exist where the statement ends up).
    A node belongs to the statement whose subtree holds it, found from the module's recorded
    walk (``migrator.walks``), not from line and column: positions cost a generation of the
    whole module's code with every node's place, and most codemods need them nowhere else.
    """
    facts = [StatementFacts(i, s, mutates=_mutated_roots(s)) for i, s in enumerate(statements)]
    at, end = walks.places(module)
    starts = [at[s] for s in statements]
    ends = [end[i] for i in starts]

    def owner(node: cst.CSTNode) -> int | None:
        place = at.get(node)
        if place is None:
            return None
        i = bisect.bisect_right(starts, place) - 1
        if i >= 0 and place < ends[i]:
            return i
        return None

    for assignment in scope.assignments:
        node = getattr(assignment, "node", None)
        if node is not None:
            i = owner(node)
            if i is not None:
                facts[i].binds.add(assignment.name)
                first = facts[i].bound_at.get(assignment.name)
                if first is None or at[node] < first:
                    facts[i].bound_at[assignment.name] = at[node]
        for access in assignment.references:
            i = owner(access.node)
            if i is not None:
                facts[i].reads.add(assignment.name)
    # Names read but bound nowhere in this scope (globals seen from a function, builtins) are
    # reads too: a driver statement may depend on them.
    for access in scope.accesses:
        if not access.referents:
            i = owner(access.node)
            if i is not None and isinstance(access.node, cst.Name):
                facts[i].reads.add(access.node.value)
    return facts


class Metadata:
    """A codemod's resolved metadata for one provider, read like a mapping.

    LibCST hands some providers' values out lazily; ``get_metadata`` resolves them, a plain
    ``codemod.metadata[Provider][node]`` does not.
    """

    def __init__(self, codemod, provider) -> None:
        self.codemod = codemod
        self.provider = provider

    def __getitem__(self, node: cst.CSTNode):
        return self.codemod.get_metadata(self.provider, node)

    def get(self, node: cst.CSTNode, default=None):
        return self.codemod.get_metadata(self.provider, node, default)

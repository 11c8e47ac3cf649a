"""Helpers shared by the table-driven rename codemods.

* ``load_table(name)`` reads ``codemods/data/<name>.toml`` once (the rename tables are data, not code;
  ``migrator.stored`` keeps them parsed).
* ``TableCodemod`` is the LibCST command they derive from: qualified-name matching through imports
  (``QualifiedNameProvider``), "is this name known to hold an instance of X" through scope analysis,
  and the import visitors run after the transform, as in any ``VisitorBasedCodemodCommand``.

Keyword tables (rename / drop / follow-up per keyword) build on this in ``_keywords.py``.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Iterable, Sequence

import libcst as cst
import libcst.helpers
from libcst.helpers import get_full_name_for_node
from libcst.codemod import CodemodContext, VisitorBasedCodemodCommand
from libcst.matchers import MatcherDecoratableTransformer
from libcst.metadata import (
    Assignment,
    ClassScope,
    FunctionScope,
    PositionProvider,
    QualifiedNameProvider,
    ScopeProvider,
)

from migrator.codemod import MigrationCodemod, plain_visits
from migrator.options import ConvertOptions
from migrator.stored import toml_table
from migrator.walks import nodes

DATA = Path(__file__).resolve().parent / "data"


@functools.cache
def load_table(name: str) -> dict:
    return toml_table(DATA / f"{name}.toml")


def triggers(*names: Iterable[str]) -> tuple[bytes, ...]:
    """Byte triggers from dotted names: the last part of each (what a script must spell out)."""
    return tuple(sorted({name.rsplit(".", 1)[-1].encode() for group in names for name in group}))


def spelled_names(tree: cst.Module) -> set[str]:
    """Every qualified name a reference of ``tree`` could have, and more, without scopes: each
    dotted name as written, the same with its head replaced by whatever any import of the file
    binds that head to, and every import's own path. (A scope only ever picks among these, so a
    name matched by none of them is certainly not in the file: what ``nothing_to_do`` needs.)
    Except under a def or class of the file: names bound there are qualified under its name
    (``f.<locals>.x``, ``C.x``), which ``defines_any`` tells."""
    bound: dict[str, set[str]] = {}
    names: set[str] = set()
    for imp in nodes(tree, (cst.Import, cst.ImportFrom)):
        if isinstance(imp, cst.Import):
            for alias in imp.names:
                path = get_full_name_for_node(alias.name) or ""
                names.add(path)
                if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                    bound.setdefault(alias.asname.name.value, set()).add(path)
            continue
        module = "." * len(imp.relative) + ((get_full_name_for_node(imp.module) or "") if imp.module is not None else "")
        if isinstance(imp.names, cst.ImportStar):
            names.add(module)
            continue
        for alias in imp.names:
            name = get_full_name_for_node(alias.name) or ""
            path = f"{module}.{name}" if module and not module.endswith(".") else module + name
            names.add(path)
            local = alias.asname.name.value if alias.asname is not None and isinstance(alias.asname.name, cst.Name) else name
            bound.setdefault(local, set()).add(path)
    for ref in nodes(tree, (cst.Name, cst.Attribute)):
        dotted = get_full_name_for_node(ref)
        if not dotted:
            continue
        names.add(dotted)
        head, dot, rest = dotted.partition(".")
        names.update(path + dot + rest for path in bound.get(head, ()))
    return names


def string_is_one_of(node: cst.SimpleString, names: frozenset[str]) -> bool:
    """Whether a string literal's value is one of ``names`` (a keyword as a ``**{...}`` key), for a
    ``nothing_to_do``: its text as written, or one written with escapes (``"no\\x5fcuda"``) once
    evaluated. Only those are evaluated: a file of regular expressions is full of backslashes."""
    if node.raw_value in names:
        return True
    if "\\" not in node.raw_value:
        return False
    try:
        return node.evaluated_value in names
    except Exception:  # noqa: BLE001 - a string LibCST cannot evaluate could be anything
        return True


def defines_any(tree: cst.Module, tops: frozenset[str]) -> bool:
    """Whether a def or class of ``tree`` is named like one of ``tops``: the names bound inside it
    are qualified under that name (``trl.<locals>.SFTTrainer``), so ``spelled_names`` does not
    bound a name starting with it."""
    return any(d.name.value in tops for d in nodes(tree, (cst.FunctionDef, cst.ClassDef)))


class TableCodemod(VisitorBasedCodemodCommand, MigrationCodemod):
    METADATA_DEPENDENCIES = (PositionProvider, QualifiedNameProvider, ScopeProvider)

    def __init__(self, context: CodemodContext, options: ConvertOptions | None = None) -> None:
        MigrationCodemod.__init__(self, context, options)
        # Its scan for matcher decorators runs once per class where it finds none (migrator.codemod).
        MatcherDecoratableTransformer.__init__(self)
        # Without matcher decorators, MatcherDecoratableTransformer's hooks end up calling the plain
        # transformer's, after bookkeeping that costs more than the visit itself on every node;
        # plain hooks also let the visit skip subtrees it has nothing to do in.
        plain_visits(self)

    # -- names -----------------------------------------------------------------------------
    def qnames(self, node: cst.CSTNode) -> set[str]:
        return {q.name for q in self.get_metadata(QualifiedNameProvider, node, set())}

    def source(self, node: cst.CSTNode) -> str:
        return self.module.code_for_node(node)

    def _assigned(self) -> dict[cst.CSTNode, cst.BaseExpression]:
        """Every ``name = value`` target in the file, mapped to its value (computed once per file)."""
        if "_assigned_cache" in self.__dict__:
            return self.__dict__["_assigned_cache"]
        found: dict[cst.CSTNode, cst.BaseExpression] = self.__dict__.setdefault("_assigned_cache", {})
        for node in nodes(self.module, (cst.Assign, cst.AnnAssign)):
            if isinstance(node, cst.Assign):
                for target in node.targets:
                    found[target.target] = node.value
            elif node.value is not None:
                found[node.target] = node.value
        return found

    def values_of(self, name: cst.Name) -> list[cst.BaseExpression] | None:
        """The values every binding of ``name`` visible here assigns, or None if one is not ``name = value``."""
        scope = self.get_metadata(ScopeProvider, name, None)
        assignments = scope[name.value] if scope is not None else ()
        values = [self._assigned().get(a.node) for a in assignments if isinstance(a, Assignment)]
        if not assignments or len(values) != len(assignments) or any(v is None for v in values):
            return None
        return values  # type: ignore[return-value]

    def local_subclasses(self, classes: frozenset[str]) -> frozenset[str]:
        """``classes`` plus the module-level classes of this file that derive from one of them."""
        cache: dict[frozenset[str], frozenset[str]] = self.__dict__.setdefault("_subclasses", {})
        if classes not in cache:
            known = set(classes)
            for stmt in self.module.body:
                if isinstance(stmt, cst.ClassDef) and any(self.qnames(b.value) & known for b in stmt.bases):
                    known.add(stmt.name.value)
            cache[classes] = frozenset(known)
        return cache[classes]

    def instance_of(self, expr: cst.BaseExpression, classes: frozenset[str], _depth: int = 0) -> bool:
        """Whether ``expr`` is known to hold an instance of one of ``classes`` (or of a subclass here)."""
        if _depth > 3:
            return False
        if isinstance(expr, cst.Call):
            return bool(self.qnames(expr.func) & self.local_subclasses(classes))
        if not isinstance(expr, cst.Name):
            return False
        if self._is_self_of(expr, classes):
            return True
        values = self.values_of(expr)
        return bool(values) and all(self.instance_of(v, classes, _depth + 1) for v in values)

    def returned_by(self, expr: cst.BaseExpression, method: str, classes: frozenset[str], _depth: int = 0) -> bool:
        """Whether ``expr`` is known to be what ``.method()`` of an instance of ``classes`` returned."""
        if isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute) and expr.func.attr.value == method:
            return self.instance_of(expr.func.value, classes)
        values = self.values_of(expr) if isinstance(expr, cst.Name) and _depth < 3 else None
        return bool(values) and all(self.returned_by(v, method, classes, _depth + 1) for v in values)

    def _is_self_of(self, name: cst.Name, classes: frozenset[str]) -> bool:
        """``self`` inside a method of a class of this file that derives from one of ``classes``."""
        scope = self.get_metadata(ScopeProvider, name, None)
        if not isinstance(scope, FunctionScope) or not isinstance(scope.parent, ClassScope):
            return False
        function, klass = scope.node, scope.parent.node
        params = function.params.params if isinstance(function, cst.FunctionDef) else ()
        if not params or params[0].name.value != name.value or function.decorators:
            return False
        return isinstance(klass, cst.ClassDef) and klass.name.value in self.local_subclasses(classes)

    def uses_any(self, prefixes: Iterable[str]) -> str | None:
        """The first of ``prefixes`` (dotted names) that something this file imports or names
        (through its imports: ``tune.Tuner`` after ``from ray import tune``) is or lies under."""
        if "_uses_cache" not in self.__dict__:
            used: set[str] = self.__dict__.setdefault("_uses_cache", set())
            for node in nodes(self.module, (cst.ImportFrom, cst.Name, cst.Attribute)):
                if isinstance(node, cst.ImportFrom):
                    module = cst.helpers.get_full_name_for_node(node.module) if node.module else ""
                    names = node.names if isinstance(node.names, Sequence) else ()
                    used.update(f"{module}.{a.evaluated_name}" for a in names)
                else:
                    used.update(self.qnames(node))
        used = self.__dict__["_uses_cache"]
        for prefix in prefixes:
            if any(name == prefix or name.startswith(prefix + ".") for name in used):
                return prefix
        return None

    def attributes_read(self) -> set[str]:
        """Every ``.attr`` name the file spells out (to know whether it reads a field we would drop)."""
        if "_attributes_cache" in self.__dict__:
            return self.__dict__["_attributes_cache"]
        names: set[str] = self.__dict__.setdefault("_attributes_cache", set())
        names.update(node.attr.value for node in nodes(self.module, (cst.Attribute,)))
        return names

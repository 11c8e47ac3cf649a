"""Read-only walks over a tree without walking it again: one recorded walk per module, then list slices.

Every ``node.visit(visitor)`` in LibCST rebuilds each node it passes (even for a read-only
``CSTVisitor``), so a 70-line script costs several milliseconds per walk, and one conversion
asked the same tree for its calls, names and assignments a dozen times. Trees are immutable:
the nodes of one module, in the order a visitor meets them, never change. ``nodes`` records that
order once per module (the last few modules are kept, by identity) and answers from it, for
the module and for any node inside it.

``nodes(tree, types)`` yields exactly what a ``CSTVisitor`` with ``visit_<Type>`` methods for
``types`` would be called with, in the same order; ``prune`` are the types whose ``visit_``
returns False (their children are skipped, the node itself is still met).
"""

from __future__ import annotations

import json
from bisect import bisect_left
from collections import Counter
from pathlib import Path
from types import FunctionType
from typing import Iterator

import libcst as cst

#: How many modules keep their recorded walk. Holding them also keeps their nodes' ids unique.
_KEEP = 4


class _Walk:
    __slots__ = ("order", "end", "up", "at", "ids", "repeats", "by_type", "holding")

    def __init__(self, root: cst.CSTNode, source: _Walk | None = None) -> None:
        #: Every node under root (root first), in the order a visitor meets them.
        self.order: list[cst.CSTNode] = []
        #: end[i]: one past the last node of order[i]'s subtree.
        self.end: list[int] = []
        #: up[i]: the position of order[i]'s parent (-1 for root).
        self.up: list[int] = []
        #: A node's position in ``order`` (a node placed twice has the same subtree at both).
        self.at: dict[cst.CSTNode, int] = {}
        #: The ids of the nodes in ``at`` (asked without calling a node's ``__hash__``).
        self.ids: set[int] = set()
        #: Whether some node other than whitespace or a comment sits in two places.
        self.repeats = False
        #: type -> the positions of the nodes of exactly that type, ascending (built when first asked).
        self.by_type: dict[type, list[int]] | None = None
        #: types -> holding[i]: whether order[i]'s subtree (order[i] included) holds a node of those types.
        self.holding: dict[frozenset[type], bytearray] = {}
        _record(self, root, -1, source)

    def add(self, node: cst.CSTNode, parent: int) -> int:
        """Record ``node`` next, under the node at ``parent``; its subtree's end is set on leaving it."""
        i = len(self.order)
        if id(node) in self.ids and not isinstance(node, _TRIVIA):
            self.repeats = True
        self.ids.add(id(node))
        self.at[node] = i
        self.order.append(node)
        self.end.append(0)
        self.up.append(parent)
        return i

    def copy(self, source: _Walk, j: int, parent: int) -> None:
        """Record next, under the node at ``parent``, the subtree at ``source``'s position ``j``:
        the same nodes in the same order (trees are immutable), as list slices."""
        stop = source.end[j]
        nodes = source.order[j:stop]
        base = len(self.order)
        shift = base - j
        ids = set(map(id, nodes))
        if not self.repeats and (len(ids) < len(nodes) or not self.ids.isdisjoint(ids)):
            # A node met before, or twice in the subtree: a repeat unless it is trivia.
            met, counts = self.ids & ids, Counter(map(id, nodes))
            self.repeats = any((id(n) in met or counts[id(n)] > 1) and not isinstance(n, _TRIVIA) for n in nodes)
        self.ids |= ids
        self.at.update(zip(nodes, range(base, base + len(nodes))))
        self.order.extend(nodes)
        self.end.extend([e + shift for e in source.end[j:stop]])
        self.up.append(parent)
        self.up.extend([u + shift for u in source.up[j + 1:stop]])

    def positions(self, kind: type) -> list[int]:
        if self.by_type is None:
            by_type: dict[type, list[int]] = {}
            for i, node in enumerate(self.order):
                by_type.setdefault(type(node), []).append(i)
            self.by_type = by_type
        return self.by_type.get(kind, [])

    def holds(self, types: frozenset[type]) -> bytearray:
        """For each position, whether a node of ``types`` lies in that node's subtree (the node included)."""
        marks = self.holding.get(types)
        if marks is None:
            marks = self.holding[types] = bytearray(len(self.order))
            up = self.up
            for kind in types:
                for j in self.positions(kind):
                    while j >= 0 and not marks[j]:  # the node and its ancestors, up to one marked already
                        marks[j] = 1
                        j = up[j]
        return marks


def _record(walk: _Walk, node: cst.CSTNode, parent: int, source: _Walk | None = None) -> None:
    """Record ``node`` and its subtree as a ``CSTVisitor`` meets them, without LibCST's visit:
    that rebuilds every node it passes, even for a read-only visitor (most of a walk's cost).

    A subtree that ``source`` (the walk of the tree a transform was given) holds is copied from
    it: a transform gives back the subtrees it had nothing to do in as they were."""
    if source is not None:
        j = source.at.get(node)
        if j is not None:
            walk.copy(source, j, parent)
            return
    fields = _child_fields(type(node))
    if fields is None:  # a node whose children LibCST visits in its own way: LibCST's walk
        recorder = _Recorder(walk)
        recorder.open.append(parent)
        node.visit(recorder)
        return
    i = walk.add(node, parent)
    for name in fields:
        value = getattr(node, name)
        if isinstance(value, cst.CSTNode):
            _record(walk, value, i, source)
        elif isinstance(value, (list, tuple)):
            for item in value:
                _record(walk, item, i, source)
    walk.end[i] = len(walk.order)


_FIELDS: dict[type, tuple[str, ...] | None] = {}
_VISITS = {"visit_required", "visit_optional", "visit_sentinel", "visit_sequence", "visit_body_sequence"}
#: A field visited one way or another depending on its value (``ImportFrom.names``: a star, or a
#: sequence of names; an f-string's ``format_spec``: a sequence, or None and not visited).
EITHER = "either"


#: ``_read_children`` of every LibCST node class, stored for the release it was read from: reading
#: the source of the hundred-odd classes a conversion meets costs a cold process about 0.1 s.
#: ``tests/test_walks.py`` checks it against the source; ``write_fields_table()`` rewrites it.
FIELDS_TABLE = Path(__file__).parent / "data" / "libcst_fields.json"
_stored: dict | None = None


def libcst_release() -> str:
    try:  # the version file LibCST's build writes (importlib.metadata costs more to import)
        from libcst._version import __version__
    except ImportError:
        return ""
    return __version__


def _stored_table() -> dict:
    global _stored
    if _stored is None:
        try:
            table = json.loads(FIELDS_TABLE.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            table = {}
        _stored = table if table.get("libcst") == libcst_release() else {}
    return _stored


def _stored_children(kind: type) -> tuple[tuple[str, str], ...] | None | bool:
    """``_read_children(kind)`` from the stored table; False where the table does not hold ``kind``."""
    if not kind.__module__.startswith("libcst._nodes."):
        return False
    table = _stored_table()
    fields = table.get("fields", {}).get(kind.__name__, False)
    visits = table.get("visits", {}).get(kind.__name__, False)
    if fields is None or visits is None:
        return None
    if fields is False or visits is False or len(fields) != len(visits):
        return False
    return tuple(zip(fields, visits))


_CHILDREN: dict[type, tuple[tuple[str, str], ...] | None] = {}


def child_visits(kind: type) -> tuple[tuple[str, str], ...] | None:
    """For each field ``kind._visit_and_replace_children`` visits, in its order: the field, and the
    name of LibCST's function that visits it (``visit_required``...) or ``EITHER``. None where
    LibCST visits the children in a way of its own. From the stored table where it holds ``kind``,
    else read from the source (``_read_children``)."""
    if kind in _CHILDREN:
        return _CHILDREN[kind]
    stored = _stored_children(kind)
    children = _read_children(kind) if stored is False else stored
    _CHILDREN[kind] = children
    return children


def _child_fields(kind: type) -> tuple[str, ...] | None:
    """The fields ``kind._visit_and_replace_children`` visits, in its order."""
    if kind in _FIELDS:
        return _FIELDS[kind]
    children = child_visits(kind)
    fields = None if children is None else tuple(name for name, _ in children)
    _FIELDS[kind] = fields
    return fields


def node_classes() -> list[type]:
    """LibCST's concrete node classes, by name."""
    found = {kind.__name__: kind for kind in subclasses((cst.CSTNode,))
             if kind.__module__.startswith("libcst._nodes.") and not getattr(kind, "__abstractmethods__", None)}
    return [found[name] for name in sorted(found)]


def fields_table() -> dict:
    read = {kind.__name__: _read_children(kind) for kind in node_classes()}
    return {"libcst": libcst_release(),
            "fields": {name: None if c is None else [field for field, _ in c] for name, c in read.items()},
            "visits": {name: None if c is None else [visit for _, visit in c] for name, c in read.items()}}


def write_fields_table() -> None:
    """After a LibCST upgrade: ``python -c "from migrator import walks; walks.write_fields_table()"``."""
    table = fields_table()
    parts = []
    for key in ("fields", "visits"):
        lines = [f"  {json.dumps(name)}: {json.dumps(value)}" for name, value in sorted(table[key].items())]
        parts.append(' "%s": {\n%s\n }' % (key, ",\n".join(lines)))
    text = '{\n "libcst": %s,\n%s\n}\n' % (json.dumps(table["libcst"]), ",\n".join(parts))
    FIELDS_TABLE.write_text(text, encoding="utf-8")


def _read_children(kind: type) -> tuple[tuple[str, str], ...] | None:
    """``(field, visit)`` for each field ``kind._visit_and_replace_children`` visits, in its order,
    read from its source: ``visit`` names LibCST's function that visits it (``visit_required``), or
    is ``EITHER``.

    Nearly every node class's method is one ``return Kind(field=visit_x(self, "field", ...), ...)``:
    the keyword arguments are evaluated, so visited, in order. Any other shape (a branch, a helper)
    gives None, and such nodes are walked by LibCST; ``tests/test_walks.py`` compares the two
    orders over every fixture.
    """
    import ast
    import inspect
    import textwrap

    fields: tuple[tuple[str, str], ...] | None = None
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(kind._visit_and_replace_children)))
        *aliases, ret = [b for b in tree.body[0].body
                         if not (isinstance(b, ast.Expr) and isinstance(b.value, ast.Constant))]  # docstrings
        # ``names = self.names`` before the return, at most; then one constructor call.
        data = {a.targets[0].id for a in aliases if isinstance(a, ast.Assign) and isinstance(a.targets[0], ast.Name)
                and isinstance(a.value, ast.Attribute)}
        if not aliases and isinstance(ret, ast.Return) and isinstance(ret.value, ast.Name) and ret.value.id == "self":
            fields = ()  # a leaf: whitespace, a name, a comment
        elif len(data) == len(aliases) and isinstance(ret, ast.Return) and isinstance(ret.value, ast.Call) \
                and not ret.value.args:
            names = []
            for keyword in ret.value.keywords:
                kind_of = _keyword_kind(keyword.value, keyword.arg, data)
                if kind_of is None:
                    break
                if kind_of != "data":
                    names.append((keyword.arg, kind_of))
            else:
                fields = tuple(names)
    except (OSError, TypeError, SyntaxError, ValueError):
        fields = None
    return fields


def _keyword_kind(value, field: str | None, data: set[str]) -> str | None:
    """The name of the function for ``visit_x(self, "field", ...)``, ``EITHER`` for a choice between
    two such calls (or between one and None), "data" for a value copied over (``self.encoding``),
    None for anything else."""
    import ast

    if isinstance(value, ast.IfExp):
        # A choice between two visits of the field, or between a visit and None.
        body, orelse = _keyword_kind(value.body, field, data), _keyword_kind(value.orelse, field, data)
        none = lambda v: isinstance(v, ast.Constant) and v.value is None  # noqa: E731
        if body == orelse and body in _VISITS:
            return body
        # What ``_visit_either`` tells apart by the value alone: None (not visited), a node, a sequence.
        if {body, orelse} in ({"visit_sequence", "visit_required"}, {"visit_sequence", None}, {"visit_required", None}) \
                and (none(value.body) or none(value.orelse) or None not in (body, orelse)):
            return EITHER
        return None
    if isinstance(value, ast.Call):
        ok = (isinstance(value.func, ast.Name) and value.func.id in _VISITS and len(value.args) >= 3
              and isinstance(value.args[1], ast.Constant) and value.args[1].value == field)
        return value.func.id if ok else None
    if isinstance(value, ast.Attribute) and isinstance(value.value, ast.Name) and value.value.id == "self":
        return "data"
    return None


#: Whitespace, newlines, comments and operator tokens (a comma, the ``=`` of a keyword): codemods
#: share one such node between places (one ``EmptyLine()`` for two blank lines, the ``=`` of the
#: argument a new one is modelled on) and nothing asks metadata about them, so a tree that
#: repeats only these needs no copy.
_TRIVIA = (cst.BaseParenthesizableWhitespace, cst.EmptyLine, cst.Newline, cst.TrailingWhitespace, cst.Comment,
           cst.Comma, cst.AssignEqual, cst.Colon, cst.Dot, cst.Semicolon, cst.ImportStar, cst.BaseAugOp,
           cst.BaseBinaryOp, cst.BaseBooleanOp, cst.BaseCompOp, cst.BaseUnaryOp)


class _Recorder(cst.CSTVisitor):
    def __init__(self, walk: _Walk) -> None:
        super().__init__()
        self.walk = walk
        self.open: list[int] = []

    def on_visit(self, node: cst.CSTNode) -> bool:
        self.open.append(self.walk.add(node, self.open[-1] if self.open else -1))
        return True

    def on_leave(self, original_node: cst.CSTNode) -> None:
        self.walk.end[self.open.pop()] = len(self.walk.order)

    def on_visit_attribute(self, node: cst.CSTNode, attribute: str) -> None:
        pass

    def on_leave_attribute(self, original_node: cst.CSTNode, attribute: str) -> None:
        pass


_walks: dict[cst.Module, _Walk] = {}


def _walk_of(node: cst.CSTNode) -> tuple[_Walk, int]:
    """The recorded walk that holds ``node``, and its position there."""
    for walk in reversed(_walks.values()):
        i = walk.at.get(node)
        if i is not None:
            return walk, i
    walk = _Walk(node, _source(node))
    if isinstance(node, cst.Module):  # only whole modules are kept: statements come from them
        _walks[node] = walk
        while len(_walks) > _KEEP:
            del _walks[next(iter(_walks))]
    return walk, 0


def _source(node: cst.CSTNode) -> _Walk | None:
    """The newest recorded walk, where ``node`` is a module that shares a statement with it (a
    transform's result, whose untouched subtrees are the given tree's): its subtrees are copied
    from there. None otherwise, so that a fresh parse pays no lookup per node."""
    if not isinstance(node, cst.Module) or not _walks:
        return None
    newest = next(reversed(_walks.values()))
    for statement in node.body:
        block = getattr(getattr(statement, "body", None), "body", None)  # a compound statement's
        if statement in newest.at or (block is not None and any(inner in newest.at for inner in block)):
            return newest
    return None


def _found(walk: _Walk, i: int, types: tuple[type, ...]) -> list[int]:
    """Positions of the nodes of ``types`` in the subtree at position ``i``, ascending."""
    stop = walk.end[i]
    found: list[int] = []
    for kind in types:
        positions = walk.positions(kind)
        found.extend(positions[bisect_left(positions, i):bisect_left(positions, stop)])
    if len(types) > 1:
        found.sort()
    return found


def nodes(tree: cst.CSTNode, types: tuple[type, ...], prune: tuple[type, ...] = ()) -> Iterator[cst.CSTNode]:
    """The nodes of exactly ``types`` under ``tree`` (``tree`` included), in visiting order; every node for ``()``.

    A node of a ``prune`` type (``tree`` included) is yielded if it is of ``types``, but nothing
    under it is.
    """
    walk, i = _walk_of(tree)
    order, end = walk.order, walk.end
    stop = end[i]
    if not types:
        yield from order[i:stop]
        return
    if not prune:
        for j in _found(walk, i, types):
            yield order[j]
        return
    while i < stop:
        node = order[i]
        kind = type(node)
        if kind in types:
            yield node
        i = end[i] if kind in prune else i + 1


def nodes_left(tree: cst.CSTNode, types: tuple[type, ...]) -> list[cst.CSTNode]:
    """The nodes of exactly ``types`` under ``tree``, in the order a visitor's ``leave_`` methods meet them.

    A node is left after everything under it: ordered by where its subtree ends, the deeper first.
    """
    walk, i = _walk_of(tree)
    end = walk.end
    return [walk.order[j] for j in sorted(_found(walk, i, types), key=lambda j: (end[j], -j))]


def parents(module: cst.Module) -> dict[cst.CSTNode, cst.CSTNode]:
    """Every node's parent, as ``ParentNodeProvider`` has it (the children a visit meets), from the recorded walk.

    ``ParentNodeProvider`` walks the tree once more and asks every node for its ``children`` (one
    more rebuild of each node); this costs a dictionary built from the walk ``nodes`` records anyway.
    The tree must hold no node twice (``repeats_a_node`` tells), as a metadata wrapper's tree does.
    """
    walk, i = _walk_of(module)
    order, up = walk.order, walk.up
    return {order[j]: order[up[j]] for j in range(i + 1, walk.end[i])}


#: ``CSTVisitor`` and its bases: their ``visit_ClassDef_bases``... are LibCST's empty stubs.
_VISITOR_BASES = frozenset(cst.CSTVisitor.__mro__)


def handler_types(cls: type, skip: frozenset[type], *, fields_only: bool = False) -> frozenset[type]:
    """The node types ``cls`` has a ``visit_``/``leave_`` method for (``leave_Call``), or with
    ``fields_only`` a per-field one (``visit_ClassDef_bases``), read from the classes of its MRO
    not in ``skip`` (LibCST's bases, whose typed stubs do nothing).

    Kept on the class itself: codemods define visitor classes inside functions, a new class per
    call, which a table keyed by class would keep alive (and scan again) for every file."""
    key = "_migrate_field_types" if fields_only else "_migrate_handled_types"
    found = cls.__dict__.get(key)
    if found is None:
        kinds: set[type] = set()
        for klass in cls.__mro__:
            if klass in skip:
                continue
            for name in vars(klass):
                prefix, _, rest = name.partition("_")
                kind, _, attribute = rest.partition("_")
                node_class = getattr(cst, kind, None)
                if prefix in ("visit", "leave") and (attribute or not fields_only) and isinstance(node_class, type) \
                        and issubclass(node_class, cst.CSTNode):
                    kinds.add(node_class)
        found = frozenset(kinds)
        type.__setattr__(cls, key, found)
    return found


def _attribute_types(cls: type) -> frozenset[type]:
    """The node types whose fields ``cls`` has a handler for: LibCST calls those around each
    field, which a recorded walk does not know."""
    return handler_types(cls, _VISITOR_BASES, fields_only=True)


def subclasses(kinds) -> frozenset[type]:
    """``kinds`` and every class derived from them (``BaseStatement``: ``If``, ``For``...)."""
    found, pending = set(), list(kinds)
    while pending:
        kind = pending.pop()
        if kind not in found:
            found.add(kind)
            pending.extend(kind.__subclasses__())
    return frozenset(found)


_FIELD_HOOKS = ("on_visit_attribute", "on_leave_attribute")


def replay(tree: cst.CSTNode, visitor: cst.CSTVisitor, libcst_visit) -> bool:
    """Make the calls ``tree.visit(visitor)`` makes on a read-only visitor, in the same order,
    from the recorded walk: LibCST's visit rebuilds every node it passes, for nothing here.

    A node whose fields the visitor has handlers for is visited by ``libcst_visit`` (LibCST's
    own visit), subtree and all. Returns False, having called nothing, where the visitor's
    per-field hooks are its own (an instance's hooks count: the engine gives undecorated
    matcher visitors plain ones).
    """
    if any(getattr(getattr(visitor, hook), "__func__", None) is not getattr(cst.CSTVisitor, hook) for hook in _FIELD_HOOKS):
        return False
    by_field = _attribute_types(type(visitor))
    walk, i = _walk_of(tree)
    order, end = walk.order, walk.end
    stop = end[i]
    on_visit, on_leave = _dispatching(visitor, "on_visit"), _dispatching(visitor, "on_leave")
    open_nodes: list[tuple[int, cst.CSTNode]] = []  # (end of subtree, node): the nodes not yet left
    while i < stop:
        while open_nodes and open_nodes[-1][0] <= i:
            on_leave(open_nodes.pop()[1])
        node = order[i]
        if by_field and type(node) in by_field:
            libcst_visit(node, visitor)
            i = end[i]
            continue
        inside = on_visit(node)
        open_nodes.append((end[i], node))
        i = i + 1 if inside else end[i]
    while open_nodes:
        on_leave(open_nodes.pop()[1])
    return True


def _defined(cls: type, name: str):
    """The attribute as the class that defines it holds it (a ``staticmethod`` object, not its function)."""
    for klass in cls.__mro__:
        if name in vars(klass):
            return vars(klass)[name]
    return None


def _dispatching(visitor: cst.CSTVisitor, hook: str):
    """``visitor.on_visit`` or ``on_leave``; where that is ``CSTVisitor``'s, the same calls with the
    method for each node type looked up once per visitor class rather than by name at every node
    (codemods make many short-lived visitors; LibCST's scope visitor replays many subtrees), and
    LibCST's empty ``visit_``/``leave_`` stubs not called at all. A visitor with handlers of its
    own instance (set as attributes) has them looked up on the instance."""
    bound = getattr(visitor, hook)
    if getattr(bound, "__func__", None) is not getattr(cst.CSTVisitor, hook):
        return bound
    state = getattr(visitor, "__dict__", None)
    key = "_migrate_" + hook
    if state is not None and key in state:
        return state[key]
    prefix = "visit_" if hook == "on_visit" else "leave_"
    cls = type(visitor)
    if state is None or any(name.startswith(prefix) for name in state):
        owner, methods = visitor, {}  # looked up on this instance, for this instance
    else:
        table_key = "_migrate_handlers_" + hook
        owner, methods = cls, cls.__dict__.get(table_key)
        if methods is None:
            methods = {}
            type.__setattr__(cls, table_key, methods)

    def method(kind: type):
        name = prefix + kind.__name__
        found = getattr(owner, name, None)
        stub = getattr(cst.CSTVisitor, name, False)
        if found is stub or getattr(found, "__func__", None) is stub:
            found = None  # the typed stub: returns None (visit the children), does nothing
        elif found is not None and (owner is not cls or not isinstance(_defined(cls, name), FunctionType)):
            # Set on the instance, a static or class method, or stranger: as the instance sees it.
            found = lambda handler_self, node, _name=name: getattr(handler_self, _name)(node)  # noqa: E731
        methods[kind] = found
        return found

    if hook == "on_visit":
        def dispatch(node):
            kind = type(node)
            found = methods[kind] if kind in methods else method(kind)
            return found is None or found(visitor, node) is not False
    else:
        def dispatch(node):
            kind = type(node)
            found = methods[kind] if kind in methods else method(kind)
            if found is not None:
                found(visitor, node)
    if state is not None:
        state[key] = dispatch
    return dispatch


def places(module: cst.Module) -> tuple[dict[cst.CSTNode, int], list[int]]:
    """``(at, end)`` for ``module``'s recorded walk: ``at[node]`` is a node's place in the order a
    visitor meets them (source order), ``end[at[node]]`` one past the last place of its subtree.
    Both are the walk's own: read them, never change them."""
    walk, _ = _walk_of(module)
    return walk.at, walk.end


def repeats_a_node(module: cst.Module) -> bool:
    """Whether one node object sits in two places of ``module`` (a codemod may build such a tree),
    whitespace and comments aside."""
    return _walk_of(module)[0].repeats


def untouched(node: cst.CSTNode, types: frozenset[type]) -> bool:
    """Whether ``node``'s subtree (``node`` included) holds no node of ``types``, read from the recorded
    walk of a module that holds it; False where none does (a node a codemod just built)."""
    for walk in reversed(_walks.values()):
        i = walk.at.get(node)
        if i is not None:
            return not walk.holds(types)[i]
    return False


def record(module: cst.Module) -> None:
    """Record ``module``'s walk now, if it is not recorded yet."""
    _walk_of(module)

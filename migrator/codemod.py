"""The base every codemod in ``codemods/`` derives from.

A codemod is a real LibCST ``CodemodCommand`` (so the import visitors run after it): ``python -m libcst.tool`` can drive it too. On top of that
it declares what the engine needs to schedule it without special cases:

* ``DESCRIPTION``: one line for ``migrate list``.
* ``TRIGGERS``: whole identifiers or dotted names, as bytes (``b"*Trainer"``: any identifier ending so; ``b"transformers.modeling_*"``: any name so starting); a file that names none of them is never parsed for this codemod
  (the raw-bytes pre-filter that keeps whole-repository runs and pre-commit fast).
* ``MODULES`` (optional): module names; when given, a file must also import one of them
  (``migrator.prefilter``), so that plain words in comments cannot let it through.
* ``ORDER``: codemods run in ascending order over one parsed tree. Renames run before the
  structural rewrites so that those see current names.

While it transforms, a codemod records what it did (``self.change``) and what a human must
still do (``self.follow_up``); both carry the line of the node in the code the codemod was given.
``self.earlier`` gives a codemod what the engine knows from before it ran: the file's original
bytes and the entries of the codemods that ran before it (the audit that no file is left without
a word reads them).
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import replace
from types import MappingProxyType, MethodType
from typing import ClassVar, Iterator

import libcst as cst
from libcst._nodes.internal import visit_body_sequence, visit_optional, visit_required, visit_sentinel, visit_sequence
from libcst.codemod import Codemod, CodemodCommand, CodemodContext
from libcst.codemod.visitors import AddImportsVisitor
from libcst.matchers import MatcherDecoratableTransformer, MatcherDecoratableVisitor
from libcst.metadata import scope_provider
from libcst.metadata import (
    BatchableMetadataProvider,
    MetadataWrapper,
    ParentNodeProvider,
    PositionProvider,
    QualifiedNameProvider,
    ScopeProvider,
)

from migrator import node_classes, walks
from migrator.options import ConvertOptions
from migrator.results import Entry, EntryKind  # noqa: F401  (re-exported for codemods)

#: Key of ``CodemodContext.scratch`` under which the engine passes ``(original bytes, entries so far)``.
EARLIER = "migrate.earlier"


#: The fast paths below lean on LibCST internals: the wrapper's metadata cache, what providers
#: compute, a transformer's matcher tables. They were checked against these releases
#: (tests/test_metadata_fast_path.py compares them with LibCST's own resolution, node by node);
#: on any other release LibCST does all of it as it always has, only slower.
CHECKED_LIBCST = ("1.9.",)
LIBCST_FAST = walks.libcst_release().startswith(CHECKED_LIBCST)


def _resolve_without_batched_walk(wrapper: MetadataWrapper, providers) -> None:
    """Resolve on ``wrapper`` what LibCST would, minus the walks that do nothing.

    LibCST resolves batchable providers in one batched walk over the whole tree per dependency
    level (three for scopes and qualified names). The parent, expression-context, scope and
    qualified-name providers do all their work in ``visit_Module``, with a walk of their own: the
    batched walk only calls that at the root, then rebuilds every node for nothing. Such
    providers are run here the way the batched walk runs them, and stored in the wrapper's cache
    as LibCST stores them, so ``resolve`` finds them done; anything else is left to LibCST.
    """
    cache = wrapper._metadata
    todo = set()
    pending = list(providers)
    while pending:  # the providers and their dependencies, as LibCST gathers them
        provider = pending.pop()
        if provider not in todo and provider not in cache:
            todo.add(provider)
            pending.extend(provider.METADATA_DEPENDENCIES)
    while True:
        ready = [p for p in todo if p not in cache and all(d in cache for d in p.METADATA_DEPENDENCIES)
                 and (_module_only(p) or not issubclass(p, BatchableMetadataProvider))]
        if not ready:
            return
        for provider_class in ready:
            if provider_class is PositionProvider:
                cache[provider_class] = _Positions(wrapper)
                continue
            if not issubclass(provider_class, BatchableMetadataProvider):
                # As LibCST generates it. Done here because LibCST follows
                # it with a batched walk even when no batchable provider is left to run.
                cache[provider_class] = (
                    provider_class(wrapper._cache.get(provider_class))._gen(wrapper)
                    if provider_class.gen_cache else provider_class()._gen(wrapper)
                )
                continue
            if provider_class is ParentNodeProvider:
                # The same mapping, from the walk ``migrator.walks`` records anyway, without
                # asking every node for its children. The wrapper's tree holds no node twice:
                # the engine copies a changed tree in which one does.
                cache[provider_class] = MappingProxyType(walks.parents(wrapper.module))
                continue
            if provider_class is QualifiedNameProvider:
                cache[provider_class] = _QualifiedNames(wrapper.module, cache[ScopeProvider])
                continue
            provider = provider_class()
            with provider.resolve(wrapper), _scope_visitor_leaving_faster(provider_class):
                provider.visit_Module(wrapper.module)
            cache[provider_class] = MappingProxyType(dict(provider._computed))


_LIBCST_SCOPE_VISITOR = scope_provider.ScopeVisitor


class _ScopeVisitor(_LIBCST_SCOPE_VISITOR):
    """LibCST's scope visitor, leaving each node with the same effects in fewer steps.

    ``ScopeVisitor.on_leave`` runs on every node of a tree: it records the node's scope through
    ``set_metadata``, tests the node against the assignment-like classes, then lets
    ``CSTVisitor.on_leave`` format ``f"leave_{name}"`` and look that up, to call, for nearly every
    node, one of the typed stubs that do nothing: 6% of a conversion. Here the same: the scope
    stored as ``set_metadata`` stores it, and per node class, once, whether it is assignment-like
    and which of the visitor's own ``leave_`` methods to call, if any.
    """

    def on_leave(self, original_node: cst.CSTNode) -> None:
        self.provider._computed[original_node] = self.scope
        kind = type(original_node)
        assignment_like, leave = _SCOPE_LEAVING.get(kind) or _scope_leaving(kind)
        if assignment_like:
            self.scope._assignment_count += 1
        if leave is not None:
            leave(self, original_node)


_SCOPE_LEAVING: dict[type, tuple] = {}


def _scope_leaving(kind: type) -> tuple:
    name = "leave_" + kind.__name__
    leave = getattr(_LIBCST_SCOPE_VISITOR, name, None)
    if leave is getattr(cst.CSTVisitor, name, None):
        leave = None  # the typed stub: does nothing
    _SCOPE_LEAVING[kind] = found = (issubclass(kind, scope_provider._ASSIGNMENT_LIKE_NODES), leave)
    return found


#: Whether ``_ScopeVisitor`` does what LibCST's does: checked against the release's own methods.
_SCOPE_FAST = (getattr(_LIBCST_SCOPE_VISITOR.on_leave, "__qualname__", "") == "ScopeVisitor.on_leave"
               and scope_provider.ScopeProvider.set_metadata is BatchableMetadataProvider.set_metadata
               and hasattr(scope_provider, "_ASSIGNMENT_LIKE_NODES"))


@contextmanager
def _scope_visitor_leaving_faster(provider_class: type) -> Iterator[None]:
    """For ``ScopeProvider.visit_Module``, which builds its visitor from the module's own name."""
    if provider_class is not ScopeProvider or not _SCOPE_FAST:
        yield
        return
    scope_provider.ScopeVisitor = _ScopeVisitor
    try:
        yield
    finally:
        scope_provider.ScopeVisitor = _LIBCST_SCOPE_VISITOR


class _Positions(Mapping):
    """``PositionProvider``'s mapping for a wrapper's tree, generated when first read.

    Every codemod declares positions (its report's line numbers), but most of the codemods that
    run on a tree record nothing there; generating the code with every node's position costs about
    four times a plain ``module.code``, a tenth of a conversion when done for every tree. Generated
    by ``migrator.positions``, the same ranges in less time.
    """

    def __init__(self, wrapper: MetadataWrapper) -> None:
        self._wrapper: MetadataWrapper | None = wrapper
        self._computed: Mapping = MappingProxyType({})

    def _positions(self) -> Mapping:
        if self._wrapper is not None:
            from migrator.positions import positions  # LibCST internals: the fast path's only

            self._computed, self._wrapper = positions(self._wrapper.module), None
        return self._computed

    def __getitem__(self, node):
        return self._positions()[node]

    def __iter__(self):
        return iter(self._positions())

    def __len__(self) -> int:
        return len(self._positions())


class _QualifiedNames(Mapping):
    """What ``QualifiedNameProvider`` computes, for the same nodes: a node's names, asked of its
    scope when first read (as LibCST's ``LazyValue`` does), an empty set outside any scope.

    LibCST's provider walks the tree once more only to store a lazy value for every node, about
    a hundred thousand objects per conversion of which a codemod reads a few hundred.
    """

    def __init__(self, module: cst.Module, scopes) -> None:
        self._nodes, _ = walks.places(module)  # every node of the tree
        self._scopes = scopes
        self._computed: dict = {}

    def __getitem__(self, node):
        try:
            return self._computed[node]
        except KeyError:
            if node not in self._nodes:
                raise
        scope = self._scopes.get(node)
        value = self._computed[node] = scope.get_qualified_names_for(node) if scope else set()
        return value

    def __iter__(self):
        return iter(self._nodes)

    def __len__(self) -> int:
        return len(self._nodes)


_MODULE_ONLY: dict[type, bool] = {}


def _module_only(provider_class: type) -> bool:
    """A batchable provider whose only hook is ``visit_Module`` (asked once per class: it is slow)."""
    if provider_class not in _MODULE_ONLY:
        _MODULE_ONLY[provider_class] = (
            isinstance(provider_class, type) and issubclass(provider_class, BatchableMetadataProvider)
            and not provider_class.gen_cache and set(provider_class().get_visitors()) == {"visit_Module"}
        )
    return _MODULE_ONLY[provider_class]


_UNDECORATED_VISITORS: dict[type, bool] = {}
_UNDECORATED_TRANSFORMERS: dict[type, bool] = {}
_VISITOR_INIT = MatcherDecoratableVisitor.__init__
_TRANSFORMER_INIT = MatcherDecoratableTransformer.__init__
_HOOKS = ("on_visit", "on_leave", "on_visit_attribute", "on_leave_attribute")
#: LibCST's base classes of visitors and codemods: none of their functions is decorated.
_PLAIN_BASES = frozenset(
    klass
    for base in (MatcherDecoratableVisitor, MatcherDecoratableTransformer, CodemodCommand)
    for klass in base.__mro__
    if klass.__module__.startswith("libcst.") or klass is object
)


#: What LibCST's matcher decorators set on the functions they decorate.
_MARKS = ("_call_if_inside_matcher", "_call_if_not_inside_matcher", "_visit_matcher", "_leave_matcher")


def _marked(cls: type) -> bool:
    """Whether a function of ``cls`` carries a matcher decorator's mark, found by reading the
    classes of its MRO that are not LibCST's undecorated bases (whose hundreds of typed
    ``visit_``/``leave_`` methods make LibCST's scan of ``dir()`` cost a few ms per class, on
    every cold start, for each of the 100-odd classes a conversion builds)."""
    for klass in cls.__mro__:
        if klass in _PLAIN_BASES:
            continue
        for value in vars(klass).values():
            value = getattr(value, "__func__", value)  # a staticmethod or classmethod's function
            if callable(value) and any(hasattr(value, mark) for mark in _MARKS):
                return True
    return False


def _scan_once(self, memo: dict[type, bool], plain_init, full_init) -> bool:
    """LibCST's matcher-decoratable ``__init__`` (``full_init``), whose scan of the whole class
    for matcher decorators runs once per class where it finds none: later instances get the same
    empty tables after ``plain_init``. Returns whether the class has no decorators."""
    cls = type(self)
    if cls not in memo and not _marked(cls):
        memo[cls] = True  # what the scan would find, read from the class's own functions
    if memo.get(cls):
        plain_init(self)
        self._matchers, self._extra_visit_funcs, self._extra_leave_funcs = {}, {}, {}
        return True
    full_init(self)
    if cls not in memo:
        memo[cls] = not (self._matchers or self._extra_visit_funcs or self._extra_leave_funcs)
    return memo[cls]


def _visitor_init(self) -> None:
    """``MatcherDecoratableVisitor.__init__``, once per class where the class has no matcher decorators.

    LibCST's import visitors build such visitors on every run (exports, string annotations, unused
    imports: three walks per ``RemoveImportsVisitor``), and each scans its whole class for
    decorators, then pays matcher bookkeeping on every node. None of them has a decorator: the
    scan's empty result is kept per class, and the instance visits like a plain ``CSTVisitor``,
    except in the hooks its class overrides (which still run, with their ``super()``).
    """
    if not _scan_once(self, _UNDECORATED_VISITORS, cst.CSTVisitor.__init__, _VISITOR_INIT):
        return
    cls = type(self)
    for hook in _HOOKS:
        if getattr(cls, hook) is getattr(MatcherDecoratableVisitor, hook):
            setattr(self, hook, MethodType(getattr(cst.CSTVisitor, hook), self))


def _transformer_init(self) -> None:
    """``MatcherDecoratableTransformer.__init__``, whose scan runs once per class where it finds nothing.

    The scan looks at every attribute of the class (hundreds of typed ``visit_``/``leave_``
    methods) for matcher decorators: about 10 ms for each ``AddImportsVisitor`` a conversion
    makes. A class without decorators gets the same empty tables without it.
    """
    _scan_once(self, _UNDECORATED_TRANSFORMERS, cst.CSTTransformer.__init__, _TRANSFORMER_INIT)


_LIBCST_VISIT = cst.CSTNode.visit
_PLAIN_TRANSFORMER_HOOKS = {hook: getattr(cst.CSTTransformer, hook) for hook in _HOOKS}
#: Off: every transform visits every node as LibCST does (tests/test_pruned_visits.py compares the two).
PRUNE = True


def _prunable(transformer: cst.CSTTransformer) -> frozenset[type] | None:
    """The node types ``transformer`` handles, where its four hooks are ``CSTTransformer``'s (an
    undecorated matcher transformer's, once the engine gave it plain ones) or act only on the
    types its class declares in ``HOOK_TYPES``; None where they are its own and may do anything
    on any node. Asked once per transformer."""
    state = transformer.__dict__
    if "_migrate_handled" not in state:
        cls = type(transformer)
        declared = getattr(cls, "HOOK_TYPES", None)
        if declared is not None and isinstance(transformer, MatcherDecoratableTransformer) and not undecorated(cls):
            declared = None  # a matcher decorator may act on any node
        plain = declared is not None or all(getattr(getattr(transformer, hook), "__func__", None) is function
                                            for hook, function in _PLAIN_TRANSFORMER_HOOKS.items())
        state["_migrate_handled"] = (walks.handler_types(cls, _PLAIN_BASES) | walks.subclasses(declared or ())) if plain else None
    return state["_migrate_handled"]


def _visit(self, visitor):
    """``CSTNode.visit``, without rebuilding what nothing would change.

    * For a read-only visitor, the same calls from the recorded walk (``migrator.walks.replay``)
      without rebuilding every node. Scopes, expression contexts and most of the codemods' own
      questions are such visits: a third of a conversion.
    * For a transformer with plain hooks, a subtree that holds no node of a type it handles
      (``walks.untouched``) is given back as it is: LibCST would call none of its methods there
      and rebuild every node into an equal copy. Codemods change a few calls in a file; this
      keeps the rest of the tree, and the engine then tells an unchanged tree by identity.
    * For any transformer, a node whose children all come back as they were is itself given
      back, not rebuilt (``_transform``).
    """
    if isinstance(visitor, cst.CSTVisitor):
        if walks.replay(self, visitor, _LIBCST_VISIT):
            return self
    elif isinstance(visitor, cst.CSTTransformer) and PRUNE:
        handled = _prunable(visitor)
        if handled is not None:
            if isinstance(self, cst.Module):
                walks.record(self)
            if walks.untouched(self, handled):
                return self
        return _transform(self, visitor)
    return _LIBCST_VISIT(self, visitor)


def _visit_either(parent: cst.CSTNode, field: str, value, visitor):
    """A field LibCST visits one way or another by its value (``walks.EITHER``): a node alone
    (``ImportFrom``'s star), a sequence, or None, which it does not visit."""
    if value is None:
        return None
    if isinstance(value, cst.CSTNode):
        return visit_required(parent, field, value, visitor)
    return visit_sequence(parent, field, value, visitor)


_VISIT_FUNCTIONS = {"visit_required": visit_required, "visit_optional": visit_optional,
                    "visit_sentinel": visit_sentinel, "visit_sequence": visit_sequence,
                    "visit_body_sequence": visit_body_sequence, walks.EITHER: _visit_either}
_PLANS: dict[type, tuple | None] = {}


def _plan(kind: type) -> tuple | None:
    """``(field, LibCST's function that visits it)`` for each child field of ``kind``, in the order
    its ``_visit_and_replace_children`` visits them; None where that method has a shape of its own."""
    if kind not in _PLANS:
        visits = walks.child_visits(kind)
        _PLANS[kind] = None if visits is None else tuple((field, _VISIT_FUNCTIONS[how]) for field, how in visits)
    return _PLANS[kind]


def _transform(node: cst.CSTNode, visitor: cst.CSTTransformer):
    """``node.visit(visitor)`` for a transformer, as LibCST makes it (the same hooks, in the same
    order, with the same sentinels), except that a node whose children all come back as the very
    same objects is given to ``on_leave`` as it is: LibCST's ``_visit_and_replace_children``
    builds an equal copy of every node it passes, a dataclass constructed and validated, which
    most transforms (that change a few calls of a file, or nothing) do for every node on the way
    down to what they handle. A node that did change is rebuilt as LibCST rebuilds it: its
    constructor, given every field (each class's method passes them all, which
    ``tests/test_walks.py`` checks)."""
    plan = _plan(type(node))
    if plan is None:
        return _LIBCST_VISIT(node, visitor)
    updated = node
    if visitor.on_visit(node):
        changed = None
        for field, visit in plan:
            value = getattr(node, field)
            result = visit(node, field, value, visitor)
            if result is value or (type(result) is tuple and isinstance(value, (tuple, list)) and len(result) == len(value)
                                   and all(map(operator.is_, result, value))):
                continue
            if changed is None:
                changed = {}
            changed[field] = result
        if changed is not None:
            updated = replace(node, **changed)
    result = visitor.on_leave(node, updated)
    if not isinstance(result, (cst.CSTNode, cst.RemovalSentinel, cst.FlattenSentinel)):
        raise cst.CSTValidationError(  # as LibCST's visit does
            f"Expected a node of type CSTNode or a RemovalSentinel, but got a return value of {type(result).__name__}")
    return result


if LIBCST_FAST:
    MatcherDecoratableVisitor.__init__ = _visitor_init  # type: ignore[method-assign]
    MatcherDecoratableTransformer.__init__ = _transformer_init  # type: ignore[method-assign]
    cst.CSTNode.visit = _visit  # type: ignore[method-assign]
    node_classes.plain_instance_checks(cst.CSTNode)
    node_classes.identity_hashes(cst.CSTNode)
    # Every node a visit passes asks whether its visitor is a CSTVisitor or a CSTTransformer.
    node_classes.plain_instance_checks(cst.CSTVisitor)
    node_classes.plain_instance_checks(cst.CSTTransformer)


def undecorated(cls: type) -> bool:
    """Whether instances of this transformer class were found to have no matcher decorators
    (always ``False`` off the fast path, where nothing is recorded)."""
    return _UNDECORATED_TRANSFORMERS.get(cls, False)


class _TopImportsOnly:
    """The module as ``AddImportsVisitor.visit_Module`` uses it: ``node.visit(gatherer)``, where
    the gatherer of top imports does all its work in ``leave_Module``."""

    def __init__(self, module: cst.Module) -> None:
        self.module = module

    def visit(self, gatherer) -> None:
        gatherer.leave_Module(self.module)


def _add_imports_at_the_top(visitor: AddImportsVisitor, module: cst.Module) -> cst.Module:
    """What ``module.visit(visitor)`` returns, without walking the whole tree twice.

    ``AddImportsVisitor`` reads and changes only the imports at the top of the module: its
    ``visit_Module`` gathers them (with a visitor that walks every node to use only its
    ``leave_Module``), ``leave_ImportFrom`` returns any other node as it is, and ``leave_Module``
    inserts the rest. So the gathering runs on the module alone, and ``leave_ImportFrom`` on
    those top imports only. Nodes it does not touch stay the same objects; a module it does
    not change comes back as itself (so the engine keeps its metadata).
    """
    visitor.visit_Module(_TopImportsOnly(module))
    body = list(module.body)
    for index, statement in enumerate(body):
        if not isinstance(statement, cst.SimpleStatementLine):
            continue
        small = list(statement.body)
        for position, node in enumerate(small):
            if isinstance(node, cst.ImportFrom):
                small[position] = visitor.leave_ImportFrom(node, node)
        if any(new is not old for new, old in zip(small, statement.body)):
            body[index] = statement.with_changes(body=small)
    updated = module if all(new is old for new, old in zip(body, module.body)) else module.with_changes(body=body)
    return visitor.leave_Module(module, updated)


def plain_visits(transformer) -> None:
    """Let a ``MatcherDecoratableTransformer`` without matcher decorators visit like a plain transformer.

    Its hooks then only call ``CSTTransformer``'s, after matcher bookkeeping on every node and
    every attribute that costs more than the visit itself (LibCST's import visitors use none).
    A hook the class overrides itself stays its own (its ``super()`` still reaches the matcher one).
    """
    # Decorators of any kind, gating ones (@m.call_if_inside...) included, belong to the class:
    # its first instance found out (_transformer_init).
    cls = type(transformer)
    if not isinstance(transformer, MatcherDecoratableTransformer) or not undecorated(cls):
        return
    for hook in _HOOKS:
        if getattr(cls, hook) is getattr(MatcherDecoratableTransformer, hook):
            setattr(transformer, hook, MethodType(getattr(cst.CSTTransformer, hook), transformer))


class MigrationCodemod(CodemodCommand):
    DESCRIPTION: ClassVar[str] = ""
    TRIGGERS: ClassVar[tuple[bytes, ...]] = ()
    ORDER: ClassVar[int] = 50
    MODULES: ClassVar[tuple[bytes, ...]] = ()
    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, context: CodemodContext, options: ConvertOptions | None = None) -> None:
        super().__init__(context)
        self.options = options or ConvertOptions()
        self.entries: list[Entry] = []
        #: Set by the engine: the wrapper (and metadata already resolved) of the tree this
        #: codemod is given. None (``python -m libcst.tool``): LibCST's own copy-and-resolve.
        self.shared_wrapper: MetadataWrapper | None = None

    # -- one parse, shared metadata (the engine's fast path) -----------------------------------
    def nothing_to_do(self, tree: cst.Module) -> bool:
        """True where this codemod would give ``tree`` back unchanged and say nothing, decided from
        the tree alone, before any metadata: resolving scopes and qualified names costs more than
        most transforms. Only ever True where that is certain (``tests/test_nothing_to_do.py``
        runs the full transform wherever a codemod says so, over every fixture and sample)."""
        return False

    def transform_module(self, tree: cst.Module) -> cst.Module:
        if self.nothing_to_do(tree):
            return tree
        return super().transform_module(tree)

    @contextmanager
    def _handle_metadata_reference(self, module: cst.Module) -> Iterator[cst.Module]:
        shared = self.shared_wrapper
        if shared is None or shared.module is not module:
            with super()._handle_metadata_reference(module) as tree:
                yield tree
            return
        # The tree is the wrapper's own: metadata an earlier codemod resolved on it is reused
        # (the wrapper caches per provider), and nothing is copied.
        if LIBCST_FAST:
            _resolve_without_batched_walk(shared, self.get_inherited_dependencies())
        old = self.context.wrapper
        with self.resolve(shared):
            self.context = replace(self.context, wrapper=shared)
            try:
                yield shared.module
            finally:
                self.context = replace(self.context, wrapper=old)

    def _instantiate_and_run(self, transform: type[Codemod], tree: cst.Module) -> cst.Module:
        """LibCST's import visitors, run after the transform, without LibCST's copy of the tree
        where nothing needs it.

        ``AddImportsVisitor`` resolves nothing, so node identity (what the copy protects) does not
        matter to it. ``RemoveImportsVisitor`` needs scopes and qualified names, keyed by node:
        the tree is copied only if it holds one node twice (``migrator.walks`` tells), and its
        metadata is resolved as for the codemods, without LibCST's batched walks (three for these
        two providers, each rebuilding every node). Per conversion that removes an import, this
        was a fifth of the time.
        """
        inst = transform(self.context)
        if LIBCST_FAST and type(inst) is AddImportsVisitor:
            return _add_imports_at_the_top(inst, tree)
        plain_visits(inst)
        needs = inst.get_inherited_dependencies()
        if inst.should_allow_multiple_passes() or (needs and not LIBCST_FAST):
            return inst.transform_module(tree)
        wrapper = MetadataWrapper(tree, unsafe_skip_copy=not (needs and walks.repeats_a_node(tree)))
        if needs:
            _resolve_without_batched_walk(wrapper, needs)
        with inst.resolve(wrapper):
            inst.context = replace(inst.context, wrapper=wrapper)
            return inst.transform_module_impl(wrapper.module)

    @classmethod
    def id(cls) -> str:
        """A codemod's id is the name of its module, as in django-upgrade."""
        return cls.__module__.rsplit(".", 1)[-1]

    @property
    def earlier(self) -> tuple[bytes | None, tuple[Entry, ...]]:
        """The file's original bytes and the entries codemods that ran before this one recorded.

        ``(None, ())`` when the codemod runs outside the engine (``python -m libcst.tool``).
        """
        return self.context.scratch.get(EARLIER, (None, ()))

    # -- reporting ---------------------------------------------------------------------------
    def line_of(self, node: cst.CSTNode | None) -> int:
        if node is None:
            return 1
        try:
            return self.get_metadata(PositionProvider, node).start.line
        except KeyError:
            # A node built during this transform has no position: report it at the top.
            return 1

    def change(self, node: cst.CSTNode | None, message: str) -> None:
        self.entries.append(Entry(self.id(), self.line_of(node), message, "change"))

    def follow_up(self, node: cst.CSTNode | None, message: str) -> None:
        self.entries.append(Entry(self.id(), self.line_of(node), message, "follow-up"))

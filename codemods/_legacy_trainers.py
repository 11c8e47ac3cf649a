"""Shared pieces of the codemods that retire Ray 2.1-2.6 trainers for ``TorchTrainer``.

``transformers_trainer_legacy``, ``accelerate_trainer_legacy`` and ``lightning_trainer_legacy`` all
do the same three things around their own rewrite: find the calls to a class that now fails to
import, turn each into ``TorchTrainer(...)`` (carrying over the arguments that kept their meaning),
and sometimes put a generated ``train_func`` in front of the statement that made the call. This
module holds those mechanics so each codemod only says what its trainer meant.

Edits are planned in ``plan`` (called once per legacy call, on the untouched tree, where metadata
is available) and applied by the transformer: ``replace_call``, ``insert_before`` and ``remove``.
A removed statement never takes a comment with it: its comments move to the next statement kept.
"""

from __future__ import annotations

import ast
from typing import ClassVar, Iterable, Sequence

import libcst as cst
import libcst.matchers as m
from libcst.codemod import VisitorBasedCodemodCommand
from libcst.codemod.visitors import AddImportsVisitor, RemoveImportsVisitor
from libcst.helpers import get_full_name_for_node
from libcst.metadata import ParentNodeProvider, PositionProvider, QualifiedNameProvider, ScopeProvider

from codemods._keywords import kwarg
from codemods._names import load_table, spelled_names
from migrator.codemod import MigrationCodemod, plain_visits

#: Keyword arguments that Ray Train V2's ``TorchTrainer`` rejects, with what to do instead.
REJECTED_BY_V2 = {
    "resume_from_checkpoint": "TorchTrainer(resume_from_checkpoint=) raises in Ray Train V2: load the checkpoint "
    "inside the train function (ray.train.get_checkpoint()) and resume from it there",
    "metadata": "TorchTrainer(metadata=) raises in Ray Train V2: save the metadata with the checkpoint instead",
    # ray_trainer_preprocessor (which runs first) converts it where it can; what it left is flagged here.
    "preprocessor": "TorchTrainer has no preprocessor= any more: apply the preprocessor to the Ray Datasets "
    "(preprocessor.fit_transform(ds)) before passing them",
}
LINE_LENGTH = 88
#: The fields of ray.train.ScalingConfig a Ray 1.x ``scaling_config`` dict could hold (ray 2.60 signature;
#: ``trainer_resources`` raises under Train V2, so it is left to a follow-up).
SCALING_CONFIG_FIELDS = ("num_workers", "use_gpu", "resources_per_worker", "placement_strategy", "accelerator_type")


def retired_trainers(codemod: str) -> tuple[tuple[str, str], ...]:
    """``(module, class)`` of every path a retired trainer had that ``codemod`` converts.

    The paths are data (``codemods/data/retired_ray_trainers.toml``, each with its Ray versions
    and evidence): Ray 1.x ``ray.ml``, 2.0-2.6 ``ray.train.huggingface``, ``hf_transformers``...
    """
    table = load_table("retired_ray_trainers")["trainers"]
    return tuple(tuple(path.rsplit(".", 1)) for path, entry in table.items() if entry["codemod"] == codemod)


def named_as(name: str, paths: Iterable[str]) -> bool:
    """Whether the qualified ``name`` is one of ``paths``, or ends with one after a dot."""
    return any(name == path or name.endswith("." + path) for path in paths)


class Refused(Exception):
    """A call that cannot be converted safely; the message says why, for the follow-up."""


class LegacyTrainerCodemod(MigrationCodemod, VisitorBasedCodemodCommand):
    """Base of the three codemods; a subclass names its classes and implements ``plan``."""

    METADATA_DEPENDENCIES = (PositionProvider, QualifiedNameProvider, ScopeProvider, ParentNodeProvider)
    #: (module prefix, class name) of every retired class this codemod converts.
    LEGACY: ClassVar[tuple[tuple[str, str], ...]] = ()
    #: The subset of ``LEGACY`` whose calls ``plan`` converts (the rest are helpers such as builders).
    CONVERTED: ClassVar[tuple[str, ...]] = ()
    #: Whether converted files follow ``--lightning-package`` in their Lightning imports.
    LIGHTNING: ClassVar[bool] = False
    #: What ``on_leave`` acts on (``migrator.codemod``: the visit skips subtrees holding none of
    #: these and no node a ``visit_``/``leave_`` method handles).
    HOOK_TYPES: ClassVar[tuple[type, ...]] = (cst.Module, cst.IndentedBlock, cst.BaseStatement)

    def __init__(self, context, options=None) -> None:
        super().__init__(context, options)
        plain_visits(self)  # no matcher decorators: skip the matcher bookkeeping on every node
        self._calls: dict[cst.Call, cst.Call] = {}
        self._before: dict[cst.BaseStatement, list[cst.BaseStatement]] = {}
        self._removed: dict[cst.BaseStatement, list[cst.CSTNode]] = {}
        self._handled: set[cst.CSTNode] = set()
        self._pending: dict[cst.CSTNode, list[cst.EmptyLine]] = {}
        self._gap: dict[cst.CSTNode, int] = {}
        self._take: set[cst.BaseStatement] = set()
        self._vanishing: set[cst.BaseStatement] = set()
        self._fresh: set[str] = set()
        #: Set by ``plan`` when it leaves a call as it is (its follow-up then covers related uses).
        self.refused = False
        self.tree = cst.Module(body=[])

    def nothing_to_do(self, tree: cst.Module) -> bool:
        """No name the file spells is a path of ``LEGACY`` (or, imported, lies below its module):
        every edit and follow-up starts from one (``legacy_name`` on a call or a reference, and
        ``_is_legacy`` on an import). A subclass that looks for other names says so itself."""
        return not any(
            name.startswith(prefix) and name.rsplit(".", 1)[-1] == cls
            for name in spelled_names(tree) for prefix, cls in self.LEGACY
        )

    # -- what a subclass implements ---------------------------------------------------------
    def plan(self, call: cst.Call) -> None:
        raise NotImplementedError

    # -- finding things ---------------------------------------------------------------------
    def qualified(self, node: cst.CSTNode) -> set[str]:
        return {q.name for q in self.get_metadata(QualifiedNameProvider, node, set())}

    def legacy_name(self, node: cst.CSTNode) -> str | None:
        """The retired class ``node`` names (``"TransformersTrainer"``), if it names one."""
        for name in self.qualified(node):
            for prefix, cls in self.LEGACY:
                if name.startswith(prefix + ".") and name.rsplit(".", 1)[-1] == cls:
                    return cls
        return None

    def calls_to(self, root: cst.CSTNode, suffixes: Iterable[str]) -> list[cst.Call]:
        """Calls under ``root`` whose callee's qualified name ends with one of ``suffixes``."""
        suffixes = tuple(suffixes)
        return [c for c in m.findall(root, m.Call()) if any(named_as(q, suffixes) for q in self.qualified(c.func))]

    def statement_of(self, node: cst.CSTNode) -> cst.BaseStatement:
        """The statement in a body (module or block) that contains ``node``."""
        while True:
            parent = self.get_metadata(ParentNodeProvider, node)
            if isinstance(node, cst.BaseStatement) and isinstance(parent, (cst.Module, cst.IndentedBlock)):
                return node
            node = parent

    def body_of(self, statement: cst.BaseStatement) -> Sequence[cst.BaseStatement]:
        return self.get_metadata(ParentNodeProvider, statement).body

    def single_assignment(self, name: cst.Name) -> tuple[cst.Assign, list[cst.CSTNode]] | None:
        """``(assign, references)`` when ``name`` is bound once, by a plain ``name = value``."""
        scope = self.get_metadata(ScopeProvider, name, None)
        found = list(scope[name.value]) if scope is not None else []
        if len(found) != 1 or not isinstance(found[0].node, cst.Name):
            return None
        assign = self.get_metadata(ParentNodeProvider, self.get_metadata(ParentNodeProvider, found[0].node))
        if not m.matches(assign, m.Assign(targets=[m.AssignTarget(target=m.Name())])):
            return None
        return assign, [ref.node for ref in found[0].references]

    def function_def(self, name: cst.BaseExpression) -> cst.FunctionDef | None:
        """The ``def`` a plain name refers to, when there is exactly one."""
        if not isinstance(name, cst.Name):
            return None
        scope = self.get_metadata(ScopeProvider, name, None)
        found = list(scope[name.value]) if scope is not None else []
        if len(found) == 1 and isinstance(found[0].node, cst.FunctionDef):
            return found[0].node
        return None

    def builder_calls(self, value, statement: cst.BaseStatement, is_root, what: str, builder: str):
        """The setter calls of a fluent builder behind ``value``, in order, and the statements making them.

        ``value`` is ``root.a(...).b(...).build()``, or a name bound once to that; ``root`` is the
        builder's constructor call (``is_root``) or a name bound once to one, whose other uses are
        all statements of setter calls (``builder.a(...)``) before ``statement``, in its block.
        Raises ``Refused`` for anything else.
        """
        removed = []
        if isinstance(value, cst.Name):
            bound = self.single_assignment(value)
            if not bound or bound[1] != [value]:
                raise Refused(f"{value.value!r} is assigned more than once or used elsewhere too")
            removed.append(self.statement_of(bound[0]))
            value = bound[0].value
        root, chain = split_chain(value) if value is not None else (None, [])
        if not chain or chain[-1][0] != "build":
            raise Refused(f"{what} is not a {builder} chain ending in .build()")
        calls = chain[:-1]
        if not is_root(root):
            bound = self.single_assignment(root) if isinstance(root, cst.Name) else None
            if not bound or not is_root(split_chain(bound[0].value)[0]):
                raise Refused(f"{what} does not come from a {builder} in this scope")
            steps = [(self.statement_of(bound[0]), split_chain(bound[0].value)[1])]
            for ref in (r for r in bound[1] if r is not root):
                step = self.statement_of(ref)
                if not m.matches(step, m.SimpleStatementLine(body=[m.Expr()])) or \
                        split_chain(step.body[0].value)[0] is not ref:
                    raise Refused(f"the builder {root.value!r} is used for something else than its setters")
                steps.append((step, split_chain(step.body[0].value)[1]))
            steps.sort(key=lambda step: self.line_of(step[0]))
            calls = [c for _, setters in steps for c in setters] + calls
            removed += [s for s, _ in steps]
        body = list(self.body_of(statement))
        if any(s not in body or body.index(s) > body.index(statement) for s in removed):
            raise Refused("the builder is set up in another block or after the trainer")
        return calls, removed

    def literal_dict(self, expr: cst.BaseExpression | None) -> list[tuple[str | None, cst.BaseExpression]] | None:
        """The entries of a ``{...}`` or ``dict(...)`` literal (or a name bound once to one).

        Keys are strings, or ``None`` for a ``**spread``. ``None`` when it is no such literal.
        """
        if isinstance(expr, cst.Name):
            bound = self.single_assignment(expr)
            expr = bound[0].value if bound else None
        if isinstance(expr, cst.Dict):
            entries: list[tuple[str | None, cst.BaseExpression]] = []
            for el in expr.elements:
                if isinstance(el, cst.StarredDictElement):
                    entries.append((None, el.value))
                    continue
                key = literal(el.key)
                if not isinstance(key, str):
                    return None
                entries.append((key, el.value))
            return entries
        if m.matches(expr, m.Call(func=m.Name("dict"))) and all(a.keyword or a.star == "**" for a in expr.args):
            return [(a.keyword.value if a.keyword else None, a.value) for a in expr.args]
        return None

    # -- planning edits ---------------------------------------------------------------------
    def replace_call(self, original: cst.Call, new: cst.Call) -> None:
        self._calls[original] = new

    def insert_before(self, statement: cst.BaseStatement, new: cst.BaseStatement,
                      comments: Sequence[cst.EmptyLine] = (), take_comments: bool = False) -> None:
        """Put ``new`` before ``statement``; ``comments`` (rescued from removed code) go above it.

        With ``take_comments`` the comments above ``statement`` move up to ``new``: they introduced
        the code that ``new`` now begins.
        """
        self._before.setdefault(statement, []).append(new.with_changes(leading_lines=list(comments)))
        if take_comments:
            self._take.add(statement)

    def remove(self, statement: cst.BaseStatement, keep: Iterable[cst.CSTNode] = ()) -> None:
        """Remove ``statement``; its comments, except those inside ``keep`` (code moved elsewhere), stay."""
        self._removed[statement] = list(keep)

    def need_import(self, module: str, obj: str | None = None, alias: str | None = None) -> None:
        AddImportsVisitor.add_needed_import(self.context, module, obj, alias)

    def name_for(self, module: str, obj: str, alias: str) -> str:
        """Import ``obj`` from ``module`` and return the name to use: ``alias`` if ``obj`` is taken."""
        scope = self.get_metadata(ScopeProvider, self.tree)
        if obj in scope and f"{module}.{obj}" not in {q.name for q in scope.get_qualified_names_for(obj)}:
            self.need_import(module, obj, alias)
            return alias
        self.need_import(module, obj)
        return obj

    def fresh_name(self, base: str) -> str:
        """``base``, or ``base_2``... if the module already uses that name anywhere (``names_taken``)."""
        used = self.names_taken()
        name, i = base, 1
        while name in used or name in self._fresh:
            i += 1
            name = f"{base}_{i}"
        self._fresh.add(name)
        return name

    def names_taken(self) -> set[str]:
        """What ``fresh_name`` avoids: every name written in the module, keywords of calls too."""
        return {n.value for n in m.findall(self.tree, m.Name())}

    def add_kwarg(self, original: cst.Call, current: cst.Call, name: str, value) -> cst.Call:
        """``current`` (``original`` as edited so far) with ``name=value`` appended, kept within 88 columns.

        ``value`` is code, or ``(func, args)`` for a call that ``render_call`` lays out. A one-line
        call that would grow too long is split one argument per line first.
        """
        unit = self.tree.default_indent
        where = self.get_metadata(PositionProvider, original)
        base = self.get_metadata(PositionProvider, self.statement_of(original)).start.column
        line = self._lines[where.start.line - 1]
        render = lambda indent, fits: value if isinstance(value, str) else render_call(
            value[0], value[1], indent, unit, False if fits else None, lead=len(name) + 1)
        if isinstance(current.whitespace_before_args, cst.ParenthesizedWhitespace) and original.args:
            indent = " " * (self.get_metadata(PositionProvider, original.args[0]).start.column - base)
            return current.with_changes(args=append_arg(current.args, kwarg(name, render(indent, False)), current))
        flat = render("", True)
        rest = len(self._lines[where.end.line - 1][where.end.column:].split("#")[0].rstrip())  # comments don't count
        if where.start.line == where.end.line and \
                where.start.column + len(self.code(current)) + len(name) + len(flat) + 3 + rest <= LINE_LENGTH:
            return current.with_changes(args=append_arg(current.args, kwarg(name, flat), current))
        outer = " " * (len(line) - len(line.lstrip()) - base)
        exploded = explode(current, outer + unit, outer)
        new = kwarg(name, render(outer + unit, False))
        if not exploded.args:
            return exploded.with_changes(args=[new.with_changes(comma=cst.Comma(whitespace_after=newline(outer)))])
        return exploded.with_changes(args=append_arg(exploded.args, new, exploded))

    def code(self, node: cst.CSTNode) -> str:
        return self.tree.code_for_node(node)

    def parse_statement(self, text: str) -> cst.BaseStatement:
        """Generated code (written with ``\n``) as a statement in this module's style."""
        return cst.parse_statement(text.replace("\n", self.tree.default_newline), config=self.tree.config_for_parsing)

    # -- the arguments every old trainer shares ---------------------------------------------
    def carry_over(self, call: cst.Call, new: cst.Call) -> cst.Call:
        """Flag arguments V2 rejects; add ``scaling_config`` / ``storage_path`` per the options."""
        for arg in new.args:
            key = arg.keyword.value if arg.keyword else None
            if key in REJECTED_BY_V2:
                self.follow_up(arg, REJECTED_BY_V2[key])
            elif key == "dataset_config" and isinstance(arg.value, cst.Dict):
                self.follow_up(arg, "dataset_config= took a dict of ray.air DatasetConfig; TorchTrainer takes one "
                               "ray.train.DataConfig (e.g. DataConfig(datasets_to_split=[...]))")
        keys = keyword_args(new)
        if "scaling_config" in keys:
            new = self._scaling_config_from_dict(new, keys["scaling_config"])
        if "scaling_config" not in keys:
            scaling = self.name_for("ray.train", "ScalingConfig", "TrainScalingConfig")
            value = f"{scaling}(num_workers={self.options.num_workers}, use_gpu={self.options.gpu()})"
            new = self.add_kwarg(call, new, "scaling_config", value)
            self.change(call, f"added scaling_config={value} (the old default was one worker)")
        if self.options.storage_path and "run_config" not in keys:
            run = self.name_for("ray.train", "RunConfig", "TrainRunConfig")
            new = self.add_kwarg(call, new, "run_config", f"{run}(storage_path={quote(self.options.storage_path)})")
        return new

    def _scaling_config_from_dict(self, new: cst.Call, arg: cst.Arg) -> cst.Call:
        """``scaling_config={"num_workers": 2, ...}`` (Ray 1.x took a plain dict) as ``ScalingConfig(...)``.

        Train V2 takes only ``ray.train.ScalingConfig``. An inline literal becomes keyword
        arguments; a name bound once to a literal is unpacked (``ScalingConfig(**scaling)``).
        """
        entries = self.literal_dict(arg.value)
        if entries is None:
            return new
        keys = [k for k, _ in entries]
        unknown = [k for k in keys if k not in SCALING_CONFIG_FIELDS]
        if None in keys or unknown:
            self.follow_up(arg.value, "scaling_config= is a plain dict (Ray 1.x); Train V2 takes ray.train.ScalingConfig, "
                           f"which has no {', '.join(map(repr, (k for k in unknown if k))) or '**spread'}: "
                           f"rewrite it as ScalingConfig({', '.join(SCALING_CONFIG_FIELDS)}=...)")
            return new
        scaling = self.name_for("ray.train", "ScalingConfig", "TrainScalingConfig")
        if isinstance(arg.value, cst.Name):
            value = cst.parse_expression(f"{scaling}(**{arg.value.value})")
        else:
            value = cst.parse_expression(scaling + "(" + ", ".join(f"{k}={self.code(v)}" for k, v in entries) + ")")
        self.change(arg.value, f"scaling_config: the plain dict (Ray 1.x) -> {self.code(value)}")
        return new.with_changes(args=[a.with_changes(value=value) if a.keyword and a.keyword.value == "scaling_config"
                                      else a for a in new.args])

    def run_config_of(self, call: cst.Call) -> tuple[cst.Arg | None, cst.Call | None]:
        """The ``run_config=`` argument of ``call`` and the ``RunConfig(...)`` call behind it, when visible."""
        run = keyword_args(call).get("run_config")
        value = run.value if run is not None else None
        if isinstance(value, cst.Name):
            bound = self.single_assignment(value)
            value = bound[0].value if bound else None
        if isinstance(value, cst.Call) and (get_full_name_for_node(value.func) or "").endswith("RunConfig"):
            return run, value
        return run, None

    def set_run_config(self, call: cst.Call, new: cst.Call, key: str, value) -> cst.Call:
        """``new`` (the edited ``call``) with ``key=value`` in its ``RunConfig``.

        Into the ``RunConfig(...)`` it passes or names (edited where it is built), or a new one;
        a follow-up when the ``RunConfig`` cannot be seen. ``value`` as for ``add_kwarg``.
        """
        run, run_call = self.run_config_of(call)
        if run is None:
            run_args = [(f"{key}=", value, [])]
            if self.options.storage_path:
                run_args.append(("storage_path=", quote(self.options.storage_path), []))
            run_config = self.name_for("ray.train", "RunConfig", "TrainRunConfig")
            return self.add_kwarg(call, new, "run_config", (run_config, run_args))
        if run_call is None:
            flat = value if isinstance(value, str) else render_call(value[0], value[1], "", "", False)
            self.follow_up(run, f"add {key}={flat} to this run_config")
            return new
        edited = self.add_kwarg(run_call, run_call, key, value)
        if run_call is not run.value:
            self.replace_call(run_call, edited)
            return new
        return new.with_changes(args=[a.with_changes(value=edited) if a.value is run_call else a for a in new.args])

    # -- Lightning's two packages -----------------------------------------------------------
    def lightning_trainer(self) -> str:
        """How the script names Lightning's ``Trainer``; an import is added when it has none."""
        package = lightning_package(self.tree, self.options.lightning_package)
        found = lightning_trainer_name(self.tree, package)
        if found:
            return found
        alias = "pl" if "pl" not in self.get_metadata(ScopeProvider, self.tree) else self.fresh_name("pl")
        self.need_import(package, None, alias)
        return f"{alias}.Trainer"

    def leave_Import(self, original: cst.Import, updated: cst.Import) -> cst.Import:
        return self._rewrite_lightning_import(original, updated)

    def leave_ImportFrom(self, original: cst.ImportFrom, updated: cst.ImportFrom) -> cst.ImportFrom:
        return self._rewrite_lightning_import(original, updated)

    def _rewrite_lightning_import(self, original, updated):
        """With ``--lightning-package``, a converted script's Lightning imports follow that package."""
        if not (self.LIGHTNING and self._calls and self.options.lightning_package):
            return updated
        target = lightning_package(self.tree, self.options.lightning_package)
        new = rewrite_lightning_import(updated, target)
        if new is None:
            self.follow_up(original, f"this import was left as it is: rewrite it for {target} by hand")
        return new or updated

    # -- the transformer --------------------------------------------------------------------
    def visit_Module(self, node: cst.Module) -> None:
        self.tree = node
        self._lines = node.code.splitlines()
        for call in m.findall(node, m.Call()):
            if self.legacy_name(call.func) in self.CONVERTED:
                self._handled.add(call.func)
                self.plan(call)
        for ref in m.findall(node, m.Name() | m.Attribute()):
            if ref in self._handled or self._inside_import(ref):
                continue
            cls = self.legacy_name(ref)
            if cls not in self.CONVERTED and self.refused:
                continue  # a builder next to a trainer call left alone: that call's entry says what to do
            if cls and not self._covered(ref):
                self.follow_up(ref, f"{cls} no longer exists in Ray (ImportError since 2.9): rewrite this use "
                               "for TorchTrainer by hand")
        self._schedule_import_removal(node)

    def _inside_import(self, node: cst.CSTNode) -> bool:
        while node is not None and not isinstance(node, cst.BaseStatement):
            if isinstance(node, (cst.Import, cst.ImportFrom)):
                return True
            node = self.get_metadata(ParentNodeProvider, node, None)
        return False

    def _covered(self, ref: cst.CSTNode) -> bool:
        """Whether ``ref`` is part of something already handled (a converted call, a removed builder)."""
        node = ref
        while node is not None and not isinstance(node, cst.Module):
            if node in self._handled or node in self._removed or node in self._calls:
                return True
            node = self.get_metadata(ParentNodeProvider, node, None)
        return False

    def _is_legacy(self, source: str, alias: cst.ImportAlias) -> bool:
        return any(source.startswith(p) and get_full_name_for_node(alias.name) == c for p, c in self.LEGACY)

    @staticmethod
    def _bound(alias: cst.ImportAlias) -> str:
        return alias.asname.name.value if alias.asname else get_full_name_for_node(alias.name)

    def _schedule_import_removal(self, module: cst.Module) -> None:
        """Drop imports of the retired classes once nothing uses them (they would fail to import)."""
        used = {n.value for n in m.findall(module, m.Name())
                if not self._inside_import(n) and not (self._calls and self._covered(n))}
        for imp in m.findall(module, m.ImportFrom(module=m.Attribute() | m.Name())):
            if isinstance(imp.names, cst.ImportStar) or imp.relative:
                continue
            source = get_full_name_for_node(imp.module)
            if self._calls and all(self._is_legacy(source, a) and self._bound(a) not in used for a in imp.names):
                self._vanishing.add(self.statement_of(imp))  # RemoveImportsVisitor drops it, comments and all
            for alias in imp.names:
                if not self._is_legacy(source, alias):
                    continue
                bound = self._bound(alias)
                if not self._calls and bound not in used:
                    self.change(imp, f"removed the import of {alias.name.value}: it no longer exists in Ray "
                                "(ImportError since 2.9) and nothing here uses it")
                if self._calls or bound not in used:
                    RemoveImportsVisitor.remove_unused_import(self.context, source, alias.name.value,
                                                              alias.asname.name.value if alias.asname else None)

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        return self._calls.get(original, updated)

    def on_leave(self, original, updated):
        updated = super().on_leave(original, updated)
        if isinstance(original, (cst.Module, cst.IndentedBlock)) and original in self._pending:
            return updated.with_changes(footer=[*self._pending.pop(original), *updated.footer])
        if not isinstance(original, cst.BaseStatement) or not isinstance(updated, cst.BaseStatement):
            return updated
        parent = self.get_metadata(ParentNodeProvider, original, None)
        blanks = 2 if isinstance(parent, cst.Module) else 1
        first = isinstance(parent, (cst.Module, cst.IndentedBlock)) and parent.body[0] is original
        pending = self._pending.pop(parent, [])
        gap = self._gap.pop(parent, 0)
        new = self._before.get(original, [])
        if original in self._removed:
            lines = [*pending, *comments_of(original, self._removed[original])]
            if not new:
                self._pending[parent] = lines
                self._gap[parent] = gap
                return cst.RemovalSentinel.REMOVE
            # The generated code takes the place (and the comments) of the first statement it replaces.
            self._gap[parent] = blanks
            return cst.FlattenSentinel(self._spaced(new, lines, 0 if first else blanks, blanks))
        own = list(updated.leading_lines)
        if original in self._vanishing:  # an import about to be removed: its comments stay in the file
            self._pending[parent] = [*pending, *(own if any(line.comment for line in own) else [])]
            self._gap[parent] = gap
            return updated.with_changes(leading_lines=[])
        if not new:
            return updated.with_changes(leading_lines=at_least_blank([*pending, *own], gap))
        split = len(own) if original in self._take else next((i for i, l in enumerate(own) if l.comment), len(own))
        head = pending or own[:split]
        updated = updated.with_changes(leading_lines=at_least_blank(own if pending else own[split:], blanks))
        return cst.FlattenSentinel([*self._spaced(new, head, 0 if first else max(gap, blanks), blanks), updated])

    @staticmethod
    def _spaced(new, head, before: int, between: int) -> list[cst.BaseStatement]:
        """``new`` statements, the first under ``head``'s lines, each set off by blank lines."""
        out = [new[0].with_changes(leading_lines=at_least_blank([*head, *new[0].leading_lines], before))]
        out += [n.with_changes(leading_lines=at_least_blank(n.leading_lines, between)) for n in new[1:]]
        return out


# -- small pure helpers ----------------------------------------------------------------------
def literal(node: cst.CSTNode | None):
    """The Python value of a literal expression, or ``Ellipsis`` when it is not one."""
    if node is None:
        return Ellipsis
    try:
        return ast.literal_eval(cst.Module(body=[]).code_for_node(node).strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return Ellipsis


def quote(text: str) -> str:
    """A string literal in the double quotes most code (and black) uses."""
    if '"' in text or "\\" in text or not text.isprintable():
        return repr(text)
    return f'"{text}"'


def free_names(expr: cst.CSTNode) -> set[str]:
    """Names ``expr`` reads (not attribute names after a dot, not keyword names)."""
    bound = {id(a.attr) for a in m.findall(expr, m.Attribute())}
    bound |= {id(a.keyword) for a in m.findall(expr, m.Arg()) if a.keyword}
    return {n.value for n in m.findall(expr, m.Name()) if id(n) not in bound}


class _Rename(cst.CSTTransformer):
    def __init__(self, old: str, new: str) -> None:
        super().__init__()
        self.old, self.new, self.skip = old, new, set()

    def visit_Attribute(self, node: cst.Attribute) -> None:
        self.skip.add(id(node.attr))

    def visit_Arg(self, node: cst.Arg) -> None:
        if node.keyword:
            self.skip.add(id(node.keyword))

    def leave_Name(self, original: cst.Name, updated: cst.Name) -> cst.Name:
        return updated.with_changes(value=self.new) if original.value == self.old and id(original) not in self.skip else updated


def renamed(expr: cst.BaseExpression, old: str, new: str) -> cst.BaseExpression:
    """``expr`` reading ``new`` wherever it read the name ``old``."""
    return expr.visit(_Rename(old, new))


def keyword_args(call: cst.Call) -> dict[str, cst.Arg]:
    return {a.keyword.value: a for a in call.args if a.keyword}


def _no_comments(ws: cst.BaseParenthesizableWhitespace) -> cst.BaseParenthesizableWhitespace:
    if isinstance(ws, cst.ParenthesizedWhitespace):
        return ws.with_changes(first_line=cst.TrailingWhitespace(), empty_lines=[])
    return ws


def append_arg(args: Sequence[cst.Arg], new: cst.Arg, call: cst.Call) -> list[cst.Arg]:
    """``args`` plus ``new`` at the end, laid out like the arguments already there."""
    args = list(args)
    if not args:
        return [new]
    last = args[-1]
    if len(args) >= 2 and isinstance(args[-2].comma, cst.Comma):
        sep = args[-2].comma.with_changes(whitespace_after=_no_comments(args[-2].comma.whitespace_after))
    elif isinstance(call.whitespace_before_args, cst.ParenthesizedWhitespace):
        sep = cst.Comma(whitespace_after=_no_comments(call.whitespace_before_args))
    else:
        sep = cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
    if isinstance(last.comma, cst.Comma) and isinstance(last.comma.whitespace_after, cst.ParenthesizedWhitespace):
        # A trailing comma that ends the line: keep it (and its comment) where it is.
        closing = last.comma.whitespace_after
        indent = sep.whitespace_after.last_line if isinstance(sep.whitespace_after, cst.ParenthesizedWhitespace) else closing.last_line
        args[-1] = last.with_changes(comma=last.comma.with_changes(whitespace_after=closing.with_changes(last_line=indent)))
        args.append(new.with_changes(comma=cst.Comma(whitespace_after=cst.ParenthesizedWhitespace(
            first_line=cst.TrailingWhitespace(), indent=closing.indent, last_line=closing.last_line))))
        return args
    args[-1] = last.with_changes(comma=sep, whitespace_after_arg=cst.SimpleWhitespace(""))
    args.append(new.with_changes(comma=last.comma, whitespace_after_arg=last.whitespace_after_arg))
    return args


class _Shift(cst.CSTTransformer):
    def __init__(self, by: str) -> None:
        super().__init__()
        self.by = by

    def leave_ParenthesizedWhitespace(self, original, updated):
        return updated.with_changes(last_line=cst.SimpleWhitespace(self.by + updated.last_line.value))


def newline(indent: str) -> cst.ParenthesizedWhitespace:
    """A line break inside brackets, the next line indented by ``indent`` past the block's indentation."""
    return cst.ParenthesizedWhitespace(first_line=cst.TrailingWhitespace(), indent=True,
                                       last_line=cst.SimpleWhitespace(indent))


def explode(call: cst.Call, inner: str, outer: str) -> cst.Call:
    """``call`` with one argument per line at ``inner``, its closing parenthesis at ``outer``."""
    shift = _Shift(inner[len(outer):])  # lines already inside an argument move in with it
    args = [a.with_changes(value=a.value.visit(shift), comma=cst.Comma(whitespace_after=newline(inner)),
                           whitespace_after_arg=cst.SimpleWhitespace("")) for a in call.args]
    if args:
        args[-1] = args[-1].with_changes(comma=cst.Comma(whitespace_after=newline(outer)))
    return call.with_changes(whitespace_before_args=newline(inner), args=args)


def drop_args(args: Sequence[cst.Arg], drop: Iterable[cst.Arg]) -> list[cst.Arg]:
    """``args`` without ``drop``; the last kept argument takes over the punctuation of the last one."""
    drop_ids = {id(a) for a in drop}
    args = list(args)
    for i in range(1, len(args)):
        # Lines between two arguments belong to the comma before them: an own-line comment right
        # above a dropped argument is about that argument, and goes with it.
        comma = args[i - 1].comma
        if id(args[i]) in drop_ids and isinstance(comma, cst.Comma) and isinstance(comma.whitespace_after, cst.ParenthesizedWhitespace):
            args[i - 1] = args[i - 1].with_changes(comma=comma.with_changes(
                whitespace_after=comma.whitespace_after.with_changes(empty_lines=[])))
    kept = [a for a in args if id(a) not in drop_ids]
    if kept and id(args[-1]) in drop_ids:
        last = args[-1]
        comma = last.comma.with_changes(whitespace_after=_no_comments(last.comma.whitespace_after)) \
            if isinstance(last.comma, cst.Comma) else last.comma
        kept[-1] = kept[-1].with_changes(comma=comma, whitespace_after_arg=_no_comments(last.whitespace_after_arg))
    return kept


def with_train_func(call: cst.Call, replaced: cst.Arg, name: str, drop: Iterable[cst.Arg] = ()) -> list[cst.Arg]:
    """``call``'s arguments with ``replaced`` become the positional ``name`` in front, and without ``drop``."""
    if call.args and replaced is call.args[0]:
        first = replaced.with_changes(keyword=None, equal=cst.MaybeSentinel.DEFAULT, value=cst.Name(name))
        return [first if a is replaced else a for a in drop_args(call.args, drop)]
    args = drop_args(call.args, [replaced, *drop])
    ws = call.whitespace_before_args
    comma = cst.Comma(whitespace_after=_no_comments(ws) if isinstance(ws, cst.ParenthesizedWhitespace)
                      else cst.SimpleWhitespace(" "))
    return [cst.Arg(value=cst.Name(name), comma=comma if args else cst.MaybeSentinel.DEFAULT), *args]


def arg_comments(arg: cst.Arg | None) -> list[str]:
    """Comments written after an argument: the one on its line (or ``""``), then those below it."""
    if arg is None:
        return []
    trailing, below = "", []
    for ws in (arg.comma.whitespace_after if isinstance(arg.comma, cst.Comma) else None, arg.whitespace_after_arg):
        if isinstance(ws, cst.ParenthesizedWhitespace):
            trailing = trailing or (ws.first_line.comment.value if ws.first_line.comment else "")
            below += [line.comment.value for line in ws.empty_lines if line.comment]
    return [trailing, *below] if trailing or below else []


def comments_of(statement: cst.CSTNode, keep: Iterable[cst.CSTNode] = ()) -> list[cst.EmptyLine]:
    """Every comment of a statement about to be removed, as lines for the next statement."""
    lines: list[cst.EmptyLine] = []
    if isinstance(statement, cst.BaseStatement):
        lines = list(statement.leading_lines)
    kept = {id(c) for node in keep for c in m.findall(node, m.Comment())}
    own = {id(line.comment) for line in lines if line.comment}
    for comment in m.findall(statement, m.Comment()):
        if id(comment) not in kept and id(comment) not in own:
            lines.append(cst.EmptyLine(comment=comment))
    return lines if any(line.comment for line in lines) else []


def at_least_blank(lines: Sequence[cst.EmptyLine], n: int) -> list[cst.EmptyLine]:
    lines = list(lines)
    have = 0
    while have < len(lines) and not lines[have].comment:
        have += 1
    return [cst.EmptyLine(indent=False)] * max(0, n - have) + lines


def render_call(func: str, args: Sequence[tuple[str, object, Sequence[str]]], indent: str, unit: str,
                multiline: bool | None = None, lead: int = 0) -> str:
    """``func(k=v, ...)`` as source text, one argument per line when it would pass 88 columns.

    ``args`` are ``(prefix, code, comments)``: a prefix such as ``"k="`` or ``"**"``; the code, or
    ``(func, args)`` for a nested call laid out the same way; the comment after the argument on
    its line (or ``""``) followed by comment lines to put below it. ``indent`` is the indentation
    of the line the call starts on and ``lead`` the width of what precedes it there.
    """
    def flat(code) -> str:
        return code if isinstance(code, str) else render_call(code[0], code[1], "", "", False)

    one_line = f"{func}({', '.join(p + flat(c) for p, c, _ in args)})"
    if multiline is None:
        multiline = len(indent) + lead + len(one_line) + 1 > LINE_LENGTH or \
            any(cm or "\n" in flat(c) for _, c, cm in args)
    if not multiline or not args:
        return one_line
    lines = [f"{func}("]
    for prefix, code, comments in args:
        text = code if isinstance(code, str) else render_call(code[0], code[1], indent + unit, unit, lead=len(prefix))
        lines.append(f"{indent}{unit}{prefix}{text}," + (f"  {comments[0]}" if comments and comments[0] else ""))
        lines += [f"{indent}{unit}{c}" for c in comments[1:]]
    lines.append(f"{indent})")
    return "\n".join(lines)


def split_chain(expr: cst.BaseExpression) -> tuple[cst.BaseExpression, list[tuple[str, cst.Call]]]:
    """``root.a(...).b(...)`` as ``(root, [("a", call), ("b", call)])``."""
    calls = []
    while isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute):
        calls.append((expr.func.attr.value, expr))
        expr = expr.func.value
    return expr, calls[::-1]


#: ``--lightning-package`` value -> the module Lightning's PyTorch API lives in.
LIGHTNING_MODULES = {"lightning": "lightning.pytorch", "pytorch_lightning": "pytorch_lightning"}


def swap_lightning_module(name: str, target: str) -> str | None:
    """``name`` (an imported module) moved to the ``target`` Lightning package, or ``None`` to keep it."""
    if target == "lightning.pytorch" and (name == "pytorch_lightning" or name.startswith("pytorch_lightning.")):
        return "lightning.pytorch" + name[len("pytorch_lightning"):]
    if target == "pytorch_lightning":
        if name == "lightning.pytorch" or name.startswith("lightning.pytorch."):
            return "pytorch_lightning" + name[len("lightning.pytorch"):]
        if name == "lightning":
            return "pytorch_lightning"
    return None


def imported_modules(tree: cst.Module) -> list[tuple[cst.CSTNode, str, cst.ImportAlias | None]]:
    """``(import statement, module, alias)`` for every absolute import; ``alias`` is None for ``from`` imports."""
    found = []
    for imp in m.findall(tree, m.Import() | m.ImportFrom()):
        if isinstance(imp, cst.Import):
            found += [(imp, get_full_name_for_node(a.name), a) for a in imp.names]
        elif imp.module is not None and not imp.relative:
            found.append((imp, get_full_name_for_node(imp.module), None))
    return found


def lightning_package(tree: cst.Module, option: str | None) -> str:
    """The module of Lightning's PyTorch API a converted script uses: the option's, else the script's.

    With both packages installed Ray binds to ``lightning.pytorch``, so that wins a tie.
    """
    if option:
        return LIGHTNING_MODULES[option]
    tops = {module.split(".")[0] for _, module, _ in imported_modules(tree)}
    return "pytorch_lightning" if "pytorch_lightning" in tops and "lightning" not in tops else "lightning.pytorch"


def lightning_trainer_name(tree: cst.Module, package: str) -> str | None:
    """How ``tree`` already names ``package``'s ``Trainer`` (``pl.Trainer``, ``Trainer``...), if it does."""
    accepted = {package, "lightning"} if package == "lightning.pytorch" else {package}
    for imp, module, alias in imported_modules(tree):
        if (swap_lightning_module(module, package) or module) not in accepted:
            continue
        if alias is not None:
            return f"{alias.asname.name.value if alias.asname else module}.Trainer"
        if not isinstance(imp.names, cst.ImportStar):
            for name in imp.names:
                if name.name.value == "Trainer":
                    return name.asname.name.value if name.asname else "Trainer"
    return None


def rewrite_lightning_import(node, target: str):
    """An import of one Lightning package rewritten for ``target``; names bound stay the same.

    Returns the new node, or ``None`` when a bare ``import lightning.pytorch`` cannot be rewritten
    without changing the names the script uses.
    """
    if isinstance(node, cst.ImportFrom):
        if node.relative or node.module is None:
            return node
        new = swap_lightning_module(get_full_name_for_node(node.module), target)
        return node.with_changes(module=cst.parse_expression(new)) if new else node
    names = []
    for alias in node.names:
        module = get_full_name_for_node(alias.name)
        new = swap_lightning_module(module, target)
        if new and not alias.asname and "." in module:
            return None
        if new:
            alias = alias.with_changes(name=cst.parse_expression(new),
                                       asname=alias.asname or cst.AsName(name=cst.Name(module)))
        names.append(alias)
    return node.with_changes(names=names)

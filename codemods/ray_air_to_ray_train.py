"""Move ``ray.air`` (Ray 2.0-2.6) names to ``ray.train``, where Train V2 expects them.

Implements item 5 of the issue "Retired Ray trainers and the ray.air API", after Ray 2.7's move of
the AIR API into ``ray.train`` and Train V2's migration guide (https://github.com/ray-project/ray/issues/49454).
Under Train V2 ``session.report`` and ``session.get_world_rank()`` still import but silently do
nothing, and the ``ray.air`` configs are rejected when the trainer starts. The names are data, each
with the Ray version it moved in: ``codemods/data/ray_air_to_ray_train.toml``.

Before::

    from ray.air import session, ScalingConfig
    from ray.air.checkpoint import Checkpoint

    def train_func(config):
        if session.get_world_rank() == 0:
            print("rank 0")
        session.report({"loss": loss}, checkpoint=Checkpoint.from_directory(path))

After::

    from ray.train import ScalingConfig
    from ray.train import Checkpoint
    import ray.train

    def train_func(config):
        if ray.train.get_context().get_world_rank() == 0:
            print("rank 0")
        ray.train.report({"loss": loss}, checkpoint=Checkpoint.from_directory(path))

A name the script imports from ``ray.air`` keeps its spelling (the import moves, aliases kept); names
reached through ``ray.air.`` or a module alias become ``ray.train.`` ones. ``result.log_dir`` becomes
``result.path`` where ``result`` comes from ``trainer.fit()``. No exact rewrite (``Checkpoint.from_dict``,
``DatasetConfig``, ``session.get_trial_name()``...) means a follow-up instead.
"""

from __future__ import annotations

import libcst as cst
from libcst.metadata import ScopeProvider

from codemods._keywords import drop_items
from codemods._module_code import defines, insert_functions
from codemods._names import TableCodemod, load_table

TABLE = load_table("ray_air_to_ray_train")
NAMES: dict[str, dict] = TABLE["names"]
CHECKPOINTS = frozenset(TABLE["checkpoint"]["classes"])
METHODS: dict[str, dict] = TABLE["checkpoint"]["methods"]
TRAINERS = frozenset(load_table("ray_train_v1_arguments")["classes"]["trainer"])
DICTS: dict = TABLE["dict_checkpoints"]
#: The name a rewritten report gives the checkpoint it reports (unlikely to shadow the script's own).
REPORTED = "checkpoint_to_report"


class RayAirToRayTrain(TableCodemod):
    DESCRIPTION = "Move ray.air session, config and checkpoint names to ray.train."
    # `air` covers `ray.air` and `from ray import tune, air`; the rest are names it rewrites
    # outside ray.air (checkpoint classes and methods, `result.log_dir`, ray.train.huggingface).
    TRIGGERS = (b"air", b"Checkpoint", b"TorchCheckpoint", b"huggingface", b"log_dir", b"preprocessors")
    MODULES = (b"ray",)
    ORDER = 20

    def visit_Module(self, node: cst.Module) -> None:
        self._called: set[cst.CSTNode] = set()
        self._reported: set[str] = set()
        self._plan_dict_checkpoints(node)

    # -- dict checkpoints -> directory checkpoints ----------------------------------------------
    def _plan_dict_checkpoints(self, module: cst.Module) -> None:
        """Find ``report(..., checkpoint=Checkpoint.from_dict(d))`` statements, and (only in a file with
        such writers) ``checkpoint.to_dict()`` readers: both are rewritten, nothing else is."""
        self._writes: dict[cst.Call, cst.Arg] = {}  # report call -> its checkpoint= argument
        self._reads: set[cst.Call] = set()
        if self.uses_any(NAMES["ray.air.session.report"].get("unless_uses", ())):
            return  # Tune trainables: ray.train's context does not exist there
        outer, reports, reads = self, {}, []

        class Find(cst.CSTVisitor):
            def visit_SimpleStatementLine(self, node: cst.SimpleStatementLine) -> None:
                if len(node.body) == 1 and isinstance(node.body[0], cst.Expr) and isinstance(node.body[0].value, cst.Call):
                    call = node.body[0].value
                    if outer.qnames(call.func) & set(DICTS["reports"]):
                        arg = next((a for a in call.args if a.keyword and a.keyword.value == "checkpoint"), None)
                        if arg is not None and outer._from_dict(arg.value):
                            reports[call] = arg

            def visit_Call(self, node: cst.Call) -> None:
                func = node.func
                if isinstance(func, cst.Attribute) and func.attr.value == "to_dict" and not node.args and outer._is_checkpoint(func.value):
                    reads.append(node)

        module.visit(Find())
        self._writes = reports
        if reports:
            self._reads = set(reads)

    def _from_dict(self, expr: cst.BaseExpression) -> bool:
        return (isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute) and expr.func.attr.value == "from_dict"
                and len(expr.args) == 1 and expr.args[0].keyword is None and not expr.args[0].star
                and bool(self.qnames(expr.func.value) & CHECKPOINTS))

    def _planned(self, attribute: cst.Attribute) -> bool:
        """Whether this ``.from_dict`` / ``.to_dict`` is part of a planned rewrite (so no follow-up)."""
        if attribute.attr.value == "from_dict":
            return any(arg.value.func is attribute for arg in self._writes.values())
        return any(call.func is attribute for call in self._reads)

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        if original_node in self._reads:
            self.change(original_node, f"`{self.source(original_node)}` -> `load_dict_checkpoint(...)`: dict checkpoints were removed in Ray {DICTS['version']}, "
                                       "this reads the directory checkpoint the report writes")
            return cst.Call(func=cst.Name("load_dict_checkpoint"), args=[cst.Arg(updated_node.func.value)])
        return updated_node

    def leave_SimpleStatementLine(self, original_node: cst.SimpleStatementLine, updated_node: cst.SimpleStatementLine):
        call = original_node.body[0].value if len(original_node.body) == 1 and isinstance(original_node.body[0], cst.Expr) else None
        if call not in self._writes:
            return updated_node
        new_call = updated_node.body[0].value
        data = self._writes[call].value.args[0].value
        args = [a.with_changes(value=cst.Name(REPORTED)) if a.keyword and a.keyword.value == "checkpoint" else a for a in new_call.args]
        inner = updated_node.with_changes(body=[updated_node.body[0].with_changes(value=new_call.with_changes(args=args))], leading_lines=[])
        self.change(original_node, f"`Checkpoint.from_dict(...)` -> `dict_checkpoint(...)`, a directory checkpoint written by rank 0 "
                                   f"(dict checkpoints were removed in Ray {DICTS['version']})")
        return cst.With(
            items=[cst.WithItem(cst.Call(func=cst.Name("dict_checkpoint"), args=[cst.Arg(data)]), asname=cst.AsName(name=cst.Name(REPORTED)))],
            body=cst.IndentedBlock(body=[inner]),
            leading_lines=original_node.leading_lines,
        )

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> cst.Module:
        if not self._writes:
            return updated_node
        for module in DICTS["imports"]:
            self.add_needed_import(module)
        functions = [DICTS["writer"].strip() + "\n"] if not defines(updated_node, "dict_checkpoint") else []
        if self._reads and not defines(updated_node, "load_dict_checkpoint"):
            functions.append(DICTS["reader"].strip() + "\n")
        return insert_functions(updated_node, functions) if functions else updated_node

    def visit_Import(self, node: cst.Import) -> bool:
        return False

    def visit_ImportFrom(self, node: cst.ImportFrom) -> bool:
        return False

    def visit_Call(self, node: cst.Call) -> None:
        self._called.add(node.func)

    # -- the rename table -------------------------------------------------------------------
    def _entry(self, node: cst.CSTNode) -> tuple[str, dict] | tuple[None, None]:
        for name in self.qnames(node):
            if name in NAMES:
                return name, NAMES[name]
        return None, None

    def _blocked(self, entry: dict) -> bool:
        """Whether this script makes the entry's rename uncertain or inexact."""
        return bool(self.uses_any(entry.get("unless_uses", ())) or set(entry.get("unless_reads", ())) & self.attributes_read())

    def _flag(self, node: cst.CSTNode, old: str, entry: dict, once: bool = False) -> None:
        if once and old in self._reported:
            return
        self._reported.add(old)
        self.follow_up(node, f"`{old}` (Ray {entry['version']}): {entry['follow_up']}")

    def _rewrite(self, original: cst.BaseExpression, updated: cst.BaseExpression) -> cst.BaseExpression:
        """``original`` refers to a table name through a module (``session.report``, ``air.ScalingConfig``,
        ``ray.air.Checkpoint``) or is a bare name the table turns into an expression; spell it out."""
        old, entry = self._entry(original)
        if entry is None:
            return updated
        if "new" not in entry or self._blocked(entry):
            self._flag(original, old, entry, once="new" in entry)
            return updated
        new = entry["new"]
        if "(" in new and original not in self._called:
            self.follow_up(original, f"`{self.source(original)}` is not called here, so it cannot become `{new}()`: rewrite it by hand")
            return updated
        self.add_needed_import(new.split("(")[0].rsplit(".", 1)[0] if "(" in new else new.rsplit(".", 1)[0])
        self.remove_unused_import_by_node(original)
        self.change(original, f"`{self.source(original)}` -> `{new}` (moved in Ray {entry['version']})")
        return cst.parse_expression(new)

    def leave_Attribute(self, original_node: cst.Attribute, updated_node: cst.Attribute) -> cst.BaseExpression:
        method = METHODS.get(original_node.attr.value)
        if method and self._planned(original_node):
            return updated_node
        if method and (self.qnames(original_node.value) & CHECKPOINTS or self._is_checkpoint(original_node.value)):
            self.follow_up(original_node, f"`{self.source(original_node)}`: {method['follow_up']}")
            return updated_node
        log_dir = TABLE["attributes"]["result"].get(original_node.attr.value)
        if log_dir and self.returned_by(original_node.value, "fit", TRAINERS):
            self.change(original_node, f"`.{original_node.attr.value}` -> `.{log_dir['rename']}` (Ray {log_dir['version']})")
            return updated_node.with_changes(attr=cst.Name(log_dir["rename"]))
        return self._rewrite(original_node, updated_node)

    def leave_Name(self, original_node: cst.Name, updated_node: cst.Name) -> cst.BaseExpression:
        old, entry = self._entry(original_node)
        if entry is None or "new" not in entry or "(" in entry["new"] or self._blocked(entry):
            return self._rewrite(original_node, updated_node)
        # A plain move: the import moves in leave_ImportFrom and the name stays, unless the object
        # was renamed (TorchCheckpoint -> Checkpoint), was imported without `as` and the new name is free.
        new_name = entry["new"].rsplit(".", 1)[1]
        if original_node.value == old.rsplit(".", 1)[1] != new_name and self._free(new_name, entry["new"]):
            return updated_node.with_changes(value=new_name)
        return updated_node

    def _free(self, name: str, full: str) -> bool:
        """Whether the module-level ``name`` is unbound or bound only to what becomes ``full``."""
        bound = {q.name for q in self.get_metadata(ScopeProvider, self.module).get_qualified_names_for(name)}
        return all(q == full or NAMES.get(q, {}).get("new") == full for q in bound)

    def _is_checkpoint(self, expr: cst.BaseExpression, depth: int = 0) -> bool:
        """A value known to be a Ray checkpoint: ``get_checkpoint()``, ``<x>.checkpoint``, ``Checkpoint.from_...()``."""
        if isinstance(expr, cst.Attribute):
            return expr.attr.value == "checkpoint"
        if isinstance(expr, cst.Call):
            func = expr.func
            getters = set(TABLE["checkpoint"]["getters"])
            return bool(self.qnames(func) & getters) or (
                isinstance(func, cst.Attribute) and func.attr.value.startswith("from_") and bool(self.qnames(func.value) & CHECKPOINTS)
            )
        values = self.values_of(expr) if isinstance(expr, cst.Name) and depth < 3 else None
        return bool(values) and all(self._is_checkpoint(v, depth + 1) for v in values)

    # -- imports ------------------------------------------------------------------------------
    def leave_ImportFrom(self, original_node: cst.ImportFrom, updated_node: cst.ImportFrom):
        """``from ray.air import ScalingConfig`` -> ``from ray.train import ScalingConfig``: the
        import visitors cannot move a name from one module to another, so this is done here."""
        if isinstance(updated_node.names, cst.ImportStar) or updated_node.relative or updated_node.module is None:
            return updated_node
        module = cst.helpers.get_full_name_for_node(updated_node.module)
        moves = {}
        for alias in updated_node.names:
            entry = NAMES.get(f"{module}.{alias.evaluated_name}")
            if entry and "new" in entry and "(" not in entry["new"] and not self._blocked(entry):
                moves[alias.evaluated_name] = entry["new"].rsplit(".", 1)
        if not moves:
            return updated_node
        for name, (target, new_name) in moves.items():
            self.change(original_node, f"`{module}.{name}` -> `{target}.{new_name}` (moved in Ray {NAMES[f'{module}.{name}']['version']})")
        targets = {target for target, _ in moves.values()}
        if len(moves) == len(updated_node.names) and len(targets) == 1:
            names = [a.with_changes(name=cst.Name(moves[a.evaluated_name][1]), asname=self._local(a, moves)) for a in updated_node.names]
            return updated_node.with_changes(module=cst.parse_expression(targets.pop()), names=names)
        drop = {i for i, a in enumerate(updated_node.names) if a.evaluated_name in moves}
        for alias in updated_node.names:
            if alias.evaluated_name in moves:
                target, new_name = moves[alias.evaluated_name]
                local = self._local(alias, moves)
                self.add_needed_import(target, new_name, local.name.value if local else None)
        if len(drop) == len(updated_node.names):
            return cst.RemoveFromParent()
        opening = updated_node.lpar.whitespace_after if updated_node.lpar else cst.SimpleWhitespace("")
        kept, opening = drop_items(updated_node.names, drop, opening)
        lpar = updated_node.lpar.with_changes(whitespace_after=opening) if updated_node.lpar else None
        return updated_node.with_changes(names=kept, lpar=lpar)

    def _local(self, alias: cst.ImportAlias, moves: dict[str, list[str]]) -> cst.AsName | None:
        """The ``as`` clause of a moved import: the script's own, or one that keeps the old name
        when the object was renamed and leave_Name could not rename its uses."""
        target, new_name = moves[alias.evaluated_name]
        if alias.asname is not None or new_name == alias.evaluated_name or self._free(new_name, f"{target}.{new_name}"):
            return alias.asname
        return cst.AsName(name=cst.Name(alias.evaluated_name))

"""Rewrite the ``Trainer`` arguments, values and class methods that PyTorch Lightning 2.0 removed.

Runs before ``lightning_trainer`` (lower ``ORDER``), so a Lightning 1.x script first becomes a 2.x
script, which the Ray conversion then sees as written today. Works for ``pytorch_lightning`` and
``lightning.pytorch`` alike. The decisions are data: ``codemods/data/lightning_removed_arguments.toml``.

Before::

    parser = ArgumentParser()
    parser = pl.Trainer.add_argparse_args(parser)
    args = parser.parse_args()
    trainer = pl.Trainer(gpus=2, accelerator="ddp", checkpoint_callback=False,
                         resume_from_checkpoint="last.ckpt")
    trainer.fit(model)
    other = pl.Trainer.from_argparse_args(args, logger=False)

After::

    def add_trainer_arguments(parser):
        ...  # one parser.add_argument per Trainer flag, with the Trainer's own default
        return parser

    parser = ArgumentParser()
    parser = add_trainer_arguments(parser)
    args = parser.parse_args()
    trainer = pl.Trainer(accelerator="gpu", devices=2, strategy="ddp", enable_checkpointing=False)
    trainer.fit(model, ckpt_path="last.ckpt")
    other = pl.Trainer(accelerator=args.accelerator, devices=args.devices, ..., logger=False)

What is rewritten, and why that way:

* ``gpus=N`` -> ``accelerator="gpu", devices=N`` (the upgrade guide's spelling); ``gpus=0``/``None``
  meant CPU in 1.x -> ``accelerator="cpu"``; a name or attribute ``gpus=args.gpus`` ->
  ``accelerator="gpu" if args.gpus else "cpu", devices=args.gpus or 1``, the exact 1.x meaning.
* ``resume_from_checkpoint=X`` -> ``ckpt_path=X`` on the one ``fit`` of that Trainer (when the fit is
  in the same function and ``X`` is a literal, a name or an attribute; otherwise a follow-up).
* ``accelerator="ddp"`` (1.x strategies given as accelerator) and ``strategy="dp"`` -> ``strategy="ddp"``;
  for DataParallel a follow-up says how the effective batch size changes.
* ``Trainer.add_argparse_args(parser)`` / ``Trainer.from_argparse_args(args, **kw)``: the 1.x pair
  turned every Trainer parameter into a ``--flag``. The replacement a reviewer can read: a
  function ``add_trainer_arguments(parser)``, written once into the file, that adds explicit
  ``--flag`` arguments (typed, with the Trainer's own defaults) for the Trainer options that are set
  from command lines (``--accelerator --devices --num_nodes --precision --max_epochs --max_steps``...),
  and ``Trainer(<flag>=args.<flag>, ..., **kw)`` with one keyword per flag, so the Trainer's arguments
  stay visible (and the Ray conversion that follows can adjust them). Not generated: ``--gpus`` (gone in
  2.0: ``--accelerator gpu --devices N``), ``--strategy`` (the strategy belongs in code, where
  Ray Train replaces it), booleans and int-or-float flags (``--limit_train_batches``...): a command
  line that passes one of these now stops with argparse's "unrecognized arguments", never silently.
  ``from_argparse_args`` in a file that does not call ``add_argparse_args`` gets a follow-up (its
  namespace may lack the flags). Trainer parameters the script sets on the namespace itself
  (``args.callbacks = load_callbacks()``, ``args.logger = logger``) are passed too, as 1.x did.
* ``checkpoint_callback``, ``weights_summary``, ``progress_bar_refresh_rate``, ``distributed_backend``,
  ``auto_select_gpus``, ``max_steps=None``: per value, from the table; a follow-up otherwise.
* Lightning 0.x spellings (``max_nb_epochs``, ``nb_gpu_nodes``, ``use_amp``, ``train_percent_check``...)
  and 1.x ones (``replace_sampler_ddp``, ``auto_lr_find``...): renamed, replaced per value or dropped
  where that value changed nothing, from the table; ``trainer.fit(train_dataloader=)``,
  ``trainer.test(test_dataloaders=)``, ``trainer.validate(val_dataloaders=)`` on a Trainer of this file
  get their 2.x keywords.
* Any other keyword Lightning 2.x's Trainer does not take (the table lists what it accepts) gets a
  follow-up: ``Trainer(...)`` would raise TypeError, and no such argument may pass in silence.
* Trainer attributes 1.5-2.0 removed, read on a Trainer of this file or on ``self.trainer`` in a
  LightningModule: renamed where there is a one-to-one replacement (``tested_ckpt_path`` ->
  ``ckpt_path``, ``num_gpus`` -> ``num_devices``, ``root_gpu`` -> ``strategy.root_device.index``...),
  a follow-up otherwise (``use_amp``, ``weights_save_path``...). From the table's ``attributes``.
* ``return {"loss": loss, "log": logs, "progress_bar": bar}`` in a ``LightningModule`` method (0.x
  logging, which 1.0 stopped reading without a word): ``self.log_dict(logs)`` and
  ``self.log_dict(bar, prog_bar=True)`` before the return, and the keys leave the dict.
* ``training_epoch_end`` / ``validation_epoch_end`` / ``test_epoch_end`` in a ``LightningModule``:
  ``on_*_batch_end`` keeps what the step returns and ``on_*_epoch_end`` runs the old body over that
  list (``codemods/_lightning_epoch_end.py``); where that would not be 1.x's list, a follow-up.
"""

from __future__ import annotations

import libcst as cst
from libcst.metadata import ParentNodeProvider, ScopeProvider

from codemods import _lightning as lt
from codemods import _lightning_epoch_end as epoch_end
from codemods._keywords import KeywordCodemod, drop_items, kwarg
from codemods._module_code import defines, insert_functions
from codemods._names import load_table

TABLE = load_table("lightning_removed_arguments")
KEYWORDS: dict[str, dict] = TABLE["keywords"]["trainer"]
VALUES: dict[str, dict[str, dict]] = TABLE["values"]
SPECIAL: dict[str, dict] = TABLE["special"]["trainer"]
FLAGS: list[dict] = TABLE["special"]["flags"]
HOOKS: dict[str, dict] = TABLE["hooks"]
METHODS: dict[str, dict[str, dict]] = TABLE["methods"]
ATTRIBUTES: dict[str, dict] = TABLE["attributes"]
ACCEPTED = frozenset(TABLE["accepted"]["trainer"])
HELPER = "add_trainer_arguments"
BAR = "progress_bar_refresh_rate"
MODULES = frozenset(f"{package}.{path}" for package in ("pytorch_lightning", "lightning.pytorch", "lightning")
                    for path in ("LightningModule", "core.LightningModule", "core.module.LightningModule", "core.lightning.LightningModule"))
#: Keys of a dict a 0.x LightningModule method returned to log it, and the self.log_dict arguments that do it now.
LOGGING_KEYS = {"log": "", "progress_bar": ", prog_bar=True"}
#: Expressions evaluated the same wherever they are written again (no call in them).
_STABLE = (cst.Name, cst.Attribute, cst.SimpleString, cst.Integer, cst.Float)


def _string(node: cst.BaseExpression) -> str | None:
    return node.evaluated_value if isinstance(node, cst.SimpleString) else None


def _stable(expr: cst.BaseExpression) -> bool:
    if isinstance(expr, cst.Attribute):
        return _stable(expr.value)
    return isinstance(expr, _STABLE) or (isinstance(expr, cst.Name) and expr.value in ("None", "True", "False"))


class LightningRemovedArguments(KeywordCodemod):
    DESCRIPTION = "Rewrite Trainer arguments, values and hooks PyTorch Lightning 2.0 removed (gpus=, from_argparse_args...)."
    TRIGGERS = (b"pytorch_lightning", b"lightning")
    ORDER = 50
    LIBRARY = "Lightning"
    METADATA_DEPENDENCIES = (*KeywordCodemod.METADATA_DEPENDENCIES, ParentNodeProvider)

    def visit_Module(self, node: cst.Module) -> None:
        self._fits: dict[cst.Call, cst.BaseExpression] = {}  # fit call -> ckpt_path value
        self._resumes: set[cst.Arg] = set()  # resume_from_checkpoint= args that move to a fit
        self._helper_needed = False
        self._module_classes: list[cst.ClassDef] = []  # the LightningModules being visited
        self._hooks: dict[cst.FunctionDef, dict] = {}  # removed *_epoch_end hooks rewritten, with their entries
        self._plan_resumes(node)

    # -- what is a Trainer -------------------------------------------------------------------
    def _is_trainer(self, func: cst.BaseExpression) -> bool:
        return any(lt.is_trainer(q) for q in self.qnames(func))

    def _trainer_method(self, call: cst.Call, name: str) -> bool:
        func = call.func
        return isinstance(func, cst.Attribute) and func.attr.value == name and self._is_trainer(func.value)

    # -- resume_from_checkpoint -> fit(ckpt_path=) ---------------------------------------------
    def _plan_resumes(self, module: cst.Module) -> None:
        codemod, calls, assigned = self, [], {}

        class Collect(cst.CSTVisitor):
            def visit_Assign(self, node: cst.Assign) -> None:
                if len(node.targets) == 1 and isinstance(node.targets[0].target, cst.Name) and isinstance(node.value, cst.Call):
                    assigned[node.value] = node.targets[0].target.value

            def visit_Call(self, node: cst.Call) -> None:
                calls.append(node)

        module.visit(Collect())
        for call in calls:
            if not self._is_trainer(call.func):
                continue
            arg = next((a for a in call.args if a.keyword and a.keyword.value == "resume_from_checkpoint"), None)
            if arg is None:
                continue
            var = assigned.get(call)
            fits = [c for c in calls if isinstance(c.func, cst.Attribute) and c.func.attr.value == "fit"
                    and isinstance(c.func.value, cst.Name) and c.func.value.value == var
                    and codemod.values_of(c.func.value) == [call]]
            same_scope = len(fits) == 1 and self.get_metadata(ScopeProvider, fits[0]) is self.get_metadata(ScopeProvider, call)
            if same_scope and _stable(arg.value) and not any(a.keyword and a.keyword.value == "ckpt_path" for a in fits[0].args):
                self._fits[fits[0]] = arg.value
                self._resumes.add(arg)

    # -- Trainer(...) --------------------------------------------------------------------------
    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        if original_node in self._fits:
            value = self._fits[original_node]
            self.change(original_node, f"`resume_from_checkpoint={self.source(value)}` moved here as `ckpt_path=` (Lightning {SPECIAL['resume_from_checkpoint']['version']})")
            return updated_node.with_changes(args=lt.append_items(updated_node.args, [kwarg("ckpt_path", self.source(value))], updated_node.whitespace_before_args))
        if self._trainer_method(original_node, "add_argparse_args"):
            return self._add_argparse_args(original_node, updated_node)
        if self._trainer_method(original_node, "from_argparse_args"):
            return self._from_argparse_args(original_node, updated_node)
        if isinstance(original_node.func, cst.Attribute) and original_node.func.attr.value == "tune" \
                and self._trainer_instance(original_node.func.value):
            self.follow_up(original_node, f"`Trainer.tune` was removed in Lightning {SPECIAL['tune']['version']}: {SPECIAL['tune']['follow_up']}")
            return updated_node
        if isinstance(original_node.func, cst.Attribute) and original_node.func.attr.value in METHODS \
                and self._trainer_instance(original_node.func.value):
            return self.fix_keywords(original_node, updated_node, METHODS[original_node.func.attr.value])
        if not self._is_trainer(original_node.func):
            return updated_node
        bar = self._progress_bar_rate(original_node)
        updated = self.fix_keywords(original_node, updated_node, {k: v for k, v in KEYWORDS.items() if bar is None or k != BAR})
        self._unknown_keywords(original_node)
        if bar is not None:
            updated = self._progress_bar_callback(original_node, updated, bar)
        return self._special(original_node, updated)

    # -- progress_bar_refresh_rate=N -> callbacks=[TQDMProgressBar(refresh_rate=N)] ----------------------
    def _progress_bar_rate(self, call: cst.Call) -> cst.Arg | None:
        """The ``progress_bar_refresh_rate=`` argument to move into a TQDMProgressBar callback, or None: its value
        is not 0 or 1 (the table's exact cases), is a literal or a plain name, and callbacks= is absent or a list."""
        args = {a.keyword.value: a for a in call.args if a.keyword}
        arg, callbacks = args.get(BAR), args.get("callbacks")
        if arg is None or not _stable(arg.value) or self.source(arg.value) in ("0", "1") or any(a.star for a in call.args):
            return None
        if callbacks is not None and not isinstance(callbacks.value, cst.List):
            return None
        return arg

    def _progress_bar_callback(self, original: cst.Call, updated: cst.Call, bar: cst.Arg) -> cst.Call:
        package = next((q.rsplit(".", 1)[0] for q in self.qnames(original.func) if lt.is_trainer(q)), "pytorch_lightning")
        package = "lightning.pytorch" if package == "lightning" else package.removesuffix(".trainer.trainer").removesuffix(".trainer")
        rate = self.source(bar.value)
        callback = cst.parse_expression(f"TQDMProgressBar(refresh_rate={rate})")
        self.add_needed_import(f"{package}.callbacks", "TQDMProgressBar")
        index = next(i for i, a in enumerate(updated.args) if a.keyword and a.keyword.value == BAR)
        existing = next((i for i, a in enumerate(updated.args) if a.keyword and a.keyword.value == "callbacks"), None)
        args, opening = drop_items(list(updated.args), {index}, updated.whitespace_before_args)
        updated = updated.with_changes(args=args, whitespace_before_args=opening)
        if existing is None:
            new = kwarg("callbacks", f"[TQDMProgressBar(refresh_rate={rate})]")
            args = lt.append_items(list(updated.args), [new], updated.whitespace_before_args) if updated.args else [new]
            updated = updated.with_changes(args=args)
        else:
            args = list(updated.args)
            at = existing - (1 if index < existing else 0)
            listed = args[at].value
            args[at] = args[at].with_changes(value=listed.with_changes(
                elements=lt.append_items(listed.elements, [cst.Element(callback)], listed.lbracket.whitespace_after)))
            updated = updated.with_changes(args=args)
        self.change(bar, f"`{BAR}={rate}` -> `callbacks=[..., TQDMProgressBar(refresh_rate={rate})]` "
                         f"(`{BAR}=` was retired in Lightning {KEYWORDS[BAR]['version']}; TQDMProgressBar is the bar it configured)")
        return updated

    def _trainer_instance(self, expr: cst.BaseExpression) -> bool:
        """Whether ``expr`` is a name every binding of which is a Lightning ``Trainer(...)`` (or from_argparse_args)."""
        values = self.values_of(expr) if isinstance(expr, cst.Name) else None
        return bool(values) and all(
            isinstance(v, cst.Call) and (self._is_trainer(v.func) or self._trainer_method(v, "from_argparse_args")) for v in values)

    def _unknown_keywords(self, original: cst.Call) -> None:
        """A keyword that Lightning 2.x's Trainer does not take, and that no table entry knows: a follow-up,
        since Trainer(...) raises TypeError on it."""
        for arg in original.args:
            name = arg.keyword.value if arg.keyword else None
            if name and name not in ACCEPTED and name not in KEYWORDS and name not in SPECIAL:
                self.follow_up(arg, f"`{name}=` is not an argument of Lightning 2.x's Trainer (Trainer(...) raises TypeError): "
                                    "it was renamed or removed before 2.0; pass its 2.x replacement (see Lightning's upgrade guide) or drop it")

    def _special(self, original: cst.Call, updated: cst.Call) -> cst.Call:
        """Keyword values (accelerator="ddp", strategy="dp"), then gpus= and resume_from_checkpoint=."""
        originals = {o.keyword.value: o for o in original.args if o.keyword}
        given = set(originals)
        args, drop, extra = list(updated.args), set(), []
        for i, arg in enumerate(updated.args):
            name = arg.keyword.value if arg.keyword else None
            if name not in VALUES or name not in originals:
                continue
            key = str(arg.value.evaluated_value) if isinstance(arg.value, cst.SimpleString) else self.source(arg.value)
            orig, entry = originals[name], VALUES[name].get(key)
            if entry is None:
                continue
            keyword, _, value = entry["new"].partition("=")
            written = f"{name}={self.source(orig.value)}"
            if keyword != name and keyword in given:
                self.follow_up(orig, f'`{written}` was removed in Lightning {entry["version"]}, and {keyword}= is given too: {entry["follow_up"]}')
                continue
            self.change(orig, f"`{written}` -> `{entry['new']}` (rejected since Lightning {entry['version']})")
            args[i] = arg.with_changes(keyword=cst.Name(keyword), value=cst.parse_expression(value))
            if "batch_note" in entry:
                self.follow_up(orig, entry["batch_note"])
            given.discard(name)
            given.add(keyword)
        for i, arg in enumerate(args):
            name = arg.keyword.value if arg.keyword else None
            if name == "resume_from_checkpoint" and name in originals:
                if originals[name] in self._resumes:
                    drop.add(i)
                else:
                    self.follow_up(originals[name], f"`resume_from_checkpoint=` was removed in Lightning {SPECIAL[name]['version']}, and this Trainer's "
                                                    f"one fit(...) is not beside it (or the value is computed): {SPECIAL[name]['follow_up']}")
            elif name == "gpus" and name in originals:
                replacement = self._gpus(originals[name], given)
                if replacement is not None:
                    drop.add(i)
                    extra += replacement
        if drop:
            args, opening = drop_items(args, drop, updated.whitespace_before_args)
            updated = updated.with_changes(args=args, whitespace_before_args=opening)
            args = list(updated.args)
        if extra:
            args = lt.append_items(args, extra, updated.whitespace_before_args) if args else extra
        return updated.with_changes(args=args)

    def _gpus(self, arg: cst.Arg, given: set[str]) -> list[cst.Arg] | None:
        """The keywords that replace ``gpus=<value>``, or None (with a follow-up)."""
        entry, value = SPECIAL["gpus"], arg.value
        written = self.source(value)
        if {"devices", "accelerator"} & given:
            self.follow_up(arg, f"`gpus=` was removed in Lightning {entry['version']}, and accelerator= or devices= is given too: {entry['follow_up']}")
            return None
        if written in ("0", "None"):
            new = [kwarg("accelerator", '"cpu"')]
        elif isinstance(value, (cst.Integer, cst.SimpleString, cst.List, cst.Tuple)) or (
                isinstance(value, cst.UnaryOperation) and isinstance(value.expression, cst.Integer)):
            new = [kwarg("accelerator", '"gpu"'), kwarg("devices", written)]
        elif _stable(value):
            # 1.x: a false gpus (0 or None) trained on one CPU process.
            new = [kwarg("accelerator", f'"gpu" if {written} else "cpu"'), kwarg("devices", f"{written} or 1")]
        else:
            self.follow_up(arg, f"`gpus={written}` was removed in Lightning {entry['version']}: {entry['follow_up']}")
            return None
        code = ", ".join(f"{a.keyword.value}={cst.Module([]).code_for_node(a.value)}" for a in new)
        self.change(arg, f"`gpus={written}` -> `{code}` (gpus= was removed in Lightning {entry['version']})")
        return new

    # -- add_argparse_args / from_argparse_args -------------------------------------------------
    def _add_argparse_args(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        if len(original.args) != 1 or original.args[0].keyword is not None:
            self.follow_up(original, f"`Trainer.add_argparse_args` was removed in Lightning {SPECIAL['add_argparse_args']['version']}: {SPECIAL['add_argparse_args']['follow_up']}")
            return updated
        self._helper_needed = True
        value = original.args[0].value
        if isinstance(value, cst.Call) and isinstance(value.func, cst.Attribute) and value.func.attr.value == "add_argument_group":
            # 1.x returned a parser even when handed a group (`parser = add_argparse_args(parser.add_argument_group(...))`);
            # the helper returns what it is given, and makes its own "Trainer" group: hand it the parser itself.
            self.change(original, f"`{self.source(value)}` -> `{self.source(value.func.value)}`: {HELPER} adds its own argument group "
                                  "and returns the parser it is given, as the script then parses with it")
            updated = updated.with_changes(args=[updated.args[0].with_changes(value=updated.args[0].value.func.value)])
        flags = " ".join(f"--{f['name']}" for f in FLAGS)
        self.change(original, f"`{self.source(original.func)}` (removed in Lightning 2.0) -> `{HELPER}`, defined in this file: it adds {flags} "
                              "(--gpus is gone: pass --accelerator gpu --devices N)")
        return updated.with_changes(func=cst.Name(HELPER))

    def _from_argparse_args(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        entry = SPECIAL["from_argparse_args"]
        if not self._calls_add_argparse_args():
            self.follow_up(original, f"`Trainer.from_argparse_args` was removed in Lightning {entry['version']}, and this file never calls "
                                     f"Trainer.add_argparse_args, so which flags its namespace holds is unknown: {entry['follow_up']}")
            return updated
        first = original.args[0] if original.args else None
        rest = list(updated.args[1:])
        if first is None or first.keyword is not None or first.star or not _stable(first.value) or any(a.star for a in rest):
            self.follow_up(original, f"`Trainer.from_argparse_args` was removed in Lightning {entry['version']}, and its arguments are not a plain "
                                     f"namespace and keywords: {entry['follow_up']}")
            return updated
        namespace = self.source(first.value)
        # The keywords given beside the namespace get the same table as Trainer(...)'s own.
        rest = list(self.fix_keywords(original.with_changes(args=original.args[1:]), updated.with_changes(args=rest), KEYWORDS).args)
        self._unknown_keywords(original)
        given = {a.keyword.value for a in rest if a.keyword}
        # A keyword given here overrode the flag in 1.x; gpus= overrode the placement flags.
        overridden = given | ({"accelerator", "devices"} if "gpus" in given else set())
        flags = [kwarg(f["name"], f"{namespace}.{f['name']}") for f in FLAGS if f["name"] not in overridden]
        # from_argparse_args passed every Trainer parameter the namespace held, also those the script set on
        # it itself (args.callbacks = [...], args.logger = ...): they go on as keywords, or they would be lost.
        names = {f["name"] for f in FLAGS} | overridden
        flags += [kwarg(name, f"{namespace}.{name}") for name in self._set_on(namespace) if name not in names]
        self.change(original, f"`{self.source(original.func)}({namespace}, ...)` (removed in Lightning {entry['version']}) -> "
                              f"`{self.source(original.func.value)}(...)` with one keyword per flag of {HELPER}")
        call = updated.with_changes(func=updated.func.value, args=flags + rest)
        return self._special(original, lt.explode(call))

    def _set_on(self, namespace: str) -> list[str]:
        """The Trainer parameters this file assigns as attributes of ``namespace`` (``args.logger = ...``), in order."""
        found: list[str] = []

        class Find(cst.CSTVisitor):
            def visit_Assign(self, node: cst.Assign) -> None:
                for t in node.targets:
                    target = t.target
                    if isinstance(target, cst.Attribute) and cst.Module([]).code_for_node(target.value) == namespace \
                            and target.attr.value in ACCEPTED and target.attr.value not in found:
                        found.append(target.attr.value)

        self.module.visit(Find())
        return found

    def _calls_add_argparse_args(self) -> bool:
        if "_add_cache" not in self.__dict__:
            found = []
            outer = self

            class Find(cst.CSTVisitor):
                def visit_Call(self, node: cst.Call) -> None:
                    if outer._trainer_method(node, "add_argparse_args"):
                        found.append(node)

            self.module.visit(Find())
            self.__dict__["_add_cache"] = bool(found)
        return self.__dict__["_add_cache"]

    # -- trainer.<attribute> ----------------------------------------------------------------------
    def leave_Attribute(self, original_node: cst.Attribute, updated_node: cst.Attribute) -> cst.BaseExpression:
        name = original_node.attr.value
        if name not in ATTRIBUTES or not self._reads_trainer(original_node.value):
            return updated_node
        entry = ATTRIBUTES[name]
        if "rename" not in entry:
            self.follow_up(original_node, f"`Trainer.{name}` was removed in Lightning {entry['version']} (AttributeError): {entry['follow_up']}")
            return updated_node
        self.change(original_node, f"`.{name}` -> `.{entry['rename']}` (`Trainer.{name}` was removed in Lightning {entry['version']})")
        renamed = cst.parse_expression(f"x.{entry['rename']}")
        path = []
        while isinstance(renamed, cst.Attribute):
            path.append(renamed.attr.value)
            renamed = renamed.value
        result: cst.BaseExpression = updated_node.value
        for part in reversed(path):
            result = cst.Attribute(value=result, attr=cst.Name(part))
        return result.with_changes(lpar=updated_node.lpar, rpar=updated_node.rpar)

    def _reads_trainer(self, expr: cst.BaseExpression) -> bool:
        """A Trainer of this file, or ``self.trainer`` in a LightningModule of this file."""
        if self._trainer_instance(expr):
            return True
        return (isinstance(expr, cst.Attribute) and expr.attr.value == "trainer" and isinstance(expr.value, cst.Name)
                and expr.value.value == "self" and bool(self._module_classes))

    # -- LightningModule hooks -------------------------------------------------------------------
    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        if not any(self.qnames(b.value) & self.local_subclasses(MODULES) for b in node.bases) and node.name.value not in self.local_subclasses(MODULES):
            return
        self._module_classes.append(node)
        for stmt in node.body.body:
            if isinstance(stmt, cst.FunctionDef) and stmt.name.value in HOOKS:
                hook, where = HOOKS[stmt.name.value], f"`{node.name.value}.{stmt.name.value}`"
                why = epoch_end.rewritable(node, stmt, hook)
                if why is None:
                    self._hooks[stmt] = hook
                    self.change(stmt, f"{where} (removed in Lightning {hook['version']}) -> {hook['batch_end'].split('(')[0]}, "
                                f"which keeps what {hook['step']} returns, and {hook['epoch_end']}, which reads it")
                else:
                    self.follow_up(stmt, f"{where} was removed in Lightning {hook['version']} (fit raises NotImplementedError), "
                                   f"and {why}: {hook['follow_up']}")

    def leave_SimpleStatementLine(self, original: cst.SimpleStatementLine, updated: cst.SimpleStatementLine):
        """``return {"loss": loss, "log": {...}}`` in a LightningModule method (Lightning 0.x logging,
        silently ignored since 1.0): the logs go through ``self.log_dict`` and the key leaves the dict."""
        method = self._method_of(original)
        if method is None or len(updated.body) != 1 or not isinstance(updated.body[0], cst.Return):
            return updated
        value = updated.body[0].value
        if not isinstance(value, cst.Dict):
            return updated
        logged = {k: el for el in value.elements if isinstance(el, cst.DictElement)
                  for k in [_string(el.key)] if k in LOGGING_KEYS}
        if not logged:
            return updated
        kept = [el for el in value.elements if el not in logged.values()]
        if not kept and method == "training_step":
            return updated  # the loss must come back: a training_step returning logs alone is not a 0.x shape
        if kept:
            kept[-1] = kept[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
        calls = [cst.parse_statement(f"self.log_dict({self.source(el.value)}{LOGGING_KEYS[key]})\n",
                                     config=self.module.config_for_parsing) for key, el in logged.items()]
        keys = " and ".join(f'"{k}"' for k in logged)
        self.change(original, f"{keys} in the dict `{method}` returns (Lightning 0.x logging, ignored since 1.0) -> self.log_dict(...)")
        last = updated.with_changes(body=[updated.body[0].with_changes(value=value.with_changes(elements=kept))]) if kept else None
        out = [calls[0].with_changes(leading_lines=updated.leading_lines), *calls[1:]]
        return cst.FlattenSentinel([*out, last.with_changes(leading_lines=[])] if last else out)

    def _method_of(self, statement: cst.CSTNode) -> str | None:
        """The name of the LightningModule method ``statement`` sits in directly, if any."""
        if not self._module_classes:
            return None
        node = self.get_metadata(ParentNodeProvider, statement, None)
        while node is not None and not isinstance(node, (cst.FunctionDef, cst.ClassDef, cst.Lambda)):
            node = self.get_metadata(ParentNodeProvider, node, None)
        if not isinstance(node, cst.FunctionDef):
            return None
        klass = self.get_metadata(ParentNodeProvider, self.get_metadata(ParentNodeProvider, node, None), None)
        return node.name.value if klass is self._module_classes[-1] else None

    def leave_ClassDef(self, original_node: cst.ClassDef, updated_node: cst.ClassDef) -> cst.ClassDef:
        if self._module_classes and self._module_classes[-1] is original_node:
            self._module_classes.pop()
        if any(s in self._hooks for s in original_node.body.body):
            body = []
            for old, new in zip(original_node.body.body, updated_node.body.body):
                body += epoch_end.rewrite(new, self._hooks[old], self.module) if old in self._hooks else [new]
            updated_node = updated_node.with_changes(body=updated_node.body.with_changes(body=body))
        return updated_node

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> cst.Module:
        if not self._helper_needed or defines(updated_node, HELPER):
            return updated_node
        lines = [f"def {HELPER}(parser):",
                 '    """The Trainer flags that Trainer.add_argparse_args (removed in Lightning 2.0) added, with the Trainer\'s defaults."""',
                 '    group = parser.add_argument_group("Trainer")']
        lines += [f'    group.add_argument("--{f["name"]}", type={f["type"]}, default={f["default"]})' for f in FLAGS]
        lines.append("    return parser")
        return insert_functions(updated_node, ["\n".join(lines) + "\n"])

"""The edits inside a Lightning script: the ``Trainer(...)`` call, strategies, environments, checkpoints.

``TrainerEdit`` runs over the codemod's metadata-resolved tree. It rewrites the fitted Trainer's
arguments as the guide's diffs do (``devices="auto"``, ``accelerator="auto"``, a Ray strategy,
``RayLightningEnvironment``, ``RayTrainReportCallback`` after the user's callbacks), renames
Lightning strategy classes to their Ray subclasses and cluster environments to
``RayLightningEnvironment`` wherever they are built, and puts ``prepare_trainer`` before a ``fit``
that sits in a nested block (the training block itself is the planner's, see ``rewrite``).
"""

from __future__ import annotations

import libcst as cst
from libcst.codemod.visitors import AddImportsVisitor, RemoveImportsVisitor

from codemods import _lightning as lt
from codemods._keywords import kwarg
from codemods._trainers import qualified_names

RAY_ENV = "RayLightningEnvironment()"
RAY_CALLBACK = "RayTrainReportCallback()"
_PORTABLE_ACCELERATORS = ("auto", "gpu", "cuda", "cpu")


def _as_list(*values: cst.BaseExpression) -> cst.List:
    return cst.List(lt.append_items([], [cst.Element(v) for v in values], cst.SimpleWhitespace("")))


class TrainerEdit(cst.CSTTransformer):
    def __init__(self, codemod, module: cst.Module, trainer_calls: set[cst.Call], fit_line: cst.BaseStatement, prepare: cst.BaseStatement, skip) -> None:
        super().__init__()
        self.codemod = codemod
        self.module = module
        self.trainer_calls = trainer_calls
        # One fit line and its prepare_trainer line, or (several trainings) a dict of them.
        self.fits = fit_line if isinstance(fit_line, dict) else {fit_line: prepare}
        self.skip = skip
        self.placement: list[str] = []
        self.workers: int | None = None
        self.used_ddp = False
        self.trains_on_cpu = False
        self.runtime_strategy = False  # strategy= is mapped by the script's ray_strategy() helper

    def _names(self, node: cst.CSTNode) -> set[str]:
        return qualified_names(self.codemod, node)

    def _lightning_class(self, node: cst.CSTNode, package: str) -> str | None:
        return next((c for q in self._names(node) if (c := lt.class_name(q, package))), None)

    def _is_cluster_environment(self, node: cst.CSTNode) -> bool:
        return isinstance(node, cst.Call) and any(lt.is_cluster_environment(q) for q in self._names(node.func))

    # -- anywhere in the file -----------------------------------------------------------------
    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        if original_node in self.trainer_calls:
            return self._edit_trainer(original_node, updated_node)
        strategy = self._lightning_class(original_node.func, "strategies")
        if strategy in lt.STRATEGY_CLASSES:
            ray = lt.STRATEGY_CLASSES[strategy]
            self.used_ddp |= ray == "RayDDPStrategy"
            self._import(ray)
            self._forget(original_node.func)
            self.codemod.change(original_node, f"{strategy} became Ray's {ray} (same arguments)")
            for arg in original_node.args:
                if arg.keyword is not None and arg.keyword.value in lt.RAY_OWNED_DDP_ARGS:
                    self.codemod.follow_up(arg, f"Ray Train creates the process group, so `{arg.keyword.value}` is ignored here: set it in TorchTrainer(torch_config=TorchConfig(...)) instead")
            return updated_node.with_changes(func=cst.Name(ray))
        if self._is_cluster_environment(original_node):
            self._forget(original_node.func)
            self.codemod.change(original_node, "cluster environment replaced by RayLightningEnvironment: Ray sets ranks and world size")
            return cst.parse_expression(RAY_ENV)
        return updated_node

    def _import(self, name: str) -> None:
        AddImportsVisitor.add_needed_import(self.codemod.context, "ray.train.lightning", name)

    def _forget(self, func: cst.BaseExpression) -> None:
        for q in self._names(func):
            module, _, name = q.rpartition(".")
            if module:
                RemoveImportsVisitor.remove_unused_import(self.codemod.context, module, name)

    def leave_IndentedBlock(self, original_node: cst.IndentedBlock, updated_node: cst.IndentedBlock) -> cst.IndentedBlock:
        if original_node is self.skip or not any(s in self.fits for s in original_node.body):
            return updated_node
        body: list[cst.BaseStatement] = []
        for before, after in zip(original_node.body, updated_node.body):
            if before in self.fits:
                body += [self.fits[before].with_changes(leading_lines=after.leading_lines), after.with_changes(leading_lines=[])]
            else:
                body.append(after)
        return updated_node.with_changes(body=body)

    # -- the fitted Trainer -------------------------------------------------------------------
    def _edit_trainer(self, original: cst.Call, call: cst.Call) -> cst.Call:
        given = {a.keyword.value: (a, b) for a, b in zip(original.args, call.args) if a.keyword is not None}
        if any(a.star == "**" for a in original.args):
            self.codemod.follow_up(original, "the Trainer also takes unpacked arguments: make sure they set none of devices, accelerator, strategy, plugins or num_nodes, and keep RayTrainReportCallback() in callbacks")
        replace: dict[str, str] = {}
        remove: set[str] = set()
        self._placement(original, given, replace, remove)
        new: dict[str, cst.BaseExpression] = {}
        for name, handler in (("strategy", self._strategy), ("plugins", self._plugins), ("callbacks", self._callbacks)):
            value = handler(original, *given[name]) if name in given else None
            if name not in given:
                new[name] = cst.parse_expression({"strategy": "RayDDPStrategy()", "plugins": f"[{RAY_ENV}]", "callbacks": f"[{RAY_CALLBACK}]"}[name])
                self.used_ddp |= name == "strategy"
            elif value is not None:
                replace[name] = value
        args = []
        for arg in call.args:
            key = arg.keyword.value if arg.keyword is not None else None
            if key in remove:
                continue
            value = replace.get(key)
            if isinstance(value, str):
                value = cst.parse_expression(value)
            args.append(arg.with_changes(value=value) if value is not None else arg)
        last = call.args[-1] if call.args else None
        if args and last is not None and last.keyword is not None and last.keyword.value in remove:
            args[-1] = args[-1].with_changes(comma=last.comma, whitespace_after_arg=last.whitespace_after_arg)
        extra = [kwarg(k, v) for k, v in (("devices", '"auto"'), ("accelerator", '"auto"')) if k not in given]
        extra += [kwarg(k, cst.Module([]).code_for_node(v)) for k, v in new.items()]
        if extra:
            args = lt.append_items(args, extra, call.whitespace_before_args)
        result = call.with_changes(args=args)
        if lt.is_one_line(original) and len(cst.Module([]).code_for_node(result)) > 72:
            result = lt.explode(result)
        return result

    def _placement(self, original: cst.Call, given, replace: dict, remove: set) -> None:
        code = lambda arg: f"{arg.keyword.value}={cst.Module([]).code_for_node(arg.value)}"  # noqa: E731
        counts: list[int | None] = []
        nodes = 1
        for name, (arg, _) in given.items():
            if name == "accelerator":
                value = arg.value.evaluated_value if isinstance(arg.value, cst.SimpleString) else None
                self.trains_on_cpu = value == "cpu"
                # A computed choice (`args.accelerator`) is listed with the placement Ray Train now
                # makes (ScalingConfig's use_gpu); a named device Ray Train cannot place (tpu, mps) is not.
                if value is not None and value not in _PORTABLE_ACCELERATORS:
                    self.codemod.follow_up(arg, f"`{code(arg)}` became \"auto\": Ray Train workers run on CPU or GPU")
                if value != "auto":
                    replace[name] = '"auto"'
                    self.placement.append(f'{code(arg)} is now "auto"')
            elif name in ("devices", "gpus", "num_processes", "tpu_cores"):
                counts.append(lt.device_count(arg.value))
                if name == "devices" and isinstance(arg.value, cst.SimpleString) and arg.value.evaluated_value == "auto":
                    counts[-1] = None
                elif name == "devices":
                    replace[name] = '"auto"'
                    self.placement.append(f'{code(arg)} is now "auto"')
                else:
                    remove.add(name)
                    self.placement.append(f"{code(arg)} removed")
            elif name == "precision" and self.codemod.options.use_gpu is False and cst.Module([]).code_for_node(arg.value).strip("'\"") in ("16", "16-mixed"):
                self.codemod.follow_up(arg, f'`{code(arg)}` needs GPUs, and the workers run on CPU (--no-use-gpu): use "bf16-mixed" or 32 there')
            elif name in lt.PLACEMENT_ARGS:
                remove.add(name)
                self.placement.append(f"{code(arg)} removed")
                if name == "num_nodes":
                    nodes = lt.device_count(arg.value) or 0
        if counts and all(counts) and nodes:
            self.workers = max(counts) * nodes

    def _strategy(self, original: cst.Call, arg: cst.Arg, updated: cst.Arg) -> str | None:
        value = arg.value
        if isinstance(value, cst.SimpleString):
            name = str(value.evaluated_value)
            if name in lt.STRATEGY_STRINGS:
                ray, args = lt.STRATEGY_STRINGS[name]
                self.used_ddp |= ray == "RayDDPStrategy"
                self._import(ray)
                self.codemod.change(arg, f'strategy="{name}" became {ray}({args}), its Ray equivalent')
                return f"{ray}({args})"
            self.codemod.follow_up(arg, f'strategy="{name}" has no Ray Train equivalent (Ray runs one process per worker): use RayDDPStrategy(), RayFSDPStrategy() or RayDeepSpeedStrategy()')
            return None
        if isinstance(value, cst.Call) and (self._lightning_class(value.func, "strategies") in lt.STRATEGY_CLASSES or self._is_ray(value.func)):
            return None
        if isinstance(value, cst.Name) and any(isinstance(v, cst.Call) and (
                self._lightning_class(v.func, "strategies") in lt.STRATEGY_CLASSES or self._is_ray(v.func)) for v in _assigned(original, value.value, self)):
            return None
        # Known only at run time (`getConfig()['strategy']`, `args.strategy`): the script maps it
        # itself, with the same table, and refuses a strategy with no Ray equivalent by name.
        self.runtime_strategy = True
        self.codemod.change(arg, f"strategy={cst.Module([]).code_for_node(value)} is known only at run time: {lt.STRATEGY_HELPER}() turns its name into Ray's strategy (\"ddp\" -> RayDDPStrategy(), \"fsdp\" -> RayFSDPStrategy()...) and stops with the name of one Ray has no equivalent for")
        return cst.Call(func=cst.Name(lt.STRATEGY_HELPER), args=[cst.Arg(updated.value)])

    def _is_ray(self, func: cst.BaseExpression) -> bool:
        return any(q.startswith("ray.train.lightning.") for q in self._names(func))

    def _plugins(self, original: cst.Call, arg: cst.Arg, updated: cst.Arg):
        value, new = arg.value, updated.value
        if isinstance(value, cst.List):
            if any(self._is_cluster_environment(e.value) for e in value.elements):
                return None
            return new.with_changes(elements=lt.append_items(new.elements, [cst.Element(cst.parse_expression(RAY_ENV))], new.lbracket.whitespace_after))
        if isinstance(value, cst.Call):
            return _as_list(new) if self._is_cluster_environment(value) else _as_list(new, cst.parse_expression(RAY_ENV))
        if isinstance(value, cst.Name):
            bound = _assigned(original, value.value, self)
            if bound and all(isinstance(v, cst.List) for v in bound):
                if any(self._is_cluster_environment(e.value) for v in bound for e in v.elements):
                    return None
                return f"[*{value.value}, {RAY_ENV}]"
        self.codemod.follow_up(arg, f"make sure these plugins include {RAY_ENV} and no other cluster environment: prepare_trainer rejects any other")
        return None

    def _callbacks(self, original: cst.Call, arg: cst.Arg, updated: cst.Arg):
        value, new = arg.value, updated.value
        report = cst.parse_expression(RAY_CALLBACK)
        if isinstance(value, cst.List):
            return new.with_changes(elements=lt.append_items(new.elements, [cst.Element(report)], new.lbracket.whitespace_after))
        if isinstance(value, cst.Call) and self._lightning_class(value.func, "callbacks"):
            return _as_list(new, report)
        if isinstance(value, (cst.Name, cst.Attribute)) and _holds_a_list(value, self.module):
            return f"[*{cst.Module([]).code_for_node(value)}, {RAY_CALLBACK}]"
        self.codemod.follow_up(arg, f"add {RAY_CALLBACK} to these callbacks by hand: it reports metrics and checkpoints to Ray")
        return None


def _holds_a_list(target: cst.BaseExpression, module: cst.Module) -> bool:
    """Whether every assignment of ``target`` (a name, or ``args.callbacks``) in the module is a list: a list
    literal or comprehension, a ``List[...]``/``list[...]`` annotation, or a call of a function of this file
    whose every return is one (the callbacks-building helpers of real scripts). A file-wide approximation."""
    code = cst.Module([]).code_for_node
    wanted = code(target)
    functions = {s.name.value: s for s in module.body if isinstance(s, cst.FunctionDef)}
    bound: list[tuple[cst.BaseExpression | None, cst.Annotation | None]] = []

    class Visit(cst.CSTVisitor):
        def visit_Assign(self, node: cst.Assign) -> None:
            if any(code(t.target) == wanted for t in node.targets):
                bound.append((node.value, None))

        def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
            if code(node.target) == wanted:
                bound.append((node.value, node.annotation))

    module.visit(Visit())

    def is_list(value: cst.BaseExpression | None, annotation: cst.Annotation | None, depth: int = 0) -> bool:
        if annotation is not None:
            head = annotation.annotation.value if isinstance(annotation.annotation, cst.Subscript) else annotation.annotation
            if code(head).split(".")[-1] in ("List", "list"):
                return True
        if isinstance(value, (cst.List, cst.ListComp)):
            return True
        if depth < 2 and isinstance(value, cst.Call) and isinstance(value.func, cst.Name) and value.func.value in functions:
            returns: list[cst.Return] = []

            class Returns(cst.CSTVisitor):
                def visit_Return(self, node: cst.Return) -> None:
                    returns.append(node)

                def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
                    return node is function  # not into nested functions

            function = functions[value.func.value]
            function.visit(Returns())
            local: dict[str, list] = {}

            class Locals(cst.CSTVisitor):
                def visit_Assign(self, node: cst.Assign) -> None:
                    for t in node.targets:
                        if isinstance(t.target, cst.Name):
                            local.setdefault(t.target.value, []).append(node.value)

            function.visit(Locals())
            return bool(returns) and all(
                r.value is not None and (is_list(r.value, None, depth + 1) or (
                    isinstance(r.value, cst.Name) and bool(local.get(r.value.value))
                    and all(is_list(v, None, depth + 1) for v in local[r.value.value])))
                for r in returns)
        return False

    return bool(bound) and all(is_list(value, annotation) for value, annotation in bound)


def _assigned(node: cst.CSTNode, name: str, edit: TrainerEdit) -> list[cst.BaseExpression]:
    """The values ``name = ...`` assigns anywhere in the module (a file-wide approximation)."""
    values: list[cst.BaseExpression] = []

    class Visit(cst.CSTVisitor):
        def visit_Assign(self, assign: cst.Assign) -> None:
            if any(isinstance(t.target, cst.Name) and t.target.value == name for t in assign.targets):
                values.append(assign.value)

    edit.module.visit(Visit())
    return values


def checkpoint_config(codemod, module: cst.Module) -> str | None:
    """``CheckpointConfig(...)`` mirroring the one ``ModelCheckpoint`` that names a monitor, as code."""
    found: list[cst.Call] = []

    class Visit(cst.CSTVisitor):
        def visit_Call(self, node: cst.Call) -> None:
            if any(lt.class_name(q, "callbacks") == "ModelCheckpoint" for q in qualified_names(codemod, node.func)):
                if any(a.keyword is not None and a.keyword.value == "monitor" for a in node.args):
                    found.append(node)

    module.visit(Visit())
    if not found:
        return None
    if len(found) > 1:
        codemod.follow_up(found[1], "several ModelCheckpoint callbacks monitor metrics; Ray keeps one ranking: set RunConfig(checkpoint_config=CheckpointConfig(...)) by hand")
        return None
    args = {a.keyword.value: a.value for a in found[0].args if a.keyword is not None}
    monitor, mode, top_k = args.get("monitor"), args.get("mode", cst.SimpleString('"min"')), args.get("save_top_k", cst.Integer("1"))
    top = int(top_k.value) if isinstance(top_k, cst.Integer) else -1 if isinstance(top_k, cst.UnaryOperation) else None
    if not isinstance(monitor, cst.SimpleString) or not isinstance(mode, cst.SimpleString) or top is None:
        codemod.follow_up(found[0], "ModelCheckpoint's monitor, mode or save_top_k is computed: mirror them in RunConfig(checkpoint_config=CheckpointConfig(...)) by hand")
        return None
    keep = f"num_to_keep={top}, " if top > 0 else ""
    codemod.change(found[0], "ModelCheckpoint's monitor, mode and save_top_k mirrored in RunConfig(checkpoint_config=CheckpointConfig(...))")
    return (
        f'CheckpointConfig({keep}checkpoint_score_attribute="{monitor.evaluated_value}", '
        f'checkpoint_score_order="{mode.evaluated_value}")'
    )


def hand_made_trainers(codemod, module: cst.Module, cli: bool = True) -> bool:
    """Follow-ups for ``LightningCLI`` (unless ``cli`` is False) and ``Trainer.from_argparse_args``; True when there are any."""
    hits: list[tuple[cst.Call, str]] = []
    ray_args = f'devices="auto", accelerator="auto", strategy=RayDDPStrategy(), plugins=[{RAY_ENV}], callbacks=[{RAY_CALLBACK}]'

    class Visit(cst.CSTVisitor):
        def visit_Call(self, node: cst.Call) -> None:
            names = qualified_names(codemod, node.func)
            if cli and any((lt.lightning_path(q) or "").endswith("LightningCLI") for q in names):
                hits.append((node, (
                    "LightningCLI builds and fits the Trainer itself, so this script was not converted: inside a train function, "
                    f"call LightningCLI(..., run=False, args=<the argv parsed on the driver>, trainer_defaults=dict({ray_args})), "
                    "then `trainer = prepare_trainer(cli.trainer)` and `trainer.fit(cli.model, datamodule=cli.datamodule)`, launched by TorchTrainer"
                )))
            elif isinstance(node.func, cst.Attribute) and node.func.attr.value == "from_argparse_args" and any(
                    lt.is_trainer(q) for q in qualified_names(codemod, node.func.value)):
                hits.append((node, (
                    "Trainer.from_argparse_args (removed in Lightning 2.0) builds the Trainer from command-line flags, so this script "
                    f"was not converted: build the Trainer with explicit arguments and convert again, or add {ray_args} "
                    "and `trainer = prepare_trainer(trainer)` by hand, inside a train function launched by TorchTrainer"
                )))

    module.visit(Visit())
    for node, message in hits:
        codemod.follow_up(node, message)
    return bool(hits)

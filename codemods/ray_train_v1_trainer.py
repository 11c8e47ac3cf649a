"""Ray Train's first ``Trainer`` (Ray 1.9-1.13: ``start`` / ``run`` / ``shutdown``) to ``TorchTrainer``.

``ray.train.Trainer`` was replaced by ``TorchTrainer`` in Ray 2.0 and no longer imports; neither do
``ray.train.TorchConfig``, ``ray.train.callbacks`` or the module functions its train functions
called (``train.local_rank()``, ``train.report(**metrics)``). The training function itself is
already what ``TorchTrainer`` runs, so the launch is what changes::

    # before
    import ray.train as train
    from ray.train import Trainer, TorchConfig

    def train_func(config):
        device = torch.device(f"cuda:{train.local_rank()}" if torch.cuda.is_available() else "cpu")
        ...
        train.report(**result)

    trainer = Trainer(backend=TorchConfig(backend="gloo"), num_workers=2, use_gpu=False)
    trainer.start()
    results = trainer.run(train_func, config, callbacks=[JsonLoggerCallback()])
    trainer.shutdown()

    # after
    def train_func(config):
        device = torch.device(f"cuda:{ray.train.get_context().get_local_rank()}" if ... else "cpu")
        ...
        ray.train.report(result)

    results = TorchTrainer(train_func, train_loop_config=config,
                           scaling_config=ScalingConfig(num_workers=2, use_gpu=False),
                           torch_config=ray.train.torch.TorchConfig(backend="gloo")).fit()

with follow-ups where the meaning changed: ``run`` returned each worker's return value and now
returns a ``ray.train.Result``; the logger callbacks have no Train V2 equivalent.
``trainer.to_tune_trainable(train_func)`` becomes a Tune function defined where the Trainer was
built, which fits a ``TorchTrainer`` with the trial's config and reports through
``TuneReportCallback`` (Train V2's Tune pattern). What cannot be converted exactly
(``run_iterator``, another backend, ``dataset=``, ``checkpoint=``) stays, with a follow-up naming
the way to do it now.
"""

from __future__ import annotations

import libcst as cst
import libcst.matchers as m
from libcst.codemod.visitors import AddImportsVisitor, RemoveImportsVisitor
from libcst.metadata import ParentNodeProvider, ScopeProvider

from codemods._module_code import defines, insert_functions
from codemods._return_value import returns
from codemods._names import TableCodemod, spelled_names

TRAINERS = frozenset({"ray.train.Trainer", "ray.train.trainer.Trainer"})
#: Where TorchConfig is imported from today (Ray 2: ``ray/train/torch/config.py``, re-exported).
CURRENT_TORCH_CONFIGS = frozenset({"ray.train.torch.TorchConfig", "ray.train.torch.config.TorchConfig"})
#: Its Ray 1.x paths, which no longer import.
RETIRED_TORCH_CONFIGS = frozenset({"ray.train.TorchConfig", "ray.train.backends.torch.TorchConfig"})
TORCH_CONFIGS = CURRENT_TORCH_CONFIGS | RETIRED_TORCH_CONFIGS
#: Trainer(...) keywords that are ScalingConfig fields of the same name.
SCALING = ("num_workers", "use_gpu", "resources_per_worker")
#: ray.train.<function>() of Ray 1.x -> the method of ray.train.get_context() that replaced it.
CONTEXT = {"local_rank": "get_local_rank", "world_rank": "get_world_rank", "world_size": "get_world_size"}
CHECKPOINT_FUNCTIONS = {
    "save_checkpoint": "ray.train.save_checkpoint(**state) no longer exists: write the state to a directory and "
    "report it with ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(directory))",
    "load_checkpoint": "ray.train.load_checkpoint() no longer exists: read ray.train.get_checkpoint() "
    "(with checkpoint.as_directory() as d: ...) in the train function",
}
TUNE = ("Trainer.to_tune_trainable() is gone: Train V2 runs Tune over a function that builds "
        "TorchTrainer(train_func, scaling_config=ScalingConfig(...)).fit() and reports its result with "
        "ray.tune.report (ray.tune.integration.ray_train.TuneReportCallback), see the Ray Train + Tune guide")
#: The names visit_Module plans from: a Ray 1.x Trainer, a TorchConfig by an old path, a Ray 1.x module function.
PLANNED_FROM = TRAINERS | RETIRED_TORCH_CONFIGS | {
    f"ray.train.{function}" for function in (*CONTEXT, *CHECKPOINT_FUNCTIONS, "report")}
RESULT = ("`{name}` held each worker's return value (a list); TorchTrainer.fit() returns a ray.train.Result: "
          "rank 0's return value is result.return_value, the last metrics result.metrics")


#: Ray 1.x took anything in train.report (examples reported the model's state dict) and handed back
#: what each worker returned; Train V2 raises on tensors in both ("Passing objects containing Torch
#: tensors as metrics is not supported", "Returning objects containing Torch tensors from the training
#: function is not supported": measured on ray 2.60 with Ray's own train_linear_example.py converted).
HELPER = "without_tensors"
HELPER_SOURCE = '''
def without_tensors(value):
    """What Ray Train V2 accepts as metrics or as a train function's return value: a one-element
    tensor becomes its number; other tensors (a state dict) are left out, as V2 raises on them:
    save those in a checkpoint instead."""
    import torch

    def holds_tensor(item):
        if isinstance(item, torch.Tensor):
            return item.numel() != 1
        if isinstance(item, dict):
            return any(holds_tensor(v) for v in item.values())
        return isinstance(item, (list, tuple)) and any(holds_tensor(v) for v in item)

    if isinstance(value, torch.Tensor):
        return value.item() if value.numel() == 1 else None
    if isinstance(value, dict):
        return {k: without_tensors(v) for k, v in value.items() if not holds_tensor(v)}
    if isinstance(value, (list, tuple)):
        return type(value)(without_tensors(v) for v in value)
    return value
'''


class Refused(Exception):
    pass


class RayTrainV1Trainer(TableCodemod):
    DESCRIPTION = "Ray 1.x ray.train.Trainer (start/run/shutdown) to TorchTrainer; train.report/local_rank to Ray 2 calls."
    TRIGGERS = (b"ray",)
    MODULES = (b"ray",)
    ORDER = 32
    METADATA_DEPENDENCIES = (*TableCodemod.METADATA_DEPENDENCIES, ParentNodeProvider, ScopeProvider)

    def __init__(self, context, options=None) -> None:
        super().__init__(context, options)
        self._replace: dict[cst.CSTNode, cst.CSTNode] = {}
        self._remove: set[cst.BaseStatement] = set()
        self._helper = False

    def nothing_to_do(self, tree: cst.Module) -> bool:
        """No name the file spells is one ``visit_Module`` plans from (a call's qualified names
        are among the spelled names)."""
        return spelled_names(tree).isdisjoint(PLANNED_FROM)

    # -- planning, on the untouched tree ----------------------------------------------------------
    def visit_Module(self, node: cst.Module) -> bool:
        for call in m.findall(node, m.Call()):
            names = self.qnames(call.func)
            if names & TRAINERS:
                try:
                    self._plan_trainer(call)
                except Refused as why:
                    self.follow_up(call, f"ray.train.Trainer (Ray 1.x, gone since Ray 2.0) left as it is: {why}")
            elif names & RETIRED_TORCH_CONFIGS and not names & CURRENT_TORCH_CONFIGS:
                AddImportsVisitor.add_needed_import(self.context, "ray.train.torch")
                if call.func not in self._replace:
                    self._replace[call.func] = _dotted("ray.train.torch.TorchConfig")
                    self.change(call, f"{self.source(call.func)} (Ray 1.x path, gone since Ray 2.0) -> ray.train.torch.TorchConfig")
            else:
                self._plan_function(call, names)
        if self._replace or self._remove:
            for module, name in (("ray.train", "Trainer"), ("ray.train", "TorchConfig")):
                RemoveImportsVisitor.remove_unused_import(self.context, module, name)
            for imp in m.findall(node, m.ImportFrom(module=m.Attribute(value=m.Attribute(value=m.Name("ray"), attr=m.Name("train")), attr=m.Name("callbacks")))):
                for alias in imp.names if isinstance(imp.names, (list, tuple)) else ():
                    RemoveImportsVisitor.remove_unused_import(self.context, "ray.train.callbacks", alias.name.value)
        return True

    def _plan_function(self, call: cst.Call, names: set[str]) -> None:
        """``train.local_rank()``, ``train.report(**m)``, ``train.save_checkpoint(...)`` of Ray 1.x."""
        for name in names:
            if not name.startswith("ray.train."):
                continue
            function = name[len("ray.train."):]
            if function in CONTEXT and not call.args:
                AddImportsVisitor.add_needed_import(self.context, "ray.train")
                self._replace[call] = cst.Call(func=cst.Attribute(
                    value=cst.Call(func=_dotted("ray.train.get_context")), attr=cst.Name(CONTEXT[function])))
                self.change(call, f"ray.train.{function}() (Ray 1.x) -> ray.train.get_context().{CONTEXT[function]}()")
                return
            if function in CHECKPOINT_FUNCTIONS:
                self.follow_up(call, CHECKPOINT_FUNCTIONS[function])
                return
            # Ray 2's report(metrics, checkpoint=...) may be called with keywords too: only keywords it
            # does not have (Ray 1.x's report(loss=..., **metrics)) mean the old form.
            current = {"metrics", "checkpoint", "checkpoint_dir_name"}
            if function == "report" and call.args and all(a.keyword or a.star == "**" for a in call.args) \
                    and not any(a.keyword and a.keyword.value in current for a in call.args):
                AddImportsVisitor.add_needed_import(self.context, "ray.train")
                # Built from the updated call, so that train.world_rank() inside it is rewritten too.
                self._replace[call] = _report_with_a_dict
                self._helper = True
                self.change(call, "ray.train.report(**metrics) (Ray 1.x) -> ray.train.report(without_tensors(metrics)): "
                            "Train V2 raises on tensors in metrics, which Ray 1.x accepted")
                if any(a.star for a in call.args):  # metrics the codemod cannot see
                    self.follow_up(call, "values holding tensors (a state dict, a tensor with more than one element) are left out "
                                   "of the reported metrics now: save them in a checkpoint (ray.train.report(metrics, "
                                   "checkpoint=ray.train.Checkpoint.from_directory(d))) if you need them")
                return

    def _plan_trainer(self, call: cst.Call) -> None:
        assign = self.get_metadata(ParentNodeProvider, call)
        if not m.matches(assign, m.Assign(targets=[m.AssignTarget(target=m.Name())])):
            raise Refused("only `trainer = Trainer(...)` followed by trainer.start() / run() / shutdown() is converted; "
                          "launch the train function with TorchTrainer(train_func, scaling_config=ScalingConfig(...)).fit()")
        statement = self.get_metadata(ParentNodeProvider, assign)
        target = assign.targets[0].target
        scaling, torch_config = self._trainer_arguments(call)
        scope = self.get_metadata(ScopeProvider, target, None)
        assignments = list(scope[target.value]) if scope is not None else []
        if len(assignments) != 1:
            raise Refused(f"`{target.value}` is assigned more than once")
        removed, run, tune = [], None, None
        for access in assignments[0].references:
            ref = access.node
            attribute = self.get_metadata(ParentNodeProvider, ref)
            used = self.get_metadata(ParentNodeProvider, attribute, None)
            if not (isinstance(attribute, cst.Attribute) and isinstance(used, cst.Call) and used.func is attribute):
                raise Refused(f"`{target.value}` is used other than through start() / run() / shutdown() "
                              f"(line {self.line_of(ref)})")
            method = attribute.attr.value
            if method == "to_tune_trainable" and tune is None and run is None:
                tune = used
                continue
            if method in ("start", "shutdown"):
                expr = self.get_metadata(ParentNodeProvider, used)
                line = self.get_metadata(ParentNodeProvider, expr)
                if not isinstance(expr, cst.Expr) or len(line.body) != 1:
                    raise Refused(f"{target.value}.{method}() is part of a larger statement")
                removed.append(line)
            elif method == "run" and run is None:
                run = used
            else:
                raise Refused(f"{target.value}.{method}() has no TorchTrainer equivalent here: call "
                              f"TorchTrainer(...).fit() once per training")
        if tune is not None:
            if run is not None or removed:
                raise Refused(TUNE)
            self._plan_tune(statement, tune, scaling, torch_config)
            return
        if run is None:
            raise Refused(f"{target.value}.run(...) was not found")
        self._replace[run] = self._torch_trainer(run, scaling, torch_config)
        self._returns_without_tensors(run)
        self._remove.update([statement, *removed])
        AddImportsVisitor.add_needed_import(self.context, "ray.train.torch", "TorchTrainer")
        AddImportsVisitor.add_needed_import(self.context, "ray.train", "ScalingConfig")
        self.change(call, "ray.train.Trainer (Ray 1.x) start/run/shutdown -> TorchTrainer(...).fit(): the train "
                    "function, its config and the workers are the same")
        result = self.get_metadata(ParentNodeProvider, run)
        if m.matches(result, m.Assign(targets=[m.AssignTarget(target=m.Name())])):
            name = result.targets[0].target
            result_scope = self.get_metadata(ScopeProvider, name, None)
            if result_scope is not None and any(a.references for a in result_scope[name.value]):
                self.follow_up(run, RESULT.format(name=name.value))
        elif not isinstance(result, cst.Expr):
            self.follow_up(run, RESULT.format(name=self.source(run)))

    def _plan_tune(self, statement: cst.SimpleStatementLine, tune: cst.Call, scaling, torch_config) -> None:
        """``trainer.to_tune_trainable(train_func)`` -> a Tune function that fits a TorchTrainer (Train V2's way).

        The function is defined where the Trainer was built (its arguments are in scope there); each
        Tune trial runs it with the trial's config, and TuneReportCallback hands the reports to Tune.
        """
        if len(tune.args) != 1 or tune.args[0].keyword or tune.args[0].star:
            raise Refused(TUNE)
        name = "tune_train_func"
        args = [self.source(tune.args[0].value), "train_loop_config=config",
                f"scaling_config=ScalingConfig({', '.join(f'{a.keyword.value}={self.source(a.value)}' for a in scaling)})"]
        if torch_config is not None:
            args.append(f"torch_config={self.source(torch_config)}")
        args.append("run_config=RunConfig(name=ray.tune.get_context().get_trial_id(), callbacks=[TuneReportCallback()])")
        inner = "".join(f"        {a},\n" for a in args)
        function = cst.parse_statement(
            f"def {name}(config):\n    # Each Tune trial fits a TorchTrainer with the trial's config (Train V2's Tune pattern).\n"
            f"    TorchTrainer(\n{inner}    ).fit()\n")
        self._replace[statement] = function.with_changes(leading_lines=statement.leading_lines)
        self._replace[tune] = cst.Name(name)
        for module, obj in (("ray.train.torch", "TorchTrainer"), ("ray.train", "ScalingConfig"), ("ray.train", "RunConfig"),
                            ("ray.tune.integration.ray_train", "TuneReportCallback")):
            AddImportsVisitor.add_needed_import(self.context, module, obj)
        AddImportsVisitor.add_needed_import(self.context, "ray.tune")
        self.change(tune, f"Trainer.to_tune_trainable() (Ray 1.x) -> {name}, a Tune function that fits a TorchTrainer "
                    f"with the trial's config and reports to Tune through TuneReportCallback")

    def _returns_without_tensors(self, run: cst.Call) -> None:
        """``return results`` -> ``return without_tensors(results)`` in the train function, a ``def`` here.

        Ray 1.x handed each worker's return value back from run(); Train V2 hands back rank 0's as
        ``result.return_value`` and raises when it holds tensors.
        """
        function = run.args[0].value if run.args and not run.args[0].keyword else None
        scope = self.get_metadata(ScopeProvider, function, None) if isinstance(function, cst.Name) else None
        found = list(scope[function.value]) if scope is not None else []
        if len(found) != 1 or not isinstance(found[0].node, cst.FunctionDef):
            return
        for node in returns(found[0].node.body.body):
            self._replace[node] = _return_without_tensors
            self._helper = True
            self.change(node, f"`return {self.source(node.value)}` -> `return without_tensors(...)`: Train V2 hands rank 0's "
                        f"return value back as result.return_value and raises when it holds tensors")

    def _trainer_arguments(self, call: cst.Call) -> tuple[list[cst.Arg], cst.BaseExpression | None]:
        scaling, torch_config, backend = [], None, None
        for i, arg in enumerate(call.args):
            key = arg.keyword.value if arg.keyword else ("backend" if i == 0 and not arg.star else None)
            if key == "backend":
                backend = arg.value
            elif key in SCALING:
                scaling.append(cst.Arg(arg.value, keyword=cst.Name(key)))
            else:
                raise Refused(f"Trainer({self.source(arg)}) has no exact TorchTrainer equivalent: set it on "
                              f"ScalingConfig / RunConfig / FailureConfig by hand")
        if isinstance(backend, cst.SimpleString) and backend.evaluated_value == "torch":
            pass
        elif isinstance(backend, cst.Call) and self.qnames(backend.func) & TORCH_CONFIGS:
            torch_config = backend.with_changes(func=_dotted("ray.train.torch.TorchConfig"))
            AddImportsVisitor.add_needed_import(self.context, "ray.train.torch")
        else:
            raise Refused(f"backend {self.source(backend) if backend is not None else '(none)'} is not torch: use the "
                          f"Ray Train trainer of that framework (TensorflowTrainer, ...)")
        return scaling, torch_config

    def _torch_trainer(self, run: cst.Call, scaling: list[cst.Arg], torch_config) -> cst.Call:
        function = config = None
        for i, arg in enumerate(run.args):
            key = arg.keyword.value if arg.keyword else {0: "train_func", 1: "config"}.get(i)
            if key == "train_func" and not arg.star:
                function = arg.value
            elif key == "config" and not arg.star:
                config = arg.value
            elif key == "callbacks":
                self.follow_up(arg, "the Ray 1.x logger callbacks (JsonLoggerCallback, TBXLoggerCallback...) were dropped: "
                               "Train V2 has none; the reported metrics are in the result (result.metrics, "
                               "result.metrics_dataframe), or log them from the train function (rank 0)")
            else:
                raise Refused(f"run({self.source(arg)}) has no exact TorchTrainer equivalent (datasets= takes Ray "
                              f"Datasets read with ray.train.get_dataset_shard, a checkpoint is read with "
                              f"ray.train.get_checkpoint())")
        if function is None:
            raise Refused("run() is given no train function")
        args = [self.source(function)]
        if config is not None:
            args.append(f"train_loop_config={self.source(config)}")
        args.append(f"scaling_config=ScalingConfig({', '.join(f'{a.keyword.value}={self.source(a.value)}' for a in scaling)})")
        if torch_config is not None:
            args.append(f"torch_config={self.source(torch_config)}")
        # One argument a line, as a person would write a TorchTrainer(...); LibCST indents the
        # continuation lines by the block the statement is in.
        inner = "".join(f"    {a},\n" for a in args)
        return cst.parse_expression(f"TorchTrainer(\n{inner}).fit()")

    # -- applying ------------------------------------------------------------------------------
    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> cst.Module:
        if self._helper and not defines(updated_node, HELPER):
            return insert_functions(updated_node, [HELPER_SOURCE.strip() + "\n"])
        return updated_node

    def on_leave(self, original_node, updated_node):
        updated_node = super().on_leave(original_node, updated_node)
        if original_node in self._remove:
            return cst.RemoveFromParent()
        replacement = self._replace.get(original_node, updated_node)
        return replacement(updated_node) if callable(replacement) else replacement


def _return_without_tensors(node: cst.Return) -> cst.Return:
    return node.with_changes(value=cst.Call(func=cst.Name(HELPER), args=[cst.Arg(node.value)]))


def _report_with_a_dict(call: cst.Call) -> cst.Call:
    """``train.report(a=1, **more)`` -> ``ray.train.report({"a": 1, **more})``; ``(**m)`` -> ``(m)``."""
    if len(call.args) == 1 and call.args[0].star == "**":
        metrics = call.args[0].value
    else:
        metrics = cst.Dict([
            cst.StarredDictElement(a.value) if a.star else cst.DictElement(cst.SimpleString(f'"{a.keyword.value}"'), a.value)
            for a in call.args])
    return cst.Call(func=_dotted("ray.train.report"), args=[cst.Arg(cst.Call(func=cst.Name(HELPER), args=[cst.Arg(metrics)]))])


def _dotted(name: str) -> cst.BaseExpression:
    parts = name.split(".")
    node: cst.BaseExpression = cst.Name(parts[0])
    for part in parts[1:]:
        node = cst.Attribute(value=node, attr=cst.Name(part))
    return node

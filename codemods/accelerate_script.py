"""Hugging Face Accelerate scripts to Ray Train's ``TorchTrainer``.

Implements "Getting Started with Hugging Face Accelerate" (``shared/reference/ray-train-accelerate-
guide.zh.rst``): the training code runs unchanged inside the train function, ``Accelerator(...)``
and ``accelerator.prepare(...)`` included; Ray's ``prepare_model``/``prepare_data_loader`` are not
added, as the guide's tip says. Before::

    \"\"\"Run: accelerate launch --num_processes 2 train.py --lr 1e-3\"\"\"
    def training_function(args):
        accelerator = Accelerator()
        model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
        for epoch in range(args.epochs):
            ...
            metrics = {"loss": loss.item()}
            accelerator.print(epoch, metrics)

    if __name__ == "__main__":
        training_function(parse_args())

After::

    \"\"\"Run: python train.py --lr 1e-3\"\"\"
    def train_func(config):
        args = config["args"]
        os.chdir(config["launch_dir"])
        accelerator = Accelerator()
        ...
            accelerator.print(epoch, metrics)
            ray.train.report({"epoch": epoch, **metrics})

    def training_function(args):
        ray_trainer = TorchTrainer(train_func, train_loop_config={..., "args": args},
                                   scaling_config=ScalingConfig(num_workers=2, use_gpu=True))
        result = ray_trainer.fit()

``notebook_launcher(fn, args, num_processes=N)`` becomes ``fn(*args)`` (``fn`` now launches Ray),
and ``accelerate launch`` instructions in comments and docstrings become ``python``; both give the
worker count when ``--num-workers`` does not. An Accelerator built in a method of the script's own
class (``Runner(args).train()``) moves with the one call of that method, and the report goes into
the method's epoch loop.
"""

from __future__ import annotations

import libcst as cst
from libcst.codemod import SkipFile
from libcst.codemod.visitors import AddImportsVisitor, RemoveImportsVisitor
from libcst.metadata import ParentNodeProvider, PositionProvider, QualifiedNameProvider, ScopeProvider

from codemods._hf_reporting import cpu_prologue
from codemods import _accelerate as acc
from codemods import _train_function as tf
from codemods._distributed import report_distributed_setup
from codemods._trainers import TrainerFinder, launches_ray_trainer, qualified_names
from migrator.codemod import MigrationCodemod

ACCELERATOR = ("accelerate.Accelerator", "accelerate.accelerator.Accelerator")
LAUNCHER = ("accelerate.notebook_launcher", "accelerate.launchers.notebook_launcher")


ACCELERATE_CPU_COMMENT = "# Without a GPU, Accelerate trains distributed only when told to use the CPU."


class AccelerateScriptToTorchTrainer(MigrationCodemod):
    DESCRIPTION = "Hugging Face Accelerate scripts (Accelerator loops, notebook_launcher, accelerate launch) to TorchTrainer"
    TRIGGERS = (b"accelerate",)
    MODULES = (b"accelerate",)
    ORDER = 60
    METADATA_DEPENDENCIES = (PositionProvider, ParentNodeProvider, QualifiedNameProvider, ScopeProvider)

    def transform_module_impl(self, tree: cst.Module) -> cst.Module:
        found = TrainerFinder(self, tree, is_library=lambda q: q in ACCELERATOR, train_method="prepare")
        if found.already_on_ray or launches_ray_trainer(self, tree) or not found.constructions:
            raise SkipFile("no Accelerator to launch")
        trained = found.trained()
        if len(trained) != 1:
            for site in found.constructions:
                message = ("several Accelerators prepare training here: convert it by hand, one TorchTrainer per training"
                           if trained else "this Accelerator prepares nothing here (no `.prepare(...)` beside it): nothing to launch")
                self.follow_up(site.call, message)
            return tree
        site = trained[0]
        # Built and prepared in a method of the script's own class: the call of that method moves,
        # and the epoch loop (where metrics are reported) is the method's.
        planned, in_method = tf.plan_trained_site(self, tree, site, found.parents, what="Accelerator", verb="prepares")
        if planned is None:
            return tree
        block, the_plan = planned.block, planned.plan
        report_distributed_setup(self, tree)

        launch = acc.LaunchText()
        text = acc.LaunchTextRewriter(launch)
        launchers = _Launchers(self)
        edited = tree.visit(launchers).visit(text)
        if text.hits:
            self.change(text.hits[0], f"`accelerate launch` instructions now run the script with python ({', '.join(launch.dropped) or 'no options'} dropped: Ray starts the workers)")
        if launch.mixed_precision:
            self.follow_up(text.hits[0], f'`accelerate launch --mixed_precision {launch.mixed_precision}` is gone: pass mixed_precision="{launch.mixed_precision}" to Accelerator(...)')
        workers = launchers.workers or launch.workers

        trains = list(in_method.method.body.body) if in_method is not None else [block[i] for i in the_plan.moved]
        metrics = acc.epoch_metrics(trains, site.var, _evaluate_metrics(self, tree))
        if isinstance(metrics, str):
            self.follow_up(site.train_call, f"metrics are not reported to Ray ({metrics}): add `ray.train.report({{...}})` where each epoch ends, on every worker")
        else:
            AddImportsVisitor.add_needed_import(self.context, "ray.train")
            self.change(metrics.after, "metrics reported to Ray Train at the end of each epoch (ray.train.report)")

        def rewrite(i: int, stmt: cst.BaseStatement) -> list[cst.BaseStatement]:
            if isinstance(metrics, str) or in_method is not None or not _holds(block[i], metrics.loop):
                return [stmt]
            return [_report_in(block[i], stmt, metrics)]

        if in_method is not None and not isinstance(metrics, str):
            at = tree.body.index(in_method.cls)
            edited = edited.with_changes(body=[*edited.body[:at], _report_in(in_method.cls, edited.body[at], metrics), *edited.body[at + 1:]])

        # Without a GPU, a plain Accelerator() on a Ray worker sees no distributed set-up and trains
        # alone (measured: DistributedType.NO, no gradient sync); the shared prologue fixes that.
        prologue = cst.parse_statement(cpu_prologue(self.context)).with_changes(
            leading_lines=[cst.EmptyLine(comment=cst.Comment(ACCELERATE_CPU_COMMENT))]
        )
        cpu = any(a.keyword is not None and a.keyword.value == "cpu" and isinstance(a.value, cst.Name) and a.value.value == "True" for a in site.call.args)
        result = tf.apply(self, edited, the_plan, self.options.for_script(cpu), rewrite, intended_workers=workers, prologue=[prologue])
        self._report(site, planned, workers)
        if in_method is not None:
            tf.report_method_call(self, site, in_method)
        if cpu:
            tf.cpu_note(self, site.call, "Accelerator(cpu=True)")
        return result

    def _report(self, site, planned: tf.SitePlan, workers: int | None) -> None:
        the_plan = planned.plan
        self.change(site.call, f"training at {planned.where} moved into a train function launched by TorchTrainer; Accelerator and prepare() stay as they are")
        if the_plan.config_names:
            self.change(site.call, f"parsed on the driver and handed to the workers through train_loop_config: {', '.join(the_plan.config_names)}")
        if the_plan.returns_value:
            tf.report_return(self, site.call)
        if workers:
            given = f"ScalingConfig(num_workers={self.options.num_workers}) (--num-workers)" if self.options.num_workers else f"ScalingConfig(num_workers={workers})"
            self.change(site.call, f"the script asked for {workers} processes; {given}")


class _Launchers(cst.CSTTransformer):
    """``notebook_launcher(fn, args, num_processes=N)`` -> ``fn(*args)``: ``fn`` launches Ray Train now."""

    def __init__(self, codemod) -> None:
        super().__init__()
        self.codemod = codemod
        self.workers: int | None = None

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        if not any(q in LAUNCHER for q in qualified_names(self.codemod, original_node.func)):
            return updated_node
        positional = [a for a in updated_node.args if a.keyword is None]
        keywords = {a.keyword.value: a.value for a in updated_node.args if a.keyword is not None}
        function = positional[0].value if positional else keywords.get("function")
        args = positional[1].value if len(positional) > 1 else keywords.get("args")
        if function is None:
            return updated_node
        processes, nodes = keywords.get("num_processes"), keywords.get("num_nodes", cst.Integer("1"))
        if isinstance(processes, cst.Integer) and isinstance(nodes, cst.Integer):
            self.workers = int(processes.value) * int(nodes.value)
        if "mixed_precision" in keywords:
            self.codemod.follow_up(original_node, "notebook_launcher's mixed_precision is gone: pass it to Accelerator(mixed_precision=...)")
        self.codemod.change(original_node, "notebook_launcher replaced by a direct call: the function launches TorchTrainer now")
        for q in qualified_names(self.codemod, original_node.func):
            RemoveImportsVisitor.remove_unused_import(self.codemod.context, *q.rsplit(".", 1))
        if isinstance(args, cst.Tuple):
            call_args = [cst.Arg(e.value) for e in args.elements]
        else:
            call_args = [cst.Arg(args, star="*")] if args is not None else []
        return cst.Call(function, [a.with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))) for a in call_args[:-1]] + call_args[-1:])


def _evaluate_metrics(codemod, module: cst.Module) -> set[str]:
    """Names bound to ``evaluate.load(...)``: their ``compute()`` returns a dict of metrics."""
    names: set[str] = set()

    class Visit(cst.CSTVisitor):
        def visit_Assign(self, node: cst.Assign) -> None:
            if isinstance(node.value, cst.Call) and "evaluate.load" in qualified_names(codemod, node.value.func):
                names.update(t.target.value for t in node.targets if isinstance(t.target, cst.Name))

    module.visit(Visit())
    return names


def _holds(stmt: cst.BaseStatement, loop: cst.For) -> bool:
    """``stmt`` is ``loop``, or a ``def``, class or outer loop (one per fold) whose body holds it."""
    if stmt is loop:
        return True
    return ((isinstance(stmt, (cst.FunctionDef, cst.ClassDef)) and isinstance(stmt.body, cst.IndentedBlock))
            or acc.is_outer_loop(stmt)) and any(_holds(s, loop) for s in stmt.body.body)


def _report_in(original: cst.BaseStatement, edited: cst.BaseStatement, metrics) -> cst.BaseStatement:
    """``edited`` (``original`` as edited since) with the report after the metrics in the epoch loop."""
    top, loop = edited, edited
    while original is not metrics.loop:  # down through defs, the class, outer loops to the loop
        j = next(k for k, s in enumerate(original.body.body) if _holds(s, metrics.loop))
        original, loop = original.body.body[j], loop.body.body[j]
    anchor = loop.body.body[list(metrics.loop.body.body).index(metrics.after)]
    return top.visit(_AddAfter(anchor, metrics.report))


class _AddAfter(cst.CSTTransformer):
    def __init__(self, anchor: cst.BaseStatement, line: str) -> None:
        super().__init__()
        self.anchor = anchor
        self.line = line

    def leave_IndentedBlock(self, original_node: cst.IndentedBlock, updated_node: cst.IndentedBlock) -> cst.IndentedBlock:
        if self.anchor not in original_node.body:
            return updated_node
        body = []
        for before, after in zip(original_node.body, updated_node.body):
            body.append(after)
            if before is self.anchor:
                body.append(cst.parse_statement(self.line))
        return updated_node.with_changes(body=body)

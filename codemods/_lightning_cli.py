"""``LightningCLI`` scripts: the CLI runs inside the train function and builds a Ray-ready Trainer.

Implements the Lightning guide's Trainer set-up for a Trainer that ``LightningCLI`` builds from the
command line and config files. Before::

    class MyCLI(LightningCLI):
        def add_arguments_to_parser(self, parser): ...

    def cli_main():
        MyCLI(LitModel, LitDataModule)      # python train.py fit --config config.yaml

After::

    class RayMyCLI(MyCLI):
        \"\"\"MyCLI whose Trainer trains on Ray Train's workers...\"\"\"

        def instantiate_trainer(self, **kwargs):
            kwargs.update(devices="auto", accelerator="auto", strategy=RayDDPStrategy(), plugins=[RayLightningEnvironment()])
            trainer = super().instantiate_trainer(**kwargs)
            trainer.callbacks.append(RayTrainReportCallback())
            return prepare_trainer(trainer)

    def train_func(config):
        os.chdir(config["launch_dir"])
        RayMyCLI(LitModel, LitDataModule, args=config["cli_args"])

    def cli_main():
        ray_trainer = TorchTrainer(train_func, train_loop_config={..., "cli_args": sys.argv[1:]}, ...)
        result = ray_trainer.fit()

Workers have other command lines, so the driver's (subcommand, ``--config``, flags) is handed over
as ``args=``. ``instantiate_trainer`` is the CLI's own hook for building the Trainer, so subcommands,
``run=False`` and the user's overrides keep working; Ray's pieces win over the config's placement.
"""

from __future__ import annotations

import libcst as cst
from libcst.codemod.visitors import AddImportsVisitor

from codemods import _lightning as lt
from codemods import _train_function as tf
from codemods._trainers import qualified_names

_CLASS = '''class {name}({base}):
    """{base} whose Trainer trains on Ray Train's workers: Ray's strategy, environment and report callback."""

    def instantiate_trainer(self, **kwargs):
        # Ray Train starts the processes and places them: these win over the config's and the flags'.
        kwargs.update(devices="auto", accelerator="auto", strategy=RayDDPStrategy(), plugins=[RayLightningEnvironment()])
        trainer = super().instantiate_trainer(**kwargs)
        trainer.callbacks.append(RayTrainReportCallback())
        return prepare_trainer(trainer)
'''


def _is_cli(codemod, func: cst.BaseExpression, local: set[str]) -> bool:
    if isinstance(func, cst.Name) and func.value in local:
        return True
    return any((lt.lightning_path(q) or "").endswith("LightningCLI") for q in qualified_names(codemod, func))


def cli_calls(codemod, module: cst.Module) -> list[cst.Call]:
    """Calls of ``LightningCLI`` or of a class the script derives from it."""
    local: set[str] = set()
    for stmt in module.body:
        if isinstance(stmt, cst.ClassDef) and any(_is_cli(codemod, b.value, local) for b in stmt.bases):
            local.add(stmt.name.value)
    found: list[cst.Call] = []

    class Visit(cst.CSTVisitor):
        def visit_Call(self, node: cst.Call) -> None:
            if _is_cli(codemod, node.func, local):
                found.append(node)

    module.visit(Visit())
    return found


def convert_cli(codemod, tree: cst.Module, calls: list[cst.Call]) -> cst.Module | None:
    """The converted module, or None (with a follow-up) when the CLI cannot move."""
    if len(calls) > 1:
        for call in calls:
            codemod.follow_up(call, "several LightningCLI calls in one script: convert it by hand, one TorchTrainer per training")
        return None
    call = calls[0]
    planned = tf.plan_or_follow_up(codemod, tree, [call], [], what="LightningCLI", verb="run")
    if planned is None:
        return None
    base = cst.Module([]).code_for_node(call.func)
    name = tf.unique_name(tree, "Ray" + base.rsplit(".", 1)[-1])
    param = planned.plan.param
    given = any(a.keyword is not None and a.keyword.value == "args" for a in call.args)
    edited = tree.visit(_Replace(call, name, None if given else f'{param}["cli_args"]'))
    for ray in ("RayDDPStrategy", "RayLightningEnvironment", "RayTrainReportCallback", "prepare_trainer"):
        AddImportsVisitor.add_needed_import(codemod.context, "ray.train.lightning", ray)
    definition = cst.parse_statement(_CLASS.format(name=name, base=base)).with_changes(leading_lines=[cst.EmptyLine(indent=False)] * 2)
    extra = []
    if not given:
        AddImportsVisitor.add_needed_import(codemod.context, "sys")
        extra = [("cli_args", "sys.argv[1:]")]
        planned.plan.needs_param = True
    result = tf.apply(codemod, edited, planned.plan, codemod.options, definitions=[definition], extra_config=extra)
    codemod.change(call, f"LightningCLI runs inside a train function launched by TorchTrainer; {name} builds its Trainer with RayDDPStrategy, RayLightningEnvironment and RayTrainReportCallback and passes it through prepare_trainer")
    if not given:
        codemod.change(call, "the command line (subcommand, --config, flags) is read on the driver and handed to the workers as args=, through train_loop_config")
    return result


class _Replace(cst.CSTTransformer):
    def __init__(self, call: cst.Call, name: str, args: str | None) -> None:
        super().__init__()
        self.call, self.name, self.args = call, name, args

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.Call:
        if original_node is not self.call:
            return updated_node
        new = updated_node.with_changes(func=cst.Name(self.name))
        if self.args is None:
            return new
        arg = cst.Arg(keyword=cst.Name("args"), value=cst.parse_expression(self.args), equal=cst.AssignEqual(
            whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace("")))
        return new.with_changes(args=lt.append_items(list(new.args), [arg], new.whitespace_before_args))

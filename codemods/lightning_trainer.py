"""PyTorch Lightning ``Trainer`` scripts (``lightning.pytorch`` or ``pytorch_lightning``) to ``TorchTrainer``.

Implements "Setting up your training function" and its subsections (strategy, cluster environment
plugin, parallel devices, reporting, ``prepare_trainer``) of
``shared/reference/ray-train-lightning-guide.rst``, and the ``LightningTrainer`` migration guide's
``CheckpointConfig``. Before::

    model = MyModule()
    trainer = pl.Trainer(max_epochs=5, accelerator="gpu", devices=[0, 1], strategy="ddp",
                         callbacks=[ModelCheckpoint(monitor="val_loss", mode="min", save_top_k=2)])
    trainer.fit(model, datamodule=MyDataModule())

After::

    def train_func(config):
        os.chdir(config["launch_dir"])
        model = MyModule()
        trainer = pl.Trainer(max_epochs=5, accelerator="auto", devices="auto", strategy=RayDDPStrategy(),
                             callbacks=[ModelCheckpoint(...), RayTrainReportCallback()],
                             plugins=[RayLightningEnvironment()])
        trainer = prepare_trainer(trainer)
        trainer.fit(model, datamodule=MyDataModule())

    ray_trainer = TorchTrainer(
        train_func,
        train_loop_config={"launch_dir": os.getcwd()},
        scaling_config=ScalingConfig(num_workers=2, use_gpu=True),
        run_config=RunConfig(checkpoint_config=CheckpointConfig(num_to_keep=2, ...)),
    )
    result = ray_trainer.fit()

The worker count comes from the placement arguments it removes (devices x num_nodes) unless
``--num-workers`` says otherwise. ``--lightning-package`` moves every Lightning import of a file,
trainer or not, to one package (see ``_lightning``). ``LightningCLI`` runs inside the train
function (``_lightning_cli``), a Trainer from ``hydra.utils.instantiate(cfg.trainer)`` is edited
like any other (``_hydra``), several fits become several launches (``_several_trainings``), and
a Trainer built and fitted in a method of the script's own class moves with the one call of that
method (``Experiment(args).run()``). A
``Trainer.from_argparse_args`` paired with ``add_argparse_args`` reaches this codemod already
rewritten by ``lightning_removed_arguments``; one without it is left as it is, with a follow-up.
"""

from __future__ import annotations

import libcst as cst
from libcst.codemod import SkipFile
from libcst.codemod.visitors import AddImportsVisitor
from libcst.metadata import ParentNodeProvider, PositionProvider, QualifiedNameProvider, ScopeProvider

from codemods import _lightning as lt
from codemods import _hydra as hydra
from codemods import _several_trainings as several
from codemods._lightning_cli import cli_calls, convert_cli
from codemods import _train_function as tf
from codemods._distributed import report_distributed_setup
from codemods._lightning_edit import TrainerEdit, checkpoint_config, hand_made_trainers
from codemods._module_code import defines, insert_functions
from codemods._trainers import TUNE_TRIAL, TrainerFinder, launches_ray_trainer, tune_trial_report
from migrator.codemod import MigrationCodemod

RAY_MODULE = "ray.train.lightning"


class LightningTrainerToTorchTrainer(MigrationCodemod):
    DESCRIPTION = "PyTorch Lightning Trainer scripts (lightning or pytorch_lightning) to TorchTrainer"
    TRIGGERS = (b"lightning", b"pytorch_lightning", b"hydra")
    MODULES = (b"lightning", b"pytorch_lightning", b"hydra")
    ORDER = 60
    METADATA_DEPENDENCIES = (PositionProvider, ParentNodeProvider, QualifiedNameProvider, ScopeProvider)

    def transform_module_impl(self, tree: cst.Module) -> cst.Module:
        converted = self._convert(tree)
        result = self._move_imports(tree, converted or tree)
        if converted is not None:
            self._report_package(tree, result)
        if result is tree:
            raise SkipFile("no Lightning Trainer to convert")
        return result

    def _convert(self, tree: cst.Module) -> cst.Module | None:
        if hand_made_trainers(self, tree, cli=False):
            return None
        calls = cli_calls(self, tree)
        if calls and not launches_ray_trainer(self, tree):
            return convert_cli(self, tree, calls)
        instantiated = hydra.trainer_instantiations(self, tree)
        found = TrainerFinder(self, tree, is_library=lt.is_trainer, train_method="fit", built_elsewhere=instantiated)
        if found.already_on_ray or launches_ray_trainer(self, tree) or not (found.constructions or found.problems):
            return None
        tune = tune_trial_report(self, tree)
        if tune is not None:
            self.follow_up(tune[0], TUNE_TRIAL.format(what=tune[1]))
            return None
        report_distributed_setup(self, tree, local_rank=False)
        for node, message in found.problems:
            self.follow_up(node, message)
        trained = found.trained()
        if not trained:
            for site in found.constructions:
                # instantiate(cfg.trainer) may build another framework's trainer (one that trains with .train()).
                if site.train_call is None and site.call not in instantiated:
                    self.follow_up(site.call, f"this Trainer is never fitted here (no `{site.var}.fit(...)` beside it): nothing to launch")
            return None
        if len(trained) > 1 or len(trained[0].train_calls) > 1:
            return self._convert_several(tree, found, trained)
        site = trained[0]
        # Built and fitted in a method of the script's own class: the call of that method moves.
        planned, in_method = tf.plan_trained_site(self, tree, site, found.parents, verb="fitted")
        if planned is None:
            return None
        owner, block, the_plan = planned.owner, planned.block, planned.plan

        fit_line = found._statement_of(site.train_call)
        prepare = cst.parse_statement(f"{site.var} = prepare_trainer({site.var})")
        edit = TrainerEdit(self, tree, {call for call, _ in site.constructions}, fit_line, prepare, skip=getattr(owner, "body", None))
        edited = tree.visit(edit)
        rewrite = _rewrite(block, {fit_line: prepare})
        run_config = self._ray_imports(tree, edit)
        prologue, extra_config = hydra.hand_over(self, planned)
        for call, _ in site.constructions:
            if call in instantiated and not any(a.keyword is not None and a.keyword.value == "callbacks" for a in call.args):
                self.follow_up(call, "callbacks=[RayTrainReportCallback()] now replaces any callbacks the config's trainer section lists: instantiate those and pass them in this list too")
        result = tf.apply(
            self, edited, the_plan, self.options.for_script(edit.trains_on_cpu), rewrite,
            run_config=[f"checkpoint_config={run_config}"] if run_config else (),
            intended_workers=edit.workers, prologue=prologue, extra_config=extra_config,
        )
        self._report(site, planned, edit)
        if in_method is not None:
            tf.report_method_call(self, site, in_method)
        return _with_strategy_helper(result, edit)

    def _convert_several(self, tree: cst.Module, found: TrainerFinder, trained) -> cst.Module | None:
        """One train function and launch per fit, in order; a later one loads an earlier model's checkpoint."""
        try:
            trainings = several.split(self, trained, _fitted_model)
            owner, block, planned = several.plan_several(self, tree, trainings)
        except tf.Unsupported as exc:
            for site in trained:
                self.follow_up(site.train_call, f"several Trainers are fitted in this script, and they cannot be split into one TorchTrainer each: {exc}")
            return None
        fits = {found._statement_of(t.trained[0]): cst.parse_statement(f"{t.var} = prepare_trainer({t.var})") for t in trainings}
        calls = {call for site in trained for call, _ in site.constructions}
        edit = TrainerEdit(self, tree, calls, fits, None, skip=getattr(owner, "body", None))
        edited = tree.visit(edit)
        run_config = self._ray_imports(tree, edit)
        AddImportsVisitor.add_needed_import(self.context, "torch")
        result = several.apply_several(
            self, edited, owner, planned, self.options.for_script(edit.trains_on_cpu), _rewrite(block, fits), _load_lightning,
            run_config=[f"checkpoint_config={run_config}"] if run_config else (), intended_workers=edit.workers,
        )
        for k, p in enumerate(planned, start=1):
            self.change(p.training.trained[0], f"training {k} of {len(planned)} moved into {p.func}, launched by TorchTrainer in the script's order; `{p.training.var}` goes through prepare_trainer before fit")
            if p.continues_from is not None:
                source = planned[p.continues_from]
                self.change(p.training.trained[0], f"continues from {source.func}: {source.result}.checkpoint is handed over through train_loop_config and loaded into `{source.training.model}`")
        return _with_strategy_helper(result, edit)

    def _ray_imports(self, tree: cst.Module, edit: TrainerEdit) -> str | None:
        for name in ("RayDDPStrategy", "RayLightningEnvironment", "RayTrainReportCallback", "prepare_trainer"):
            if name != "RayDDPStrategy" or edit.used_ddp:
                AddImportsVisitor.add_needed_import(self.context, RAY_MODULE, name)
        run_config = checkpoint_config(self, tree)
        if run_config:
            AddImportsVisitor.add_needed_import(self.context, "ray.train", "CheckpointConfig")
        return run_config

    def _report(self, site, planned: tf.SitePlan, edit: TrainerEdit) -> None:
        the_plan = planned.plan
        self.change(site.train_call, f"training at {planned.where} moved into a train function launched by TorchTrainer")
        self.change(site.train_call, f"`{site.var}` goes through prepare_trainer before fit")
        if the_plan.config_names:
            names = ", ".join(the_plan.config_names)
            self.change(site.train_call, f"parsed on the driver and handed to the workers through train_loop_config: {names}")
        if the_plan.returns_value:
            tf.report_return(self, site.train_call)
        workers = self.options.workers(edit.workers)
        if edit.placement:
            asked = (
                f"the script asked for {edit.workers} worker{'s' if edit.workers != 1 else ''}"
                if edit.workers else "the script's worker count cannot be read from them"
            )
            given = " (--num-workers)" if self.options.num_workers else ""
            self.change(site.call, f"placement left to Ray Train ({'; '.join(edit.placement)}): {asked}; ScalingConfig(num_workers={workers}){given}")
        if edit.trains_on_cpu:
            tf.cpu_note(self, site.call, 'accelerator="cpu"')

    def _move_imports(self, original: cst.Module, tree: cst.Module) -> cst.Module:
        """``--lightning-package``: every Lightning import to one package, or none when one cannot move."""
        target = self.options.lightning_package
        if target is None:
            return tree
        probe = lt.PackageRewriter(target)
        original.visit(probe)  # on the tree with positions, for the report
        for node, message in probe.problems:
            self.follow_up(node, f"imports not moved to {target}: {message}")
        if probe.problems or not probe.changed:
            return tree
        for node in probe.changed:
            self.change(node, f"Lightning import moved to {target} (--lightning-package)")
        return tree.visit(lt.PackageRewriter(target))

    def _report_package(self, original: cst.Module, tree: cst.Module) -> None:
        """Say which package the converted script needs installed for Ray's integration to match it."""
        packages = set(lt.imported_packages(tree))
        where = min(lt.imported_packages(original).values(), key=self.line_of, default=None)
        if packages == {"lightning"}:
            self.change(where, "Ray's Lightning integration binds to lightning.pytorch when the `lightning` package is installed, as this script needs: install `lightning` where it runs")
        elif "pytorch_lightning" in packages and self.options.lightning_package is None:
            return  # lightning_package_follows_ray makes these imports follow the package Ray binds to
        elif packages == {"pytorch_lightning"}:
            self.follow_up(where, "this script imports pytorch_lightning, but Ray's Lightning integration binds to lightning.pytorch whenever the `lightning` package is installed: run it where only `pytorch-lightning` is installed, or convert without --lightning-package pytorch_lightning")
        elif len(packages) > 1:
            self.follow_up(where, "this script imports both lightning and pytorch_lightning, but Ray's Lightning integration binds to one of them: convert with --lightning-package to use one")


def _with_strategy_helper(module: cst.Module, edit: TrainerEdit) -> cst.Module:
    """``module`` with ``ray_strategy()`` defined, where a strategy= known only at run time calls it."""
    if not edit.runtime_strategy or defines(module, lt.STRATEGY_HELPER):
        return module
    return insert_functions(module, [lt.strategy_helper_source()])


def _rewrite(block, fits: dict) -> tf.Rewrite:
    """``prepare_trainer`` right before each fit in the training block."""
    def rewrite(i: int, stmt: cst.BaseStatement) -> list[cst.BaseStatement]:
        if block[i] not in fits:
            return [stmt]
        return [fits[block[i]].with_changes(leading_lines=stmt.leading_lines), stmt.with_changes(leading_lines=[])]
    return rewrite


def _fitted_model(training) -> cst.BaseExpression | None:
    """The LightningModule expression ``trainer.fit(model, ...)`` trains."""
    return several.model_argument(training.trained[0])


def _load_lightning(model: str, param: str) -> str:
    # RayTrainReportCallback saves the Trainer's checkpoint as checkpoint.ckpt.
    return (
        f'with {param}["checkpoint"].as_directory() as checkpoint_dir:\n'
        f'    state = torch.load(os.path.join(checkpoint_dir, "checkpoint.ckpt"), map_location="cpu", weights_only=False)\n'
        f'    {model}.load_state_dict(state["state_dict"])\n'
    )


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
trainer or not, to one package (see ``_lightning``). ``LightningCLI`` and
``Trainer.from_argparse_args`` scripts are left as they are, with a follow-up.
"""

from __future__ import annotations

import libcst as cst
from libcst.codemod import SkipFile
from libcst.codemod.visitors import AddImportsVisitor
from libcst.metadata import ParentNodeProvider, PositionProvider, QualifiedNameProvider, ScopeProvider

from codemods import _lightning as lt
from codemods import _train_function as tf
from codemods._distributed import report_distributed_setup
from codemods._lightning_edit import TrainerEdit, checkpoint_config, hand_made_trainers
from codemods._statements import Metadata
from codemods._trainers import TrainerFinder, launches_ray_trainer
from migrator.codemod import MigrationCodemod

RAY_MODULE = "ray.train.lightning"


class LightningTrainerToTorchTrainer(MigrationCodemod):
    DESCRIPTION = "PyTorch Lightning Trainer scripts (lightning or pytorch_lightning) to TorchTrainer"
    TRIGGERS = (b"lightning", b"pytorch_lightning")
    MODULES = (b"lightning", b"pytorch_lightning")
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
        if hand_made_trainers(self, tree):
            return None
        found = TrainerFinder(self, tree, is_library=lt.is_trainer, train_method="fit")
        if found.already_on_ray or launches_ray_trainer(self, tree) or not (found.constructions or found.problems):
            return None
        report_distributed_setup(self, tree, local_rank=False)
        for node, message in found.problems:
            self.follow_up(node, message)
        trained = found.trained()
        if len(trained) != 1 or len(trained[0].train_calls) > 1:
            for site in found.constructions:
                if trained:
                    self.follow_up(site.call, "several Trainers are fitted in this script: convert it by hand, one TorchTrainer per training")
                elif site.train_call is None:
                    self.follow_up(site.call, f"this Trainer is never fitted here (no `{site.var}.fit(...)` beside it): nothing to launch")
            return None
        site = trained[0]
        parents = Metadata(self, ParentNodeProvider)
        try:
            owner = tf.owner_of(site.train_call, tree, parents)
            block = tf.block_of(owner)
            fit_index = tf.statement_index(block, site.train_call, parents)
            seeds = {fit_index}
            for _, stmt in site.constructions:
                if tf.owner_of(stmt, tree, parents) is not owner:
                    raise tf.Unsupported("the Trainer is built in one function and fitted in another")
                seeds.add(tf.statement_index(block, stmt, parents))
            the_plan = tf.plan(self, tree, owner, seeds)
        except tf.Unsupported as exc:
            self.follow_up(site.train_call, f"not converted: {exc}")
            return None

        fit_line = found._statement_of(site.train_call)
        prepare = cst.parse_statement(f"{site.var} = prepare_trainer({site.var})")
        edit = TrainerEdit(self, tree, {call for call, _ in site.constructions}, fit_line, prepare, skip=getattr(owner, "body", None))
        edited = tree.visit(edit)

        def rewrite(i: int, stmt: cst.BaseStatement) -> list[cst.BaseStatement]:
            if block[i] is not fit_line:
                return [stmt]
            return [prepare.with_changes(leading_lines=stmt.leading_lines), stmt.with_changes(leading_lines=[])]

        for name in ("RayDDPStrategy", "RayLightningEnvironment", "RayTrainReportCallback", "prepare_trainer"):
            if name != "RayDDPStrategy" or edit.used_ddp:
                AddImportsVisitor.add_needed_import(self.context, RAY_MODULE, name)
        run_config = checkpoint_config(self, tree)
        if run_config:
            AddImportsVisitor.add_needed_import(self.context, "ray.train", "CheckpointConfig")
        result = tf.apply(
            self, edited, the_plan, self.options, rewrite,
            run_config=[f"checkpoint_config={run_config}"] if run_config else (),
            intended_workers=edit.workers,
        )
        self._report(site, the_plan, owner, edit)
        return result

    def _report(self, site, the_plan: tf.Plan, owner, edit: TrainerEdit) -> None:
        where = "main guard" if isinstance(owner, cst.If) else (
            f"{owner.name.value}()" if isinstance(owner, cst.FunctionDef) else "module level"
        )
        self.change(site.train_call, f"training at {where} moved into a train function launched by TorchTrainer")
        self.change(site.train_call, f"`{site.var}` goes through prepare_trainer before fit")
        if the_plan.config_names:
            names = ", ".join(the_plan.config_names)
            self.change(site.train_call, f"parsed on the driver and handed to the workers through train_loop_config: {names}")
        if the_plan.returns_value:
            self.follow_up(site.train_call, "the training code returned a value; it now runs on the workers, so callers get None (use result.metrics instead)")
        workers = self.options.workers(edit.workers)
        if edit.placement:
            asked = (
                f"the script asked for {edit.workers} worker{'s' if edit.workers != 1 else ''}"
                if edit.workers else "the script's worker count cannot be read from them"
            )
            given = " (--num-workers)" if self.options.num_workers else ""
            self.change(site.call, f"placement left to Ray Train ({'; '.join(edit.placement)}): {asked}; ScalingConfig(num_workers={workers}){given}")
        if edit.trains_on_cpu and self.options.use_gpu:
            self.follow_up(site.call, 'the script trains on CPU (accelerator="cpu"), but ScalingConfig asks for a GPU per worker: convert with --no-use-gpu')

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
        elif packages == {"pytorch_lightning"}:
            self.follow_up(where, "this script imports pytorch_lightning, but Ray's Lightning integration binds to lightning.pytorch whenever the `lightning` package is installed: run it where only `pytorch-lightning` is installed, or convert with --lightning-package lightning")
        elif len(packages) > 1:
            self.follow_up(where, "this script imports both lightning and pytorch_lightning, but Ray's Lightning integration binds to one of them: convert with --lightning-package to use one")

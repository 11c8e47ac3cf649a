"""Hugging Face Transformers ``Trainer`` scripts to Ray Train's ``TorchTrainer``.

Implements "Get Started with Distributed Training using Hugging Face Transformers"
(``shared/reference/ray-train-transformers-guide.rst``). Before::

    dataset = load_dataset("yelp_review_full")
    model = AutoModelForSequenceClassification.from_pretrained("bert-base-cased", num_labels=5)
    trainer = Trainer(model=model, args=training_args, train_dataset=dataset["train"])
    trainer.train()

After::

    # Ray Train runs this function on every worker.
    def train_func(config):
        os.chdir(config["launch_dir"])
        dataset = load_dataset("yelp_review_full")
        model = AutoModelForSequenceClassification.from_pretrained("bert-base-cased", num_labels=5)
        trainer = Trainer(model=model, args=training_args, train_dataset=dataset["train"])
        trainer.add_callback(RayTrainReportCallback())
        trainer = prepare_trainer(trainer)
        trainer.train()

    ray_trainer = TorchTrainer(
        train_func,
        train_loop_config={"launch_dir": os.getcwd()},
        scaling_config=ScalingConfig(num_workers=2, use_gpu=True),
    )
    result = ray_trainer.fit()

Trainers are ``transformers`` and ``trl`` classes whose names end in ``Trainer``, classes the
script derives from them, and functions that return one. A Trainer built and trained in a method
of the script's own class (``MRCTrainer(args).train()``) moves with the one call of that method.
``RayTrainReportCallback`` reports only when the Trainer saves, so ``save_strategy`` is aligned
with evaluation (see ``_save_strategy``). What cannot be moved safely becomes a follow-up; the file stays valid.
"""

from __future__ import annotations

import libcst as cst
import libcst.matchers as m
from libcst.codemod import SkipFile
from libcst.codemod.visitors import AddImportsVisitor
from libcst.metadata import ParentNodeProvider, PositionProvider, QualifiedNameProvider, ScopeProvider

from codemods import _hf_signature as hf_signature
from codemods import _hydra as hydra
from codemods import _several_trainings as several
from codemods import _train_function as tf
from codemods._distributed import report_distributed_setup
from codemods._hf_reporting import CALLBACK_MODULE, CPU_COMMENT, SYNCED_CALLBACK, cpu_prologue, synced_callback_class
from codemods._names import defines_any, spelled_names
from codemods._save_strategy import AT_RUN_TIME, SaveStrategyFixer, is_training_arguments
from codemods._trainers import TrainerFinder, launches_ray_trainer, qualified_names, training_arguments_names
from migrator.codemod import MigrationCodemod
from migrator.walks import nodes

#: The first parts of the names this codemod resolves: transformers' and trl's trainers, Hydra's instantiate.
_OWN_TOPS = frozenset({"transformers", "trl", "hydra"})


class TransformersTrainerToTorchTrainer(MigrationCodemod):
    DESCRIPTION = "Hugging Face Transformers Trainer scripts (Trainer, Seq2SeqTrainer, trl) to TorchTrainer"
    # A Trainer is a transformers / trl class resolved through the script's imports: every trainer
    # it finds is named ``...Trainer`` (nothing_to_do says why), or is built by Hydra.
    TRIGGERS = (b"*Trainer", b"hydra")
    MODULES = (b"transformers", b"trl")
    ORDER = 60
    METADATA_DEPENDENCIES = (PositionProvider, ParentNodeProvider, QualifiedNameProvider, ScopeProvider)

    def nothing_to_do(self, tree: cst.Module) -> bool:
        """No name the file spells ends in ``Trainer`` (a transformers/trl trainer, a subclass of
        one, a ``...Trainer`` imported from a sibling file: every trainer this codemod finds is
        one) and none is Hydra's (``instantiate(cfg.trainer)``). Most files of a package that
        imports transformers, the library's own among them, are such files: they skip the scopes."""
        if defines_any(tree, _OWN_TOPS):
            return False
        return not any(name.rsplit(".", 1)[-1].endswith("Trainer") or name.split(".", 1)[0] == "hydra"
                       for name in spelled_names(tree))

    def transform_module_impl(self, tree: cst.Module) -> cst.Module:
        # A Trainer built by hydra.utils.instantiate(cfg.trainer, ...) is one when its arguments say so.
        instantiated, unknown = hydra.transformers_instantiations(self, tree, is_training_arguments)
        # So is a Trainer subclass imported from a sibling file (run_qa.py's QuestionAnsweringTrainer).
        siblings = frozenset(hf_signature.sibling_trainer_calls(self, tree, is_training_arguments))
        found = TrainerFinder(self, tree, built_elsewhere=instantiated | unknown | siblings)
        unsure = [s for s in found.constructions if s.call in unknown]
        for site in unsure:
            if site.train_calls:
                self.follow_up(site.call, hydra.unknown_trainer_message(site.var))
        found.sites = {key: s for key, s in found.sites.items() if s.call not in unknown}
        if not found.constructions and not found.problems:
            if any(s.train_calls for s in unsure):
                return tree
            built = m.findall(tree, m.Call(func=m.Name()))
            if found.local_classes and not any(c.func.value in found.local_classes for c in built):
                # A module of Trainer subclasses (run_qa.py's trainer_qa.py): the script that trains one is converted.
                first = next(c for c in tree.body if isinstance(c, cst.ClassDef) and c.name.value in found.local_classes)
                self.follow_up(first, f"`{first.name.value}` (a Transformers/trl Trainer subclass) is neither built nor trained in this file: nothing to launch here; the script that trains it is the one to convert, and its Trainer gets Ray's report callback there")
                return tree
            raise SkipFile("no Hugging Face Trainer here")
        # A retired Ray trainer that transformers_trainer_legacy turned into TorchTrainer launches a
        # nested train_func that calls the Trainer factory: wrapping the function around it again
        # would start a TorchTrainer on every worker (Ray's huggingface_basic_language_modeling_example).
        if found.already_on_ray or launches_ray_trainer(self, tree):
            raise SkipFile("already launched by TorchTrainer")
        report_distributed_setup(self, tree)
        for node, message in found.problems:
            self.follow_up(node, message)
        trained = found.trained()
        if not trained:
            for site in found.constructions:
                self.follow_up(site.call, f"this Trainer is never trained here (no `{site.var or 'trainer'}.train()` beside it): nothing to launch")
            return tree
        if len(trained) > 1 or len(trained[0].train_calls) > 1:
            return self._convert_several(tree, trained)
        site = trained[0]
        # Built and trained in a method of the script's own class: the call of that method moves.
        planned, in_method = tf.plan_trained_site(self, tree, site, found.parents)
        if planned is None:
            return tree
        owner, block, the_plan = planned.owner, planned.block, planned.plan

        self.callback_class = tf.unique_name(tree, SYNCED_CALLBACK)
        callback_lines = self._callback_lines(site.var)
        statements = {stmt for _, stmt in site.constructions}
        # One pass: TrainingArguments fixes everywhere, and the callback lines after each
        # construction in nested blocks. In the training block itself the statement count must
        # stay put for the plan, so `rewrite` adds them there.
        edited = tree.visit(_Edit(self, statements, callback_lines, skip=getattr(owner, "body", None)))
        direct = {i for i, stmt in enumerate(block) if stmt in statements}

        def rewrite(i: int, stmt: cst.BaseStatement) -> list[cst.BaseStatement]:
            return [stmt, *callback_lines] if i in direct else [stmt]

        if not _saves_visibly(tree, self):
            self.change(site.statement, f"the TrainingArguments are not built here (command line or config file): {AT_RUN_TIME}")
        rebuild = {
            name: "dataclasses.replace({})"
            for name in training_arguments_names(self, tree, is_training_arguments)
            if name in the_plan.config_names
        }
        if rebuild:
            AddImportsVisitor.add_needed_import(self.context, "dataclasses")
        hydra_lines, extra_config = hydra.hand_over(self, planned)
        result = tf.apply(
            self, edited, the_plan, self.options, rewrite, prologue=[*self._prologue(), *hydra_lines],
            rebuild=rebuild, definitions=self._definitions(tree), extra_config=extra_config,
        )
        self._report(site, planned)
        if in_method is not None:
            tf.report_method_call(self, site, in_method)
        self._untrained_model_on_the_driver(site, planned)
        return result

    def _untrained_model_on_the_driver(self, site, planned: tf.SitePlan) -> None:
        """A model handed to the workers is trained there: the driver's copy, used after fit(), is not."""
        model = several.model_argument(site.call)
        if not isinstance(model, cst.Name) or model.value not in planned.plan.config_names:
            return
        last = max(planned.plan.moved)
        for i in range(last + 1, len(planned.block)):
            if i in planned.plan.moved:
                continue
            if any(n.value == model.value for n in m.findall(planned.block[i], m.Name())):
                self.follow_up(planned.block[i], f"`{model.value}` is trained on the Ray workers, each on a copy handed over through train_loop_config: this line, left on the driver after fit(), uses the driver's untrained `{model.value}`: load the trained one from result.checkpoint (RayTrainReportCallback's checkpoint/ folder, `from_pretrained`) or move this line into the train function")
                return

    def _convert_several(self, tree: cst.Module, trained) -> cst.Module:
        """One train function and launch per training, in order; a later one loads an earlier model's checkpoint."""
        try:
            trainings = several.split(self, trained, _trained_model)
            owner, block, planned = several.plan_several(self, tree, trainings)
        except tf.Unsupported as exc:
            for site in trained:
                self.follow_up(site.train_call, f"several Trainers are trained in this script, and they cannot be split into one TorchTrainer each: {exc}")
            return tree
        self.callback_class = tf.unique_name(tree, SYNCED_CALLBACK)
        lines = {stmt: self._callback_lines(t.var) for t in trainings for stmt in t.built}
        edited = tree.visit(_Edit(self, set(lines), lines, skip=getattr(owner, "body", None)))

        def rewrite(i: int, stmt: cst.BaseStatement) -> list[cst.BaseStatement]:
            return [stmt, *lines.get(block[i], ())]

        rebuild = {name: "dataclasses.replace({})" for name in training_arguments_names(self, tree, is_training_arguments)}
        if any(name in p.plan.config_names for p in planned for name in rebuild):
            AddImportsVisitor.add_needed_import(self.context, "dataclasses")
        result = several.apply_several(
            self, edited, owner, planned, self.options, rewrite, _load_transformers,
            prologue=self._prologue(), rebuild=rebuild, definitions=self._definitions(tree),
        )
        for k, p in enumerate(planned, start=1):
            self.change(p.training.trained[0], f"training {k} of {len(planned)} moved into {p.func}, launched by TorchTrainer in the script's order; `{p.training.var}` reports to Ray and goes through prepare_trainer")
            if p.continues_from is not None:
                source = planned[p.continues_from]
                self.change(p.training.trained[0], f"continues from {source.func}: {source.result}.checkpoint is handed over through train_loop_config and `{source.training.model}` is loaded from it")
        return result

    def _prologue(self) -> list[cst.BaseStatement]:
        """CPU workers train distributed only when told to (see ``_hf_reporting``)."""
        return [
            cst.parse_statement(cpu_prologue(self.context)).with_changes(
                leading_lines=[cst.EmptyLine(comment=cst.Comment(CPU_COMMENT))]
            )
        ]

    def _definitions(self, tree: cst.Module) -> list[cst.BaseStatement]:
        """The callback class the train function uses (see ``_hf_reporting``)."""
        code = synced_callback_class(self.context, self.callback_class)
        return [cst.parse_statement(code).with_changes(leading_lines=[cst.EmptyLine(indent=False)] * 2)]

    def _callback_lines(self, var: str) -> list[cst.BaseStatement]:
        AddImportsVisitor.add_needed_import(self.context, CALLBACK_MODULE, "prepare_trainer")
        first = cst.parse_statement(f"{var}.add_callback({self.callback_class}())").with_changes(
            leading_lines=[cst.EmptyLine(comment=cst.Comment("# Report metrics and checkpoints to Ray Train, and prepare the Trainer for it."))]
        )
        return [first, cst.parse_statement(f"{var} = prepare_trainer({var})")]

    def _report(self, site, planned: tf.SitePlan) -> None:
        the_plan = planned.plan
        self.change(site.train_call, f"training at {planned.where} moved into a train function launched by TorchTrainer")
        self.change(site.statement, f"`{site.var}` reports to Ray (RayTrainReportCallback, after every worker is past the save) and goes through prepare_trainer")
        if the_plan.config_names:
            names = ", ".join(the_plan.config_names)
            self.change(site.train_call, f"parsed on the driver and handed to the workers through train_loop_config: {names}")
        if the_plan.returns_value:
            tf.report_return(self, site.train_call)
        if self.options.storage_path is not None:
            self.follow_up(site.train_call, "relative paths (output_dir, data files) now resolve in each worker's directory; make them absolute or use the storage path")


class _Edit(SaveStrategyFixer):
    def __init__(self, codemod, targets, extra, skip) -> None:
        super().__init__(codemod)
        self.targets = targets
        self.extra = extra
        self.skip = skip

    def leave_IndentedBlock(self, original_node: cst.IndentedBlock, updated_node: cst.IndentedBlock) -> cst.IndentedBlock:
        if original_node is self.skip or not any(s in self.targets for s in original_node.body):
            return updated_node
        body: list[cst.BaseStatement] = []
        for before, after in zip(original_node.body, updated_node.body):
            body.append(after)
            if before in self.targets:
                # One set of lines for every target, or (several trainings) each target's own.
                body.extend(self.extra[before] if isinstance(self.extra, dict) else self.extra)
        return updated_node.with_changes(body=body)


def _saves_visibly(tree: cst.Module, codemod) -> bool:
    """Whether the script builds TrainingArguments itself (so SaveStrategyFixer could see them)."""
    return any(
        any(is_training_arguments(q) for q in qualified_names(codemod, node.func)) for node in nodes(tree, (cst.Call,))
    )


def _trained_model(training) -> cst.BaseExpression | None:
    """The model expression a ``Trainer(model=...)`` call trains."""
    call = next(iter(training.built)).body
    call = next((n.value for n in call if isinstance(n, cst.Assign) and isinstance(n.value, cst.Call)), None)
    return several.model_argument(call) if call is not None else None


def _load_transformers(model: str, param: str) -> str:
    # RayTrainReportCallback stores the Trainer's checkpoint folder as "checkpoint".
    return (
        f'with {param}["checkpoint"].as_directory() as checkpoint_dir:\n'
        f'    {model} = type({model}).from_pretrained(os.path.join(checkpoint_dir, "checkpoint"))\n'
    )

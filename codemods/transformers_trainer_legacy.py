"""``TransformersTrainer`` / ``HuggingFaceTrainer`` (Ray 2.1-2.6) to ``TorchTrainer``.

Implements the "TransformersTrainer Migration Guide" at the end of ray-train-transformers-guide.rst.
The old trainer called ``trainer_init_per_worker(train_ds, eval_ds, **trainer_init_config)`` on
every worker and trained for you; the new code says so itself, reusing the user's function::

    # before
    ray_trainer = TransformersTrainer(
        trainer_init_per_worker=trainer_init_per_worker,
        trainer_init_config={"lr": 1e-3},
        datasets={"train": train_ds, "evaluation": eval_ds},
        scaling_config=ScalingConfig(num_workers=4, use_gpu=True),
    )

    # after
    def train_func(config):
        train_dataset = ray.train.get_dataset_shard("train")
        eval_dataset = ray.train.get_dataset_shard("evaluation")
        train_iterable_ds = train_dataset.iter_torch_batches(batch_size=8)
        eval_iterable_ds = eval_dataset.iter_torch_batches(batch_size=8)
        trainer = trainer_init_per_worker(train_iterable_ds, eval_iterable_ds, **config)
        trainer.add_callback(SyncedRayTrainReportCallback())  # RayTrainReportCallback after a barrier
        trainer = prepare_trainer(trainer)
        trainer.train()


    ray_trainer = TorchTrainer(
        train_func,
        train_loop_config={"lr": 1e-3},
        datasets={"train": train_ds, "evaluation": eval_ds},
        scaling_config=ScalingConfig(num_workers=4, use_gpu=True),
    )

Batch sizes are the ``per_device_{train,eval}_batch_size`` of the ``TrainingArguments`` built in
``trainer_init_per_worker`` (Transformers' default, 8, when absent). Ray Data shards have no length,
so ``TrainingArguments`` needs ``max_steps``: a follow-up says so when it is missing. Renamed
``TrainingArguments`` keywords are ``transformers_renamed_arguments``' business, not this one's.
"""

from __future__ import annotations

import libcst as cst

from codemods._hf_reporting import CPU_COMMENT, SYNCED_CALLBACK, cpu_prologue, synced_callback_class
from codemods._legacy_trainers import (LegacyTrainerCodemod, free_names, keyword_args, literal, quote, renamed,
                                       retired_trainers, with_train_func)

TRAINING_ARGUMENTS = ("transformers.TrainingArguments", "transformers.Seq2SeqTrainingArguments",
                      "transformers.training_args.TrainingArguments")
DEFAULT_BATCH_SIZE = 8  # TrainingArguments' per_device_{train,eval}_batch_size default
LOCALS = {"config", "train_dataset", "eval_dataset", "train_iterable_ds", "eval_iterable_ds", "trainer", "os"}


class TransformersTrainerLegacy(LegacyTrainerCodemod):
    DESCRIPTION = "TransformersTrainer / HuggingFaceTrainer (Ray 2.1-2.6) to TorchTrainer with a generated train_func."
    TRIGGERS = (b"TransformersTrainer", b"HuggingFaceTrainer")
    MODULES = (b"ray",)
    ORDER = 44
    LEGACY = retired_trainers("transformers_trainer_legacy")  # every path it had: codemods/data/retired_ray_trainers.toml
    CONVERTED = ("TransformersTrainer", "HuggingFaceTrainer")

    def plan(self, call: cst.Call) -> None:
        cls = self.legacy_name(call.func)
        kwargs = keyword_args(call)
        first = call.args[0] if call.args and not call.args[0].keyword and not call.args[0].star else None
        init_arg = first or kwargs.get("trainer_init_per_worker")
        if init_arg is None or not isinstance(init_arg.value, (cst.Name, cst.Attribute)):
            self.refused = True
            self.follow_up(call, f"{cls}: trainer_init_per_worker is not a function name, so this call was left "
                           "as it is: convert it by hand (TransformersTrainer Migration Guide)")
            return
        init = self.code(init_arg.value)
        if init.split(".")[0] in LOCALS:
            self.refused = True
            self.follow_up(call, f"{cls}: the function is called {init!r}, a name the generated train_func uses "
                           "for a local; rename it and convert again")
            return
        train_key, eval_key = self._dataset_keys(call, kwargs.get("datasets"))
        has_config = "trainer_init_config" in kwargs
        train_bs, eval_bs = self._batch_sizes(call, self.function_def(init_arg.value), has_config)
        name = self.fresh_name("train_func")
        callback = self.name_for("ray.train.huggingface.transformers", "RayTrainReportCallback", "TransformersReportCallback")
        prepare = self.name_for("ray.train.huggingface.transformers", "prepare_trainer", "prepare_transformers_trainer")
        self.need_import("ray")
        unit = self.tree.default_indent
        body = []
        for part, key in (("train", train_key), ("eval", eval_key)):
            if key is not None:
                body.append(f"{part}_dataset = ray.train.get_dataset_shard({quote(key)})")
        for part, key, bs in (("train", train_key, train_bs), ("eval", eval_key, eval_bs)):
            if key is not None:
                body.append(f"{part}_iterable_ds = {part}_dataset.iter_torch_batches(batch_size={bs})")
        datasets = ", ".join("None" if key is None else f"{part}_iterable_ds"
                             for part, key in (("train", train_key), ("eval", eval_key)))
        synced = self.fresh_name(SYNCED_CALLBACK)
        prologue = [CPU_COMMENT, *cpu_prologue(self.context).splitlines()]
        body = prologue + body + [
            f"trainer = {init}({datasets}{', **config' if has_config else ''})",
            f"trainer.add_callback({synced}())",
            f"trainer = {prepare}(trainer)",
            "trainer.train()",
        ]
        text = f"def {name}({'config' if has_config else ''}):\n" + "".join(f"{unit}{line}\n" for line in body)
        anchor = self._placement(call, self.function_def(init_arg.value))
        self.insert_before(anchor, self.parse_statement(synced_callback_class(self.context, synced, callback)),
                           take_comments=anchor is self.statement_of(call))
        self.insert_before(anchor, self.parse_statement(text))

        args = with_train_func(call, init_arg, name)
        args = [a.with_changes(keyword=cst.Name("train_loop_config"))
                if a.keyword and a.keyword.value == "trainer_init_config" else a for a in args]
        self.need_import("ray.train.torch", "TorchTrainer")
        self.replace_call(call, self.carry_over(call, call.with_changes(func=cst.Name("TorchTrainer"), args=args)))
        shards = ", ".join(repr(k) for k in (train_key, eval_key) if k is not None)
        self.change(call, f"{cls} -> TorchTrainer({name}): {name} iterates the Ray Dataset shards {shards}, builds "
                    f"the Trainer with {init}, adds RayTrainReportCallback and prepare_trainer, and trains"
                    + ("; trainer_init_config -> train_loop_config" if has_config else ""))

    def _placement(self, call: cst.Call, init_def: cst.FunctionDef | None) -> cst.BaseStatement:
        """Right after the user's ``def`` when it is in the same block, else before the call's statement."""
        statement = self.statement_of(call)
        body = list(self.body_of(statement))
        if init_def is not None and init_def in body and body.index(init_def) < body.index(statement):
            return body[body.index(init_def) + 1]
        return statement

    def _dataset_keys(self, call: cst.Call, datasets: cst.Arg | None) -> tuple[str | None, str | None]:
        entries = self.literal_dict(datasets.value) if datasets else None
        if entries is None or None in (k for k, _ in entries):
            self.follow_up(datasets or call, "datasets= is not a dict literal: the generated train function reads "
                           "the 'train' shard only; add the evaluation shard if there is one")
            return "train", None
        keys = [k for k, _ in entries]
        others = [k for k in keys if k != "train"]
        if "evaluation" in others:
            others = ["evaluation"]
        elif len(others) > 1:
            self.follow_up(datasets, f"datasets= has several evaluation candidates {others}; the generated train "
                           "function passes no evaluation dataset")
            others = []
        if "train" not in keys:
            self.follow_up(datasets, "datasets= has no 'train' dataset; the Trainer gets train_dataset=None")
        return ("train" if "train" in keys else None), (others[0] if others else None)

    def _batch_sizes(self, call: cst.Call, init_def: cst.FunctionDef | None, has_config: bool) -> tuple[str, str]:
        """The ``per_device_{train,eval}_batch_size`` of the ``TrainingArguments``, as code for train_func."""
        found = self.calls_to(init_def, TRAINING_ARGUMENTS) if init_def is not None else []
        if not found:
            found = self.calls_to(self.tree, TRAINING_ARGUMENTS)
        if len(found) != 1:
            self.follow_up(call, f"could not tell which TrainingArguments this trainer uses: the generated train "
                           f"function iterates batches of {DEFAULT_BATCH_SIZE}; make it per_device_train_batch_size "
                           "and make sure TrainingArguments sets max_steps (Ray Data shards have no length)")
            return str(DEFAULT_BATCH_SIZE), str(DEFAULT_BATCH_SIZE)
        args = found[0]
        kwargs = keyword_args(args)
        spread = any(a.star == "**" for a in args.args)
        star = init_def.params.star_kwarg if init_def is not None else None
        config_name = star.name.value if isinstance(star, cst.Param) and has_config else None
        sizes = []
        for keys in (("per_device_train_batch_size", "per_gpu_train_batch_size"),
                     ("per_device_eval_batch_size", "per_gpu_eval_batch_size")):
            arg = next((kwargs[k] for k in keys if k in kwargs), None)
            value = literal(arg.value) if arg else (Ellipsis if spread else DEFAULT_BATCH_SIZE)
            if isinstance(value, int) and not isinstance(value, bool):
                sizes.append(str(value))
            elif arg and config_name and free_names(arg.value) == {config_name}:
                # Read from trainer_init_config, which train_func gets as its own config: same value.
                sizes.append(self.code(renamed(arg.value, config_name, "config")))
            else:
                self.follow_up(arg or args, f"{keys[0]} is not a literal: the generated train function iterates "
                               f"batches of {DEFAULT_BATCH_SIZE}; set iter_torch_batches(batch_size=...) to match it")
                sizes.append(str(DEFAULT_BATCH_SIZE))
        if literal(kwargs["max_steps"].value) == -1 if "max_steps" in kwargs else not spread:
            self.follow_up(args, "TrainingArguments needs max_steps: Ray Data shards are iterables without a "
                           "length, so the Trainer cannot work out the number of steps from epochs")
        if "save_strategy" in kwargs and literal(kwargs["save_strategy"].value) == "no":
            self.follow_up(kwargs["save_strategy"], 'save_strategy="no": RayTrainReportCallback reports metrics '
                           "and checkpoints only when the Trainer saves, so Ray Train will get neither")
        return sizes[0], sizes[1]

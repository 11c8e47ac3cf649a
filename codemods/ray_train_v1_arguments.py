"""Rewrite or flag the Ray Train V1 arguments that Train V2 (the default since Ray 2.51) rejects.

Implements item 6 of the issue "Retired Ray trainers and the ray.air API", after Ray's Train V2
migration guide (https://github.com/ray-project/ray/issues/49454). The decisions are data, one entry
per argument with the Ray version it changed in: ``codemods/data/ray_train_v1_arguments.toml``.

Before::

    run_config = RunConfig(local_dir="/data/results", verbose=None, log_to_file=False,
                           checkpoint_config=CheckpointConfig(num_to_keep=2, checkpoint_frequency=0))
    trainer = TorchTrainer(train_func, scaling_config=ScalingConfig(num_workers=2, trainer_resources={"CPU": 0}),
                           run_config=run_config, resume_from_checkpoint=ckpt)

After::

    run_config = RunConfig(storage_path="/data/results",
                           checkpoint_config=CheckpointConfig(num_to_keep=2))
    trainer = TorchTrainer(train_func, scaling_config=ScalingConfig(num_workers=2),
                           run_config=run_config, resume_from_checkpoint=ckpt)

and a follow-up for ``resume_from_checkpoint=ckpt``, which V2 raises on and which has no exact
replacement (load ``ray.train.get_checkpoint()`` in the train function instead). An argument is rewritten only where the result is exact (``local_dir`` becomes ``storage_path``,
resolved the way V1 resolved it); anything else stays, with a follow-up naming the V2 way: Tune-only
``RunConfig`` arguments, Tune logger callbacks in ``RunConfig(callbacks=...)``, a ``resume_from_checkpoint``.
``result.metrics`` of a ``trainer.fit()`` result gets a follow-up when nothing in the file reports a
checkpoint (V2 fills it only from reports that carried one).
"""

from __future__ import annotations

import libcst as cst

from codemods._keywords import KeywordCodemod
from codemods._names import load_table

TABLE = load_table("ray_train_v1_arguments")
CLASSES = {group: frozenset(names) for group, names in TABLE["classes"].items() if group in TABLE["keywords"]}
TUNE_CALLBACKS = frozenset(TABLE["classes"]["tune_callback"])
TUNE_CALLBACK_MODULES = tuple(f"{m}." for m in TABLE["classes"]["tune_callback_modules"])
TRAIN_USER_CALLBACKS = frozenset(TABLE["classes"]["train_user_callbacks"])
TUNE_ENTRY_POINTS = TABLE["classes"]["tune_entry_points"]
REPORTS = frozenset(TABLE["classes"]["report"])
CHECKPOINT_CALLBACKS = frozenset(TABLE["classes"]["checkpoint_callbacks"])


class RayTrainV1Arguments(KeywordCodemod):
    DESCRIPTION = "Rewrite or flag Ray Train V1 arguments that Train V2 rejects."
    # Literal, so the registry reads it without importing this module; a test checks that it
    # covers every class in the table.
    # Every name it rewrites is a ray.* class (the table grows): any file that imports ray.
    TRIGGERS = (b"ray",)
    MODULES = (b"ray",)
    ORDER = 30
    LIBRARY = "Ray"

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.Call:
        names = self.qnames(original_node.func)
        for group, classes in CLASSES.items():
            if not names & self.local_subclasses(classes):
                continue
            if group != "trainer" and any(n.startswith("ray.air.") for n in names) and self.uses_any(TUNE_ENTRY_POINTS):
                # A ray.air config in a script that uses Tune may be meant for a Tuner, which still
                # takes these arguments; ray_air_to_ray_train has already flagged it.
                return updated_node
            self._check_elements(original_node, TABLE["elements"].get(group, {}))
            return self.fix_keywords(original_node, updated_node, TABLE["keywords"][group])
        return updated_node

    def _check_elements(self, call: cst.Call, entries: dict) -> None:
        """A follow-up for each Ray Tune callback in ``callbacks=[...]``."""
        for arg in call.args:
            entry = entries.get(arg.keyword.value) if arg.keyword else None
            if entry is None or not isinstance(arg.value, (cst.List, cst.Tuple)):
                continue
            for element in arg.value.elements:
                if self._is_tune_callback(element.value):
                    self.follow_up(element, f"`{self.source(element.value)}` in `{arg.keyword.value}=`: {entry['follow_up']}")

    def _is_tune_callback(self, expr: cst.BaseExpression) -> bool:
        if isinstance(expr, cst.Name):
            return any(self._is_tune_callback(v) for v in self.values_of(expr) or ())
        if not isinstance(expr, cst.Call):
            return False
        names = self.qnames(expr.func)
        if names & TRAIN_USER_CALLBACKS:
            return False
        return bool(names & self.local_subclasses(TUNE_CALLBACKS)) or any(n.startswith(TUNE_CALLBACK_MODULES) for n in names)

    def leave_Attribute(self, original_node: cst.Attribute, updated_node: cst.Attribute) -> cst.Attribute:
        entry = TABLE["attributes"]["result"].get(original_node.attr.value)
        if (
            entry is not None
            and self.returned_by(original_node.value, "fit", CLASSES["trainer"])
            and not self._reports_checkpoints()
        ):
            self.follow_up(original_node, f"`{self.source(original_node)}`: {entry['follow_up']}")
        return updated_node

    def _reports_checkpoints(self) -> bool:
        """Whether anything in the file reports a checkpoint: a report call given one, or one of
        the framework callbacks that report checkpoints (``RayTrainReportCallback``...)."""
        if "_reports_cache" in self.__dict__:
            return self.__dict__["_reports_cache"]
        outer, found = self, []

        class Find(cst.CSTVisitor):
            def visit_Call(self, node: cst.Call) -> None:
                if outer.qnames(node.func) & REPORTS and _passes_checkpoint(node):
                    found.append(node)

            def visit_Name(self, node: cst.Name) -> None:
                if node.value in CHECKPOINT_CALLBACKS:
                    found.append(node)

        self.module.visit(Find())
        self.__dict__["_reports_cache"] = bool(found)
        return bool(found)


def _passes_checkpoint(call: cst.Call) -> bool:
    for i, arg in enumerate(call.args):
        keyword = arg.keyword.value if arg.keyword else None
        if keyword == "checkpoint" or (keyword is None and i == 1 and not arg.star):
            return not (isinstance(arg.value, cst.Name) and arg.value.value == "None")
    return any(arg.star for arg in call.args)

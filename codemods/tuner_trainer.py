"""A Ray trainer handed to ``Tuner(...)`` becomes Train V2's pattern: a Tune function that fits it.

Under Ray Train V2, ``Tuner(TorchTrainer(...))`` fails ("Improper 'run'"). The V2 guide has Tune
run a function that builds the trainer and calls ``fit()``, with
``ray.tune.integration.ray_train.TuneReportCallback`` passing the trainer's reports to Tune. This
runs after the retired trainers were converted (so ``Tuner(HuggingFaceTrainer(...))`` ends here too)::

    # before
    trainer = TorchTrainer(train_func, train_loop_config={"epochs": 2}, scaling_config=scaling)
    tuner = Tuner(trainer, param_space={"train_loop_config": {"lr": tune.grid_search([1e-3, 1e-2])}})
    results = tuner.fit()

    # after
    def tune_train_func(config):
        trainer = TorchTrainer(
            train_func,
            train_loop_config={"epochs": 2, **config.get("train_loop_config", {})},
            scaling_config=scaling,
            run_config=RunConfig(name=ray.tune.get_context().get_trial_id(), callbacks=[TuneReportCallback()]),
        )
        trainer.fit()


    tuner = Tuner(tune_train_func, param_space={"train_loop_config": {"lr": tune.grid_search([1e-3, 1e-2])}})
    results = tuner.fit()

Each trial's run gets the trial's id as its name: trials sharing a run name and storage path would
silently resume one another. A ``param_space`` that searches anything but ``train_loop_config``,
or a trainer used elsewhere too, gets a follow-up instead.
"""

from __future__ import annotations

import libcst as cst
import libcst.matchers as m
from libcst.metadata import ScopeProvider

from codemods._keywords import kwarg
from codemods._legacy_trainers import LegacyTrainerCodemod, append_arg, keyword_args, named_as, with_train_func
from codemods._names import spelled_names

TUNERS = ("ray.tune.Tuner", "ray.tune.tuner.Tuner")
TRAINERS = ("ray.train.torch.TorchTrainer", "ray.train.v2.torch.TorchTrainer")
LOCALS = {"config"}
#: The param_space keys that searched the trainer's config: train_loop_config, and HuggingFaceTrainer's
#: trainer_init_config (which its conversion turned into train_loop_config).
CONFIG_KEYS = ("train_loop_config", "trainer_init_config")


class TunerTrainer(LegacyTrainerCodemod):
    DESCRIPTION = "Tuner(trainer) to Train V2's pattern: Tune runs a function that builds the trainer and fits it."
    TRIGGERS = (b"Tuner",)
    ORDER = 48

    def nothing_to_do(self, tree: cst.Module) -> bool:
        """No name the file spells is a ``Tuner`` (what ``calls_to`` looks for)."""
        return not any(named_as(name, TUNERS) for name in spelled_names(tree))

    def visit_Module(self, node: cst.Module) -> None:
        self.tree = node
        self._lines = node.code.splitlines()
        for call in self.calls_to(node, TUNERS):
            self.plan(call)

    def plan(self, tuner: cst.Call) -> None:
        kwargs = keyword_args(tuner)
        first = tuner.args[0] if tuner.args and not tuner.args[0].keyword and not tuner.args[0].star \
            else kwargs.get("trainable")
        if first is None:
            return
        trainer, statement, var = self._trainer(first.value, tuner)
        if trainer is None:
            return
        space = self.literal_dict(kwargs["param_space"].value) if "param_space" in kwargs else []
        searched = [k for k, _ in space] if space is not None else None
        if searched is None or len(searched) > 1 or any(k not in CONFIG_KEYS for k in searched):
            self.follow_up(tuner, "Train V2 cannot tune a trainer object: this Tuner's param_space searches "
                           f"{'something other than' if searched else 'no literal'} train_loop_config, so it was left "
                           "as it is; write a Tune function that builds the TorchTrainer from its config, fits it "
                           "with run_config=RunConfig(callbacks=[TuneReportCallback()]), and tune that function")
            return
        name = self.fresh_name("tune_train_func")
        new = trainer
        if searched:
            config = keyword_args(trainer).get("train_loop_config")
            merged = f'config.get("{searched[0]}", {{}})'
            if config is None:
                new = self.add_kwarg(trainer, new, "train_loop_config", merged)
            else:
                if isinstance(config.value, cst.Dict) and config.value.elements:
                    # The trial's values win, as Tune's merge of param_space into the trainer's did.
                    merged = f"{self.code(config.value)[:-1].rstrip().rstrip(',')}, **{merged}}}"
                else:
                    merged = f"{{**{self.code(config.value)}, **{merged}}}"
                new = new.with_changes(args=[a.with_changes(value=cst.parse_expression(merged))
                                             if a is config else a for a in new.args])
        callback = self.name_for("ray.tune.integration.ray_train", "TuneReportCallback", "TuneReportCallback")
        self.need_import("ray.tune")
        run, run_call = self.run_config_of(trainer)
        if run_call is not None and "name" in keyword_args(run_call):
            self.follow_up(run_call, "every trial now runs this trainer under the same RunConfig name: trials that "
                           "share a name and storage path resume one another; use ray.tune.get_context().get_trial_id()")
        elif run is None or run_call is not None:
            new = self.set_run_config(trainer, new, "name", "ray.tune.get_context().get_trial_id()")
            run, run_call = self.run_config_of(trainer)
        if run_call is not None and run_call is not run.value:
            self.follow_up(run_call, f"this RunConfig is shared with the Tune function: add callbacks=[{callback}()] "
                           "to the one the trainer gets there")
        elif run is None or run_call is not None:
            new = self._with_callback(new, callback)
        unit = self.tree.default_indent
        call_lines = self.tree.code_for_node(new).splitlines()
        body = [f"{var} = {call_lines[0]}", *call_lines[1:], f"{var}.fit()"]
        text = f"def {name}(config):\n" + "".join(f"{unit}{line}\n" for line in body)
        self.insert_before(statement, self.parse_statement(text), take_comments=True)
        self.remove(statement)
        self._handled.add(trainer)
        self.replace_call(tuner, tuner.with_changes(args=with_train_func(tuner, first, name)))
        self.change(tuner, f"Tuner(trainer) -> Tuner({name}): {name} builds the TorchTrainer from the trial's config, "
                    "reports to Tune through TuneReportCallback and fits it (Train V2's Tune pattern)")
        if any(a.attr.value == "checkpoint" for a in m.findall(self.tree, m.Attribute())):
            self.follow_up(tuner, "TuneReportCallback passes metrics, not checkpoints, to Tune: a trial result's "
                           "checkpoint is None now; read its metrics['checkpoint_path'] and load "
                           "ray.train.Checkpoint(path) instead")

    def _trainer(self, value: cst.BaseExpression, tuner: cst.Call):
        """``(TorchTrainer call, the statement that builds it, its variable)`` when it can move, else Nones."""
        none = (None, None, None)
        if not isinstance(value, cst.Name):
            return none
        bound = self.single_assignment(value)
        if bound is None:
            if self.calls_to_trainer(value):
                self.follow_up(tuner, f"{value.value!r} is a trainer assigned more than once: Train V2 cannot tune a "
                               "trainer object; move its construction into a Tune function by hand")
            return none
        assign, refs = bound
        # A function that assigns the same name has a local of its own (a generated train_func's
        # `trainer`), whatever the scope analysis links to the global.
        refs = [r for r in refs if not self._shadowed(r, value.value, assign)]
        if not (isinstance(assign.value, cst.Call) and self.calls_to_trainer(assign.value.func)):
            return none
        statement = self.statement_of(assign)
        body = list(self.body_of(statement))
        if refs != [value] or self.statement_of(tuner) not in body or value.value in LOCALS:
            self.follow_up(tuner, f"Train V2 cannot tune a trainer object, and {value.value!r} is used elsewhere too: "
                           "build the TorchTrainer inside a Tune function that fits it "
                           "(run_config=RunConfig(callbacks=[TuneReportCallback()])) and tune that function")
            return none
        return assign.value, statement, value.value

    def _shadowed(self, ref: cst.CSTNode, name: str, assign: cst.Assign) -> bool:
        scope = self.get_metadata(ScopeProvider, ref, None)
        return scope is not None and scope is not self.get_metadata(ScopeProvider, assign, None) and \
            name in scope.assignments

    def calls_to_trainer(self, node: cst.CSTNode) -> bool:
        return bool(self.qualified(node) & set(TRAINERS))

    def _with_callback(self, new: cst.Call, callback: str) -> cst.Call:
        """``new`` with ``callbacks=[TuneReportCallback()]`` in the ``RunConfig(...)`` it passes inline."""
        run = keyword_args(new).get("run_config")
        run_call = run.value if run is not None else None
        if not isinstance(run_call, cst.Call):
            return new
        if "callbacks" in keyword_args(run_call):
            self.follow_up(run, f"add {callback}() to this RunConfig's callbacks")
            return new
        args = append_arg(run_call.args, kwarg("callbacks", f"[{callback}()]"), run_call)
        return new.with_changes(args=[a.with_changes(value=run_call.with_changes(args=args)) if a is run else a
                                      for a in new.args])

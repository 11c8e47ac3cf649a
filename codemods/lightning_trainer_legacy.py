"""``LightningTrainer`` + ``LightningConfigBuilder`` (Ray 2.4-2.6) to ``TorchTrainer``.

Implements the "LightningTrainer Migration Guide" at the end of ray-train-lightning-guide.rst. The
builder's ``.module()``, ``.trainer()``, ``.fit_params()``, ``.strategy()`` and ``.checkpointing()``
become a train function that builds the module and a Lightning ``Trainer`` wired to Ray, and the
checkpoint settings move to ``RunConfig(checkpoint_config=CheckpointConfig(...))``::

    # before
    config = (
        LightningConfigBuilder()
        .module(cls=MNISTClassifier, lr=1e-3, feature_dim=128)
        .trainer(max_epochs=10, accelerator="gpu")
        .fit_params(datamodule=datamodule)
        .checkpointing(monitor="val_accuracy", mode="max", save_top_k=3)
        .build()
    )
    ray_trainer = LightningTrainer(lightning_config=config, scaling_config=scaling_config)

    # after
    def train_func():
        model = MNISTClassifier(lr=1e-3, feature_dim=128)
        trainer = pl.Trainer(
            max_epochs=10,
            accelerator="gpu",
            devices="auto",
            strategy=RayDDPStrategy(),
            plugins=[RayLightningEnvironment()],
            callbacks=[RayTrainReportCallback()],
        )
        trainer = prepare_trainer(trainer)
        trainer.fit(model, datamodule=datamodule)


    ray_trainer = TorchTrainer(
        train_func,
        scaling_config=scaling_config,
        run_config=RunConfig(checkpoint_config=CheckpointConfig(num_to_keep=3, checkpoint_score_attribute="val_accuracy", checkpoint_score_order="max")),
    )

Ray Datasets (``datasets={"train": ..., "val": ...}`` with ``datasets_iter_config``) become
``iter_torch_batches`` dataloaders passed to ``trainer.fit``. The script keeps its own Lightning
package unless ``--lightning-package`` says otherwise; Ray uses ``lightning.pytorch`` whenever the
``lightning`` package is installed, so the report says which package the converted script needs.
"""

from __future__ import annotations

import libcst as cst
import libcst.matchers as m
from libcst.helpers import get_full_name_for_node
from libcst.metadata import ScopeProvider

from codemods._legacy_trainers import (LegacyTrainerCodemod, append_arg, arg_comments, comments_of, keyword_args,
                                       kwarg, lightning_package, lightning_trainer_name, literal, quote, render_call,
                                       rewrite_lightning_import, split_chain, with_train_func)

STRATEGIES = {"ddp": "RayDDPStrategy", "fsdp": "RayFSDPStrategy", "deepspeed": "RayDeepSpeedStrategy"}
METHODS = ("module", "trainer", "fit_params", "strategy", "checkpointing")
LOCALS = {"model", "trainer", "train_dataset", "val_dataset", "train_dataloader", "val_dataloader"}


class Refused(Exception):
    """This LightningTrainer cannot be converted safely; the message says why."""


class LightningTrainerLegacy(LegacyTrainerCodemod):
    DESCRIPTION = "LightningTrainer + LightningConfigBuilder (Ray 2.4-2.6) to TorchTrainer with a generated train_func."
    TRIGGERS = (b"LightningTrainer", b"LightningConfigBuilder")
    ORDER = 46
    LEGACY = (("ray.train.lightning", "LightningTrainer"), ("ray.train.lightning", "LightningConfigBuilder"))
    CONVERTED = ("LightningTrainer",)

    def plan(self, call: cst.Call) -> None:
        kwargs = keyword_args(call)
        config = call.args[0] if call.args and not call.args[0].keyword else kwargs.get("lightning_config")
        try:
            if any(literal(el.key) == "lightning_config" for el in m.findall(self.tree, m.DictElement())):
                raise Refused("a Tune param_space searches over lightning_config, which a train function cannot "
                              "take; pass the searched values through train_loop_config instead")
            calls, removed = self._builder(config.value if config else None, self.statement_of(call))
            parts = self._parts(calls)
        except Refused as exc:
            self.refused = True
            self.follow_up(call, f"LightningTrainer was left as it is: {exc}; convert it by hand "
                           "(LightningTrainer Migration Guide)")
            return
        moved = [a for part in parts.values() for a in part.values()]
        self._handled.update(c for _, c in calls)
        for statement in removed:
            self.remove(statement, keep=moved)
        name = self.fresh_name("train_func")
        text = self._train_func(name, parts, kwargs.get("datasets"), kwargs.get("datasets_iter_config"))
        rescued = comments_of(config, keep=moved) if not removed else []
        anchor = max(removed, key=self.line_of) if removed else self.statement_of(call)
        self.insert_before(anchor, self.parse_statement(text), rescued, take_comments=not removed)
        self.change(call, f"LightningTrainer -> TorchTrainer({name}): {name} builds "
                    f"{self.code(parts['module']['cls'].value)} and a Lightning Trainer with Ray's strategy, "
                    "RayLightningEnvironment, RayTrainReportCallback and prepare_trainer, then fits")
        drop = [kwargs["datasets_iter_config"]] if "datasets_iter_config" in kwargs else []
        new = call.with_changes(func=cst.Name("TorchTrainer"), args=with_train_func(call, config, name, drop))
        self.need_import("ray.train.torch", "TorchTrainer")
        self.replace_call(call, self.carry_over(call, self._checkpoint_config(call, new, parts["checkpointing"])))
        if self._package() == "pytorch_lightning":
            self.follow_up(call, "the converted script imports pytorch_lightning, but Ray Train's Lightning integration "
                           "uses lightning.pytorch whenever the lightning package is installed and then rejects "
                           "this Trainer: run it where only pytorch_lightning is installed, or convert with "
                           "--lightning-package lightning")
        else:
            self.change(call, "the converted script needs the lightning package (it and Ray Train's Lightning "
                        "integration use lightning.pytorch)")

    def _builder(self, value, statement) -> tuple[list[tuple[str, cst.Call]], list[cst.BaseStatement]]:
        """The builder calls behind ``lightning_config``, in order, and the statements that made them."""
        removed = []
        if isinstance(value, cst.Name):
            bound = self.single_assignment(value)
            if not bound or bound[1] != [value]:
                raise Refused(f"{value.value!r} is assigned more than once or used elsewhere too")
            removed.append(self.statement_of(bound[0]))
            value = bound[0].value
        root, chain = split_chain(value) if value is not None else (None, [])
        if not chain or chain[-1][0] != "build":
            raise Refused("lightning_config is not a LightningConfigBuilder chain ending in .build()")
        calls = chain[:-1]
        if not self._is_builder(root):
            bound = self.single_assignment(root) if isinstance(root, cst.Name) else None
            if not bound or not self._is_builder(split_chain(bound[0].value)[0]):
                raise Refused("lightning_config does not come from a LightningConfigBuilder in this scope")
            steps = [(self.statement_of(bound[0]), split_chain(bound[0].value)[1])]
            for ref in (r for r in bound[1] if r is not root):
                step = self.statement_of(ref)
                if not m.matches(step, m.SimpleStatementLine(body=[m.Expr()])) or \
                        split_chain(step.body[0].value)[0] is not ref:
                    raise Refused(f"the builder {root.value!r} is used for something else than its setters")
                steps.append((step, split_chain(step.body[0].value)[1]))
            steps.sort(key=lambda step: self.line_of(step[0]))
            calls = [c for _, setters in steps for c in setters] + calls
            removed += [s for s, _ in steps]
        body = list(self.body_of(statement))
        if any(s not in body or body.index(s) > body.index(statement) for s in removed):
            raise Refused("the builder is set up in another block or after the trainer")
        return calls, removed

    def _is_builder(self, node) -> bool:
        return isinstance(node, cst.Call) and not node.args and self.legacy_name(node.func) == "LightningConfigBuilder"

    def _parts(self, calls: list[tuple[str, cst.Call]]) -> dict[str, dict[str, cst.Arg]]:
        """The builder's settings per method, later calls overriding earlier ones as ``dict.update`` did."""
        parts: dict[str, dict[str, cst.Arg]] = {name: {} for name in METHODS}
        for method, c in calls:
            method = "strategy" if method == "ddp_strategy" else method  # Ray 2.4's name for .strategy("ddp")
            positional = ("cls" if method == "module" else "name" if method == "strategy" else None)
            if method not in METHODS:
                raise Refused(f"the builder call .{method}(...) has no TorchTrainer equivalent")
            for i, a in enumerate(c.args):
                if not a.keyword and not a.star and (i or not positional):
                    raise Refused(f".{method}(...) takes keyword arguments only")
                parts[method][a.keyword.value if a.keyword else f"**{i}" if a.star else positional] = a
        if "cls" not in parts["module"]:
            raise Refused("the builder names no LightningModule class (.module(cls=...))")
        strategy = literal(parts["strategy"]["name"].value) if "name" in parts["strategy"] else "ddp"
        if strategy not in STRATEGIES:
            raise Refused(f".strategy(...) names {strategy!r}, not one of {sorted(STRATEGIES)}")
        used = {n.value for part in parts.values() for a in part.values() for n in m.findall(a.value, m.Name())}
        if LOCALS & used:
            raise Refused(f"the builder's arguments use {sorted(LOCALS & used)}, names the train function needs")
        return parts

    def _train_func(self, name: str, parts, datasets: cst.Arg | None, iter_config: cst.Arg | None) -> str:
        u = self.tree.default_indent
        ray = lambda obj, alias=None: self.name_for("ray.train.lightning", obj, alias or f"Lightning{obj}")
        render = lambda args: [("**" if a.star else f"{a.keyword.value}=", self.code(a.value), arg_comments(a))
                               for a in args]
        module = dict(parts["module"])
        lines = [f"def {name}():", f"{u}model = " + render_call(self.code(module.pop("cls").value),
                                                                render(module.values()), u, u, lead=8)]
        fit = {k: a for k, a in parts["fit_params"].items() if k != "model"}
        entries = self.literal_dict(datasets.value) if datasets else []
        if entries is None:
            self.follow_up(datasets, "datasets= is not a dict literal: the train function reads the 'train' shard "
                           "only; add the 'val' shard as val_dataloaders if there is one")
        shards = [p for p in ("train", "val") if p in (k for k, _ in entries or [("train", None)])] if datasets else []
        lines += [f"{u}{p}_dataset = ray.train.get_dataset_shard({quote(p)})" for p in shards]
        lines += [f"{u}{p}_dataloader = {p}_dataset.iter_torch_batches({self._iter_args(iter_config)})" for p in shards]
        if shards:
            self.need_import("ray")
            dropped = [fit.pop(k) for k in ("datamodule", "train_dataloaders", "val_dataloaders") if k in fit]
            for arg in dropped:
                self.change(arg, f".fit_params({arg.keyword.value}=...) was ignored by LightningTrainer when "
                            "datasets= was given; dropped")
        trainer = dict(parts["trainer"])
        for arg in (a for a in trainer.values() if a.star):
            self.follow_up(arg, f"make sure {self.code(arg.value)} sets none of devices, accelerator, strategy, "
                           "plugins, callbacks: the train function sets them for Ray")
        for key in ("strategy", "devices"):
            if key in trainer:
                self.change(trainer.pop(key), f".trainer({key}=...) was ignored by LightningTrainer; dropped")
        strategy = STRATEGIES[literal(parts["strategy"]["name"].value) if "name" in parts["strategy"] else "ddp"]
        strategy_args = render(a for k, a in parts["strategy"].items() if k != "name")
        ray_args = [("devices=", '"auto"', [])] + [("accelerator=", '"auto"', [])] * ("accelerator" not in trainer)
        ray_args += [
            ("strategy=", render_call(ray(strategy), strategy_args, u * 2, u, lead=9), []),
            ("plugins=", self._extend(trainer.pop("plugins", None), f"{ray('RayLightningEnvironment')}()"), []),
            ("callbacks=", self._extend(trainer.pop("callbacks", None),
                                        f"{ray('RayTrainReportCallback', 'LightningReportCallback')}()"), []),
        ]
        lines.append(f"{u}trainer = " + render_call(self._trainer_class(), render(trainer.values()) + ray_args, u, u, True))
        lines.append(f"{u}trainer = {ray('prepare_trainer', 'prepare_lightning_trainer')}(trainer)")
        fit_args = [("", "model", []), *render(fit.values()), *((f"{p}_dataloaders=", f"{p}_dataloader", []) for p in shards)]
        lines.append(u + render_call("trainer.fit", fit_args, u, u))
        return "\n".join(lines) + "\n"

    def _iter_args(self, iter_config: cst.Arg | None) -> str:
        entries = self.literal_dict(iter_config.value) if iter_config else []
        if entries is None or iter_config and isinstance(iter_config.value, cst.Name):
            return f"**{self.code(iter_config.value)}"
        return ", ".join(f"**{self.code(v)}" if k is None else f"{k}={self.code(v)}" for k, v in entries)

    def _extend(self, arg: cst.Arg | None, item: str) -> str:
        """``plugins=``/``callbacks=`` with Ray's one appended (LightningTrainer appended it too)."""
        if arg is None:
            return f"[{item}]"
        if isinstance(arg.value, cst.List):
            items = [("*" if isinstance(e, cst.StarredElement) else "") + self.code(e.value) for e in arg.value.elements]
            return f"[{', '.join([*items, item])}]"
        return f"{self.code(arg.value)} + [{item}]"

    def _package(self) -> str:
        return lightning_package(self.tree, self.options.lightning_package)

    def _trainer_class(self) -> str:
        """How the script names Lightning's ``Trainer``; an import is added when it has none."""
        found = lightning_trainer_name(self.tree, self._package())
        if found:
            return found
        alias = "pl" if "pl" not in self.get_metadata(ScopeProvider, self.tree) else self.fresh_name("pl")
        self.need_import(self._package(), None, alias)
        return f"{alias}.Trainer"

    def _checkpoint_config(self, call: cst.Call, new: cst.Call, ckpt: dict[str, cst.Arg]) -> cst.Call:
        """``.checkpointing(...)`` as the ``CheckpointConfig`` LightningTrainer derived from it."""
        run = keyword_args(call).get("run_config")
        bound = self.single_assignment(run.value) if run is not None and isinstance(run.value, cst.Name) else None
        run_call = bound[0].value if bound else run.value if run is not None else None
        if not isinstance(run_call, cst.Call) or not (get_full_name_for_node(run_call.func) or "").endswith("RunConfig"):
            run_call = None
        if run_call is not None and "checkpoint_config" in keyword_args(run_call):
            if ckpt:
                self.change(run, "kept the RunConfig's checkpoint_config: LightningTrainer used it, not .checkpointing()")
            return new
        top_k = literal(ckpt["save_top_k"].value) if "save_top_k" in ckpt else 1
        settings = [("num_to_keep=", str(max(top_k, 1)), [])] if isinstance(top_k, int) and top_k != -1 else []
        if not isinstance(top_k, int):
            self.follow_up(ckpt["save_top_k"], "save_top_k is not a literal: set CheckpointConfig(num_to_keep=...) "
                           "to it (None for -1)")
        if "monitor" in ckpt:
            settings += [("checkpoint_score_attribute=", self.code(ckpt["monitor"].value), []),
                         ("checkpoint_score_order=", self.code(ckpt["mode"].value) if "mode" in ckpt else '"min"', [])]
        other = [f"{k}={self.code(a.value)}" if a.keyword else f"**{self.code(a.value)}"
                 for k, a in ckpt.items() if k not in ("monitor", "mode", "save_top_k")]
        if other:
            self.follow_up(call, f".checkpointing({', '.join(other)}) has no equivalent: RayTrainReportCallback "
                           "saves a full checkpoint (checkpoint.ckpt) at the end of every epoch; write a callback "
                           "if you need these settings")
        if not settings:
            return new
        cls = self.name_for("ray.train", "CheckpointConfig", "TrainCheckpointConfig")
        flat = render_call(cls, settings, "", "", False)
        self.change(call, f"checkpoints kept as LightningTrainer kept them: checkpoint_config={flat}")
        if run is None:
            run_args = [("checkpoint_config=", (cls, settings), [])]
            if self.options.storage_path:
                run_args.append(("storage_path=", quote(self.options.storage_path), []))
            run_config = self.name_for("ray.train", "RunConfig", "TrainRunConfig")
            return self.add_kwarg(call, new, "run_config", (run_config, run_args))
        if run_call is None:
            self.follow_up(run, f"add checkpoint_config={flat} to this run_config")
            return new
        edited = self.add_kwarg(run_call, run_call, "checkpoint_config", (cls, settings))
        if run_call is not run.value:
            self.replace_call(run_call, edited)
            return new
        return new.with_changes(args=[a.with_changes(value=edited) if a.value is run_call else a for a in new.args])

    # --lightning-package: the converted script's Lightning imports follow the chosen package.
    def leave_Import(self, original: cst.Import, updated: cst.Import) -> cst.Import:
        return self._rewrite_import(original, updated)

    def leave_ImportFrom(self, original: cst.ImportFrom, updated: cst.ImportFrom) -> cst.ImportFrom:
        return self._rewrite_import(original, updated)

    def _rewrite_import(self, original, updated):
        if not self._calls or not self.options.lightning_package:
            return updated
        new = rewrite_lightning_import(updated, self._package())
        if new is None:
            self.follow_up(original, f"this import was left as it is: rewrite it for {self._package()} by hand")
        return new or updated

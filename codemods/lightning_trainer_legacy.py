"""``LightningTrainer`` + ``LightningConfigBuilder`` (Ray 2.4-2.6) to ``TorchTrainer``.

Implements the "LightningTrainer Migration Guide" at the end of ray-train-lightning-guide.rst. The
builder's ``.module()``, ``.trainer()``, ``.fit_params()``, ``.strategy()`` and ``.checkpointing()``
become a train function that builds the module and a Lightning ``Trainer`` wired to Ray; the
checkpoints LightningTrainer kept become ``RunConfig(checkpoint_config=CheckpointConfig(...))``::

    # before
    config = (
        LightningConfigBuilder()
        .module(cls=MNISTClassifier, lr=1e-3)
        .trainer(max_epochs=10, accelerator="gpu")
        .fit_params(datamodule=datamodule)
        .checkpointing(monitor="val_accuracy", mode="max", save_top_k=3)
        .build()
    )
    ray_trainer = LightningTrainer(lightning_config=config, scaling_config=scaling_config)

    # after
    def train_func():
        model = MNISTClassifier(lr=1e-3)
        trainer = pl.Trainer(
            max_epochs=10, accelerator="gpu",
            devices="auto", strategy=RayDDPStrategy(), plugins=[RayLightningEnvironment()],
            callbacks=[RayTrainReportCallback()],
        )
        trainer = prepare_trainer(trainer)
        trainer.fit(model, datamodule=datamodule)

    ray_trainer = TorchTrainer(train_func, scaling_config=scaling_config, run_config=RunConfig(
        checkpoint_config=CheckpointConfig(num_to_keep=3, checkpoint_score_attribute="val_accuracy",
                                           checkpoint_score_order="max")))

Ray Datasets (``datasets={"train": ..., "val": ...}`` with ``datasets_iter_config``) become
``iter_torch_batches`` dataloaders for ``trainer.fit``. The script keeps its Lightning package
unless ``--lightning-package`` says otherwise; as Ray uses ``lightning.pytorch`` whenever the
``lightning`` package is installed, the report says which package the converted script needs.
"""

from __future__ import annotations

import libcst as cst
import libcst.matchers as m

from codemods._legacy_trainers import (LegacyTrainerCodemod, Refused, arg_comments, comments_of, keyword_args,
                                       lightning_package, literal, quote, render_call, retired_trainers,
                                       with_train_func)

STRATEGIES = {"ddp": "RayDDPStrategy", "fsdp": "RayFSDPStrategy", "deepspeed": "RayDeepSpeedStrategy"}
METHODS = ("module", "trainer", "fit_params", "strategy", "checkpointing")
LOCALS = {"model", "trainer", "train_dataset", "val_dataset", "train_dataloader", "val_dataloader"}


class LightningTrainerLegacy(LegacyTrainerCodemod):
    DESCRIPTION = "LightningTrainer + LightningConfigBuilder (Ray 2.4-2.6) to TorchTrainer with a generated train_func."
    TRIGGERS = (b"LightningTrainer", b"LightningConfigBuilder")
    MODULES = (b"ray",)
    ORDER = 46
    LEGACY = retired_trainers("lightning_trainer_legacy")  # every path it had: codemods/data/retired_ray_trainers.toml
    CONVERTED = ("LightningTrainer",)
    LIGHTNING = True

    def plan(self, call: cst.Call) -> None:
        kwargs = keyword_args(call)
        config = call.args[0] if call.args and not call.args[0].keyword else kwargs.get("lightning_config")
        try:
            if any(literal(el.key) == "lightning_config" for el in m.findall(self.tree, m.DictElement())):
                raise Refused("a Tune param_space searches over lightning_config, which a train function cannot "
                              "take; pass the searched values through train_loop_config instead")
            calls, removed = self.builder_calls(config.value if config else None, self.statement_of(call),
                                                self._is_builder, "lightning_config", "LightningConfigBuilder")
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
        anchor = max(removed, key=self.line_of) if removed else self.statement_of(call)
        rescued = comments_of(config, keep=moved) if not removed else []
        self.insert_before(anchor, self.parse_statement(text), rescued, take_comments=not removed)
        self.change(call, f"LightningTrainer -> TorchTrainer({name}): {name} builds "
                    f"{self.code(parts['module']['cls'].value)} and a Lightning Trainer with Ray's strategy, "
                    "RayLightningEnvironment, RayTrainReportCallback and prepare_trainer, then fits")
        drop = [kwargs["datasets_iter_config"]] if "datasets_iter_config" in kwargs else []
        new = call.with_changes(func=cst.Name("TorchTrainer"), args=with_train_func(call, config, name, drop))
        self.need_import("ray.train.torch", "TorchTrainer")
        self.replace_call(call, self.carry_over(call, self._checkpoints(call, new, parts["checkpointing"])))
        if lightning_package(self.tree, self.options.lightning_package) == "pytorch_lightning" and self.options.lightning_package is None:
            pass  # lightning_package_follows_ray makes its pytorch_lightning imports follow the package Ray binds to
        elif lightning_package(self.tree, self.options.lightning_package) == "pytorch_lightning":
            self.follow_up(call, "the converted script imports pytorch_lightning, but Ray Train's Lightning integration "
                           "uses lightning.pytorch whenever the lightning package is installed and then rejects "
                           "this Trainer: run it where only pytorch_lightning is installed, or convert without "
                           "--lightning-package pytorch_lightning")
        else:
            self.change(call, "the converted script needs the lightning package (it and Ray Train's Lightning "
                        "integration use lightning.pytorch)")

    def _is_builder(self, node) -> bool:
        return isinstance(node, cst.Call) and not node.args and self.legacy_name(node.func) == "LightningConfigBuilder"

    def _parts(self, calls: list[tuple[str, cst.Call]]) -> dict[str, dict[str, cst.Arg]]:
        """The builder's settings per method, later calls overriding earlier ones as ``dict.update`` did."""
        parts: dict[str, dict[str, cst.Arg]] = {name: {} for name in METHODS}
        for method, c in calls:
            method = "strategy" if method == "ddp_strategy" else method  # Ray 2.4's name for .strategy("ddp")
            if method not in METHODS:
                raise Refused(f"the builder call .{method}(...) has no TorchTrainer equivalent")
            positional = {"module": "cls", "strategy": "name"}.get(method)
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
        for arg in [fit.pop(k) for k in ("datamodule", "train_dataloaders", "val_dataloaders") if k in fit and shards]:
            self.change(arg, f".fit_params({arg.keyword.value}=...) was ignored by LightningTrainer next to "
                        "datasets=; dropped")
        self.need_import("ray") if shards else None
        trainer = dict(parts["trainer"])
        for arg in (a for a in trainer.values() if a.star):
            self.follow_up(arg, f"make sure {self.code(arg.value)} sets none of devices, accelerator, strategy, "
                           "plugins, callbacks: the train function sets them for Ray")
        for key in ("strategy", "devices"):
            if key in trainer:
                self.change(trainer.pop(key), f".trainer({key}=...) was ignored by LightningTrainer; dropped")
        strategy = STRATEGIES[literal(parts["strategy"]["name"].value) if "name" in parts["strategy"] else "ddp"]
        ray_args = [("devices=", '"auto"', [])] + [("accelerator=", '"auto"', [])] * ("accelerator" not in trainer)
        plugins, callbacks = trainer.pop("plugins", None), trainer.pop("callbacks", None)
        ray_args += [
            ("strategy=", (ray(strategy), render(a for k, a in parts["strategy"].items() if k != "name")), []),
            ("plugins=", self._extend(plugins, f"{ray('RayLightningEnvironment')}()"), arg_comments(plugins)),
            ("callbacks=", self._extend(callbacks, f"{ray('RayTrainReportCallback', 'LightningReportCallback')}()"),
             arg_comments(callbacks)),
        ]
        lines += [f"{u}trainer = " + render_call(self.lightning_trainer(), render(trainer.values()) + ray_args, u, u, True),
                  f"{u}trainer = {ray('prepare_trainer', 'prepare_lightning_trainer')}(trainer)"]
        fit_args = [("", "model", []), *render(fit.values()), *((f"{p}_dataloaders=", f"{p}_dataloader", []) for p in shards)]
        return "\n".join([*lines, u + render_call("trainer.fit", fit_args, u, u)]) + "\n"

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

    def _checkpoints(self, call: cst.Call, new: cst.Call, ckpt: dict[str, cst.Arg]) -> cst.Call:
        """The ``CheckpointConfig`` LightningTrainer derived from ``.checkpointing(...)`` (its default too)."""
        other = [f"{k}={self.code(a.value)}" if a.keyword else f"**{self.code(a.value)}"
                 for k, a in ckpt.items() if k not in ("monitor", "mode", "save_top_k")]
        if other:
            self.follow_up(call, f".checkpointing({', '.join(other)}) has no equivalent: RayTrainReportCallback "
                           "saves a full checkpoint (checkpoint.ckpt) at the end of every epoch; write a callback "
                           "if you need these settings")
        run, run_call = self.run_config_of(call)
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
        if not settings:
            return new
        cls = self.name_for("ray.train", "CheckpointConfig", "TrainCheckpointConfig")
        self.change(call, "checkpoints kept as LightningTrainer kept them: "
                    f"checkpoint_config={render_call(cls, settings, '', '', False)}")
        return self.set_run_config(call, new, "checkpoint_config", (cls, settings))

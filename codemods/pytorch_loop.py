"""Plain PyTorch training loops (one process, torchrun/DDP, ``mp.spawn``, launchers) to ``TorchTrainer``.

Implements Ray's "Get Started with PyTorch": the training runs in a train function on every worker,
the model goes through ``ray.train.torch.prepare_model``, every ``DataLoader`` through
``ray.train.torch.prepare_data_loader``, the device follows ``ray.train.torch.get_device()``, each
epoch's metrics are reported with ``ray.train.report``, and a saved state dict becomes a checkpoint.
Before::

    \"\"\"Run: torchrun --nproc_per_node 2 train.py --epochs 3\"\"\"
    def main():
        args = parser.parse_args()
        dist.init_process_group("gloo")
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        model = DDP(Net().to(device))
        optimizer = torch.optim.SGD(model.parameters(), lr=args.lr)
        loader = DataLoader(dataset, batch_size=32, sampler=DistributedSampler(dataset))
        for epoch in range(args.epochs):
            loader.sampler.set_epoch(epoch)
            train_loss = train_one_epoch(model, loader, optimizer)
        if dist.get_rank() == 0:
            torch.save(model.module.state_dict(), "model.pt")
        dist.destroy_process_group()

After::

    \"\"\"Run: python train.py --epochs 3\"\"\"
    def train_func(config):
        args = config["args"]
        os.chdir(config["launch_dir"])
        device = ray.train.torch.get_device()
        model = ray.train.torch.prepare_model(Net().to(device))
        optimizer = torch.optim.SGD(model.parameters(), lr=args.lr)
        loader = ray.train.torch.prepare_data_loader(DataLoader(dataset, batch_size=32, sampler=DistributedSampler(dataset)))
        for epoch in range(args.epochs):
            loader.sampler.set_epoch(epoch)
            train_loss = train_one_epoch(model, loader, optimizer)
            ray.train.report({"epoch": epoch, "train_loss": train_loss})
        if dist.get_rank() == 0:
            torch.save(getattr(model, "module", model).state_dict(), "model.pt")
        with tempfile.TemporaryDirectory() as checkpoint_dir:
            ...  # rank 0 copies model.pt in; every rank reports, rank 0 with Checkpoint.from_directory

    def main():
        args = parser.parse_args()
        ray_trainer = TorchTrainer(train_func, train_loop_config={..., "args": args}, scaling_config=...)
        result = ray_trainer.fit()

``mp.spawn(fn, args=(...), nprocs=N)``, ``torch.multiprocessing.start_processes`` and accelerate's
``notebook_launcher`` become a ``TorchTrainer`` over a small train function that calls ``fn`` as the
launcher did (the rank first for spawn, from ``ray.train.get_context()``); a function imported from a
sibling module is launched the same way, and that module is left as it is.
"""

from __future__ import annotations

import re

import libcst as cst
from libcst.codemod import SkipFile
from libcst.codemod.visitors import AddImportsVisitor, RemoveImportsVisitor
from libcst.metadata import ParentNodeProvider, PositionProvider, QualifiedNameProvider, ScopeProvider

from codemods import _helper_metrics as hm
from codemods import _torch_loop as tl
from codemods import _train_function as tf
from codemods._helper_metrics import METRIC
from codemods._names import defines_any, spelled_names
from codemods._statements import Metadata
from codemods._trainers import TUNE_TRIAL, is_library_trainer, launches_ray_trainer, qualified_names, tune_trial_report
from migrator import walks
from migrator.codemod import MigrationCodemod

SPAWNERS = {
    "torch.multiprocessing.spawn": True, "torch.multiprocessing.spawn.spawn": True,
    "torch.multiprocessing.start_processes": True, "torch.multiprocessing.spawn.start_processes": True,
    "accelerate.notebook_launcher": False, "accelerate.launchers.notebook_launcher": False,
}  # launcher -> whether it passes the process index first
OTHER_FRAMEWORKS = ("lightning", "pytorch_lightning", "accelerate.Accelerator", "accelerate.accelerator.Accelerator")
RANK_NAMES = {"rank", "local_rank", "gpu", "gpu_id", "device_id", "local_gpu", "world_rank"}
RANK_GUARD = re.compile(r"rank|is_main|main_process|master")
SAVE_COMMENT = "# Every worker reports; rank 0 wrote the file and hands it to Ray Train as a checkpoint."


#: The first parts of the names nothing_to_do looks for (a def or class so named hides them).
_TOPS = frozenset({"torch", "accelerate"})


def _optimizer_name(name: str) -> bool:
    """A torch.optim optimizer class (not a learning-rate scheduler)."""
    parts = name.split(".")
    return name.startswith("torch.optim.") and "lr_scheduler" not in parts and parts[-1][:1].isupper()


class PytorchLoopToTorchTrainer(MigrationCodemod):
    DESCRIPTION = "Plain PyTorch loops (single process, torchrun/DDP, mp.spawn, launchers) to TorchTrainer"
    TRIGGERS = (b"backward", b"spawn", b"start_processes", b"notebook_launcher")
    # What it converts needs a torch.optim optimizer or a torch/accelerate launcher: a file that imports
    # neither ("spawn" and "backward" are common words of the standard library too) has nothing for it.
    MODULES = (b"torch", b"accelerate")
    ORDER = 65  # after the framework codemods: a file one of them converted launches TorchTrainer
    METADATA_DEPENDENCIES = (PositionProvider, ParentNodeProvider, QualifiedNameProvider, ScopeProvider)

    def nothing_to_do(self, tree: cst.Module) -> bool:
        """What this codemod converts starts at a launcher it resolves (``SPAWNERS``), a torch.optim
        optimizer it resolves, or a main guard whose call reaches a backward pass: a file that spells
        none (a library's model code with a custom ``backward``) skips the scopes."""
        if defines_any(tree, _TOPS):
            return False
        names = spelled_names(tree)
        if names & SPAWNERS.keys() or any(_optimizer_name(n) for n in names):
            return False
        return not (tl.has_backward(tree) and tl.main_guards(tree))

    def transform_module_impl(self, tree: cst.Module) -> cst.Module:
        if launches_ray_trainer(self, tree) or self._other_framework(tree):
            raise SkipFile("not a plain PyTorch script")
        tune = tune_trial_report(self, tree)
        if tune is not None:
            if tl.has_backward(tree):
                self.follow_up(tune[0], TUNE_TRIAL.format(what=tune[1]))
            return tree
        self.parents = Metadata(self, ParentNodeProvider)
        self.edits = tl.Edits()
        self.saved = False
        spawns = [c for c in tl.calls_in(tree) if self._spawner(c) is not None]
        if spawns:
            return self._launch(tree, spawns)
        return self._loop(tree)

    # -- what is ours -----------------------------------------------------------------------------
    def _other_framework(self, tree: cst.Module) -> bool:
        for node in walks.nodes(tree, (cst.Name, cst.Attribute, cst.Import, cst.ImportFrom)):
            if isinstance(node, (cst.Name, cst.Attribute)):
                if any(q.startswith(OTHER_FRAMEWORKS) or is_library_trainer(q) or q.startswith("ray.train")
                       for q in qualified_names(self, node)):
                    return True
            elif isinstance(node, cst.Import):
                if any(tl._code(alias.name).split(".")[0] in ("lightning", "pytorch_lightning") for alias in node.names):
                    return True
            elif node.module is not None and tl._code(node.module).split(".")[0] in ("lightning", "pytorch_lightning"):
                return True
        return False

    def _spawner(self, call: cst.Call) -> bool | None:
        for q in qualified_names(self, call.func):
            if q in SPAWNERS:
                return SPAWNERS[q]
        return None

    # -- single process / torchrun: the loop moves into train_func ---------------------------------
    def _loop(self, tree: cst.Module) -> cst.Module:
        trainers = tl.training_functions(tree)
        optimizers = [c for c in tl.calls_in(tree) if self._is_optimizer(c)]
        candidates = []
        refused: list[tuple[cst.Call, str]] = []
        for call in optimizers:
            try:
                owner = tf.owner_of(call, tree, self.parents)
            except tf.Unsupported as exc:
                refused.append((call, str(exc)))
                continue
            block = tf.block_of(owner)
            trains = {i for i, s in enumerate(block) if self._trains(s, trainers)}
            if trains:
                # Set-up and teardown Ray now owns (destroy_process_group after the training) go
                # to the workers, where they are removed, rather than stay on the driver.
                trains |= {i for i, s in enumerate(block) if not isinstance(s, (cst.FunctionDef, cst.ClassDef))
                           and any(isinstance(c.func, cst.Attribute) and c.func.attr.value in tl.REMOVED for c in tl.calls_in(s))}
                candidates.append((call, owner, block, trains))
        if not candidates:
            entry = self._entry_call(tree)
            if entry is not None:
                # The training lives in functions and classes the main guard's call reaches
                # (torchrun tutorials: main() -> a Trainer class): launch that call instead.
                call, fn = entry
                return self._launch_function(tree, call, fn, [a.value for a in call.args], False, None)
            if refused and tl.has_backward(tree):
                # A training this codemod would convert, but cannot move: say so (no silent miss).
                call, why = refused[0]
                self.follow_up(call, f"not converted: {why}")
                return tree
            raise SkipFile("no optimizer beside a backward pass")
        if len({id(c[1]) for c in candidates}) > 1:
            for call, *_ in candidates:
                self.follow_up(call, "several trainings here: convert it by hand, one TorchTrainer per training")
            return tree
        call, owner, block, trains = candidates[0]
        try:
            opt_index = tf.statement_index(block, call, self.parents)
            the_plan = tf.plan(self, tree, owner, trains | {opt_index})
        except tf.Unsupported as exc:
            self.follow_up(call, f"not converted: {exc}")
            return tree

        moved = [block[i] for i in the_plan.moved]
        models, model_at = self._model(block, call, opt_index, moved)
        samplers = self._sampler_names(moved)
        # Rewrite the helper functions the worker code calls (train_one_epoch, setup, cleanup...).
        helpers = tl.reachable_functions(tree, moved, {owner.name.value} if isinstance(owner, cst.FunctionDef) else set())
        edited = self._rewrite_helpers(tree, helpers, models, samplers)
        loop = self._epoch_loop(moved, trainers)
        # Helpers the epoch loop calls that compute a metric and only print it now return it.
        helper_metrics = hm.find(tree, loop, tf._all_names(*moved)) if loop is not None else []
        edited = hm.returning(edited, helper_metrics)
        metrics = self._metrics(loop, [h.var for h in helper_metrics]) if loop is not None else None
        worker = self._worker_rewriter(models, samplers, set())

        def rewrite(i: int, stmt: cst.BaseStatement) -> list[cst.BaseStatement]:
            # The original statement, whose nodes carry metadata (qualified names), not `stmt`.
            original = block[i]
            new = original.visit(worker)
            if isinstance(new, cst.RemovalSentinel):
                return []
            if original is loop and helper_metrics:
                new = hm.assigned(new, helper_metrics)
            out = self._block_edits(original, new, loop, metrics, after_loop=loop is not None and i >= block.index(loop))
            if i == model_at:
                out.append(_prepare(models[0]))
            return out

        # The plan was made on `tree`; its block must keep its length in `edited` (only helpers changed).
        text = tl.TorchrunText()
        rewriter = tl.TorchrunTextRewriter(text)
        probe = tl.TorchrunText()
        # The worker count the instructions asked for: what TorchrunTextRewriter would read, in its order.
        for node in walks.nodes_left(tree, (cst.Comment, cst.SimpleString)):
            probe.rewrite(node.value)
        result = tf.apply(self, edited, the_plan, self.options, rewrite, intended_workers=probe.workers)
        result = result.visit(rewriter)
        self._imports()
        self._report(call, owner, the_plan, models, model_at, loop, metrics, rewriter, text)
        for h in helper_metrics:
            self.change(loop, f"{h.function}() computed `{h.metric}` and returned nothing: it now returns it, and the epoch loop keeps it as `{h.var}` and reports it")
        return result

    def _is_optimizer(self, call: cst.Call) -> bool:
        return any(_optimizer_name(q) for q in qualified_names(self, call.func))

    def _trains(self, stmt: cst.BaseStatement, trainers: set[str]) -> bool:
        if isinstance(stmt, (cst.FunctionDef, cst.ClassDef)):
            return False
        return tl.has_backward(stmt) or bool(tl.called_names(stmt) & trainers)

    def _model(self, block, optimizer: cst.Call, opt_index: int, moved) -> tuple[list[str], int | None]:
        """The names that hold the prepared model, and the statement after which to prepare it
        (None when the script wraps it in DistributedDataParallel itself: that call is rewritten)."""
        name = tl.parameters_owner(optimizer)
        ddp_targets = []
        for stmt in moved:
            for c in tl.calls_in(stmt):
                if any(q in tl.DDP for q in qualified_names(self, c.func)):
                    parent = self.parents.get(c)
                    if isinstance(parent, cst.Assign) and isinstance(parent.targets[0].target, cst.Name):
                        ddp_targets.append(parent.targets[0].target.value)
                    else:
                        ddp_targets.append("")
        if ddp_targets:
            names = [n for n in [name, *ddp_targets] if n]
            if name in ddp_targets:
                return [name] + [n for n in names if n != name], None
            # `ddp = DDP(model)` with the optimizer on `model`: the prepared model is `ddp`.
            return [n for n in ddp_targets if n] or ([name] if name else []), None
        if name is None:
            self.follow_up(optimizer, "the model could not be told from the optimizer's parameters: wrap it with ray.train.torch.prepare_model(model) by hand")
            return [], None
        at = next((i for i in reversed(range(opt_index)) if _assigns(block[i], name)), None)
        if at is None:
            self.follow_up(optimizer, f"`{name}` is not built in this block: wrap it with {name} = ray.train.torch.prepare_model({name}) before training")
            return [name], None
        return [name], at

    def _sampler_names(self, statements) -> set[str]:
        names = set()
        for stmt in statements:
            for c in tl.calls_in(stmt):
                if any(q in tl.DIST_SAMPLER for q in qualified_names(self, c.func)):
                    parent = self.parents.get(c)
                    if isinstance(parent, cst.Assign) and isinstance(parent.targets[0].target, cst.Name):
                        names.add(parent.targets[0].target.value)
        return names

    def _worker_rewriter(self, models, samplers, ranks) -> tl.WorkerRewriter:
        return tl.WorkerRewriter(self, self.edits, set(models), RANK_NAMES | ranks, samplers)

    def _rewrite_helpers(self, tree: cst.Module, helpers: set[str], models, samplers) -> cst.Module:
        if not helpers:
            return tree
        # Helpers receive the model as a parameter under any name: `.module` on it is unwrapped only
        # where it is called `model`.
        worker = self._worker_rewriter([*models, "model"], samplers, set())
        body = [s.visit(worker) if isinstance(s, cst.FunctionDef) and s.name.value in helpers else s for s in tree.body]
        return tree.with_changes(body=body)

    # -- epochs: metrics and checkpoints ----------------------------------------------------------
    def _epoch_loop(self, statements, trainers) -> cst.For | None:
        loops = [s for s in statements if isinstance(s, cst.For) and isinstance(s.body, cst.IndentedBlock)]
        named = [s for s in loops if isinstance(s.target, cst.Name) and "epoch" in s.target.value]
        if len(named) == 1:
            return named[0]
        training = [s for s in loops if self._trains(s, trainers)]
        return training[0] if len(training) == 1 else None

    def _metrics(self, loop: cst.For, kept: list[str] = ()) -> tuple[str, bool, str]:
        """The dict each epoch reports, whether it holds more than the epoch number, and what one pass is called.

        ``kept`` are the names the loop now assigns helpers' metrics to (``_helper_metrics``).
        """
        # The loop's own name for what it counts (`epoch`, or `step` in a loop over steps).
        counter = loop.target.value if isinstance(loop.target, cst.Name) else None
        # `for _ in range(n)` names nothing: each pass is still an epoch.
        kind = "epoch" if not counter or "epoch" in counter or not counter.strip("_") else counter
        items = [f'"{kind}": {counter}'] if counter else []
        seen: list[str] = []
        for stmt in _unconditional(loop.body.body):
            if not (isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1 and isinstance(stmt.body[0], cst.Assign)):
                continue
            assign = stmt.body[0]
            if isinstance(assign.value, cst.Dict) and isinstance(assign.targets[0].target, cst.Name):
                name = assign.targets[0].target.value
                if name not in seen:
                    seen.append(name)
                    items.append(f"**{name}")
                continue
            for target in assign.targets:
                names = [target.target] if isinstance(target.target, cst.Name) else [
                    e.value for e in getattr(target.target, "elements", []) if isinstance(e.value, cst.Name)]
                for n in names:
                    if METRIC.search(n.value.lower()) and n.value not in seen:
                        seen.append(n.value)
                        # float(): a loss tensor still holds its graph; Ray gets the number.
                        items.append(f'"{n.value}": float({n.value})')
        for name in kept:
            if name not in seen:
                seen.append(name)
                items.append(f'"{name}": float({name})')
        return "{" + ", ".join(items) + "}", bool(seen), kind

    def _block_edits(self, original, stmt, loop, metrics, after_loop: bool) -> list[cst.BaseStatement]:
        """The epoch report at the end of the epoch loop; saved state dicts reported as checkpoints."""
        report_metrics = metrics[0] if metrics and after_loop else "{}"
        saves = _Saves(self, report_metrics)
        if saves.is_save(original):
            return [self._guard(stmt), *self._checkpoint(saves.path(original), report_metrics)]
        stmt = stmt.visit(saves)
        if isinstance(stmt, cst.FlattenSentinel):  # a rank-guarded save at the top of the block
            return list(stmt.nodes)
        if original is loop and isinstance(stmt, cst.For):
            stmt = self._set_epoch(loop, stmt)
        # An epoch that reports a checkpoint reports its metrics with it; the others report them alone.
        if original is loop and metrics is not None and isinstance(stmt, cst.For) and not saves.reported:
            line = cst.parse_statement(f"ray.train.report({metrics[0]})").with_changes(
                leading_lines=[cst.EmptyLine(comment=cst.Comment(f"# Report this {metrics[2]}'s metrics to Ray Train (every worker)."))])
            body = stmt.body.with_changes(body=[*stmt.body.body, line])
            stmt = stmt.with_changes(body=body)
        return [stmt]

    def _set_epoch(self, loop: cst.For, stmt: cst.For) -> cst.For:
        """On several workers, prepare_data_loader gives a shuffled loader a DistributedSampler, which
        draws the same order every epoch unless told the epoch (Ray's PyTorch guide does it): the
        epoch loop tells the shuffled loaders it reads, unless it already calls ``set_epoch``."""
        if not isinstance(loop.target, cst.Name) or not loop.target.value.strip("_"):
            return stmt
        if any(isinstance(c.func, cst.Attribute) and c.func.attr.value == "set_epoch" for c in tl.calls_in(loop)):
            return stmt
        read = {n.value for n in walks.nodes(loop.body, (cst.Name,))}
        names = []
        for call in self.edits.loaders:
            parent = self.parents.get(call)
            if not (isinstance(parent, cst.Assign) and len(parent.targets) == 1 and isinstance(parent.targets[0].target, cst.Name)):
                continue
            name = parent.targets[0].target.value
            shuffled = any(a.keyword is not None and (
                (a.keyword.value == "shuffle" and not (isinstance(a.value, cst.Name) and a.value.value in ("False", "None")))
                or (a.keyword.value == "sampler" and isinstance(a.value, cst.Call)
                    and any(q in tl.RANDOM_SAMPLERS for q in qualified_names(self, a.value.func))))
                for a in call.args)
            if shuffled and name in read and name not in names:
                names.append(name)
        if not names:
            return stmt
        epoch = loop.target.value
        code = "if ray.train.get_context().get_world_size() > 1:\n" + "".join(f"    {n}.sampler.set_epoch({epoch})\n" for n in names)
        line = cst.parse_statement(code).with_changes(leading_lines=[
            cst.EmptyLine(comment=cst.Comment("# On several workers: a new shuffle each epoch, as the original's loader drew."))])
        self.change(loop, f"`{'`, `'.join(names)}`: `.sampler.set_epoch({epoch})` each epoch on several workers "
                    "(a DistributedSampler shuffles the same way every epoch unless told the epoch)")
        return stmt.with_changes(body=stmt.body.with_changes(body=[line, *stmt.body.body]))

    def _guard(self, stmt: cst.BaseStatement) -> cst.BaseStatement:
        guard = cst.parse_statement("if ray.train.get_context().get_world_rank() == 0:\n    pass\n")
        return guard.with_changes(body=guard.body.with_changes(body=[stmt.with_changes(leading_lines=())]),
                                  leading_lines=stmt.leading_lines)

    def _checkpoint(self, path: str, metrics: str) -> list[cst.BaseStatement]:
        AddImportsVisitor.add_needed_import(self.context, "tempfile")
        AddImportsVisitor.add_needed_import(self.context, "shutil")
        AddImportsVisitor.add_needed_import(self.context, "ray.train", "Checkpoint")
        code = (
            "with tempfile.TemporaryDirectory() as checkpoint_dir:\n"
            "    ray_checkpoint = None\n"
            "    if ray.train.get_context().get_world_rank() == 0:\n"
            f"        shutil.copy({path}, checkpoint_dir)\n"
            "        ray_checkpoint = Checkpoint.from_directory(checkpoint_dir)\n"
            f"    ray.train.report({metrics}, checkpoint=ray_checkpoint)\n"
        )
        self.saved = True
        return [cst.parse_statement(code).with_changes(leading_lines=[cst.EmptyLine(comment=cst.Comment(SAVE_COMMENT))])]

    # -- launchers: mp.spawn, start_processes, notebook_launcher ------------------------------------
    def _launch(self, tree: cst.Module, spawns: list[cst.Call]) -> cst.Module:
        if len(spawns) > 1:
            for call in spawns:
                self.follow_up(call, "several process launches here: convert it by hand, one TorchTrainer per launch")
            return tree
        call = spawns[0]
        rank_first = self._spawner(call)
        positional = [a for a in call.args if a.keyword is None]
        keywords = {a.keyword.value: a.value for a in call.args if a.keyword is not None}
        fn = positional[0].value if positional else keywords.get("fn", keywords.get("function"))
        args = positional[1].value if len(positional) > 1 else keywords.get("args")
        nprocs = positional[2].value if len(positional) > 2 and rank_first else keywords.get("nprocs", keywords.get("num_processes"))
        statement = self.parents[call]
        if not (isinstance(fn, cst.Name) and isinstance(statement, cst.Expr)):
            self.follow_up(call, "not converted: the launched function is not a plain name, or the launch's result is used (join=False): launch it with TorchTrainer by hand")
            return tree
        if isinstance(args, cst.Name):
            args = self._tuple_bound_once(tree, args) or args  # args = ("fp16", 42, 64); notebook_launcher(f, args)
        if args is not None and not isinstance(args, cst.Tuple):
            self.follow_up(call, "not converted: the launch's args are not a tuple written out: launch it with TorchTrainer by hand")
            return tree
        elements = [e.value for e in args.elements] if args is not None else []
        return self._launch_function(tree, call, fn, elements, rank_first, nprocs)

    @staticmethod
    def _tuple_bound_once(tree: cst.Module, name: cst.Name) -> cst.Tuple | None:
        """The tuple literal of ``name = (...)`` when that is the file's only other mention of ``name``."""
        mentions = [n for n in walks.nodes(tree, (cst.Name,)) if n.value == name.value and n is not name]
        if len(mentions) != 1:
            return None
        for assign in walks.nodes(tree, (cst.Assign,)):
            if len(assign.targets) == 1 and assign.targets[0].target is mentions[0] and isinstance(assign.value, cst.Tuple):
                return assign.value
        return None

    def _entry_call(self, tree: cst.Module) -> tuple[cst.Call, cst.Name] | None:
        """``main(args.a, args.b)`` in the main guard, when ``main`` is a function of this file whose
        code (its functions and the classes it builds) runs a backward pass; the last one."""
        functions = {s.name.value: s for s in tree.body if isinstance(s, cst.FunctionDef)}
        found = None
        for stmt in tl.main_guards(tree):
            for line in stmt.body.body:
                if not (isinstance(line, cst.SimpleStatementLine) and len(line.body) == 1 and isinstance(line.body[0], cst.Expr)):
                    continue
                call = line.body[0].value
                if (isinstance(call, cst.Call) and isinstance(call.func, cst.Name) and call.func.value in functions
                        and all(a.keyword is None and not a.star for a in call.args)
                        and any(tl.has_backward(node) for node in self._reached(tree, functions[call.func.value]))):
                    found = (call, call.func)
        return found

    def _reached(self, tree: cst.Module, target: cst.FunctionDef) -> list[cst.CSTNode]:
        """``target``, the functions of this file it calls, and the classes of this file they build."""
        functions = {s.name.value: s for s in tree.body if isinstance(s, cst.FunctionDef)}
        classes = {s.name.value: s for s in tree.body if isinstance(s, cst.ClassDef)}
        names = {target.name.value} | tl.reachable_functions(tree, [target.body], {target.name.value})
        nodes = [functions[n] for n in names]
        built = set().union(*(tl.called_names(n) for n in nodes)) & set(classes)
        return nodes + [classes[n] for n in sorted(built)]

    def _launch_function(self, tree: cst.Module, call: cst.Call, fn: cst.Name, elements: list[cst.BaseExpression],
                         rank_first: bool | None, nprocs: cst.BaseExpression | None) -> cst.Module:
        """Replace the statement of ``call`` (a process launch, or the main guard's entry call) by a
        ``TorchTrainer`` over a train function that calls ``fn`` as ``call`` did."""
        statement = self.parents[call]
        line = self.parents[statement]
        top = line
        while self.parents[top] is not tree:
            top = self.parents[top]
        entry = rank_first is False and nprocs is None and tl._code(call.func) == fn.value
        nprocs_code = tl._code(nprocs) if nprocs is not None else None
        workers = int(nprocs.value) if isinstance(nprocs, cst.Integer) else _literal_int(top, nprocs)

        # The train function calls `fn` as the launcher did; the world size the launcher passed
        # (the same expression as nprocs) is Ray's now.
        func = tf.unique_name(tree, "train_func")
        param = "loop_config" if "config" in tf._all_names(tree) else "config"
        call_args = ["context.get_world_rank()"] if rank_first else []
        config_args = []
        for e in elements:
            if nprocs_code is not None and tl._code(e) == nprocs_code:
                call_args.append("context.get_world_size()")
            else:
                call_args.append(f'{param}["args"][{len(config_args)}]')
                config_args.append(tl._code(e))
        how = "with its rank first, as the launcher did" if rank_first else ("as the script did" if entry else "as the launcher did")
        uses_context = any(a.startswith("context.") for a in call_args)
        wrapper = cst.parse_statement(
            f"def {func}({param}):\n"
            "    # Ray starts each worker in a directory of its own: go back to where the script was launched.\n"
            f'    os.chdir({param}["launch_dir"])\n'
            + ("    context = ray.train.get_context()\n" if uses_context else "")
            + f"    {fn.value}({', '.join(call_args)})\n"
        ).with_changes(leading_lines=[cst.EmptyLine(indent=False), cst.EmptyLine(indent=False), cst.EmptyLine(comment=cst.Comment(
            f"# Ray Train runs this on every worker: it calls {fn.value} {how}."))])
        config_items = [("launch_dir", "os.getcwd()")]
        if config_args:
            config_items.append(("args", "(" + ", ".join(config_args) + ("," if len(config_args) == 1 else "") + ")"))
        launch = tf._launch_statements(func, "ray_trainer", "result", config_items, self.options, [],
                                       self.options.workers(workers), blank=0)
        launch[0] = launch[0].with_changes(leading_lines=[*line.leading_lines, *launch[0].leading_lines[-1:]])
        if len(line.body) != 1:
            self.follow_up(call, "not converted: the launch shares its line with other statements")
            return tree

        local = {s.name.value: s for s in tree.body if isinstance(s, cst.FunctionDef)}
        target = local.get(fn.value)
        rewritten: dict[str, cst.FunctionDef] = {}
        if target is not None:
            params = tf._param_list(target)
            ranks = {params[0]} if rank_first and params else set()
            helpers = tl.reachable_functions(tree, [target.body], {target.name.value, *(s.name.value for s in tree.body if isinstance(s, cst.FunctionDef) and _contains(s, call))})
            trainers = tl.training_functions(tree)
            statements = list(target.body.body)
            opt = next((c for s in statements for c in tl.calls_in(s) if self._is_optimizer(c)), None)
            models, model_at, samplers = [], None, self._sampler_names(statements)
            if opt is not None:
                opt_index = next(i for i, s in enumerate(statements) if opt in tl.calls_in(s))
                models, model_at = self._model(statements, opt, opt_index, statements)
            worker = self._worker_rewriter(models, samplers, ranks)
            loop = self._epoch_loop(statements, trainers)
            metrics = self._metrics(loop) if loop is not None else None
            rewritten[fn.value] = _rewritten(target, worker, models, model_at, lambda i, stmt, new: self._block_edits(
                stmt, new, loop, metrics, after_loop=loop is not None and i >= statements.index(loop)))
            # The classes these functions build (a tutorial's `Trainer`) run on the workers too;
            # a model they wrap in DDP themselves (`self.model = DDP(...)`) is unwrapped as `model` is.
            classes = [n for n in self._reached(tree, target) if isinstance(n, cst.ClassDef)]
            wrapped = self._ddp_targets([local[n] for n in helpers] + classes)
            helper_worker = self._worker_rewriter([*models, "model", *wrapped], samplers | self._sampler_names(classes), ranks)
            method_metrics: list[hm.MethodMetric] = []
            looping_class = None
            if loop is None:
                # The epochs are counted in a helper or a method (`Trainer.train`): report there.
                loop = self._nested_epoch_loop([local[n] for n in helpers] + classes)
                # Methods that compute the loss and only use it (the tutorial's `_run_batch`) hand it back.
                looping_class = next((c for c in classes if loop is not None and hm.holds(c, loop)), None)
                if looping_class is not None:
                    looping = next(f for f in looping_class.body.body if isinstance(f, cst.FunctionDef) and hm.holds(f, loop))
                    method_metrics = hm.find_in_class(looping_class, loop, tf._all_names(looping))
                metrics = self._metrics(loop, [m.var for m in method_metrics]) if loop is not None else None
                if loop is not None:
                    report = cst.parse_statement(f"ray.train.report({metrics[0]})").with_changes(leading_lines=[
                        cst.EmptyLine(comment=cst.Comment(f"# Report this {metrics[2]}'s metrics to Ray Train (every worker)."))])
                    helper_worker.epoch_report = (loop, report)
            builder = None
            if model_at is None and not wrapped and not models:
                # No DDP anywhere (a one-GPU script): prepare the model in the one helper that
                # builds it beside its optimizer (`load_train_objs`).
                builder = self._model_builder([local[n] for n in helpers])
                if builder is not None:
                    models, model_at = builder[1], builder[2]
                else:
                    self.follow_up(call, f"no DistributedDataParallel or model was found in the code {fn.value} runs: wrap the model with "
                                         "ray.train.torch.prepare_model(model) where it is built, or the workers train alone")
            for name in helpers:
                if builder is not None and name == builder[0].name.value:
                    rewritten[name] = _rewritten(builder[0], helper_worker, models, model_at)
                else:
                    rewritten[name] = local[name].visit(helper_worker)
            for cls in classes:
                rewritten[cls.name.value] = cls.visit(helper_worker)
                if cls is looping_class:
                    rewritten[cls.name.value] = hm.methods_returning(rewritten[cls.name.value], method_metrics)
            for m in method_metrics:
                how = (f"{m.chain[1]}() computed `{m.metric}` and returned nothing: it now returns it, {m.chain[0]}() returns its last batch's"
                       if len(m.chain) == 2 else f"{m.chain[0]}() computed `{m.metric}` and returned nothing: it now returns it")
                self.change(loop, f"{how}, and the epoch loop keeps it as `{m.var}` and reports it")
            self._report_loop(call, models, model_at, loop, metrics)
        else:
            source = self._imported_from(fn)
            self.follow_up(call, f"`{fn.value}` comes from {source}, which this conversion leaves as it is: if it sets up distribution itself "
                                 "(init_process_group, DistributedDataParallel, .cuda(rank)), convert that file too or guard those "
                                 "(Ray Train already created the process group and picked each worker's device)")

        text = tl.TorchrunText()
        texts = tl.TorchrunTextRewriter(text)
        new_body = []
        for stmt in tree.body:
            if isinstance(stmt, (cst.FunctionDef, cst.ClassDef)) and stmt.name.value in rewritten:
                stmt = rewritten[stmt.name.value]
            if stmt is top:
                new_body.append(wrapper)
                if top is line:  # launched at module level
                    launch[0] = launch[0].with_changes(leading_lines=[cst.EmptyLine(indent=False), cst.EmptyLine(indent=False), *tf._strip_lines(launch[0].leading_lines)])
                    new_body.extend(launch)
                    continue
                stmt = stmt.visit(_Replace(line, launch))
                stmt = stmt.with_changes(leading_lines=[cst.EmptyLine(indent=False), cst.EmptyLine(indent=False), *tf._strip_lines(stmt.leading_lines)])
            new_body.append(stmt)
        result = tree.with_changes(body=new_body).visit(texts)
        self._imports()
        AddImportsVisitor.add_needed_import(self.context, "os")
        AddImportsVisitor.add_needed_import(self.context, "ray.train", "ScalingConfig")
        AddImportsVisitor.add_needed_import(self.context, "ray.train.torch", "TorchTrainer")
        if not entry:
            RemoveImportsVisitor.remove_unused_import_by_node(self.context, call.func)
        given = f"ScalingConfig(num_workers={self.options.workers(workers)})"
        if entry:
            self.change(call, f"the call {fn.value}(...) runs on every worker: TorchTrainer over {func} ({given}) launches it; "
                              f"its arguments, computed on the driver, go through train_loop_config")
        else:
            kind = "torch.multiprocessing " + ("spawn" if "spawn" in tl._code(call.func) else "start_processes") if rank_first else "notebook_launcher"
            self.change(call, f"{kind} launch of {fn.value} replaced by TorchTrainer over {func} ({given}); "
                              f"{fn.value} receives {'the worker rank and ' if rank_first else ''}its arguments through train_loop_config")
        if nprocs is not None and workers is None and not self.options.num_workers:
            self.follow_up(call, f"the script started `{nprocs_code}` processes; ScalingConfig uses {self.options.workers()}: set --num-workers or edit num_workers")
        self._report_text(texts, text)
        self._report_edits()
        return result

    def _model_builder(self, functions: list[cst.FunctionDef]) -> tuple[cst.FunctionDef, list[str], int] | None:
        """The one function among ``functions`` that builds an optimizer over a model it builds too:
        the function, the model's name and the index of the statement that builds the model."""
        found = []
        for fn in functions:
            statements = list(fn.body.body) if isinstance(fn.body, cst.IndentedBlock) else []
            for i, stmt in enumerate(statements):
                for c in tl.calls_in(stmt):
                    if self._is_optimizer(c):
                        found.append((fn, statements, c, i))
        if len(found) != 1:
            return None
        fn, statements, optimizer, index = found[0]
        name = tl.parameters_owner(optimizer)
        at = [i for i in range(index) if name and _assigns(statements[i], name)]
        return (fn, [name], at[-1]) if at else None

    def _nested_epoch_loop(self, nodes: list[cst.CSTNode]) -> cst.For | None:
        """The one ``for epoch in ...`` loop at the top of a function or method body in ``nodes``."""
        functions = [n for n in nodes if isinstance(n, cst.FunctionDef)] + [
            s for n in nodes if isinstance(n, cst.ClassDef) for s in n.body.body if isinstance(s, cst.FunctionDef)]
        loops = [s for f in functions if isinstance(f.body, cst.IndentedBlock) for s in f.body.body
                 if isinstance(s, cst.For) and isinstance(s.target, cst.Name) and "epoch" in s.target.value
                 and isinstance(s.body, cst.IndentedBlock)]
        return loops[0] if len(loops) == 1 else None

    def _ddp_targets(self, nodes: list[cst.CSTNode]) -> list[str]:
        """What ``X = DistributedDataParallel(...)`` assigns in ``nodes``: ``model``, ``self.model``."""
        found = []
        for node in nodes:
            for c in tl.calls_in(node):
                parent = self.parents.get(c)
                if (any(q in tl.DDP for q in qualified_names(self, c.func)) and isinstance(parent, cst.Assign)
                        and isinstance(parent.targets[0].target, (cst.Name, cst.Attribute))):
                    found.append(tl._code(parent.targets[0].target))
        return found

    def _imported_from(self, fn: cst.Name) -> str:
        for q in qualified_names(self, fn):
            if "." in q:
                return f"`{q.rsplit('.', 1)[0]}`"
        return "another module"

    # -- reporting --------------------------------------------------------------------------------
    def _imports(self) -> None:
        AddImportsVisitor.add_needed_import(self.context, "ray.train")
        AddImportsVisitor.add_needed_import(self.context, "ray.train.torch")

    def _report(self, call, owner, the_plan, models, model_at, loop, metrics, rewriter, text) -> None:
        where = "main guard" if isinstance(owner, cst.If) else (
            f"{owner.name.value}()" if isinstance(owner, cst.FunctionDef) else "module level")
        self.change(call, f"training at {where} moved into a train function launched by TorchTrainer")
        if the_plan.config_names:
            self.change(call, f"parsed on the driver and handed to the workers through train_loop_config: {', '.join(the_plan.config_names)}")
        if the_plan.returns_value:
            tf.report_return(self, call)
        self._report_loop(call, models, model_at, loop, metrics)
        self._report_text(rewriter, text)
        self._report_edits()

    def _report_loop(self, call, models, model_at, loop, metrics) -> None:
        if model_at is not None:
            self.change(call, f"`{models[0]}` goes through ray.train.torch.prepare_model (DDP and device placement)")
        if loop is None:
            self.follow_up(call, "no single epoch loop found: report metrics with ray.train.report({...}) once per epoch, on every worker")
        elif metrics is not None:
            self.change(loop, "metrics reported to Ray Train at the end of each epoch (ray.train.report)")
            if not metrics[1]:
                self.follow_up(loop, "no per-epoch metric (a loss or accuracy assigned in the epoch loop) was found: only the epoch is reported; add your metrics to that ray.train.report")
        if self.saved:
            self.change(call, "the saved state dict is written by rank 0 and reported by every worker as a checkpoint (Checkpoint.from_directory)")
        if models:
            self._whole_model_saves(models[0])

    def _whole_model_saves(self, model: str) -> None:
        """``torch.save(model, f)`` of a module whose class this script defines: a Ray worker runs
        the train function unpickled from the driver's ``__main__``, where pickle cannot find the
        class by name (PicklingError, measured on Ray 2.60). Its state dict saves anywhere."""
        classes = [c for c in self.module.body if isinstance(c, cst.ClassDef)
                   and any(tl._code(b.value).split(".")[-1] == "Module" for b in c.bases)]
        if not classes:
            return
        for call in tl.calls_in(self.module):
            if call.args and tl._code(call.args[0].value) == model and "torch.save" in qualified_names(self, call.func):
                self.follow_up(call, f"`torch.save({model}, ...)` pickles the whole model, whose class `{classes[0].name.value}` "
                                     "this script defines: on a Ray worker pickle cannot find it by name (PicklingError). Save "
                                     f"`getattr({model}, \"module\", {model}).state_dict()` on rank 0 instead, and load it into a new model")

    def _report_text(self, rewriter, text) -> None:
        if rewriter.hits:
            self.change(rewriter.hits[0], f"torchrun instructions now run the script with python ({', '.join(text.dropped) or 'no options'} dropped: Ray starts the workers)")

    def _report_edits(self) -> None:
        e = self.edits
        # The imports of what was removed or replaced go too, where nothing else uses them.
        for func in [node.body[0].value.func for node, _ in e.removed] + [call.func for call in e.ddp]:
            RemoveImportsVisitor.remove_unused_import_by_node(self.context, func)
        for node, what in e.removed:
            self.change(node, f"{what} removed: {tl.REMOVED[what]}")
        if e.ddp:
            self.change(e.ddp[0], "DistributedDataParallel(...) replaced by ray.train.torch.prepare_model")
        if e.loaders:
            self.change(e.loaders[0], f"{len(e.loaders)} DataLoader(s) wrapped in ray.train.torch.prepare_data_loader (distributed sampler, device placement)")
        if e.devices:
            self.change(e.devices[0], "the device follows ray.train.torch.get_device()")
        if e.ranks:
            self.change(e.ranks[0], "rank and world size come from ray.train.get_context()")
        if e.unwrapped:
            self.change(e.unwrapped[0], "the model's state dict is the bare model's (getattr(model, \"module\", model)), wrapped by prepare_model or not")
        for node, message in e.unsupported:
            self.follow_up(node, message)


def _unconditional(statements) -> list[cst.BaseStatement]:
    """``statements`` with the bodies of ``with`` blocks among them spliced in: what runs every pass
    (``with torch.no_grad(): val_loss = ...`` assigns a metric each epoch)."""
    out: list[cst.BaseStatement] = []
    for stmt in statements:
        if isinstance(stmt, cst.With) and isinstance(stmt.body, cst.IndentedBlock):
            out.extend(_unconditional(stmt.body.body))
        else:
            out.append(stmt)
    return out


def _literal_int(block: cst.CSTNode, name) -> int | None:
    """``N`` when ``name`` is assigned ``name = N`` (an integer literal) once at the top of ``block``."""
    if not isinstance(name, cst.Name) or not isinstance(getattr(block, "body", None), cst.IndentedBlock):
        return None
    values = [s.body[0].value for s in block.body.body
              if isinstance(s, cst.SimpleStatementLine) and len(s.body) == 1 and isinstance(s.body[0], cst.Assign)
              and any(isinstance(t.target, cst.Name) and t.target.value == name.value for t in s.body[0].targets)]
    return int(values[0].value) if len(values) == 1 and isinstance(values[0], cst.Integer) else None


def _prepare(model: str) -> cst.BaseStatement:
    return cst.parse_statement(f"{model} = ray.train.torch.prepare_model({model})")


def _rewritten(function: cst.FunctionDef, worker: tl.WorkerRewriter, models: list[str], model_at: int | None,
               edit=lambda i, stmt, new: [new]) -> cst.FunctionDef:
    """``function`` with each statement of its body rewritten for the workers (``edit`` may add
    to it) and the model prepared after statement ``model_at``."""
    body: list[cst.BaseStatement] = []
    for i, stmt in enumerate(function.body.body):
        new = stmt.visit(worker)
        if isinstance(new, cst.RemovalSentinel):
            continue
        body.extend(edit(i, stmt, new))
        if i == model_at:
            body.append(_prepare(models[0]))
    return function.with_changes(body=function.body.with_changes(body=body or [cst.SimpleStatementLine([cst.Pass()])]))


def _assigns(stmt: cst.BaseStatement, name: str) -> bool:
    """``name = ...`` as the one statement of a line."""
    if not (isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1 and isinstance(stmt.body[0], (cst.Assign, cst.AnnAssign))):
        return False
    small = stmt.body[0]
    targets = [t.target for t in small.targets] if isinstance(small, cst.Assign) else [small.target]
    return any(isinstance(t, cst.Name) and t.value == name for t in targets)


def _contains(outer: cst.CSTNode, inner: cst.CSTNode) -> bool:
    return any(c is inner for c in tl.calls_in(outer))


class _Saves(cst.CSTTransformer):
    """``torch.save(<state dict>, path)`` inside a statement: written by rank 0, then reported as a checkpoint."""

    def __init__(self, codemod: PytorchLoopToTorchTrainer, metrics: str) -> None:
        super().__init__()
        self.codemod = codemod
        self.metrics = metrics
        self.guards: list[cst.If] = []
        self.pending: dict[int, list[str]] = {}
        self.reported = False  # a checkpoint report was added at the top level of the statement

    def is_save(self, stmt: cst.CSTNode) -> bool:
        if not (isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1 and isinstance(stmt.body[0], cst.Expr)):
            return False
        call = stmt.body[0].value
        # Worker code has been rewritten by now (no metadata): `torch.save` is matched as written too.
        is_save = "torch.save" in qualified_names(self.codemod, call.func) or tl._code(call.func) == "torch.save" if isinstance(call, cst.Call) else False
        if not (is_save and len(call.args) >= 2):
            return False
        saved = call.args[0].value
        return any(isinstance(c.func, cst.Attribute) and c.func.attr.value == "state_dict" for c in tl.calls_in(saved))

    def path(self, stmt: cst.SimpleStatementLine) -> str:
        return tl._code(stmt.body[0].value.args[1].value)

    def visit_If(self, node: cst.If) -> None:
        if RANK_GUARD.search(tl._code(node.test)):
            self.guards.append(node)

    def leave_If(self, original_node: cst.If, updated_node: cst.If):
        if self.guards and self.guards[-1] is original_node:
            self.guards.pop()
            paths = self.pending.pop(id(original_node), [])
            if paths and not self.guards:
                self.reported = True
                return cst.FlattenSentinel([updated_node, *self.codemod._checkpoint(paths[0], self.metrics)])
        return updated_node

    def leave_SimpleStatementLine(self, original_node, updated_node):
        if not self.is_save(original_node):
            return updated_node
        if self.guards:  # already written by one rank: report after the outermost guard
            self.pending.setdefault(id(self.guards[0]), []).append(self.path(original_node))
            return updated_node
        self.reported = True
        return cst.FlattenSentinel([self.codemod._guard(updated_node), *self.codemod._checkpoint(self.path(original_node), self.metrics)])


class _Replace(cst.CSTTransformer):
    def __init__(self, target: cst.CSTNode, replacement: list[cst.BaseStatement]) -> None:
        super().__init__()
        self.target = target
        self.replacement = replacement

    def on_leave(self, original_node, updated_node):
        if original_node is self.target:
            return cst.FlattenSentinel(self.replacement)
        return updated_node
